"""FeatureSpec: the one contract every part of tabserve derives from.

Built once from the training frame and stored with each model version as ``feature_spec.json``.
The server's validation and OpenAPI schema, the v2 metadata, the out-of-distribution guard, the
drift reference and the load tester's payloads all read it; nothing re-derives a feature list.

Building a spec needs pandas (a DataFrame is passed in); loading and using one needs only
pydantic and the standard library, so the serving install stays free of pandas.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
FILENAME = "feature_spec.json"

Kind = Literal["numeric", "categorical", "boolean"]
# dtype is the JSON type a request carries for the feature, not the model's input tensor type.
DType = Literal["int64", "float64", "string", "bool"]
Task = Literal["classification", "regression"]
Scalar = bool | int | float | str

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
# A string column with more distinct values than this share of its rows is free text or an id.
ID_LIKE_UNIQUE_SHARE = 0.5
# An integer target with at most this many distinct values is taken as class labels.
MAX_CLASSES_FOR_INT_TARGET = 20


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class NumericProfile(BaseModel):
    type: Literal["numeric"] = "numeric"
    count: int
    missing: int
    min: float
    max: float
    mean: float
    std: float
    quantiles: dict[str, float]
    histogram: Histogram


class CategoricalProfile(BaseModel):
    type: Literal["categorical"] = "categorical"
    count: int
    missing: int
    # Keyed by the category as a string (JSON keys are strings); values are training counts.
    categories: dict[str, int]


class BooleanProfile(BaseModel):
    type: Literal["boolean"] = "boolean"
    count: int
    missing: int
    true: int
    false: int


Profile = Annotated[
    NumericProfile | CategoricalProfile | BooleanProfile, Field(discriminator="type")
]


class Feature(BaseModel):
    name: str
    kind: Kind
    dtype: DType
    nullable: bool
    profile: Profile

    def categories(self) -> list[str]:
        """Known categories as strings (empty for non-categorical features)."""
        if isinstance(self.profile, CategoricalProfile):
            return list(self.profile.categories)
        return []

    def typical_value(self) -> Scalar:
        """A value a real record would carry: the median or the most frequent category."""
        p = self.profile
        if isinstance(p, NumericProfile):
            v = p.quantiles.get("0.5", p.mean)
            return round(v) if self.dtype == "int64" else v
        if isinstance(p, BooleanProfile):
            return p.true >= p.false
        assert isinstance(p, CategoricalProfile)
        top = max(p.categories, key=lambda c: p.categories[c]) if p.categories else ""
        return int(top) if self.dtype == "int64" else top


class Target(BaseModel):
    name: str
    task: Task
    # Class labels in the model's output order (classification only).
    classes: list[Scalar] | None = None


class ExcludedColumn(BaseModel):
    name: str
    reason: str


class FeatureSpec(BaseModel):
    schema_version: int = SCHEMA_VERSION
    features: list[Feature]
    target: Target
    excluded: list[ExcludedColumn] = []

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def example_record(self) -> dict[str, Scalar]:
        return {f.name: f.typical_value() for f in self.features}

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes | str) -> FeatureSpec:
        raw = orjson.loads(data)
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"feature_spec.json has schema_version {version!r}; this tabserve reads "
                f"{SCHEMA_VERSION}. Retrain the model or upgrade tabserve."
            )
        return cls.model_validate(raw)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_bytes(self.to_json())
        return path

    @classmethod
    def load(cls, directory: Path) -> FeatureSpec:
        return cls.from_json((Path(directory) / FILENAME).read_bytes())


# --------------------------------------------------------------------------------------------
# Building a spec from a DataFrame (training side).
# --------------------------------------------------------------------------------------------


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
