"""ONNX for a model tabserve did not train: convert once, then check it answers like the model.

Conversion: sklearn pipelines and estimators through skl2onnx, XGBoost and LightGBM through
onnxmltools (registered as skl2onnx converters, so a pipeline ending in one converts too).

- A model that picks its columns by name (a ColumnTransformer) gets one graph input per
  feature, typed as the model saw it: strings, int64 for integer category codes, double —
  float32 for tree models, with a Cast so the graph still takes double.
- A model fitted on a plain matrix gets one [N, k] input, then a Concat of per-feature inputs
  in front of it.
- ONNX strings cannot be NaN, so a copy of the model with "" for every missing category its
  encoders learned (and for the missing value of string imputers) is converted; the runtime
  sends "" for a missing category, which the copy maps exactly as the original maps NaN.

Parity: the served path itself — rows validated as requests are, through ``OnnxRuntime`` and
through ``NativeRuntime`` — must give the same labels and probabilities within 1e-5 (regression:
relative 1e-4). Anything else, and the model is served natively; the reason is kept.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tabserve.modeldir import ONNX_FILE, ModelDir, ModelInput
from tabserve.spec import FeatureSpec
from tabserve.training.onnx_converters import (
    TARGET_OPSET,
    concat_inputs,
    double_inputs,
    name_outputs,
    register_converters,
    restore_input_names,
    uses_float32,
)

if TYPE_CHECKING:
    import pandas as pd

PROBABILITY_TOLERANCE = 1e-5
REGRESSION_RELATIVE_TOLERANCE = 1e-4


@dataclass
class Conversion:
    ok: bool
    reason: str | None = None
    max_deviation: float | None = None
    label_mismatches: int = 0
    rows_checked: int = 0

    def info(self) -> dict[str, Any]:
        return {
            "onnx": self.ok,
            "onnx_parity_ok": self.ok,
            "onnx_max_deviation": self.max_deviation,
            "onnx_label_mismatches": self.label_mismatches,
            "onnx_rows_checked": self.rows_checked,
            "onnx_reason": self.reason,
        }


def _missing_as_empty(model: Any) -> None:
    """In place: "" where the model's encoders and string imputers have NaN (see module doc)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    def nan(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    def visit(node: Any) -> None:
        if isinstance(node, Pipeline):
            for _, step in node.steps:
                visit(step)
        elif isinstance(node, ColumnTransformer):
            for _, transformer, _ in getattr(node, "transformers_", []):
                visit(transformer)
        elif isinstance(node, FeatureUnion):
            for _, transformer in node.transformer_list:
                visit(transformer)
        elif isinstance(node, OneHotEncoder | OrdinalEncoder) and hasattr(node, "categories_"):
            node.categories_ = [
                np.array(["" if nan(v) else v for v in c.tolist()], dtype=object)
                if c.dtype == object
                else c
                for c in node.categories_
            ]
        elif isinstance(node, SimpleImputer) and nan(node.missing_values):
            fitted = getattr(node, "statistics_", None)
            if fitted is not None and fitted.dtype == object:  # a string imputer
                node.missing_values = ""

    visit(model)


