"""Where drift data comes from: the prediction log (current) and the model directory (reference).

With ground truth in the log (``feedback``), the same pass over the window offers every row to
a FeedbackJoin (quality.py), so quality costs no second read of the predictions.

Reference predictions are not stored with the model, so they are computed here by running the
model's own runtime (ONNX, else sklearn) on the reference sample, validated exactly as the server
validates requests: the two prediction distributions then come from the same code path.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.engine import Engine

from tabserve.modeldir import ModelDir
from tabserve.predlog.store import iter_window
from tabserve.spec import FeatureSpec

if TYPE_CHECKING:
    from tabserve.monitoring.quality import FeedbackJoin

log = logging.getLogger(__name__)


@dataclass
class Window:
    """Logged inputs of one model in a time window, as columns."""

    columns: dict[str, list[Any]]
    predictions: list[Any]
    versions: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None

    @property
    def n_rows(self) -> int:
        return len(self.predictions)


def load_window(
    engine: Engine,
    model_name: str,
    feature_names: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    join: FeedbackJoin | None = None,
) -> Window:
    columns: dict[str, list[Any]] = {name: [] for name in feature_names}
    appenders = [(name, columns[name].append) for name in feature_names]
    predictions: list[Any] = []
    versions: Counter[str] = Counter()
    first = last = None
    loads = orjson.loads
    wanted: tuple[str, ...] = ("ts", "model_version", "inputs", "prediction")
    if join is not None:
        wanted += ("request_id", "record_index", "client_request_id", "probabilities")
    for row in iter_window(engine, model_name, since, until, columns=wanted):
        ts, version, inputs_text, prediction_text = row[:4]
        get = loads(inputs_text).get
        prediction = loads(prediction_text) if prediction_text is not None else None
        for name, append in appenders:
            append(get(name))
        predictions.append(prediction)
        versions[version] += 1
        if join is not None:
            join.offer(ts, row[4], row[5], row[6], prediction_text, row[7])
        if first is None:
            first = ts
        last = ts
    return Window(columns, predictions, versions, first, last)


def logged_models(engine: Engine) -> list[str]:
    """Model names present in the log (for a helpful error when a name matches nothing)."""
    import sqlalchemy as sa

    from tabserve.predlog.store import predictions

    with engine.connect() as conn:
        rows = conn.execute(sa.select(predictions.c.model_name).distinct().limit(20)).all()
    return [r[0] for r in rows]


def reference_predictions(
    model_dir: ModelDir, spec: FeatureSpec, reference: dict[str, list[Any]]
) -> tuple[list[Any] | None, str | None]:
    """Predictions of the model on its reference sample, or (None, why not)."""
    if not reference or any(name not in reference for name in spec.names):
        return None, "the reference sample lacks some features"
    try:
        from tabserve.serving.runtimes import load_runtime
        from tabserve.serving.validation import ValidationOptions, validate_columns
    except ImportError as exc:  # pragma: no cover - the serve extra is part of every install
        return None, f"serving runtime unavailable ({exc})"
    n_rows = len(reference[spec.names[0]])
    try:
        batch = validate_columns(
            spec, {n: reference[n] for n in spec.names}, n_rows, ValidationOptions(coerce=True)
        )
    except Exception as exc:
        return None, f"the reference sample does not validate against the spec ({exc})"
    errors = []
    runtime_names = ("onnx", "native") if model_dir.has_onnx else ("native",)
    for runtime_name in runtime_names:
        try:
            runtime = load_runtime(model_dir, runtime_name)
            labels = runtime.predict(batch.columns).labels
            return labels.tolist(), None
        except Exception as exc:
            errors.append(f"{runtime_name}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    return None, "the model could not predict on the reference sample (" + "; ".join(errors) + ")"
