"""Request payloads for the load tester, derived from the server's own FeatureSpec.

Records are drawn from the training profile (numeric values from the histogram, categories by
training frequency, booleans by their rate, nulls at the training missing rate for nullable
features) or sampled from a CSV. Bodies are encoded once, before the clock starts, so the
generator spends its time on the wire and not in ``json.dumps``.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from tabserve.errors import UserError
from tabserve.spec import (
    BooleanProfile,
    CategoricalProfile,
    Feature,
    FeatureSpec,
    NumericProfile,
    Scalar,
)

Protocol = Literal["v1", "v2"]
Record = dict[str, Scalar | None]

# Distinct records generated per run: enough that a server cache cannot make every request the
# same, few enough to encode in milliseconds.
DEFAULT_POOL_SIZE = 512
MAX_POOL_RECORDS = 50_000


@dataclass(frozen=True)
class Payloads:
    """Pre-encoded request bodies for one endpoint, cycled through by the generators."""

    path: str
    bodies: list[bytes]
    protocol: Protocol
    batch_size: int


# ---- records from the spec ------------------------------------------------------------------


def _missing_rate(feature: Feature) -> float:
    p = feature.profile
    if p is None:  # no training statistics: send a value every time
        return 0.0
    total = p.count + p.missing
    return p.missing / total if feature.nullable and total else 0.0


def _numeric_value(feature: Feature, p: NumericProfile, rng: random.Random) -> Scalar:
    counts = p.histogram.counts
    edges = p.histogram.edges
    if sum(counts) > 0 and len(edges) == len(counts) + 1:
        i = rng.choices(range(len(counts)), weights=counts)[0]
        value = rng.uniform(edges[i], edges[i + 1])
    else:
        value = p.mean
    value = min(max(value, p.min), p.max)
    if feature.dtype == "int64":
        return round(value)
    return round(value, 6)


def _categorical_value(feature: Feature, p: CategoricalProfile, rng: random.Random) -> Scalar:
    if not p.categories:
        return feature.typical_value()
    names = list(p.categories)
    category = rng.choices(names, weights=[p.categories[n] for n in names])[0]
    # Categories are stored as strings; a request carries the JSON type the column had.
    if feature.dtype == "int64":
        return int(category)
    if feature.dtype == "float64":
        return float(category)
    return category


def _boolean_value(p: BooleanProfile, rng: random.Random) -> bool:
    total = p.true + p.false
    return rng.random() < (p.true / total if total else 0.5)


def sample_value(feature: Feature, rng: random.Random, *, allow_null: bool = True) -> Scalar | None:
    """One value as a real request would carry it for ``feature``."""
    if allow_null and rng.random() < _missing_rate(feature):
        return None
    p = feature.profile
    if isinstance(p, NumericProfile):
        return _numeric_value(feature, p, rng)
    if isinstance(p, BooleanProfile):
        return _boolean_value(p, rng)
    if isinstance(p, CategoricalProfile):
        return _categorical_value(feature, p, rng)
    # No profile (a model served without reference data): known categories uniformly, else
    # the input example's value.
    if feature.kind == "categorical" and feature.categories:
        return _categorical_value(
            feature,
            CategoricalProfile(count=1, missing=0, categories=dict.fromkeys(feature.categories, 1)),
            rng,
        )
    return feature.typical_value()


def records_from_spec(
    spec: FeatureSpec, n: int, *, seed: int = 0, allow_null: bool = True
) -> list[Record]:
    """``n`` records drawn from the training profile, features in spec order."""
    rng = random.Random(seed)
    return [
        {f.name: sample_value(f, rng, allow_null=allow_null) for f in spec.features}
        for _ in range(n)
    ]


# ---- records from a CSV ---------------------------------------------------------------------

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _coerce(feature: Feature, text: str) -> Scalar | None:
    if text == "":
        return None
    if feature.dtype == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean")
    if feature.dtype == "int64":
        number = float(text)
        if not number.is_integer():
            raise ValueError(f"{text!r} is not an integer")
        return int(number)
    if feature.dtype == "float64":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not finite")
        return number
    return text


def records_from_csv(
    path: Path, spec: FeatureSpec, n: int, *, seed: int = 0, allow_null: bool = True
) -> list[Record]:
    """Up to ``n`` rows sampled from a CSV, typed by the spec; other columns are dropped.

    Rows that could not be valid requests (a null in a non-nullable feature, a value of the wrong
    type) are skipped: the load test measures the server, not its 400 path.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--data {path}: no such file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        missing = [name for name in spec.names if name not in columns]
        if missing:
            raise UserError(f"--data {path}: missing feature column(s) {', '.join(missing)}")
        rows: list[Record] = []
        for raw in reader:
            try:
                record = {f.name: _coerce(f, raw[f.name]) for f in spec.features}
            except ValueError:
                continue
            nullable = {f.name for f in spec.features if f.nullable and allow_null}
            if any(v is None and k not in nullable for k, v in record.items()):
                continue
            rows.append(record)
    if not rows:
        raise UserError(f"--data {path}: no row is a valid request for this model")
    rng = random.Random(seed)
    rng.shuffle(rows)
    return rows[:n] if len(rows) >= n else [rows[i % len(rows)] for i in range(n)]


