"""Profiling a DataFrame into a FeatureSpec: kinds, dtypes, nullability, training profiles.

Training-only (it needs pandas): the spec itself (spec.py) is plain pydantic, so loading and
using one costs the serving install nothing. ID-like columns (unique per row, free text) are
left out with the reason recorded in ``spec.excluded``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tabserve.spec import (
    BooleanProfile,
    CategoricalProfile,
    DType,
    ExcludedColumn,
    Feature,
    FeatureSpec,
    Histogram,
    Kind,
    NumericProfile,
    Scalar,
    Target,
    Task,
)

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
# A string column with more distinct values than this share of its rows is free text or an id.
ID_LIKE_UNIQUE_SHARE = 0.5
# An integer target with at most this many distinct values is taken as class labels.
MAX_CLASSES_FOR_INT_TARGET = 20


def _py(value: Any) -> Scalar:
    """numpy scalar → plain Python scalar, so JSON and equality behave."""
    return value.item() if hasattr(value, "item") else value


def _is_bool_like(series: pd.Series) -> bool:
    values = series.dropna().unique()
    return len(values) > 0 and all(isinstance(v, bool | _np_bool()) for v in values)


def _np_bool() -> type:
    import numpy as np

    return np.bool_


def infer_kind(series: pd.Series) -> Kind:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or (series.dtype == object and _is_bool_like(series)):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    return "categorical"


def id_like_reason(series: pd.Series) -> str | None:
    """Why a column looks like an identifier or free text (None when it does not)."""
    import pandas as pd

    n = len(series)
    non_null = series.dropna()
    if n < 20 or len(non_null) == 0:
        return None
    unique = non_null.nunique()
    if pd.api.types.is_integer_dtype(series) and unique == n:
        return "integer column unique on every row (an identifier)"
    if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        share = unique / len(non_null)
        if share > ID_LIKE_UNIQUE_SHARE:
            rows = len(non_null)
            return f"text column with {unique} distinct values in {rows} rows (id or free text)"
    return None


def _numeric_profile(series: pd.Series) -> NumericProfile:
    import numpy as np

    values = series.dropna().to_numpy(dtype="float64")
    values = values[np.isfinite(values)]
    if len(values) == 0:
        values = np.zeros(1)
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    qs = np.quantile(values, QUANTILES)
    return NumericProfile(
        count=int(series.notna().sum()),
        missing=int(series.isna().sum()),
        min=float(values.min()),
        max=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, qs, strict=True)},
        histogram=Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts]),
    )


def _categorical_profile(series: pd.Series) -> CategoricalProfile:
    counts = series.dropna().map(lambda v: str(_py(v))).value_counts()
    return CategoricalProfile(
        count=int(series.notna().sum()),
        missing=int(series.isna().sum()),
        categories={str(k): int(v) for k, v in counts.items()},
    )


def _boolean_profile(series: pd.Series) -> BooleanProfile:
    non_null = series.dropna().astype(bool)
    return BooleanProfile(
        count=int(series.notna().sum()),
        missing=int(series.isna().sum()),
        true=int(non_null.sum()),
        false=int((~non_null).sum()),
    )


def _dtype_for(series: pd.Series, kind: Kind) -> DType:
    import pandas as pd

    if kind == "boolean":
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        # A float column that only holds whole numbers (an int column with NaNs) stays float:
        # requests may carry 22 or 22.0 alike, and 22.5 must not be rejected.
        return "float64"
    return "string"


def build_feature(series: pd.Series, kind: Kind | None = None) -> Feature:
    kind = kind or infer_kind(series)
    dtype = _dtype_for(series, kind)
    if kind == "numeric" and dtype == "string":
        raise ValueError(f"column {series.name!r} holds text and cannot be numeric")
    profile: NumericProfile | CategoricalProfile | BooleanProfile
    if kind == "numeric":
        profile = _numeric_profile(series)
    elif kind == "boolean":
        profile = _boolean_profile(series)
    else:
        profile = _categorical_profile(series)
    return Feature(
        name=str(series.name),
        kind=kind,
        dtype=dtype,
        nullable=bool(series.isna().any()),
        profile=profile,
        categories=list(profile.categories) if isinstance(profile, CategoricalProfile) else None,
    )


def infer_task(series: pd.Series) -> Task:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "classification"
    values = series.dropna()
    if pd.api.types.is_integer_dtype(series) or (values == values.round()).all():
        return "classification" if values.nunique() <= MAX_CLASSES_FOR_INT_TARGET else "regression"
    return "regression"


def build_target(series: pd.Series, task: Task | None = None) -> Target:
    task = task or infer_task(series)
    classes: list[Scalar] | None = None
    if task == "classification":
        values = series.dropna().unique()
        classes = [_py(v) for v in sorted(values, key=lambda v: (str(type(v)), v))]
        if all(isinstance(c, float) and math.isfinite(c) and c == int(c) for c in classes):
            classes = [int(c) for c in classes]
    return Target(name=str(series.name), task=task, classes=classes)


def build_spec(
    frame: pd.DataFrame,
    target: str,
    *,
    features: list[str] | None = None,
    exclude: list[str] | None = None,
    kinds: dict[str, Kind] | None = None,
    task: Task | None = None,
) -> FeatureSpec:
    """Profile ``frame`` into a FeatureSpec.

    ``features`` (when given) is the exact list to use, ID-like columns included: naming a column
    is how a user forces it in. Otherwise every column but the target is a candidate and ID-like
    ones are excluded, each with its reason in ``spec.excluded``.
    """
    if target not in frame.columns:
        raise KeyError(f"target column {target!r} is not in the data")
    kinds = kinds or {}
    exclude = list(exclude or [])
    missing = [c for c in [*(features or []), *kinds] if c not in frame.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {', '.join(map(repr, missing))}")
    excluded: list[ExcludedColumn] = [
        ExcludedColumn(name=c, reason="excluded by config") for c in exclude
    ]
    chosen: list[str] = []
    for column in frame.columns:
        name = str(column)
        if name == target or name in exclude:
            continue
        if features is not None:
            if name in features:
                chosen.append(name)
            continue
        if name not in kinds and (reason := id_like_reason(frame[column])):
            excluded.append(ExcludedColumn(name=name, reason=reason))
            continue
        if frame[column].isna().all():
            excluded.append(ExcludedColumn(name=name, reason="column is empty"))
            continue
        chosen.append(name)
    if features is not None:
        chosen = [f for f in features if f != target]  # keep the user's order
    if not chosen:
        raise ValueError("no feature columns left after exclusions")
    built = [build_feature(frame[c], kinds.get(c)) for c in chosen]
    return FeatureSpec(features=built, target=build_target(frame[target], task), excluded=excluded)
