"""perf_analyzer ``--input-data`` files built from a model's own rows.

perf_analyzer's default input is random: random bytes for numbers and random 128-character
strings for BYTES inputs. Random strings are never known categories, so a server that validates
against the FeatureSpec rejects them. This writes real rows (the model's reference sample, or the
spec's typical record) in perf_analyzer's JSON format, one entry per request.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tabserve.modeldir import ModelDir
from tabserve.serving.codecs.v2_model import input_datatype
from tabserve.spec import Feature, FeatureSpec


def _value(feature: Feature, value: Any) -> Any:
    datatype = input_datatype(feature)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if datatype == "BYTES":
        return "" if missing else str(value)
    if datatype == "FP64":
        return math.nan if missing else float(value)
    if datatype == "INT64":
        return int(value)
    return bool(value)


def _usable(spec: FeatureSpec, record: dict[str, Any]) -> bool:
    for f in spec.features:
        value = record.get(f.name)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if missing and (not f.nullable or input_datatype(f) in ("INT64", "BOOL")):
            return False
    return True


def records_of(model_dir: ModelDir, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` complete rows of the reference sample; the spec's example if none."""
    spec = model_dir.spec()
    sample = model_dir.reference_sample()
    rows: list[dict[str, Any]] = []
    n = min((len(v) for v in sample.values()), default=0)
    for i in range(n):
        record = {f.name: sample.get(f.name, [None] * n)[i] for f in spec.features}
        if _usable(spec, record):
            rows.append(record)
        if len(rows) >= limit:
            break
    return rows or [spec.example_record()]


def input_data(spec: FeatureSpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """perf_analyzer's JSON: ``{"data": [{input: {"content": [v], "shape": [1]}}, ...]}``."""
    return {
        "data": [
            {f.name: {"content": [_value(f, r.get(f.name))], "shape": [1]} for f in spec.features}
            for r in records
        ]
    }


def write_input_data(model_dir: ModelDir, path: Path, limit: int = 100) -> Path:
    """Write the file; NaN stays a bare ``NaN`` token, which perf_analyzer's parser accepts."""
    data = input_data(model_dir.spec(), records_of(model_dir, limit))
    path.write_text(json.dumps(data))
    return path


if __name__ == "__main__":
    import sys

    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m tabserve.tools.perf_data MODEL_DIR [OUT.json]")
    out = Path(sys.argv[2] if len(sys.argv) == 3 else "perf_input.json")
    print(write_input_data(ModelDir(Path(sys.argv[1])), out))
