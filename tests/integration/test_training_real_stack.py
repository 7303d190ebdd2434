"""The real stack (mlflow server on PostgreSQL + S3 artifacts): train, resolve, serve, promote,
log, drift — every step through the servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import httpx
import pytest
from rich.console import Console

from tabserve import registry
from tabserve.errors import ServiceUnavailable
from tabserve.settings import Settings
from tabserve.training.config import load_experiment
from tabserve.training.train import train
from tests.fixtures.mlflow_stack import MlflowServer, _boto_kwargs
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_train_register_resolve_through_server(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri=mlflow_server.url)
    config = load_experiment(CONFIGS / "titanic.yaml")
    config.cv_folds = 3
    config.registered_model = "titanic-stack"
    result = train(config, None, settings, Console(quiet=True))
    assert result.decision.moved and result.export.parity_ok

    model = registry.resolve("models:/titanic-stack@champion", settings)
    assert model.has_onnx and model.has_sklearn and model.version == result.version
    assert model.path.is_relative_to(tmp_path / ".tabserve" / "models")

    # The artifacts really are in S3 (not on the server's disk).
    s3 = boto3.client("s3", endpoint_url=mlflow_server.s3.endpoint, **_boto_kwargs())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server.s3.bucket)["Contents"]]
    assert any(k.endswith("model/model.onnx") for k in keys)
    assert any(k.endswith("model/feature_spec.json") for k in keys)

    # The registered directory is a servable MLflow model: this is the request path of
    # `mlflow models serve` (JSON body → schema enforcement → pyfunc predict).
    from mlflow.models import validate_serving_input

    body = (model.path / "serving_input_example.json").read_text()
    predictions = validate_serving_input(str(model.path), body)
    assert len(predictions) == 5


def test_dead_server_is_named(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    with pytest.raises(ServiceUnavailable, match=r"127\.0\.0\.1:9"):
        registry.resolve("models:/titanic@champion", settings)


def _tabserve(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabserve", *args],
        capture_output=True, text=True, timeout=180, env=env, cwd=cwd,
    )  # fmt: skip


def test_real_stack_end_to_end(
    mlflow_server: MlflowServer, postgres_database: str, tmp_path: Path
) -> None:
    """Train → register → serve @champion with --watch and the log in PostgreSQL → promote
    another family through the server under load → answers switch with no failed request →
    every answered row of both versions is in the log → drift runs from that log.

    Nothing is shared with the test process but the servers: the serving process, its fetch
    child and the CLI commands get the tracking URL and S3 settings from their environment
    only (TABSERVE_TRACKING_URI, MLFLOW_S3_ENDPOINT_URL, AWS_*), as on a real host.
    """
    from tabserve.datasets import load_builtin
    from tabserve.training import fit_model_dir
    from tests.integration.test_serving_reload import load_until, survival_probability

    started = time.perf_counter()
    name = "titanic-e2e"
    settings = Settings(home=tmp_path / "trainer", tracking_uri=mlflow_server.url)
    config = load_experiment(CONFIGS / "titanic.yaml")
    config.cv_folds = 3
    config.registered_model = name
    first = train(config, None, settings, Console(quiet=True))
    assert first.version == "1" and first.decision.moved

    # The serving host: its own home and model cache, everything else from the environment.
    serve_home = tmp_path / "server"
    serve_home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TABSERVE_")},
        **mlflow_server.s3.env(),
        "TABSERVE_HOME": str(serve_home),
        "TABSERVE_TRACKING_URI": mlflow_server.url,
    }
    # Another family, registered without the alias: its answers differ from version 1's.
    forest = fit_model_dir(
        load_builtin("titanic"), "Survived", tmp_path / "forest", "random_forest",
        {"n_estimators": 30, "max_depth": 5}, name=name,
    ).path  # fmt: skip
    second = registry.register_model_dir(forest, name, settings)
    assert second == "2"
    v1_dir = registry.resolve(f"models:/{name}/1", settings).path
    old_p, new_p = survival_probability(v1_dir), survival_probability(forest)
    assert old_p != new_p

    args = ("--watch", "--watch-interval", "0.5", "--log-db", postgres_database)
    with running_server(f"models:/{name}@champion", *args, env=env, ready_timeout=120) as server:
        assert httpx.get(f"{server.url}/ready").json()["version"] == "1"

        async def scenario() -> tuple[Counter[str], str]:
            stop = asyncio.Event()
            load = asyncio.create_task(load_until(server.url, stop))
            await asyncio.sleep(1.0)
            promoted = await asyncio.to_thread(
                _tabserve, "models", "promote", name, second, env=env, cwd=serve_home
            )
            deadline = time.monotonic() + 90
            async with httpx.AsyncClient() as probe:
                while time.monotonic() < deadline:
                    if (await probe.get(f"{server.url}/ready")).json().get("version") == second:
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # keep the load on after the swap
            stop.set()
            return await load, promoted.stdout + promoted.stderr

        seen, promoted = asyncio.run(scenario())
        assert f"{name}@champion → version 2 (was version 1)" in promoted, promoted
        # SIGTERM: the server drains, and the log flushes its queue before exit (uvicorn
        # re-raises the signal once shut down: the exit code is -15 either way).
        server.stop(timeout=30)
    log = server.log()
    assert "swapped from version 1 to 2" in log, log[-3000:]

    failures = {k: v for k, v in seen.items() if not k.startswith(("version:", "p:"))}
    assert failures == {}, seen
    assert seen["version:1"] > 0 and seen["version:2"] > 0, seen
    assert {k for k in seen if k.startswith("p:")} == {f"p:1:{old_p}", f"p:2:{new_p}"}, seen

    # Every answered record (2 per request) of both versions is in PostgreSQL, once.
    import sqlalchemy as sa

    from tabserve.predlog.store import predictions

    engine = sa.create_engine(postgres_database, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(predictions.c.model_version, sa.func.count())
            .where(predictions.c.model_name == name)
            .group_by(predictions.c.model_version)
        ).all()
    engine.dispose()
    assert dict(rows) == {"1": 2 * seen["version:1"], "2": 2 * seen["version:2"]}, (rows, seen)

    # Drift from that log, the model resolved from the tracking server (S3 artifacts).
    html, report = tmp_path / "drift.html", tmp_path / "drift.json"
    drift = _tabserve(
        "drift", f"models:/{name}@champion", "--log-db", postgres_database,
        "--out", str(html), "--json", str(report), env=env, cwd=serve_home,
    )  # fmt: skip
    assert drift.returncode == 0, drift.stderr
    assert json.loads(report.read_text())["rows"]["current"] == sum(n for _, n in rows)
    assert "<html" in html.read_text().lower()
    print(f"real stack end to end: {time.perf_counter() - started:.1f} s")