def _picks_columns_by_name(model: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = model
    while isinstance(first, Pipeline):
        first = first.steps[0][1]
    return isinstance(first, ColumnTransformer)


def _plain_booster(model: Any) -> Any:
    """XGBoost's converter wants feature names f0..fn: forget the DataFrame's own names."""
    from tabserve.adoption.inspect import final_estimator

    final = final_estimator(model)
    if hasattr(final, "get_booster"):
        final.get_booster().feature_names = None
    return model


def convert(native: Any, spec: FeatureSpec, inputs: list[ModelInput]) -> bytes:
    """ONNX bytes under the contract (one input per feature, label/probabilities/variable)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    from tabserve.adoption.inspect import final_estimator

    register_converters()
    model = _plain_booster(copy.deepcopy(native))
    _missing_as_empty(model)
    final = final_estimator(model)
    float32 = uses_float32(final)
    classifier = spec.target.task == "classification"
    options = {id(final): {"zipmap": False}} if classifier else {}
    names = [m.name for m in inputs]
    if _picks_columns_by_name(model):
        number = FloatTensorType if float32 else DoubleTensorType
        types: list[tuple[str, Any]] = []
        for m in inputs:
            if m.dtype == "string":
                types.append((m.name, StringTensorType([None, 1])))
            elif m.dtype == "int64":
                types.append((m.name, Int64TensorType([None, 1])))
            else:
                types.append((m.name, number([None, 1])))
        onx = convert_sklearn(
            model, initial_types=types, options=options, target_opset=TARGET_OPSET
        )
        restore_input_names(onx, names)
        if float32:
            double_inputs(onx, [m.name for m in inputs if m.dtype not in ("string", "int64")])
    else:
        if any(f.kind == "categorical" and f.dtype == "string" for f in spec.features):
            raise RuntimeError("a matrix-input model with string columns cannot take ONNX inputs")
        matrix = (FloatTensorType if float32 else DoubleTensorType)([None, len(names)])
        onx = convert_sklearn(
            model, initial_types=[("input", matrix)], options=options, target_opset=TARGET_OPSET
        )
        concat_inputs(onx, names, double=True)
    name_outputs(onx, classifier)
    return bytes(onx.SerializeToString())


def parity(model_dir: ModelDir, rows: pd.DataFrame) -> Conversion:
    """Serve ``rows`` through both runtimes of ``model_dir`` (holding model.onnx); compare."""
    from tabserve.serving.errors import ValidationFailed
    from tabserve.serving.runtimes import NativeRuntime, OnnxRuntime
    from tabserve.serving.validation import ValidationOptions, validate_records

    spec = model_dir.spec()
    from tabserve.training.evaluation import frame_records

    candidates = frame_records(rows)
    options = ValidationOptions(coerce=True)
    try:
        batch = validate_records(spec, candidates, options)
    except ValidationFailed as exc:  # rows the served model would refuse are not evidence
        bad = {d.get("record") for d in exc.details}
        kept = [r for i, r in enumerate(candidates) if i not in bad]
        if not kept:
            return Conversion(False, "no row of the example or reference data validates")
        batch = validate_records(spec, kept, options)
    onnx = OnnxRuntime(model_dir).predict(batch.columns)
    native = NativeRuntime(model_dir, warn=False).predict(batch.columns)
    n = batch.n_rows
    if spec.target.task == "classification":
        mismatches = int(np.sum(onnx.labels.astype(str) != native.labels.astype(str)))
        deviation = 0.0
        if onnx.probabilities is not None and native.probabilities is not None:
            deviation = float(np.max(np.abs(onnx.probabilities - native.probabilities), initial=0))
        ok = mismatches == 0 and deviation <= PROBABILITY_TOLERANCE
        reason = None if ok else (
            f"parity failed on {n} rows: {mismatches} label mismatches, max probability "
            f"deviation {deviation:.2e} (limit {PROBABILITY_TOLERANCE:g})"
        )  # fmt: skip
        return Conversion(ok, reason, deviation, mismatches, n)
    expected = np.asarray(native.labels, dtype=np.float64)
    got = np.asarray(onnx.labels, dtype=np.float64)
    deviation = float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1.0), initial=0))
    ok = deviation <= REGRESSION_RELATIVE_TOLERANCE
    reason = None if ok else (
        f"parity failed on {n} rows: max relative deviation {deviation:.2e} "
        f"(limit {REGRESSION_RELATIVE_TOLERANCE:g})"
    )  # fmt: skip
    return Conversion(ok, reason, deviation, 0, n)


def convert_with_parity(
    native: Any, model_dir: ModelDir, inputs: list[ModelInput], rows: pd.DataFrame
) -> Conversion:
    """Write model.onnx into ``model_dir`` when it converts and passes parity, else remove it."""
    target = model_dir.path / ONNX_FILE
    try:
        target.write_bytes(convert(native, model_dir.spec(), inputs))
    except Exception as exc:  # converters raise many types for what they cannot convert
        target.unlink(missing_ok=True)
        return Conversion(False, f"ONNX conversion failed: {_short(exc)}")
    try:
        result = parity(model_dir, rows)
    except Exception as exc:  # the graph does not load or run
        result = Conversion(False, f"ONNX model does not run: {_short(exc)}")
    if not result.ok:
        target.unlink(missing_ok=True)
    return result


def _short(exc: Exception, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
