"""CSV rows → records typed by the FeatureSpec (CSV has no types, so the spec gives them).

Used by MLflow's ``text/csv`` scoring requests and by ``tabserve predict --data FILE.csv``. An
empty cell is null; a cell that is not a valid value of its feature's type stays text, for
validation to name with its reason (never a silent coercion into something else).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from tabserve.spec import Feature, FeatureSpec


def records_from_csv(text: str, spec: FeatureSpec) -> list[dict[str, Any]]:
    """Every data row of ``text`` (the first line names the columns) as a record.

    Raises ValueError naming the line for a row longer than the header.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    features = {f.name: f for f in spec.features}
    out = []
    for line, row in enumerate(reader, start=2):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                raise ValueError(f"CSV line {line} has more values than the header has columns")
            feature = features.get(key)
            record[key] = value if feature is None else typed(feature, value)
        out.append(record)
    return out


def typed(feature: Feature, value: str | None) -> Any:
    """A CSV cell as the JSON value the feature takes ("" → null)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if feature.kind == "boolean":
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            return text
        if feature.dtype in ("int64", "float64"):
            number = float(text)
            if feature.dtype == "int64" and number.is_integer():
                return int(number)
            return number
    except ValueError:
        return text  # left for validation to report with its reason
    return text
