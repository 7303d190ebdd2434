"""The out-of-distribution guard: numeric values outside the training range warn or reject.

``--ood warn`` (the default) answers with ``warnings``; ``reject`` is a 400 with reason
``out_of_range``; ``off`` skips the check. NaN (a missing value) is never out of range.
"""

from __future__ import annotations

import numpy as np

from tabserve.serving.validation.batch import Batch
from tabserve.serving.validation.rules import CompiledSpec, Problems

# Up to this many rows the guard compares Python floats instead of calling numpy.
_SCALAR_ROWS = 16


def guard(compiled: CompiledSpec, batch: Batch, indexed: bool) -> None:
    """Add warnings to ``batch`` (warn) or raise ValidationFailed (reject)."""
    mode = compiled.options.ood
    if mode == "off":
        return
    problems = Problems()
    for rule in compiled.guarded:
        low, high = rule.low, rule.high
        assert low is not None and high is not None
        col = batch.columns[rule.name]
        if batch.n_rows <= _SCALAR_ROWS:  # numpy's per-call cost dominates tiny batches
            rows = [i for i, v in enumerate(col.tolist()) if v < low or v > high]
        else:
            rows = np.flatnonzero((col < low) | (col > high)).tolist()
        for i in rows:
            message = f"{rule.name}={col[i]:g} is outside the training range [{low:g}, {high:g}]"
            if mode == "reject":
                problems.add(i if indexed else None, rule.name, "out_of_range", message)
            else:
                batch.warnings.append(f"record {i}: {message}" if indexed else message)
                batch.ood_fields.append(rule.name)
    problems.raise_if_any()
