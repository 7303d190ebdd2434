"""The FeatureSpec compiled into one rule per feature: every check and its message, once.

A rule takes a feature's values in the three shapes requests bring them and gives the column the
runtime eats (the ONNX contract: numeric and boolean → float64 with null as NaN, categorical →
object array of ``str`` with null as ""):

- ``convert(value)``: one JSON value → the contract's value, or ``Bad(reason, message)``.
  The general path; it names every problem.
- ``from_values(values)``: a whole column of JSON values at once when every value passes as it
  is, else None (then the caller runs ``convert`` per value to name the problems). The fast
  path of record batches: one type scan and one numpy call instead of a call per value.
- ``from_array(array, problems)``: a numpy column (v2 binary tensors), checked vectorised;
  None when the array's dtype needs the per-value path.

The three agree by construction (a test feeds the same inputs through each), because the rule
for, say, "a float for an integer feature" and its wording live in one class. Checks compare
``type(v) is ...`` (no isinstance chains: ``bool`` is an ``int`` and must not pass as a number).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tabserve.serving.errors import ValidationFailed
from tabserve.spec import CategoricalProfile, Feature, FeatureSpec, NumericProfile

OodMode = Literal["off", "warn", "reject"]
# Enough to name every problem of a typical request without echoing a huge payload back.
MAX_DETAILS = 100
NAN = float("nan")
MISSING_CATEGORY = ""
_NONE = type(None)
_NUMBERS = frozenset({int, float})
_NULLABLE_NUMBERS = frozenset({int, float, _NONE})
# One category type per column (with nulls), so no two values hash alike across types (1 == True).
_CATEGORY_TYPES = (frozenset({str, _NONE}), frozenset({int, _NONE}))
_TRUE_TEXT = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class ValidationOptions:
    """``coerce``: accept "22" for a number and 1/0 for a boolean. ``ood``: training-range guard."""

    coerce: bool = False
    ood: OodMode = "off"


class Bad(Exception):
    """One value's problem, raised by a rule and turned into a detail by the caller."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message


def show(value: Any) -> str:
    """A client's value in a message: its repr, cut at 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_name(v: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", str: "the string"}
    return names.get(type(v), type(v).__name__)


class Problems:
    """Collects details up to MAX_DETAILS while counting all of them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, record: int | None, field: str | None, reason: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_DETAILS:
            item: dict[str, Any] = {} if record is None else {"record": record}
            item.update(field=field, reason=reason, message=message)
            self.items.append(item)

    def add_bad(self, record: int | None, field: str, bad: Bad) -> None:
        self.add(record, field, bad.reason, bad.message)

    def raise_if_any(self) -> None:
        if self.total:
            raise ValidationFailed(self.items, self.total)


# ---- messages: the one wording of each reason ------------------------------------------------


def missing(name: str) -> Bad:
    return Bad("missing", f"{name} is required")


def extra_field(key: Any) -> Bad:
    return Bad("extra_field", f"{show(key)} is not a feature of this model")


def _null(name: str) -> Bad:
    return Bad("null", f"{name} may not be null")


def _not_finite(name: str, v: Any) -> Bad:
    return Bad("not_finite", f"{name} must be a finite number, got {show(v)}")


def _not_integer(name: str, v: Any) -> Bad:
    return Bad("wrong_type", f"{name} expects an integer, got {show(v)}")


def _not_number(name: str, v: Any) -> Bad:
    return Bad("wrong_type", f"{name} expects a number, got {type_name(v)} {show(v)}")


# ---- the rules -------------------------------------------------------------------------------


class FeatureRule:
    """Base of the three kinds; see the module docstring for the three entry points."""

    is_text = False

    def __init__(self, feature: Feature, coerce: bool) -> None:
        self.name = feature.name
        self.kind = feature.kind
        self.nullable = feature.nullable
        self.coerce = coerce
        # Training range for the OOD guard (numeric features with a profile only).
        self.low: float | None = None
        self.high: float | None = None

    def convert(self, v: Any) -> Any:
        raise NotImplementedError

    def from_values(self, values: tuple[Any, ...]) -> np.ndarray | None:
        return None

    def from_array(self, array: np.ndarray, problems: Problems) -> np.ndarray | None:
        return None

    def column(self, converted: list[Any]) -> np.ndarray:
        """Values that passed ``convert`` as the runtime's column."""
        return np.array(converted, dtype=np.float64)


