"""`tabserve drift`: resolve the model, read the log window, write the reports, pick the exit code.

Kept out of cli.py so the command there only parses arguments. Every mistake the user can fix
(bad time, no log) is a UserError with one line (exit 2); an empty window exits 4 (nothing to
report yet, not a failure); exit 1 means "drift found" only with --fail-on-drift, for cron and CI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from tabserve.errors import EmptyWindow, ServiceUnavailable, UserError
from tabserve.settings import Settings

if TYPE_CHECKING:
    from tabserve.monitoring.drift import DriftResult

RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(text: str | None, option: str, now: datetime | None = None) -> datetime | None:
    """ISO date/time (naive = UTC), ``now``, or an age such as ``30m``, ``24h``, ``7d``."""
    if text is None or text == "":
        return None
    now = now or datetime.now(timezone.utc)
    value = text.strip().lower()
    if value == "now":
        return now
    if m := RELATIVE.match(value):
        return now - timedelta(seconds=float(m.group(1)) * UNIT_SECONDS[m.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: expected a date/time like 2026-11-01 or 2026-11-01T08:00, "
            "or an age like 30m, 24h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class DriftOutcome:
    dataset_drift: bool
    summary: str
    exit_code: int


def _check_sqlite_exists(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    is_file_db = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file_db and not Path(database).is_file():
        raise UserError(
            f"no prediction log at {database}: serve the model with "
            "`tabserve serve MODEL --log-db ...` first, or pass --log-db URL"
        )


def run_drift(
    model_uri: str,
    settings: Settings,
    *,
    since: str | None = None,
    until: str | None = None,
    log_db: str | None = None,
    out: Path | None = Path("drift.html"),
    json_out: Path | None = None,
    fail_on_drift: bool = False,
) -> DriftOutcome:
    import sqlalchemy as sa

    from tabserve import adoption
    from tabserve.monitoring.drift import analyze
    from tabserve.monitoring.report import write_reports
    from tabserve.monitoring.sources import logged_models
    from tabserve.predlog.store import make_engine

    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
    if start and end and start >= end:
        raise UserError(f"--since ({since}) must be before --until ({until})")
    url = log_db or settings.resolved_log_db()
    if url is None or url == "off":
        raise UserError("the prediction log is off (TABSERVE_LOG_DB=off): pass --log-db URL")
    _check_sqlite_exists(url)
    model_dir = adoption.resolve(model_uri, settings)
    engine = make_engine(url)
    try:
        try:
            result = analyze(model_dir, engine, start, end)
        except sa.exc.OperationalError as exc:
            safe = engine.url.render_as_string(hide_password=True)
            raise ServiceUnavailable(
                f"cannot read the prediction log at {safe}: {str(exc.orig).strip().splitlines()[0]}"
            ) from None
        if result.n_current == 0:
            seen = ", ".join(logged_models(engine)) or "none"
            raise EmptyWindow(
                f"no logged predictions for model {result.model_name!r} in the window "
                f"(models in the log: {seen}); widen --since/--until or check --log-db"
            )
    finally:
        engine.dispose()
    write_reports(result, out, json_out)
    drifted = [f.name for f in result.features if f.drifted]
    lines = [
        f"{'DATASET DRIFT' if result.dataset_drift else 'no dataset drift'}: "
        f"{result.n_drifted}/{len(result.tested)} features drifted"
        + (f" ({', '.join(drifted)})" if drifted else ""),
        f"prediction drift: {_prediction_verdict(result)}",
        f"rows: {result.n_current:,} logged vs {result.n_reference:,} reference",
        f"quality: {_quality_line(result)}",
    ]
    lines += [f"wrote {p}" for p in (out, json_out) if p is not None]
    code = 1 if fail_on_drift and result.dataset_drift else 0
    return DriftOutcome(result.dataset_drift, "\n".join(lines), code)


def _quality_line(result: DriftResult) -> str:
    quality = result.quality
    if quality is None or quality.overall is None:
        n = quality.n_predictions if quality is not None else result.n_current
        return (
            f"no ground truth for the window's {n:,} predictions "
            "(POST /feedback, or tabserve feedback FILE)"
        )
    names = {"accuracy": "accuracy", "f1": "F1", "roc_auc": "ROC AUC", "rmse": "RMSE",
             "mae": "MAE"}  # fmt: skip
    scores = ", ".join(
        f"{names[m]} {quality.overall[m]:.4g}" if quality.overall.get(m) is not None
        else f"{names[m]} n/a"
        for m in quality.metrics
    )  # fmt: skip
    return (
        f"{scores} on {quality.n_with_feedback:,} of {quality.n_predictions:,} predictions "
        f"with feedback ({quality.coverage:.1%})"
    )


def _prediction_verdict(result: DriftResult) -> str:
    pred = result.prediction
    if pred is None or pred.result is None:
        return "not computed"
    return "yes" if pred.drifted else "no"
