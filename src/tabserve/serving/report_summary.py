"""The latest drift/quality report, summarized for the model page (``GET /report``).

``tabserve drift MODEL --json DIR/drift.json`` writes the report; the server reads
``drift.json`` in the report directory: ``TABSERVE_REPORT_DIR``, else ``TABSERVE_HOME`` (where
``tabserve drift --json drift.json`` run from the home writes it). The server never computes
drift itself here (serving does not import monitoring): it shows what the last run found, with
its time, so a reader sees how old it is. The file is re-read when its modification time
changes, so a cron job's new report shows without a restart.

A report about another model (a shared report directory) is not shown as this model's.
Fields the report may not have (``quality``, written once ground truth is fed back) are passed
through when present and left out otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tabserve.settings import Settings

FILENAME = "drift.json"
# Features listed on the page, most severe first (the HTML report has all of them).
TOP_FEATURES = 8


class NoReport(Exception):
    """No usable report: the message says why and how to write one."""


def report_path(settings: Settings) -> Path:
    return settings.resolved_report_dir() / FILENAME


@dataclass
class ReportReader:
    path: Path
    _cache: dict[str, Any] = field(default_factory=dict)

    def summary(self, model: str) -> dict[str, Any]:
        """The summary of the report for ``model``, or NoReport."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            raise NoReport(
                f"no drift report yet: write one with `tabserve drift MODEL --json "
                f"{FILENAME}` in the report directory (TABSERVE_REPORT_DIR, else TABSERVE_HOME)"
            ) from None
        if self._cache.get("mtime") != mtime:
            try:
                raw = orjson.loads(self.path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise NoReport(
                    f"{FILENAME} in the report directory is not readable JSON "
                    f"({type(exc).__name__}): write it again"
                ) from None
            self._cache = {"mtime": mtime, "report": raw}
        report = self._cache["report"]
        if not isinstance(report, dict):
            raise NoReport(f"{FILENAME} in the report directory is not a drift report")
        if report.get("model") not in (None, model):
            raise NoReport(
                f"{FILENAME} in the report directory is about model {report.get('model')!r}, "
                f"not {model!r}"
            )
        return summarize(report)


def _feature(col: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "kind", "drifted", "test_label", "value", "threshold", "psi", "note")
    return {k: col.get(k) for k in keys}


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    features = [c for c in report.get("features") or [] if isinstance(c, dict)]
    # The report lists features by severity already; drifted ones first regardless.
    features.sort(key=lambda c: not c.get("drifted"))
    prediction = report.get("prediction_drift")
    out: dict[str, Any] = {
        "model": report.get("model"),
        "version": report.get("version"),
        "generated_at": report.get("generated_at"),
        "window": report.get("window"),
        "rows": report.get("rows"),
        "versions_seen": report.get("versions_seen"),
        "dataset_drift": report.get("dataset_drift"),
        "drifted_features": report.get("drifted_features"),
        "tested_features": report.get("tested_features"),
        "share_drifted": report.get("share_drifted"),
        "drift_share_threshold": report.get("drift_share_threshold"),
        "prediction_drift": _feature(prediction) if isinstance(prediction, dict) else None,
        "features": [_feature(c) for c in features[:TOP_FEATURES]],
        "more_features": max(0, len(features) - TOP_FEATURES),
        "notes": report.get("notes") or [],
    }
    if report.get("quality") is not None:
        out["quality"] = report["quality"]
    return out