# ---- bodies ---------------------------------------------------------------------------------

# OIP datatype per spec dtype; the server's v2 codec maps these onto the ONNX inputs.
V2_DATATYPES = {"int64": "INT64", "float64": "FP64", "bool": "BOOL", "string": "BYTES"}


def v1_body(records: Sequence[Record]) -> bytes:
    """One record as a JSON object, several as a JSON array."""
    return orjson.dumps(records[0] if len(records) == 1 else list(records))


def v2_body(spec: FeatureSpec, records: Sequence[Record]) -> bytes:
    """An OIP v2 infer request: one [n, 1] input tensor per feature, named as the feature."""
    inputs: list[dict[str, Any]] = [
        {
            "name": f.name,
            "shape": [len(records), 1],
            "datatype": V2_DATATYPES[f.dtype],
            "data": [r[f.name] for r in records],
        }
        for f in spec.features
    ]
    return orjson.dumps({"inputs": inputs})


def build_payloads(
    spec: FeatureSpec,
    records: Sequence[Record],
    *,
    protocol: Protocol = "v1",
    batch_size: int = 1,
    model: str | None = None,
) -> Payloads:
    """Group ``records`` into requests of ``batch_size`` and encode them for ``protocol``."""
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if len(records) < batch_size:
        raise UserError(f"need at least {batch_size} records for --batch-size {batch_size}")
    groups = [
        records[i : i + batch_size] for i in range(0, len(records) - batch_size + 1, batch_size)
    ]
    if protocol == "v1":
        return Payloads("/predict", [v1_body(g) for g in groups], "v1", batch_size)
    if not model:
        raise UserError("the v2 protocol needs the model name (--model)")
    path = f"/v2/models/{model}/infer"
    return Payloads(path, [v2_body(spec, g) for g in groups], "v2", batch_size)


def make_payloads(
    spec: FeatureSpec,
    *,
    protocol: Protocol = "v1",
    batch_size: int = 1,
    data: Path | None = None,
    model: str | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    seed: int = 0,
) -> Payloads:
    """Records from ``data`` (a CSV) or the spec, encoded as ready-to-send bodies.

    Nulls go out as JSON null in both protocols (tabserve's v2 codec reads null as missing).
    """
    n = max(batch_size, min(pool_size * batch_size, MAX_POOL_RECORDS))
    if data is not None:
        records = records_from_csv(data, spec, n, seed=seed)
    else:
        records = records_from_spec(spec, n, seed=seed)
    return build_payloads(spec, records, protocol=protocol, batch_size=batch_size, model=model)
