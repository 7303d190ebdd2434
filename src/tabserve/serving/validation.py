"""Request validation from the FeatureSpec: JSON values → typed numpy columns, or a 400.

Both protocols call this module (v1 with records, v2 with columns), so every rule exists once.
The rules are compiled once per spec into one small converter per feature; a request then costs
one dict lookup and a couple of ``type() is`` checks per value, with no pydantic on the hot path.

Output columns follow the ONNX contract: numeric and boolean features → float64 (booleans 0/1,
null → NaN); categorical features → object arrays of ``str`` (null → ""). Columns are 1-D; the
runtime reshapes them to the model's ``[N, 1]`` inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tabserve.serving.converters import (
    Bad,
    Converter,
    boolean_converter,
    categorical_converter,
    numeric_converter,
    show,
    type_name,
)
from tabserve.serving.fast_columns import records_fast as _records_fast
from tabserve.spec import FeatureSpec, NumericProfile

OodMode = Literal["off", "warn", "reject"]
# Enough to name every problem of a typical request without echoing a huge payload back.
MAX_DETAILS = 100
_MISSING = object()
# Up to this many rows the OOD guard compares Python floats instead of calling numpy.
_SCALAR_OOD_ROWS = 16
# From this many records on, validate_records tries whole columns first (fast_columns.py);
# below it numpy's per-call cost is more than the per-value loop it saves.
_FAST_MIN_ROWS = 8


@dataclass(frozen=True)
class ValidationOptions:
    """``coerce``: accept "22" for a number and 1/0 for a boolean. ``ood``: training-range guard."""

    coerce: bool = False
    ood: OodMode = "off"


@dataclass
class Batch:
    """Validated input: one 1-D array per feature, in ``spec.features`` order."""

    columns: dict[str, np.ndarray]
    n_rows: int
    warnings: list[str] = field(default_factory=list)
    # Feature name per OOD warning (for the metric); parallel to ``warnings``.
    ood_fields: list[str] = field(default_factory=list)


class RequestValidationError(Exception):
    """The client sent data the model cannot take; ``details`` names each problem."""

    def __init__(self, details: list[dict[str, Any]], total: int | None = None) -> None:
        super().__init__(f"validation failed: {len(details)} problem(s)")
        self.details = details
        self.total = total if total is not None else len(details)


@dataclass(frozen=True)
class FeatureRule:
    name: str
    kind: str
    is_text: bool
    integral: bool
    nullable: bool
    convert: Converter
    # Training range for the OOD guard (numeric features only).
    low: float | None
    high: float | None


class CompiledSpec:
    """The spec's rules as converters, built once per (spec, options)."""

    def __init__(self, spec: FeatureSpec, options: ValidationOptions) -> None:
        self.spec = spec
        self.options = options
        self.rules: list[FeatureRule] = []
        for f in spec.features:
            if f.kind == "numeric":
                conv = numeric_converter(f, options.coerce)
            elif f.kind == "boolean":
                conv = boolean_converter(f, options.coerce)
            else:
                conv = categorical_converter(f, options.coerce)
            low = high = None
            if isinstance(f.profile, NumericProfile) and f.kind == "numeric":
                low, high = f.profile.min, f.profile.max
            self.rules.append(
                FeatureRule(
                    f.name,
                    f.kind,
                    f.kind == "categorical",
                    f.dtype == "int64",
                    f.nullable,
                    conv,
                    low,
                    high,
                )
            )
        self.names = frozenset(r.name for r in self.rules)

    def column(self, rule: FeatureRule, values: list[Any]) -> np.ndarray:
        if rule.is_text:
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out
        return np.array(values, dtype=np.float64)


_compiled: dict[tuple[int, ValidationOptions], tuple[FeatureSpec, CompiledSpec]] = {}


def compile_spec(spec: FeatureSpec, options: ValidationOptions) -> CompiledSpec:
    """Return the cached compiled rules for ``spec`` (keyed by identity; specs are not mutated)."""
    key = (id(spec), options)
    hit = _compiled.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_compiled) > 16:  # a hot reload leaves old specs behind; keep the cache small
        _compiled.clear()
    compiled = CompiledSpec(spec, options)
    _compiled[key] = (spec, compiled)
    return compiled