class NumericRule(FeatureRule):
    def __init__(self, feature: Feature, coerce: bool) -> None:
        super().__init__(feature, coerce)
        self.integral = feature.dtype == "int64"
        if isinstance(feature.profile, NumericProfile):
            self.low, self.high = feature.profile.min, feature.profile.max

    def convert(self, v: Any) -> float:
        t = type(v)
        if t is int:
            return float(v)
        if t is float:
            if not math.isfinite(v):
                raise _not_finite(self.name, v)
            if self.integral and not v.is_integer():
                raise _not_integer(self.name, v)
            return float(v)
        if v is None:
            if self.nullable:
                return NAN
            raise _null(self.name)
        if t is bool:
            if self.coerce:
                return 1.0 if v else 0.0
            raise Bad("wrong_type", f"{self.name} expects a number, got the boolean {show(v)}")
        if t is str and self.coerce:
            try:
                number = float(v)
            except ValueError:
                raise Bad("wrong_type", f"{self.name} expects a number, got {show(v)}") from None
            return self.convert(number)
        raise _not_number(self.name, v)

    def from_values(self, values: tuple[Any, ...]) -> np.ndarray | None:
        types = set(map(type, values))
        if types <= _NUMBERS:
            # inf or NaN anywhere makes the sum non-finite (so may a huge but finite column:
            # then the general path decides, correctly, only slower).
            if float in types and not math.isfinite(sum(values)):
                return None
            try:
                column = np.array(values, dtype=np.float64)
            except OverflowError:  # an int past float range: let the general path name it
                return None
            if self.integral and float in types and (column != np.floor(column)).any():
                return None
            return column
        if not (self.nullable and types <= _NULLABLE_NUMBERS):
            return None
        column = np.array(values, dtype=np.float64)  # None → NaN
        nan = np.isnan(column)
        # Each null is one NaN; any other NaN was sent as a float (not_finite), as is an inf.
        if int(np.count_nonzero(nan)) != values.count(None) or np.isinf(column).any():
            return None
        if self.integral and float in types:
            known = column[~nan]
            if (known != np.floor(known)).any():
                return None
        return column

    def from_array(self, array: np.ndarray, problems: Problems) -> np.ndarray | None:
        """A numeric v2 tensor: NaN means missing there (the ONNX convention), inf is refused."""
        if array.dtype.kind not in "fiu":
            return None
        column = array.astype(np.float64, copy=False)
        if array.dtype.kind == "f":
            for i in np.flatnonzero(np.isinf(column)).tolist():
                problems.add_bad(i, self.name, _not_finite(self.name, float(column[i])))
            if not self.nullable:
                for i in np.flatnonzero(np.isnan(column)).tolist():
                    problems.add_bad(i, self.name, _null(self.name))
            if self.integral:
                fraction = np.isfinite(column) & (column != np.floor(column))
                for i in np.flatnonzero(fraction).tolist():
                    problems.add_bad(i, self.name, _not_integer(self.name, float(column[i])))
        return column


class BooleanRule(FeatureRule):
    def convert(self, v: Any) -> float:
        if v is True:
            return 1.0
        if v is False:
            return 0.0
        if v is None:
            if self.nullable:
                return NAN
            raise _null(self.name)
        if self.coerce:
            if type(v) in (int, float) and v in (0, 1):
                return float(v)
            if type(v) is str and v.strip().lower() in _TRUE_TEXT:
                return 1.0 if _TRUE_TEXT[v.strip().lower()] else 0.0
        raise Bad("wrong_type", f"{self.name} expects true or false, got {type_name(v)} {show(v)}")

    def from_values(self, values: tuple[Any, ...]) -> np.ndarray | None:
        types = set(map(type, values))
        if types == {bool} or (self.nullable and types == {bool, _NONE}):
            return np.array(values, dtype=np.float64)  # True → 1.0, False → 0.0, None → NaN
        return None

    def from_array(self, array: np.ndarray, problems: Problems) -> np.ndarray | None:
        return array.astype(np.float64) if array.dtype.kind == "b" else None


