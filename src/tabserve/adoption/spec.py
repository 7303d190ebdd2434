"""A FeatureSpec for a model tabserve did not train, from what exists, each part with its source.

    names and types      the MLflow signature (else the model's feature_names_in_, else the
                         input example's columns)
    kinds, categories    the model's own encoders (a column an encoder saw is categorical, with
                         the encoder's categories); else the reference data; else unknown
    nullable             probed: the model is asked to predict with the value missing — a
                         feature is nullable when it answers (an imputer, a native-NaN tree
                         model, an encoder that learned NaN), or when the signature marks the
                         column optional
    profile              the reference data (--reference), when given; else none, and the OOD
                         guard and drift say so
    target               the model's classes_ (classification) or none (regression)
    example values       the input example

It also returns ``model_inputs``: how each feature reaches the model (a ``long`` column stays
int64 unless it may be missing; a missing category is NaN, as the model saw it in training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabserve.adoption.inspect import EncodedColumn, ModelFacts
from tabserve.adoption.mlflow_model import Column, MlflowModel
from tabserve.errors import UserError
from tabserve.modeldir import ModelInput
from tabserve.spec import CategoricalProfile, DType, Feature, FeatureSpec, Kind, Scalar, Target
from tabserve.training.profile import build_feature

if TYPE_CHECKING:
    import pandas as pd

_MLFLOW_TYPES: dict[str, DType] = {
    "string": "string",
    "double": "float64",
    "float": "float64",
    "long": "int64",
    "integer": "int64",
    "boolean": "bool",
}
PROBE_ROWS = 50


@dataclass
class Derived:
    spec: FeatureSpec
    inputs: list[ModelInput]
    # Rows of raw values for parity checks: the input example, then the reference.
    rows: pd.DataFrame
    reference: pd.DataFrame | None


def _code_text(value: Any) -> str:
    """A category as the text validation hands the model's runtime (3.0 → "3")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Scalar | None:
    value = value.item() if hasattr(value, "item") else value
    return None if _is_missing(value) else value


def _columns(mlmodel: MlflowModel, facts: ModelFacts, uri: str) -> tuple[list[Column], str]:
    if mlmodel.columns:
        return mlmodel.columns, "the MLflow signature"
    example = mlmodel.example
    names = facts.feature_names or (list(map(str, example.columns)) if example is not None else [])
    if not names:
        raise UserError(
            f"{uri} has no signature, no input example and no feature names: log it with "
            "mlflow.<flavor>.log_model(..., input_example=X.head()) so its columns are known"
        )
    source = "the model's feature_names_in_" if facts.feature_names else "the input example"
    if example is None:
        raise UserError(
            f"{uri} has no signature and no input example: its column types are unknown "
            "(log it with an input example)"
        )
    return [Column(n, _pandas_type(example[n]), True) for n in names], source


