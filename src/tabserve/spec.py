"""FeatureSpec: the one contract every part of tabserve derives from.

Built once from the training frame and stored with each model version as ``feature_spec.json``.
The server's validation and OpenAPI schema, the v2 metadata, the out-of-distribution guard, the
drift reference and the load tester's payloads all read it; nothing re-derives a feature list.

Building a spec from data is training's job (training/profile.py, which needs pandas); loading
and using one needs only pydantic and the standard library, so the serving install stays free
of pandas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
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
