"""Batch: what validation hands the data plane, and the data plane the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Batch:
    """Validated input: one 1-D array per feature, in ``spec.features`` order."""

    columns: dict[str, np.ndarray]
    n_rows: int
    # The inputs as the client sent them (its records, or its columns), for the prediction
    # log: a record of what came in, not of the model's encoding of it.
    received: Any = None
    warnings: list[str] = field(default_factory=list)
    # Feature name per OOD warning (for the metric); parallel to ``warnings``.
    ood_fields: list[str] = field(default_factory=list)
