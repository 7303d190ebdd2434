"""Ground truth end to end against a real `tabserve serve`: predict (with and without a client
X-Request-ID), send feedback by HTTP and by file, run `tabserve drift --json`, and check its
quality figures against scikit-learn's on the same (truth, prediction, probability) pairs —
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sklearn import metrics as skm

from tabserve.datasets import load_builtin
from tabserve.modeldir import ModelDir
from tabserve.predlog.store import feedback
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration

SINGLES = 120  # one record per request, each with the client's own X-Request-ID
BATCHES = 40  # five records per request, keyed by the server's id and the record index


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabserve", *args],
        capture_output=True, text=True, timeout=180, cwd=cwd, check=False,
    )  # fmt: skip


def _rows(model_dir: Path) -> list[tuple[dict[str, Any], int]]:
    names = ModelDir(model_dir).spec().names
    frame = load_builtin("titanic")
    out = []
    for record in frame.to_dict(orient="records"):
        features = {n: (None if record[n] != record[n] else record[n]) for n in names}
        out.append((features, int(record["Survived"])))
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_quality_from_feedback_equals_scikit_learns(
    backend: str, titanic_model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    log_db = (
        f"sqlite:///{tmp_path / 'predictions.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    rows = _rows(titanic_model_dir)
    answered: dict[tuple[str, int], dict[str, Any]] = {}  # (id the client knows, index) → answer
    truth: dict[tuple[str, int], int] = {}
    with (
        running_server(
            titanic_model_dir, "--log-db", log_db, env={"TABSERVE_HOME": str(tmp_path)}
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for i in range(SINGLES):
            record, label = rows[i]
            r = client.post("/predict", json=record, headers={"x-request-id": f"order-{i}"})
            assert r.status_code == 200 and r.headers["x-request-id"] == f"order-{i}"
            answered[(f"order-{i}", 0)] = r.json()
            truth[(f"order-{i}", 0)] = label
        for b in range(BATCHES):
            chunk = rows[SINGLES + 5 * b : SINGLES + 5 * b + 5]
            r = client.post("/predict", json=[rec for rec, _ in chunk])
            assert r.status_code == 200
            server_id = r.headers["x-request-id"]  # the server's own: the client sent none
            for j, (answer, (_, label)) in enumerate(zip(r.json()["predictions"], chunk,
                                                         strict=True)):  # fmt: skip
                answered[(server_id, j)] = answer
                truth[(server_id, j)] = label
        keys = list(answered)
        by_http = [k for k in keys[SINGLES:] if k[1] != 4]  # batch records but the fifth
        by_file = keys[: SINGLES - 20]  # the last 20 single requests get no feedback
        # A wrong label first, corrected later: the truth received last counts.
        first = by_http[0]
        sent = client.post("/feedback", json={"request_id": first[0], "record_index": first[1],
                                              "label": 1 - truth[first]})  # fmt: skip
        assert sent.status_code == 202
        body = [{"request_id": k[0], "record_index": k[1], "label": truth[k]} for k in by_http]
        sent = client.post("/feedback", json=body)
        assert sent.status_code == 202 and sent.json() == {"accepted": len(by_http)}
        bad = client.post("/feedback", json=[{"request_id": "x", "label": "1"}])
        assert bad.status_code == 400 and bad.json()["details"][0]["reason"] == "wrong_type"
        path = tmp_path / "labels.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["request_id", "label", "note"])  # record_index absent: 0
            writer.writerows([k[0], truth[k], "from the CRM"] for k in by_file)
        via = ["--url", server.url] if backend == "sqlite" else [
            "--log-db", log_db, "--model", str(titanic_model_dir)]  # fmt: skip
        done = _cli("feedback", str(path), *via, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"sent {len(by_file)} feedback item(s)" in done.stdout
        assert "ignoring column(s) that are not feedback fields: note" in done.stderr
        assert server.stop(timeout=30) == 0  # drains: every row and item is in the database
    out = tmp_path / "report"
    done = _cli("drift", str(titanic_model_dir), "--log-db", log_db, "--json",
                str(out / "drift.json"), "--out", str(out / "drift.html"),
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    quality = orjson.loads((out / "drift.json").read_bytes())["quality"]
    fed = by_http + by_file
    assert quality["predictions"] == len(keys) and quality["with_feedback"] == len(fed)
    assert quality["feedback"] == {
        "read": len(fed), "by_request_id": len(by_http), "by_client_request_id": len(by_file),
        "ambiguous": 0, "unmatched": 0,
    }  # fmt: skip
    y = [truth[k] for k in fed]
    predicted = [answered[k]["prediction"] for k in fed]
    scores = [answered[k]["probabilities"]["1"] for k in fed]
    overall = quality["overall"]
    assert overall["n"] == len(fed)
    assert overall["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert overall["f1"] == pytest.approx(skm.f1_score(y, predicted, pos_label=1))
    assert overall["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert f"on {len(fed)} of {len(keys)} predictions with feedback" in done.stdout
    html = (out / "drift.html").read_text()
    assert "Quality (ground truth)" in html and f"{len(fed)} of {len(keys)}" in html
    engine = sa.create_engine(log_db, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one()
    engine.dispose()
    assert stored == len(fed)  # the correction replaced the first label, no duplicate


def test_feedback_file_errors_are_one_line(titanic_model_dir: Path, tmp_path: Path) -> None:
    log_db = f"sqlite:///{tmp_path / 'p.db'}"
    path = tmp_path / "labels.jsonl"
    path.write_bytes(b'{"request_id": "a", "label": 1}\n{"request_id": "b", "label": "1"}\n')
    done = _cli("feedback", str(path), "--log-db", log_db, "--model", str(titanic_model_dir),
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "labels.jsonl: record 1: label expects a number" in done.stderr
    missing = _cli("feedback", str(tmp_path / "nope.csv"), "--url", "http://127.0.0.1:9",
                   cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 3 and "cannot reach http://127.0.0.1:9" in missing.stderr
    neither = _cli("feedback", str(path), cwd=tmp_path)
    assert neither.returncode == 2 and "--url" in neither.stderr and "--log-db" in neither.stderr
