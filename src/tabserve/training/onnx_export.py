"""ONNX export of a fitted pipeline, and the parity check that decides whether it ships.

Contract (see docs in common notes): one input per feature named as the feature, shape
[None, 1]; numeric and boolean → tensor(double), categorical → tensor(string). Outputs:
classifiers "label" [None] and "probabilities" [None, n_classes] (no ZipMap), regressors
"variable" [None, 1].

ONNX's ``Imputer`` operator has no double kernel in onnxruntime, so SimpleImputer gets a
converter of our own here (``Where(IsNaN(x), statistics, x)``) that keeps double precision —
casting to float32 would move tree split decisions and break parity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tabserve.spec import FeatureSpec
from tabserve.training.pipeline import MODEL_STEP, prepare_frame

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
VARIABLE_OUTPUT = "variable"
PROBABILITY_TOLERANCE = 1e-5
REGRESSION_RELATIVE_TOLERANCE = 1e-4
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

_registered = False


@dataclass
class ExportResult:
    """An ONNX model (or None) and the parity facts recorded in tabserve.json."""

    onnx_bytes: bytes | None
    parity_ok: bool
    # Largest deviation: probability (classification) or relative error (regression).
    max_deviation: float | None
    label_mismatches: int
    rows_checked: int
    reason: str | None = None

    def info(self) -> dict[str, Any]:
        return {
            "onnx": self.onnx_bytes is not None,
            "onnx_parity_ok": self.parity_ok,
            "onnx_max_deviation": self.max_deviation,
            "onnx_label_mismatches": self.label_mismatches,
            "onnx_rows_checked": self.rows_checked,
            "onnx_reason": self.reason,
        }


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer for numeric inputs as plain ONNX ops, in the input's own precision."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("impute_fill")
    container.add_initializer(fill, TensorProto.DOUBLE, [1, len(stats)], stats.tolist())
    is_nan = scope.get_unique_variable_name("impute_isnan")
    container.add_node("IsNaN", [x], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [is_nan, fill, x],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _patch_hist_gradient_boosting() -> None:
    """skl2onnx 1.20 passes a Python ``False`` as the missing-value flag of HGB leaves, which
    current onnx rejects in an integer attribute; cast it to int before the node is built."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node
    if getattr(original, "_tabserve_patched", False):
        return

    def add_node(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if flag is not None:
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return original(*args, **kwargs)

    add_node._tabserve_patched = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def _register_converters() -> None:
    global _registered
    if _registered:
        return
    _patch_hist_gradient_boosting()
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        calculate_sklearn_imputer_output_shapes,
        _convert_imputer,
        overwrite=True,
    )
    _registered = True