class _Details:
    """Collects problems up to MAX_DETAILS while counting all of them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, record: int | None, field_name: str | None, reason: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_DETAILS:
            item: dict[str, Any] = {} if record is None else {"record": record}
            item.update(field=field_name, reason=reason, message=message)
            self.items.append(item)

    def raise_if_any(self) -> None:
        if self.total:
            raise RequestValidationError(self.items, self.total)


def validate_records(
    spec: FeatureSpec,
    records: list[dict[str, Any]],
    options: ValidationOptions,
    *,
    indexed: bool = True,
) -> Batch:
    """Validate JSON objects keyed by feature name (``indexed=False``: one object, no index)."""
    compiled = compile_spec(spec, options)
    columns = _records_fast(compiled, records) if len(records) >= _FAST_MIN_ROWS else None
    if columns is not None:
        batch = Batch(columns=columns, n_rows=len(records))
        _guard_ood(compiled, batch, indexed)
        return batch
    rules = compiled.rules
    n_features = len(rules)
    problems = _Details()
    values: list[list[Any]] = [[] for _ in rules]
    for i, rec in enumerate(records):
        at = i if indexed else None
        if type(rec) is not dict:
            problems.add(
                at, None, "wrong_type", f"a record must be a JSON object, got {type_name(rec)}"
            )
            continue
        complete = True
        for rule, out in zip(rules, values, strict=True):
            v = rec.get(rule.name, _MISSING)
            if v is _MISSING:
                complete = False
                problems.add(at, rule.name, "missing", f"{rule.name} is required")
                continue
            try:
                out.append(rule.convert(v))
            except Bad as bad:
                problems.add(at, rule.name, bad.reason, bad.message)
        if not complete or len(rec) != n_features:
            for key in rec:
                if key not in compiled.names:
                    problems.add(
                        at, key, "extra_field", f"{show(key)} is not a feature of this model"
                    )
    problems.raise_if_any()
    columns = {
        rule.name: compiled.column(rule, out) for rule, out in zip(rules, values, strict=True)
    }
    batch = Batch(columns=columns, n_rows=len(records))
    _guard_ood(compiled, batch, indexed)
    return batch


def validate_columns(
    spec: FeatureSpec,
    columns: dict[str, Sequence[Any] | np.ndarray],
    n_rows: int,
    options: ValidationOptions,
) -> Batch:
    """Validate one sequence or array per feature (the v2 shape); details carry the row index."""
    compiled = compile_spec(spec, options)
    problems = _Details()
    out: dict[str, np.ndarray] = {}
    for name in columns:
        if name not in compiled.names:
            problems.add(None, name, "extra_field", f"{show(name)} is not a feature of this model")
    for rule in compiled.rules:
        raw = columns.get(rule.name, _MISSING)
        if raw is _MISSING:
            problems.add(None, rule.name, "missing", f"{rule.name} is required")
            continue
        column = _column_from_values(compiled, rule, raw, n_rows, problems)  # type: ignore[arg-type]
        if column is not None:
            out[rule.name] = column
    problems.raise_if_any()
    batch = Batch(columns=out, n_rows=n_rows)
    _guard_ood(compiled, batch, indexed=True)
    return batch


def _column_from_values(
    compiled: CompiledSpec,
    rule: FeatureRule,
    raw: Sequence[Any] | np.ndarray,
    n_rows: int,
    problems: _Details,
) -> np.ndarray | None:
    if isinstance(raw, np.ndarray):
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw.reshape(-1)
        if raw.ndim != 1:
            problems.add(
                None, rule.name, "wrong_type", f"{rule.name} must be 1-D, got shape {raw.shape}"
            )
            return None
    if len(raw) != n_rows:
        problems.add(
            None, rule.name, "wrong_type", f"{rule.name} has {len(raw)} values, expected {n_rows}"
        )
        return None
    if isinstance(raw, np.ndarray):
        fast = _fast_numeric_column(compiled, rule, raw, problems)
        if fast is not None:
            return fast
        if raw.dtype.kind == "S":
            raw = np.char.decode(raw, "utf-8", errors="replace")
        raw = raw.tolist()
    values: list[Any] = []
    before = problems.total
    for i, v in enumerate(raw):
        if type(v) is bytes:
            v = v.decode("utf-8", errors="replace")
        try:
            values.append(rule.convert(v))
        except Bad as bad:
            problems.add(i, rule.name, bad.reason, bad.message)
    if problems.total > before:
        return None
    return compiled.column(rule, values)


def _fast_numeric_column(
    compiled: CompiledSpec, rule: FeatureRule, raw: np.ndarray, problems: _Details
) -> np.ndarray | None:
    """Vectorised checks for a numeric feature sent as a float/int array (v2 binary data).

    Returns None when the array needs the per-value path (other dtypes or features)."""
    feature = compiled.spec.feature(rule.name)
    if rule.is_text or raw.dtype.kind not in "fiu" or feature.kind != "numeric":
        return None
    col = raw.astype(np.float64, copy=False)
    if raw.dtype.kind == "f":
        bad_rows = np.flatnonzero(np.isinf(col))
        for i in bad_rows.tolist():
            problems.add(i, rule.name, "not_finite", f"{rule.name} must be a finite number")
        if not feature.nullable:
            for i in np.flatnonzero(np.isnan(col)).tolist():
                problems.add(i, rule.name, "null", f"{rule.name} may not be null")
        if feature.dtype == "int64":
            fraction = np.isfinite(col) & (col != np.floor(col))
            for i in np.flatnonzero(fraction).tolist():
                problems.add(i, rule.name, "wrong_type", f"{rule.name} expects an integer")
    return col


def _guard_ood(compiled: CompiledSpec, batch: Batch, indexed: bool) -> None:
    """Flag numeric values outside the training range: warn, or reject with out_of_range."""
    mode = compiled.options.ood
    if mode == "off":
        return
    problems = _Details()
    for rule in compiled.rules:
        if rule.low is None or rule.high is None:
            continue
        col = batch.columns[rule.name]
        low, high = rule.low, rule.high
        if batch.n_rows <= _SCALAR_OOD_ROWS:  # numpy's per-call cost dominates tiny batches
            rows = [i for i, v in enumerate(col.tolist()) if v < low or v > high]
        else:
            rows = np.flatnonzero((col < low) | (col > high)).tolist()
        for i in rows:
            message = (
                f"{rule.name}={col[i]:g} is outside the training range "
                f"[{rule.low:g}, {rule.high:g}]"
            )
            if mode == "reject":
                problems.add(i if indexed else None, rule.name, "out_of_range", message)
            else:
                batch.warnings.append(f"record {i}: {message}" if indexed else message)
                batch.ood_fields.append(rule.name)
    problems.raise_if_any()