def _pandas_type(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_float_dtype(series):
        return "double"
    return "string"


def _probe_rows(
    mlmodel: MlflowModel, reference: pd.DataFrame | None, names: list[str]
) -> pd.DataFrame:
    import pandas as pd

    parts = []
    if mlmodel.example is not None and all(n in mlmodel.example.columns for n in names):
        parts.append(mlmodel.example[names])
    if reference is not None:
        parts.append(reference[names].head(1000))
    if not parts:
        raise UserError(
            "the model has no input example and no --reference was given: tabserve needs at "
            "least one real row to check its answers (pass --reference DATA)"
        )
    return pd.concat(parts, ignore_index=True)


def _answers(model: Any, frame: pd.DataFrame) -> bool:
    """True when the model predicts on ``frame`` without raising and with finite outputs."""
    import numpy as np

    try:
        out = (
            model.predict_proba(frame) if hasattr(model, "predict_proba") else model.predict(frame)
        )
        values = np.asarray(out, dtype=np.float64)
    except Exception:
        return False
    return bool(np.isfinite(values).all())


def _probe_nullable(model: Any, row: pd.DataFrame, names: list[str]) -> set[str]:
    """The features the model can take a missing value for (one predict, or one per feature)."""
    import pandas as pd

    def with_missing(columns: list[str]) -> pd.DataFrame:
        frame = pd.concat([row] * len(columns), ignore_index=True).astype(object)
        for i, name in enumerate(columns):
            frame.at[i, name] = float("nan")  # what pandas reads for an empty CSV cell
        return frame.infer_objects()

    if _answers(model, with_missing(names)):
        return set(names)
    return {n for n in names if _answers(model, with_missing([n]))}


def derive(
    mlmodel: MlflowModel,
    native: Any,
    facts: ModelFacts,
    uri: str,
    reference: pd.DataFrame | None = None,
    reference_label: str | None = None,
    target_name: str | None = None,
) -> Derived:
    columns, columns_source = _columns(mlmodel, facts, uri)
    names = [c.name for c in columns]
    if reference is not None:
        absent = [n for n in names if n not in reference.columns]
        if absent:
            raise UserError(
                f"the reference data lacks the model's column(s) {', '.join(map(repr, absent))}"
            )
    rows = _probe_rows(mlmodel, reference, names)
    probe = rows.head(1).copy()
    nullable = _probe_nullable(native, probe, names)
    features: list[Feature] = []
    inputs: list[ModelInput] = []
    from_encoders, from_reference, unknown = [], [], []
    for column in columns:
        dtype = _MLFLOW_TYPES.get(column.mlflow_type)
        if dtype is None:
            raise UserError(
                f"column {column.name!r} has MLflow type {column.mlflow_type}; tabserve serves "
                "numeric, string and boolean columns"
            )
        encoded = facts.encoded.get(column.name)
        kind: Kind = (
            "boolean" if dtype == "bool" else
            "categorical" if dtype == "string" or encoded is not None else "numeric"
        )  # fmt: skip
        is_nullable = _nullable(column, encoded, column.name in nullable, reference)
        profile = None
        categories: list[str] | None = None
        if reference is not None:
            built = build_feature(reference[column.name].rename(column.name), kind)
            profile = built.profile
            if isinstance(profile, CategoricalProfile) and dtype in ("int64", "float64"):
                profile.categories = {
                    _code_text(float(k)): v for k, v in profile.categories.items()
                }
        if encoded is not None:
            categories = [_code_text(c) for c in encoded.categories]
            from_encoders.append(f"{column.name} ({encoded.encoder})")
        elif kind == "categorical" and isinstance(profile, CategoricalProfile):
            categories = list(profile.categories)
            from_reference.append(column.name)
        elif kind == "categorical":
            unknown.append(column.name)
        example = None
        if mlmodel.example is not None and column.name in mlmodel.example.columns:
            example = _plain(mlmodel.example[column.name].iloc[0])
        if dtype == "int64" and example is not None and not isinstance(example, int | str):
            example = int(example)
        features.append(
            Feature(
                name=column.name, kind=kind, dtype=dtype, nullable=is_nullable,
                profile=profile, categories=categories, example=example,
            )
        )  # fmt: skip
        inputs.append(_model_input(column, dtype, kind, is_nullable))
    classes = facts.classes
    if facts.task == "classification" and not classes:
        raise UserError(f"{uri}: a classifier without classes_; tabserve cannot label its answers")
    target = Target(
        name=target_name or mlmodel.output_name or _target_from(reference, names) or "prediction",
        task=facts.task,
        classes=classes,
    )
    sources = {
        "features": f"{columns_source} ({len(names)} columns)",
        "categories": "; ".join(
            part
            for part in (
                f"the model's encoders: {', '.join(from_encoders)}" if from_encoders else "",
                f"the reference data: {', '.join(from_reference)}" if from_reference else "",
                f"unknown, passed to the model as sent: {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        or "no categorical features",
        "nullable": (
            "the model takes a missing value (probed) and expects one (an imputer, a "
            "native-NaN model, NaN among an encoder's categories, the reference data or the "
            "signature) for " + (", ".join(f.name for f in features if f.nullable) or "no feature")
        ),
        "profile": (
            f"reference data {reference_label} ({len(reference)} rows)"
            if reference is not None
            else "none: no reference data given, so no out-of-range guard and no drift reference"
        ),
        "target": f"the model's classes_ ({facts.estimator})"
        if classes
        else f"regression ({facts.estimator})",
        "example": "the MLflow input example" if mlmodel.example is not None else "none",
    }
    spec = FeatureSpec(features=features, target=target, sources=sources)
    return Derived(spec, inputs, rows, reference)


def _nullable(
    column: Column, encoded: EncodedColumn | None, takes_missing: bool, reference: Any
) -> bool:
    """May a request leave this feature out? Evidence that missing values are expected, and
    proof (the probe) that the model takes one.

    An encoder that learned NaN expected it; one that merely ignores unknown values also
    "takes" a missing value, so for an encoded column the probe alone is not evidence: the
    encoder's categories, the reference data or the signature must say so too.
    """
    if encoded is not None and encoded.had_missing:
        return True
    if not takes_missing:
        return False
    if encoded is None:
        return True  # an imputer, or a model that handles NaN natively
    seen_missing = reference is not None and bool(reference[column.name].isna().any())
    return seen_missing or not column.required


def _model_input(column: Column, dtype: DType, kind: Kind, nullable: bool) -> ModelInput:
    if dtype == "string":
        return ModelInput(column.name, "string", "nan")
    if dtype == "bool":
        return ModelInput(column.name, "float64" if nullable else "bool")
    if dtype == "int64" and not nullable:
        return ModelInput(column.name, "int64")
    if column.mlflow_type == "float" and kind == "numeric":
        return ModelInput(column.name, "float32")
    return ModelInput(column.name, "float64")


def _target_from(reference: pd.DataFrame | None, names: list[str]) -> str | None:
    """The reference's one column that is not an input: the target, by elimination."""
    if reference is None:
        return None
    extra = [str(c) for c in reference.columns if c not in names]
    return extra[0] if len(extra) == 1 else None