def onnx_feeds(prepared: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The prepared frame as ONNX inputs: one [n, 1] array per feature."""
    feeds: dict[str, np.ndarray] = {}
    for f in spec.features:
        column = prepared[f.name].to_numpy()
        if f.kind == "categorical":
            feeds[f.name] = column.astype(str).reshape(-1, 1)
        else:
            feeds[f.name] = column.astype(np.float64).reshape(-1, 1)
    return feeds


def _uses_float32(pipeline: Pipeline) -> bool:
    """Tree ensembles compare in float32 inside sklearn (and in ONNX's tree operators)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    trees = (
        RandomForestClassifier,
        RandomForestRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    return isinstance(pipeline.named_steps[MODEL_STEP], trees)


def _restore_input_names(model: Any, spec: FeatureSpec) -> None:
    """Give graph inputs the features' exact names.

    skl2onnx sanitises names ("sepal length (cm)" → "sepal_length__cm_"); the contract is
    the feature name as is, which ONNX allows. Inputs keep the order of ``initial_types``.
    """
    inputs = list(model.graph.input)
    if len(inputs) != len(spec.features):
        raise RuntimeError(f"ONNX graph has {len(inputs)} inputs for {len(spec.features)} features")
    taken = {o for n in model.graph.node for o in n.output} | {
        i.name for i in model.graph.initializer
    }
    for graph_input, feature in zip(inputs, spec.features, strict=True):
        old, new = graph_input.name, feature.name
        if old == new:
            continue
        if new in taken:
            raise RuntimeError(f"feature name {new!r} collides with a name inside the ONNX graph")
        for node in model.graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        graph_input.name = new


def _double_inputs(model: Any, names: list[str]) -> None:
    """Make the float32 graph inputs ``names`` double, casting right after the input.

    The contract is double inputs for every model; tree models are converted on float32 inputs
    (skl2onnx's tree converters only produce valid graphs and sklearn-exact thresholds in
    float32), so a Cast to float32 sits in front of them.
    """
    from onnx import TensorProto, helper

    casts = []
    for graph_input in model.graph.input:
        if graph_input.name not in names:
            continue
        inner = f"{graph_input.name}__float32"
        for node in model.graph.node:
            for i, name in enumerate(node.input):
                if name == graph_input.name:
                    node.input[i] = inner
        graph_input.type.tensor_type.elem_type = TensorProto.DOUBLE
        casts.append(
            helper.make_node(
                "Cast", [graph_input.name], [inner], to=TensorProto.FLOAT, name=f"cast_{inner}"
            )
        )
    for offset, node in enumerate(casts):
        model.graph.node.insert(offset, node)


def convert(pipeline: Pipeline, spec: FeatureSpec) -> bytes:
    """Convert a fitted pipeline to ONNX bytes under the input/output contract."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    _register_converters()
    float32 = _uses_float32(pipeline)
    number_type = FloatTensorType if float32 else DoubleTensorType
    initial_types = [
        (f.name, StringTensorType([None, 1]) if f.kind == "categorical" else number_type([None, 1]))
        for f in spec.features
    ]
    options: dict[int, dict[str, Any]] = {}
    estimator = pipeline.named_steps[MODEL_STEP]
    if spec.target.task == "classification":
        options[id(estimator)] = {"zipmap": False}
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types,
        options=options,
        target_opset=TARGET_OPSET,
        name="tabserve",
    )
    _restore_input_names(model, spec)
    if float32:
        _double_inputs(model, [f.name for f in spec.features if f.kind != "categorical"])
    _rename_outputs(model, spec)
    return bytes(model.SerializeToString())


def _rename_outputs(model: Any, spec: FeatureSpec) -> None:
    """Check the converter produced the contract's output names (it does by default)."""
    names = [o.name for o in model.graph.output]
    expected = (
        [LABEL_OUTPUT, PROBABILITIES_OUTPUT]
        if spec.target.task == "classification"
        else [VARIABLE_OUTPUT]
    )
    if names != expected:
        raise RuntimeError(f"ONNX outputs are {names}, expected {expected}")


def check_parity(
    onnx_bytes: bytes, pipeline: Pipeline, frame: pd.DataFrame, spec: FeatureSpec
) -> ExportResult:
    """Run both models on ``frame`` (raw records) and compare under the tolerances."""
    import onnxruntime as ort

    prepared = prepare_frame(frame, spec)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, onnx_feeds(prepared, spec))
    n = len(prepared)
    if spec.target.task == "classification":
        expected_labels = pipeline.predict(prepared)
        labels = np.asarray(outputs[0]).reshape(-1)
        mismatches = int(np.sum(labels.astype(str) != expected_labels.astype(str)))
        deviation = float(np.max(np.abs(outputs[1] - pipeline.predict_proba(prepared)), initial=0))
        ok = mismatches == 0 and deviation <= PROBABILITY_TOLERANCE
        reason = (
            None
            if ok
            else (
                f"parity failed on {n} test rows: {mismatches} label mismatches, "
                f"max probability deviation {deviation:.2e} (limit {PROBABILITY_TOLERANCE:g})"
            )
        )
        return ExportResult(onnx_bytes if ok else None, ok, deviation, mismatches, n, reason)
    expected = np.asarray(pipeline.predict(prepared), dtype=np.float64).reshape(-1)
    got = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
    scale = np.maximum(np.abs(expected), 1.0)
    deviation = float(np.max(np.abs(got - expected) / scale, initial=0))
    ok = deviation <= REGRESSION_RELATIVE_TOLERANCE
    reason = (
        None
        if ok
        else (
            f"parity failed on {n} test rows: max relative deviation {deviation:.2e} "
            f"(limit {REGRESSION_RELATIVE_TOLERANCE:g})"
        )
    )
    return ExportResult(onnx_bytes if ok else None, ok, deviation, 0, n, reason)


def export_with_parity(
    pipeline: Pipeline, spec: FeatureSpec, test_frame: pd.DataFrame
) -> ExportResult:
    """Convert and parity-check; any failure becomes a result with a reason, never an error."""
    try:
        onnx_bytes = convert(pipeline, spec)
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        return ExportResult(None, False, None, 0, 0, f"ONNX conversion failed: {_short(exc)}")
    try:
        return check_parity(onnx_bytes, pipeline, test_frame, spec)
    except Exception as exc:  # onnxruntime load/run errors
        return ExportResult(None, False, None, 0, 0, f"ONNX model does not run: {_short(exc)}")


def _short(exc: Exception, limit: int = 300) -> str:
    """First line of an error, bounded: converter errors embed whole attribute dumps."""
    text = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
