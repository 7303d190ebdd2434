"""Drift on the Titanic model: shifted features are flagged, unshifted ones are not; reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir
from tabserve.monitoring.command import parse_moment, run_drift
from tabserve.monitoring.drift import analyze, compare_features
from tabserve.monitoring.report import render_html, to_dict
from tabserve.predlog import PredictionLog
from tabserve.predlog.store import make_engine
from tabserve.serving.runtimes import load_runtime
from tabserve.serving.validation import ValidationOptions, validate_columns
from tabserve.settings import Settings


def _reference(model_dir: Path) -> dict[str, list[Any]]:
    return ModelDir(model_dir).reference_sample()


def _shifted(ref: dict[str, list[Any]]) -> dict[str, list[Any]]:
    cur = {k: list(v) for k, v in ref.items()}
    cur["Age"] = [None if a is None else a + 15 for a in cur["Age"]]
    cur["Fare"] = [f * 2.5 for f in cur["Fare"]]
    return cur


def _log_as_server(
    model_dir: Path, db_url: str, columns: dict[str, list[Any]], spool: Path
) -> None:
    """Log rows the way the server does: validated columns, the runtime's predictions."""
    model = ModelDir(model_dir)
    spec, runtime = model.spec(), load_runtime(model, "onnx")
    plog = PredictionLog(db_url, spool_dir=spool)
    n = len(next(iter(columns.values())))
    for start in range(0, n, 50):
        part = {k: v[start : start + 50] for k, v in columns.items()}
        rows = len(part["Age"])
        batch = validate_columns(spec, part, rows, ValidationOptions(coerce=True))
        pred = runtime.predict(batch.columns)
        plog.submit(
            f"req-{start}", model.name, model.version, batch.columns, rows,
            pred.labels, pred.probabilities, spec.target.classes, 1.0,
        )  # fmt: skip
    plog.close()


def test_shifted_sample_is_flagged_on_the_shifted_features_only(titanic_model_dir: Path) -> None:
    spec = ModelDir(titanic_model_dir).spec()
    ref = _reference(titanic_model_dir)
    results = compare_features(spec, ref, _shifted(ref))
    assert {c.name for c in results if c.drifted} == {"Age", "Fare"}
    assert [c.name for c in results[:2]] and all(c.drifted for c in results[:2])  # sorted
    assert all(c.result is not None for c in results)


def test_unshifted_samples_are_not_flagged(titanic_model_dir: Path) -> None:
    from tabserve.datasets import load_builtin

    spec = ModelDir(titanic_model_dir).spec()
    ref = _reference(titanic_model_dir)
    permuted = np.random.default_rng(0).permutation(len(ref["Age"]))
    same = {k: [v[i] for i in permuted] * 2 for k, v in ref.items()}
    assert not any(c.drifted for c in compare_features(spec, ref, same))
    # All 891 passengers against the training split: same population, no dataset drift.
    frame = load_builtin("titanic")
    everyone = {f: [None if v != v else v for v in frame[f].tolist()] for f in spec.names}
    results = compare_features(spec, ref, everyone)
    assert sum(c.drifted for c in results) / len(results) < 0.5


def test_log_to_report_flags_drift_and_prediction_drift(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    ref = _reference(titanic_model_dir)
    shifted = _shifted(ref)
    shifted["Sex"] = ["female"] * len(shifted["Sex"])
    shifted["Pclass"] = [1] * len(shifted["Pclass"])
    _log_as_server(titanic_model_dir, db, shifted, tmp_path / "spool")
    engine = make_engine(db)
    result = analyze(ModelDir(titanic_model_dir), engine)
    engine.dispose()
    assert result.n_current == len(ref["Age"])
    assert {c.name for c in result.features if c.drifted} == {"Age", "Fare", "Sex", "Pclass"}
    assert result.dataset_drift
    assert result.prediction is not None and result.prediction.drifted  # all women, first class
    data = to_dict(result)
    assert data["dataset_drift"] is True and data["drifted_features"] == 4
    assert [f["drifted"] for f in data["features"]] == sorted(
        (f["drifted"] for f in data["features"]), reverse=True
    )
    page = render_html(result)
    # Self-contained: no scripts, no external stylesheets, images or fonts.
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert page.count("<svg") == len(result.features) + 1  # + the prediction chart
    json.dumps(data)  # the JSON twin has no NaN/inf


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabserve", "drift", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_drift_command_writes_reports_and_fails_on_drift_only_when_asked(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    _log_as_server(titanic_model_dir, db, _shifted(_reference(titanic_model_dir)), tmp_path / "s")
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    outcome = run_drift(
        str(titanic_model_dir), Settings(home=tmp_path), log_db=db, out=html, json_out=js,
        fail_on_drift=True,
    )  # fmt: skip
    # 2 of 7 is under Evidently's 0.5 share: no dataset drift, so --fail-on-drift passes.
    assert outcome.exit_code == 0 and not outcome.dataset_drift
    assert "2/7 features drifted" in outcome.summary
    assert html.stat().st_size > 5000
    assert json.loads(js.read_text())["drifted_features"] == 2


def test_cli_exit_1_on_dataset_drift(titanic_model_dir: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    shifted = _shifted(_reference(titanic_model_dir))
    shifted["Sex"] = ["female"] * len(shifted["Sex"])
    shifted["SibSp"] = [3] * len(shifted["SibSp"])
    _log_as_server(titanic_model_dir, db, shifted, tmp_path / "s")
    proc = _cli(str(titanic_model_dir), "--log-db", db, "--fail-on-drift", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DATASET DRIFT" in proc.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": "yesterday-ish"}, "--since 'yesterday-ish'"),
        ({"since": "2h", "until": "3h"}, "must be before --until"),
        ({"log_db": "sqlite:///nowhere/none.db"}, "no prediction log at"),
        ({"since": "2999-01-01"}, "no logged predictions for model"),
    ],
)
def test_drift_command_user_errors(
    titanic_model_dir: Path, tmp_path: Path, options: dict[str, str], message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    _log_as_server(titanic_model_dir, db, _reference(titanic_model_dir), tmp_path / "s")
    with pytest.raises(UserError, match=re.escape(message)):
        run_drift(str(titanic_model_dir), Settings(home=tmp_path), **({"log_db": db} | options))


def test_cli_user_error_is_one_line_exit_2(titanic_model_dir: Path, tmp_path: Path) -> None:
    proc = _cli(str(titanic_model_dir), "--since", "last tuesday", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--since 'last tuesday'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_parse_moment_forms() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert parse_moment("24h", "--since", now) == datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    assert parse_moment("2026-11-01", "--since", now) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_moment("now", "--until", now) == now
    assert parse_moment(None, "--since", now) is None
