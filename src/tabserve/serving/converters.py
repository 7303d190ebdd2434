"""Per-feature value converters: one JSON value → the ONNX contract's value, or a ``Bad``.

validation.py compiles one converter per feature (per spec and options) and calls it for every
value, so each converter checks the common case first with ``type(v) is ...`` (no isinstance
chains; ``bool`` is a subclass of ``int`` and must not pass as a number).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tabserve.spec import CategoricalProfile, Feature

_NAN = float("nan")


class Bad(Exception):
    """One value's problem, raised by a converter and turned into a detail by the caller."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


Converter = Callable[[Any], Any]


def numeric_converter(f: Feature, coerce: bool) -> Converter:
    integral = f.dtype == "int64"
    nullable = f.nullable
    name = f.name

    def convert(v: Any) -> float:
        t = type(v)
        if t is int:
            return float(v)
        if t is float:
            if not math.isfinite(v):
                raise Bad("not_finite", f"{name} must be a finite number, got {show(v)}")
            if integral and not v.is_integer():
                raise Bad("wrong_type", f"{name} expects an integer, got {show(v)}")
            return float(v)
        if v is None:
            if nullable:
                return _NAN
            raise Bad("null", f"{name} may not be null")
        if t is bool:
            if coerce:
                return 1.0 if v else 0.0
            raise Bad("wrong_type", f"{name} expects a number, got the boolean {show(v)}")
        if t is str and coerce:
            try:
                number = float(v)
            except ValueError:
                raise Bad("wrong_type", f"{name} expects a number, got {show(v)}") from None
            return convert(number)
        raise Bad("wrong_type", f"{name} expects a number, got {type_name(v)} {show(v)}")

    return convert


_TRUE_TEXT = {"true": True, "1": True, "false": False, "0": False}


def boolean_converter(f: Feature, coerce: bool) -> Converter:
    nullable = f.nullable
    name = f.name

    def convert(v: Any) -> float:
        if v is True:
            return 1.0
        if v is False:
            return 0.0
        if v is None:
            if nullable:
                return _NAN
            raise Bad("null", f"{name} may not be null")
        if coerce:
            if type(v) in (int, float) and v in (0, 1):
                return float(v)
            if type(v) is str and v.strip().lower() in _TRUE_TEXT:
                return 1.0 if _TRUE_TEXT[v.strip().lower()] else 0.0
        raise Bad("wrong_type", f"{name} expects true or false, got {type_name(v)} {show(v)}")

    return convert


def categorical_converter(f: Feature, coerce: bool) -> Converter:
    numeric_coded = f.dtype in ("int64", "float64")
    # Training turns a whole float code into its int text (3.0 → "3"); match that here.
    known = frozenset(_code_text(c) if numeric_coded else c for c in f.categories())
    nullable = f.nullable
    name = f.name
    counts = f.profile.categories if isinstance(f.profile, CategoricalProfile) else {}
    examples = ", ".join(repr(c) for c in sorted(counts, key=lambda c: -counts[c])[:5])

    def as_text(v: Any) -> str:
        t = type(v)
        if t is str:
            if numeric_coded and not coerce:
                raise Bad("wrong_type", f"{name} expects a number code, got the string {show(v)}")
            if numeric_coded:
                try:
                    number = float(v)
                except ValueError:
                    raise Bad(
                        "wrong_type", f"{name} expects a number code, got {show(v)}"
                    ) from None
                return as_text(number)
            return str(v)
        if t is int or t is float:
            if not numeric_coded and not coerce:
                raise Bad("wrong_type", f"{name} expects a string, got the number {show(v)}")
            if t is float and not math.isfinite(v):
                raise Bad("not_finite", f"{name} must be finite, got {show(v)}")
            if t is float and v.is_integer():
                return str(int(v))
            return str(v)
        if t is bool and coerce:
            return str(v)
        raise Bad("wrong_type", f"{name} expects a category, got {type_name(v)} {show(v)}")

    def convert(v: Any) -> str:
        if v is None or (v == "" and nullable):
            if nullable:
                return ""
            raise Bad("null", f"{name} may not be null")
        text = as_text(v)
        if text not in known:
            raise Bad(
                "unknown_category",
                f"{name}: {show(v)} is not a known category ({len(known)} known, e.g. {examples})",
            )
        return text

    return convert


def _code_text(category: str) -> str:
    try:
        number = float(category)
    except ValueError:
        return category
    return str(int(number)) if number.is_integer() else category


def type_name(v: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", str: "the string"}
    return names.get(type(v), type(v).__name__)
