"""v2 metadata and config come from the FeatureSpec, in the shapes tritonclient and perf_analyzer
read (perf_analyzer skips the first metadata dim when max_batch_size > 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabserve.serving.codecs import v2_model
from tabserve.spec import FeatureSpec
from tabserve.training.profile import build_spec


@pytest.fixture(scope="module")
def titanic_spec() -> FeatureSpec:
    from importlib.resources import files

    frame = pd.read_csv(files("tabserve") / "data" / "titanic.csv")
    frame["Adult"] = frame["Age"] >= 18
    return build_spec(
        frame,
        "Survived",
        features=["Pclass", "Sex", "Age", "SibSp", "Fare", "Embarked", "Adult"],
        kinds={"Adult": "boolean"},
    )


def test_metadata_has_one_input_per_feature_typed_by_dtype(titanic_spec: FeatureSpec) -> None:
    meta = v2_model.metadata(titanic_spec, "titanic", "3", "onnx")
    assert meta["name"] == "titanic" and meta["versions"] == ["3"]
    assert meta["platform"] == "onnxruntime_onnx"
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types == {
        "Pclass": "INT64",
        "Sex": "BYTES",
        "Age": "FP64",
        "SibSp": "INT64",
        "Fare": "FP64",
        "Embarked": "BYTES",
        "Adult": "BOOL",
    }
    assert [i["name"] for i in meta["inputs"]] == titanic_spec.names  # spec order
    assert all(i["shape"] == [-1, 1] for i in meta["inputs"])
    assert meta["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]


def test_config_is_what_perf_analyzer_reads(titanic_spec: FeatureSpec) -> None:
    cfg = v2_model.config(
        titanic_spec, "titanic", "onnx", max_batch_size=100, max_queue_delay_us=500
    )
    assert cfg["max_batch_size"] == 100
    assert cfg["dynamic_batching"] == {"max_queue_delay_microseconds": 500}
    assert {i["name"]: i["data_type"] for i in cfg["input"]}["Sex"] == "TYPE_STRING"
    assert {i["name"]: i["data_type"] for i in cfg["input"]}["Age"] == "TYPE_FP64"
    assert all(i["dims"] == [1] for i in cfg["input"])
    # perf_analyzer fails on a config output that metadata does not list.
    meta_outputs = {o["name"] for o in v2_model.metadata(titanic_spec, "t", "1", "onnx")["outputs"]}
    assert {o["name"] for o in cfg["output"]} == meta_outputs
    label = next(o for o in cfg["output"] if o["name"] == "label")
    assert label["dims"] == [1] and label["reshape"] == {"shape": []}
    no_batching = v2_model.config(titanic_spec, "t", "sklearn", 10, None)
    assert "dynamic_batching" not in no_batching
    assert no_batching["platform"] == "tabserve_sklearn"


@pytest.mark.parametrize(
    ("classes", "datatype"),
    [([0, 1], "INT64"), (["no", "yes"], "BYTES"), ([False, True], "BOOL"), ([0.5, 1], "FP64"),
     ([1, "x"], "BYTES"), (None, "BYTES")],
)  # fmt: skip
def test_label_datatype_carries_every_class(classes: list | None, datatype: str) -> None:
    assert v2_model.label_datatype(classes) == datatype


def test_output_tensors_for_a_classifier(titanic_spec: FeatureSpec) -> None:
    tensors = v2_model.output_tensors(
        titanic_spec, np.array([0, 1]), np.array([[0.9, 0.1], [0.3, 0.7]], dtype=np.float32)
    )
    assert tensors["label"].datatype == "INT64"
    assert tensors["label"].array.dtype == np.int64
    assert tensors["probabilities"].array.dtype == np.float64
    assert tensors["probabilities"].array.shape == (2, 2)


def test_string_labels_and_regression() -> None:
    frame = pd.DataFrame(
        {"x": np.arange(40, dtype=float), "y": ["a", "b"] * 20, "z": np.linspace(0, 1, 40)}
    )
    cls_spec = build_spec(frame, "y", features=["x"])
    tensors = v2_model.output_tensors(cls_spec, np.array(["a", "b"], dtype=object), None)
    assert tensors["label"].datatype == "BYTES"
    assert tensors["label"].array.tolist() == ["a", "b"]
    assert "probabilities" not in tensors

    reg_spec = build_spec(frame, "z", features=["x"], task="regression")
    assert v2_model.output_names(reg_spec) == ["prediction"]
    tensors = v2_model.output_tensors(reg_spec, np.array([[0.25], [0.5]]), None)
    assert tensors["prediction"].array.tolist() == [0.25, 0.5]