class CategoricalRule(FeatureRule):
    is_text = True

    def __init__(self, feature: Feature, coerce: bool) -> None:
        super().__init__(feature, coerce)
        self.numeric_coded = feature.dtype in ("int64", "float64")
        # None: the model's categories are not known, so any value of the right type passes
        # and the model takes it as it would (e.g. an encoder that ignores unknown values).
        self.known: frozenset[str] | None = None
        if feature.categories is not None:
            # Training turns a whole float code into its int text (3.0 → "3"); match that here.
            self.known = frozenset(
                _code_text(c) if self.numeric_coded else c for c in feature.categories
            )
        p = feature.profile
        counts = p.categories if isinstance(p, CategoricalProfile) else {}
        ranked = sorted(counts, key=lambda c: -counts[c]) if counts else feature.categories or []
        self.examples = ", ".join(repr(c) for c in ranked[:5])

    def _as_text(self, v: Any) -> str:
        t = type(v)
        name = self.name
        if t is str:
            if self.numeric_coded and not self.coerce:
                raise Bad("wrong_type", f"{name} expects a number code, got the string {show(v)}")
            if self.numeric_coded:
                try:
                    number = float(v)
                except ValueError:
                    raise Bad(
                        "wrong_type", f"{name} expects a number code, got {show(v)}"
                    ) from None
                return self._as_text(number)
            return str(v)
        if t is int or t is float:
            if not self.numeric_coded and not self.coerce:
                raise Bad("wrong_type", f"{name} expects a string, got the number {show(v)}")
            if t is float and not math.isfinite(v):
                raise _not_finite(name, v)
            if t is float and v.is_integer():
                return str(int(v))
            return str(v)
        if t is bool and self.coerce:
            return str(v)
        raise Bad("wrong_type", f"{name} expects a category, got {type_name(v)} {show(v)}")

    def convert(self, v: Any) -> str:
        if v is None or (v == "" and self.nullable):
            if self.nullable:
                return MISSING_CATEGORY
            raise _null(self.name)
        text = self._as_text(v)
        if self.known is not None and text not in self.known:
            raise Bad(
                "unknown_category",
                f"{self.name}: {show(v)} is not a known category "
                f"({len(self.known)} known, e.g. {self.examples})",
            )
        return text

    def from_values(self, values: tuple[Any, ...]) -> np.ndarray | None:
        types = set(map(type, values))
        if not any(types <= allowed for allowed in _CATEGORY_TYPES):
            return None
        # Categories repeat: convert each distinct value once.
        try:
            texts = {v: self.convert(v) for v in set(values)}
        except Bad:
            return None
        if any(v is not text for v, text in texts.items()):
            values = tuple(map(texts.__getitem__, values))
        return np.array(values, dtype=object)

    def column(self, converted: list[Any]) -> np.ndarray:
        out = np.empty(len(converted), dtype=object)
        out[:] = converted
        return out


def _code_text(category: str) -> str:
    try:
        number = float(category)
    except ValueError:
        return category
    return str(int(number)) if number.is_integer() else category


_RULES: dict[str, type[FeatureRule]] = {
    "numeric": NumericRule,
    "boolean": BooleanRule,
    "categorical": CategoricalRule,
}


class CompiledSpec:
    """The spec's rules, built once per (spec, options)."""

    def __init__(self, spec: FeatureSpec, options: ValidationOptions) -> None:
        self.spec = spec
        self.options = options
        self.rules: list[FeatureRule] = [_RULES[f.kind](f, options.coerce) for f in spec.features]
        self.names = frozenset(r.name for r in self.rules)
        self.guarded = [r for r in self.rules if r.low is not None and r.high is not None]

    def extra_fields(self, keys: Iterable[Any]) -> list[Any]:
        return [k for k in keys if k not in self.names]


_compiled: dict[tuple[int, ValidationOptions], tuple[FeatureSpec, CompiledSpec]] = {}


def compile_spec(spec: FeatureSpec, options: ValidationOptions) -> CompiledSpec:
    """The cached compiled rules for ``spec`` (keyed by identity; specs are not mutated)."""
    key = (id(spec), options)
    hit = _compiled.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_compiled) > 16:  # a hot reload leaves old specs behind; keep the cache small
        _compiled.clear()
    compiled = CompiledSpec(spec, options)
    _compiled[key] = (spec, compiled)
    return compiled
