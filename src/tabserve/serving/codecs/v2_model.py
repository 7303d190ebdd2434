"""How a tabserve model looks in v2 terms: tensor names, datatypes, shapes, metadata and config.

Derived from the FeatureSpec only (no hand-written lists), so the metadata a client reads is
exactly what validation accepts:

- one input per feature, shape ``[-1, 1]`` (``[N]`` is accepted as well); datatype by the JSON
  type the spec says a request carries: ``string`` → BYTES, ``int64`` → INT64, ``float64`` → FP64,
  ``bool`` → BOOL. Int-coded categories are INT64 (sent as numbers, as in v1).
- classification outputs: ``label`` ``[-1]`` (INT64, BYTES, BOOL or FP64 by the class labels) and
  ``probabilities`` ``[-1, n_classes]`` FP64, columns in ``spec.target.classes`` order;
  regression: ``prediction`` ``[-1]`` FP64.

The Triton-style config (``/config``) gives ``max_batch_size`` > 0 so perf_analyzer treats the
first dimension as the batch, and per-row ``dims`` of ``[1]`` (with ``reshape: []`` for the 1-D
outputs, Triton's spelling of a batch-only tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tabserve.serving.codecs.v2 import OutputTensor
from tabserve.spec import Feature, FeatureSpec, Scalar

LABEL = "label"
PROBABILITIES = "probabilities"
PREDICTION = "prediction"

_INPUT_DATATYPE = {"string": "BYTES", "int64": "INT64", "float64": "FP64", "bool": "BOOL"}


def input_datatype(feature: Feature) -> str:
    return _INPUT_DATATYPE[feature.dtype]


def label_datatype(classes: list[Scalar] | None) -> str:
    """The datatype that carries every class label unchanged."""
    values = classes or []
    if values and all(isinstance(c, bool) for c in values):
        return "BOOL"
    if values and all(isinstance(c, int) and not isinstance(c, bool) for c in values):
        return "INT64"
    if values and all(isinstance(c, int | float) and not isinstance(c, bool) for c in values):
        return "FP64"
    return "BYTES"


def output_specs(spec: FeatureSpec) -> list[dict[str, Any]]:
    """The outputs as v2 metadata tensors (name, datatype, shape with -1 for the batch)."""
    if spec.target.task == "regression":
        return [{"name": PREDICTION, "datatype": "FP64", "shape": [-1]}]
    n_classes = len(spec.target.classes or [])
    return [
        {"name": LABEL, "datatype": label_datatype(spec.target.classes), "shape": [-1]},
        {"name": PROBABILITIES, "datatype": "FP64", "shape": [-1, n_classes]},
    ]


def output_names(spec: FeatureSpec) -> list[str]:
    return [o["name"] for o in output_specs(spec)]


def platform(runtime: str | None) -> str:
    return "onnxruntime_onnx" if runtime == "onnx" else f"tabserve_{runtime or 'unknown'}"


def metadata(spec: FeatureSpec, name: str, version: str, runtime: str | None) -> dict[str, Any]:
    """The v2 model metadata response (``parameters`` says where the spec came from)."""
    result: dict[str, Any] = {
        "name": name,
        "versions": [version],
        "platform": platform(runtime),
        "inputs": [
            {"name": f.name, "datatype": input_datatype(f), "shape": [-1, 1]} for f in spec.features
        ],
        "outputs": output_specs(spec),
    }
    if spec.sources:
        result["parameters"] = {"feature_spec_sources": spec.sources}
    return result


def _config_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def config(
    spec: FeatureSpec,
    name: str,
    runtime: str | None,
    max_batch_size: int,
    max_queue_delay_us: int | None,
) -> dict[str, Any]:
    """Triton's model configuration as JSON (what perf_analyzer and tritonclient read).

    ``max_queue_delay_us`` is None when the dynamic batcher is off.
    """
    outputs = []
    for out in output_specs(spec):
        per_row = out["shape"][1:]
        entry: dict[str, Any] = {
            "name": out["name"],
            "data_type": _config_type(out["datatype"]),
            "dims": per_row or [1],
        }
        if not per_row:
            entry["reshape"] = {"shape": []}
        outputs.append(entry)
    result: dict[str, Any] = {
        "name": name,
        "platform": platform(runtime),
        "backend": "tabserve",
        "max_batch_size": max_batch_size,
        "input": [
            {
                "name": f.name,
                "data_type": _config_type(input_datatype(f)),
                "format": "FORMAT_NONE",
                "dims": [1],
                # Triton's flag: a request may leave this input out (it counts as missing).
                "optional": f.nullable,
            }
            for f in spec.features
        ],
        "output": outputs,
    }
    if max_queue_delay_us is not None:
        result["dynamic_batching"] = {"max_queue_delay_microseconds": max_queue_delay_us}
    return result


def _label_array(labels: np.ndarray, datatype: str) -> np.ndarray:
    flat = np.asarray(labels).reshape(-1)
    if datatype == "BOOL":
        return flat.astype(bool)
    if datatype == "INT64":
        return flat.astype(np.int64)
    if datatype == "FP64":
        return flat.astype(np.float64)
    return np.array([str(v) for v in flat.tolist()], dtype=object)


def output_tensors(
    spec: FeatureSpec, labels: np.ndarray, probabilities: np.ndarray | None
) -> dict[str, OutputTensor]:
    """A prediction as v2 output tensors keyed by name."""
    if spec.target.task == "regression":
        values = np.asarray(labels, dtype=np.float64).reshape(-1)
        return {PREDICTION: OutputTensor(PREDICTION, "FP64", values)}
    datatype = label_datatype(spec.target.classes)
    tensors = {LABEL: OutputTensor(LABEL, datatype, _label_array(labels, datatype))}
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float64)
        tensors[PROBABILITIES] = OutputTensor(PROBABILITIES, "FP64", probs)
    return tensors
