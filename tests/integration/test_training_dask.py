"""The grid on a real Dask cluster (`dask scheduler` + `dask worker` processes on 127.0.0.1).

What must hold: the fits run ON THE WORKERS (their PIDs and executed-task counts, not only "the
training finished"), the data go to the workers once as scattered keys, the results, nested runs
and champion are those of a local training, a one-thread cluster still dispatches (joblib alone
runs such a job in the calling process), and a dead or empty scheduler is one line naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from tabserve.errors import ServiceUnavailable, UserError
from tabserve.local_server import free_port
from tabserve.settings import Settings
from tabserve.training.config import GridConfig, load_experiment
from tabserve.training.train import train
from tests.fixtures.dask_cluster import DaskProcesses

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
GRID = {
    "models": [
        {"family": "logistic", "params": {"C": [0.1, 1.0]}},
        {"family": "random_forest", "params": {"n_estimators": [30], "max_depth": [4]}},
        {"family": "hist_gradient_boosting", "params": {"max_iter": [30]}},
    ]
}


def _executed(client: Any) -> dict[str, int]:
    return client.run(lambda dask_worker: dask_worker.state.executed_count)


def _scheduler_keys(client: Any) -> dict[str, int]:
    """Keys the scheduler ever held in memory, by prefix (its own bookkeeping, never reset)."""

    def count(dask_scheduler: Any) -> dict[str, int]:
        return {
            name: int(prefix.state_counts.get("memory", 0))
            for name, prefix in dask_scheduler.task_prefixes.items()
        }

    return client.run_on_scheduler(count)


def _pid(ran_on: str) -> int:
    return int(ran_on.rsplit(":", 1)[1])


def test_grid_runs_on_the_workers_with_scattered_data(
    dask_cluster: Callable[..., DaskProcesses], tmp_path: Path
) -> None:
    cluster = dask_cluster(workers=2, threads=1)
    client = cluster.client()
    worker_pids = client.run(os.getpid)  # the workers proper: children of the nannies
    assert {psutil.Process(p).ppid() for p in worker_pids.values()} == set(cluster.worker_pids)
    assert set(_executed(client).values()) == {0}

    config = load_experiment(CONFIGS / "titanic.yaml")
    config.cv_folds = 3
    grid = GridConfig.model_validate(GRID)
    settings = Settings(home=tmp_path / "cluster", dask_scheduler=cluster.address)
    result = train(config, grid, settings, Console(quiet=True), jobs=-1)
    n = len(result.points)
    assert result.cluster == cluster.address and n == 4

    # Every fit ran in a worker process, none here, and both workers took a share.
    fitted_on = [_pid(p.ran_on) for p in result.points]
    assert set(fitted_on) <= set(worker_pids.values()) and os.getpid() not in fitted_on
    executed = _executed(client)
    assert sum(executed.values()) == n and all(c > 0 for c in executed.values()), executed

    # The spec, the frame and the target went over once each, as keys the tasks refer to
    # (an argument shipped inside each task would leave no key at all); one task per point.
    keys = _scheduler_keys(client)
    assert {k: keys.get(k) for k in ("FeatureSpec", "DataFrame", "ndarray")} == {
        "FeatureSpec": 1,
        "DataFrame": 1,
        "ndarray": 1,
    }, keys
    assert keys.get("batch_of_fit_point_1_calls") == n, keys

    # Nested MLflow runs say where each point was fitted.
    from tabserve import registry

    mlflow_client = registry.client(settings)
    children = mlflow_client.search_runs(
        [mlflow_client.get_run(result.run_id).info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{result.run_id}'",
    )
    assert sorted(r.data.tags["tabserve.fitted_on"] for r in children) == sorted(
        p.ran_on for p in result.points
    )

    # Same grid locally: the same scores, the same best point, the same champion decision.
    config.registered_model = "titanic-local"  # same store, its own model and champion
    local = train(config, grid, Settings(home=tmp_path / "cluster"), Console(quiet=True), jobs=2)
    assert [p.cv_mean for p in local.points] == [p.cv_mean for p in result.points]
    assert local.best.index == result.best.index and local.cluster is None
    assert result.decision.moved and local.decision.moved

    # Stopped by PID: the nannies and the workers they ran are gone.
    cluster.stop()
    for pid in [*cluster.worker_pids, *worker_pids.values()]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid


def test_one_thread_cluster_still_dispatches(dask_cluster: Callable[..., DaskProcesses]) -> None:
    from joblib import Parallel, delayed, parallel_config

    from tabserve.datasets import load_builtin
    from tabserve.training.cluster import connect
    from tabserve.training.fit import target_values
    from tabserve.training.pipeline import prepare_frame
    from tabserve.training.profile import build_spec
    from tabserve.training.search import run_grid

    cluster = dask_cluster(workers=1, threads=1)
    client = cluster.client()
    (worker_pid,) = client.run(os.getpid).values()

    # What the guard is for: joblib's own Dask backend runs a one-thread job right here.
    with parallel_config(backend="dask", client=client):
        assert set(Parallel(n_jobs=-1)(delayed(os.getpid)() for _ in range(3))) == {os.getpid()}

    frame = load_builtin("titanic")
    spec = build_spec(frame, "Survived")
    prepared, y = prepare_frame(frame, spec), target_values(frame, spec)
    points: list[tuple[str, dict[str, Any]]] = [("logistic", {"C": c}) for c in (0.1, 1.0, 10.0)]
    dask = connect(cluster.address)
    try:
        assert dask.threads == 1
        for jobs in (-1, 1):  # all threads (= 1), and an explicit --jobs 1
            before = sum(_executed(client).values())
            results = run_grid(
                points, spec, prepared, y, "roc_auc", 3, 0, jobs, show_progress=False, cluster=dask
            )
            assert {_pid(r.ran_on) for r in results} == {worker_pid}
            assert sum(_executed(client).values()) - before == len(points)
    finally:
        dask.close()


@pytest.mark.parametrize("how", ["--cluster", "TABSERVE_DASK_SCHEDULER"])
def test_unreachable_scheduler_is_one_line(how: str, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "tabserve", "train", str(CONFIGS / "iris.yaml")]
    env = {**os.environ, "TABSERVE_HOME": str(tmp_path)}
    if how == "--cluster":
        argv += ["--cluster", address]
    else:
        env["TABSERVE_DASK_SCHEDULER"] = address
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert address in lines[0] and "dask scheduler" in lines[0] and "dask worker" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()  # failed before any work


def test_scheduler_without_workers_and_bad_address(
    dask_cluster: Callable[..., DaskProcesses],
) -> None:
    from tabserve.training.cluster import connect

    cluster = dask_cluster(workers=0)
    with pytest.raises(ServiceUnavailable, match=r"has no worker.*`dask worker tcp://127\.0\.0\.1"):
        connect(cluster.address, worker_wait_s=1.0)
    with pytest.raises(UserError, match=r"use tcp://HOST:PORT"):
        connect("http://127.0.0.1:8786")
