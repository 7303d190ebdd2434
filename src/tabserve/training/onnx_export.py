"""ONNX export of a fitted pipeline, and the parity check that decides whether it ships.

Contract: one input per feature named as the feature, shape [None, 1]; numeric and boolean →
tensor(double), categorical → tensor(string). Outputs: classifiers "label" [None] and
"probabilities" [None, n_classes] (no ZipMap), regressors "variable" [None, 1]. The converters
and graph surgery this needs are in onnx_converters.py, shared with adoption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tabserve.spec import FeatureSpec
from tabserve.training.onnx_converters import (
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    TARGET_OPSET,
    VARIABLE_OUTPUT,
    double_inputs,
    register_converters,
    restore_input_names,
    uses_float32,
)
from tabserve.training.pipeline import MODEL_STEP, prepare_frame

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

PROBABILITY_TOLERANCE = 1e-5
REGRESSION_RELATIVE_TOLERANCE = 1e-4


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


def convert(pipeline: Pipeline, spec: FeatureSpec) -> bytes:
    """Convert a fitted pipeline to ONNX bytes under the input/output contract."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    register_converters()
    float32 = uses_float32(pipeline.named_steps[MODEL_STEP])
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
    restore_input_names(model, spec.names)
    if float32:
        double_inputs(model, [f.name for f in spec.features if f.kind != "categorical"])
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
