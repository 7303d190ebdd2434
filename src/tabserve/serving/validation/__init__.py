"""Request validation from the FeatureSpec: JSON values → typed numpy columns, or a 400.

Every protocol ends here, so every rule exists once:

    rules.py    the spec compiled into one rule per feature (checks and messages)
    records.py  records (v1, MLflow, KServe): a fast whole-column path and the general one
    columns.py  columns (v2 tensors): numpy arrays vectorised, other values one by one
    ood.py      the training-range guard (warn, reject or off)
    batch.py    Batch, the result

A request costs one dict lookup and a couple of ``type() is`` checks per value, with no pydantic
on the hot path. Problems raise ``ValidationFailed`` (serving/errors.py) with one detail per
offending field: ``{"record"?, "field", "reason", "message"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tabserve.serving.validation import columns as _columns
from tabserve.serving.validation import records as _records
from tabserve.serving.validation.batch import Batch
from tabserve.serving.validation.rules import (
    MAX_DETAILS,
    OodMode,
    ValidationOptions,
    compile_spec,
)
from tabserve.spec import FeatureSpec

REASONS = (
    "missing",
    "wrong_type",
    "null",
    "unknown_category",
    "extra_field",
    "not_finite",
    "out_of_range",
)


def validate_records(
    spec: FeatureSpec,
    records: list[Any],
    options: ValidationOptions,
    *,
    indexed: bool = True,
) -> Batch:
    """Validate JSON objects keyed by feature name (``indexed=False``: one object, no index)."""
    return _records.validate_records(compile_spec(spec, options), records, indexed=indexed)


def validate_columns(
    spec: FeatureSpec,
    columns: dict[str, Sequence[Any] | np.ndarray],
    n_rows: int,
    options: ValidationOptions,
) -> Batch:
    """Validate one 1-D sequence or array of ``n_rows`` values per feature."""
    return _columns.validate_columns(compile_spec(spec, options), columns, n_rows)


__all__ = [
    "MAX_DETAILS",
    "REASONS",
    "Batch",
    "OodMode",
    "ValidationOptions",
    "validate_columns",
    "validate_records",
]
