"""The serve path imports neither scikit-learn, scipy nor pandas (the `serve` extra lacks them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys, time
from starlette.testclient import TestClient
from tabserve.serving.app import create_app
from tabserve.settings import Settings

model_dir, home = sys.argv[1], sys.argv[2]
app = create_app(Settings(home=home), model_dir)   # prediction log on (SQLite in home)
with TestClient(app) as client:
    deadline = time.monotonic() + 30
    while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    record = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25,
              "Embarked": "S"}
    status = client.post("/predict", json=[record, record]).status_code
    client.get("/metrics"); client.get("/openapi.json")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy", "pandas"))
print(json.dumps({"status": status, "heavy": heavy}))
"""


def test_serving_imports_no_sklearn_scipy_pandas(titanic_model_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(titanic_model_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["heavy"] == []
