"""FeatureSpec: the one contract every part of tabserve derives from.

Built once per model version and stored with it as ``feature_spec.json``: from the training
frame for models tabserve trains, or, for a model a team logged with plain MLflow, from what
exists — its signature, input example, own encoders and an optional reference file
(adoption/); ``sources`` says where each part came from. The server's validation and OpenAPI
schema, the v2 metadata, the out-of-distribution guard, the drift reference and the load
tester's payloads all read it; nothing re-derives a feature list.

What may be unknown, and what that means downstream:
- ``Feature.profile`` None: no training statistics (no reference data). The OOD guard skips the
  feature, drift says it has no reference, docs show no range.
- ``Feature.categories`` None: the known categories are unknown, so any value of the feature's
  type is passed to the model, which takes it as it would (an encoder set to ignore unknowns).

Building a spec from data is training's job (training/profile.py, which needs pandas); loading
and using one needs only pydantic and the standard library, so the serving install stays free
of pandas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field, model_validator

# 2 added categories, example and sources, and made profile optional; 1 still loads.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
FILENAME = "feature_spec.json"

Kind = Literal["numeric", "categorical", "boolean"]
# dtype is the JSON type a request carries for the feature, not the model's input tensor type.
DType = Literal["int64", "float64", "string", "bool"]
Task = Literal["classification", "regression"]
Scalar = bool | int | float | str


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
    # True when a request may carry null or omit the feature: the model takes a missing value.
    nullable: bool
    profile: Profile | None = None
    # Known categories as strings (categorical only); None when unknown (any value passes).
    categories: list[str] | None = None
    # A value from the model's input example (used when there is no profile).
    example: Scalar | None = None

    @model_validator(mode="after")
    def _categories_from_profile(self) -> Feature:
        # A training profile knows the categories: they are known unless said otherwise.
        if self.categories is None and isinstance(self.profile, CategoricalProfile):
            self.categories = list(self.profile.categories)
        return self

    def typical_value(self) -> Scalar:
        """A value a real record would carry: the median, the most frequent category, or the
        input example's value."""
        p = self.profile
        if isinstance(p, NumericProfile) and p.count:
            v = p.quantiles.get("0.5", p.mean)
            return round(v) if self.dtype == "int64" else v
        if isinstance(p, BooleanProfile) and p.count:
            return p.true >= p.false
        if isinstance(p, CategoricalProfile) and p.categories:
            top = max(p.categories, key=lambda c: p.categories[c])
            return _typed_category(top, self.dtype)
        if self.example is not None:
            return self.example
        if self.kind == "categorical":
            return _typed_category((self.categories or [""])[0], self.dtype)
        if self.kind == "boolean":
            return False
        return 0 if self.dtype == "int64" else 0.0


def _typed_category(text: str, dtype: str) -> Scalar:
    """A category's text as the JSON value a request carries for it."""
    try:
        if dtype == "int64":
            return int(float(text))
        if dtype == "float64":
            return float(text)
    except ValueError:
        pass
    return text


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
    # Where each part came from, e.g. {"features": "MLflow signature", "categories": "the
    # model's OneHotEncoder", "profile": "reference data train.csv"}; empty for trained models.
    sources: dict[str, str] = {}

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
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"feature_spec.json has schema_version {version!r}; this tabserve reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}. Retrain the model or upgrade tabserve."
            )
        if version == 1:  # categories lived in the profile only
            for f in raw.get("features", []):
                profile = f.get("profile") or {}
                if f.get("kind") == "categorical" and profile.get("type") == "categorical":
                    f["categories"] = list(profile.get("categories", {}))
            raw["schema_version"] = SCHEMA_VERSION
        return cls.model_validate(raw)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_bytes(self.to_json())
        return path

    @classmethod
    def load(cls, directory: Path) -> FeatureSpec:
        return cls.from_json((Path(directory) / FILENAME).read_bytes())
