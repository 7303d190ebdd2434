"""Validating records (v1 ``/predict``: JSON objects keyed by feature name) into a Batch.

A nullable feature may be omitted: it counts as missing (the model imputes it), as an
``Optional[...] = None`` field of a pydantic model would. A key that is not a feature is still an
``extra_field`` — a misspelled optional feature is caught, not silently treated as missing.

Two paths with one outcome. From ``FAST_MIN_ROWS`` records on, each feature's values are
gathered once and handed to its rule's ``from_values`` (all-or-nothing); when any column needs
a closer look — a missing or extra field, a null where none is allowed, a string for a number —
the general path runs and names every problem, record by record. Below that size numpy's
per-call cost is more than the per-value loop it saves.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np

from tabserve.serving.validation import ood
from tabserve.serving.validation.batch import Batch
from tabserve.serving.validation.rules import (
    Bad,
    CompiledSpec,
    Problems,
    extra_field,
    missing,
    type_name,
)

FAST_MIN_ROWS = 8
_MISSING = object()


def validate_records(compiled: CompiledSpec, records: list[Any], *, indexed: bool = True) -> Batch:
    """Validate JSON objects (``indexed=False``: one object, details carry no record index)."""
    columns = fast_columns(compiled, records) if len(records) >= FAST_MIN_ROWS else None
    if columns is None:
        columns = general_columns(compiled, records, indexed)
    batch = Batch(columns=columns, n_rows=len(records), received=records)
    ood.guard(compiled, batch, indexed)
    return batch


def fast_columns(compiled: CompiledSpec, records: list[Any]) -> dict[str, np.ndarray] | None:
    """The columns of ``records`` when every value passes as it is, else None."""
    rules = compiled.rules
    if set(map(type, records)) != {dict}:
        return None
    # Every record has exactly as many keys as there are features, and (below) every feature:
    # then its keys are the features, with no extra field.
    if set(map(len, records)) != {len(rules)}:
        return None
    try:
        if len(rules) == 1:
            table: list[tuple[Any, ...]] = [tuple(map(itemgetter(rules[0].name), records))]
        else:  # one lookup pass for all features, then a transpose: cheaper than one per column
            table = list(zip(*map(itemgetter(*(r.name for r in rules)), records), strict=True))
    except KeyError:
        return None
    columns: dict[str, np.ndarray] = {}
    for rule, values in zip(rules, table, strict=True):
        column = rule.from_values(values)
        if column is None:
            return None
        columns[rule.name] = column
    return columns


def general_columns(
    compiled: CompiledSpec, records: list[Any], indexed: bool
) -> dict[str, np.ndarray]:
    """One ``convert`` per value; raises ValidationFailed naming every problem."""
    rules = compiled.rules
    n_features = len(rules)
    problems = Problems()
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
                if not rule.nullable:
                    problems.add_bad(at, rule.name, missing(rule.name))
                    continue
                v = None  # an omitted nullable feature is a missing value, as an Optional field
            try:
                out.append(rule.convert(v))
            except Bad as bad:
                problems.add_bad(at, rule.name, bad)
        if not complete or len(rec) != n_features:
            for key in compiled.extra_fields(rec):
                problems.add_bad(at, str(key), extra_field(key))
    problems.raise_if_any()
    return {rule.name: rule.column(out) for rule, out in zip(rules, values, strict=True)}
