"""Validating columns (v2 ``/infer``: one tensor per feature) into a Batch.

The codec has already checked the protocol — shapes, datatypes, UTF-8, that every input has
``n_rows`` values — so a column here is a 1-D sequence of JSON values (``str`` for BYTES) or a
1-D numpy array (binary tensors). Numpy columns go through the rule's vectorised
``from_array``; everything else through ``convert`` per value. Details carry the row index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tabserve.serving.validation import ood
from tabserve.serving.validation.batch import Batch
from tabserve.serving.validation.rules import (
    Bad,
    CompiledSpec,
    FeatureRule,
    Problems,
    extra_field,
    missing,
)


def validate_columns(
    compiled: CompiledSpec, columns: dict[str, Sequence[Any] | np.ndarray], n_rows: int
) -> Batch:
    problems = Problems()
    for name in compiled.extra_fields(columns):
        problems.add_bad(None, name, extra_field(name))
    out: dict[str, np.ndarray] = {}
    for rule in compiled.rules:
        if rule.name not in columns:
            if rule.nullable:  # an omitted tensor of a nullable feature: every row is missing
                out[rule.name] = rule.column([rule.convert(None)] * n_rows)
            else:
                problems.add_bad(None, rule.name, missing(rule.name))
            continue
        raw = columns[rule.name]
        if len(raw) != n_rows:
            # The codec guarantees this for requests; only an in-process caller can get here.
            raise ValueError(f"column {rule.name!r} has {len(raw)} values for {n_rows} rows")
        column = _column(rule, raw, problems)
        if column is not None:
            out[rule.name] = column
    problems.raise_if_any()
    batch = Batch(columns=out, n_rows=n_rows, received=columns)
    ood.guard(compiled, batch, indexed=True)
    return batch


def _column(
    rule: FeatureRule, raw: Sequence[Any] | np.ndarray, problems: Problems
) -> np.ndarray | None:
    if isinstance(raw, np.ndarray):
        fast = rule.from_array(raw, problems)
        if fast is not None:
            return fast
        raw = raw.tolist()
    values: list[Any] = []
    before = problems.total
    for i, v in enumerate(raw):
        try:
            values.append(rule.convert(v))
        except Bad as bad:
            problems.add_bad(i, rule.name, bad)
    if problems.total > before:
        return None
    return rule.column(values)
