"""The training grid locally vs on a local Dask cluster, side by side, interleaved.

    .venv/bin/python benchmarks/grid.py [--repeats 5] [--workers 2] [--threads 1] [--with-j1]

Starts `dask scheduler` + N `dask worker` processes (with their nanny, as `dask worker` does by
default) on 127.0.0.1, then times, in turns, the default Titanic grid (configs/titanic-grid.yaml:
7 points x 5-fold CV) three ways on the same training split:

- ``local -j1`` (with ``--with-j1``): one process, the points one after another;
- ``local -j2``: joblib's loky processes, two at a time (what `tabserve train` does by default
  on this 2-core machine);
- ``cluster``: ``--cluster`` on the local Dask cluster (connect + scatter + dispatch included).

Then one end-to-end ``tabserve train`` each way (MLflow logging, ONNX export, registration). All
processes are stopped by PID. Numbers on a shared machine vary: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabserve.local_server import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def start_cluster(workers: int, threads: int, logs: Path) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []

    def spawn(argv: list[str], name: str) -> None:
        with (logs / f"{name}.log").open("wb") as out:
            procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=logs))

    spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
           "--no-dashboard"], "scheduler")  # fmt: skip
    for i in range(workers):
        spawn([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1",
               "--nthreads", str(threads), "--no-dashboard",
               "--local-directory", str(logs / f"w{i}")], f"worker-{i}")  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with Client(address, timeout=5, set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=max(1, deadline - time.monotonic()))
            return address, procs
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def grid_once(mode: str, address: str) -> tuple[float, float, float]:
    """Wall seconds of the grid alone (for the cluster: connect + scatter + fits + close), of
    connecting (client, workers, version check) on its own, and the fits' own seconds summed."""
    from tabserve.datasets import load_table
    from tabserve.training.config import load_experiment, load_grid
    from tabserve.training.fit import split_frame, target_values
    from tabserve.training.pipeline import prepare_frame
    from tabserve.training.profile import build_spec
    from tabserve.training.search import run_grid

    config = load_experiment(ROOT / "configs" / "titanic.yaml")
    points = load_grid(ROOT / "configs" / "titanic-grid.yaml").points()
    frame = load_table(config.data_source())
    spec = build_spec(frame, config.target)
    train, _ = split_frame(frame, spec, config.split.test_size, config.seed)
    x, y = prepare_frame(train, spec), target_values(train, spec)
    args = (points, spec, x, y, "roc_auc", config.cv_folds, config.seed)
    start = time.perf_counter()
    connected = start
    if mode == "cluster":
        from tabserve.training.cluster import connect

        cluster = connect(address)
        connected = time.perf_counter()
        try:
            results = run_grid(*args, -1, show_progress=False, cluster=cluster)
        finally:
            cluster.close()
    else:
        results = run_grid(*args, int(mode[-1]), show_progress=False)
    fits = sum(r.fit_time_s for r in results)
    return time.perf_counter() - start, connected - start, fits


def train_once(mode: str, address: str, home: Path) -> float:
    argv = [str(BIN / "tabserve"), "train", str(ROOT / "configs" / "titanic.yaml"),
            "--grid", str(ROOT / "configs" / "titanic-grid.yaml")]  # fmt: skip
    argv += ["--cluster", address] if mode == "cluster" else ["--jobs", mode[-1]]
    home.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=home,
                   env={**os.environ, "TABSERVE_HOME": str(home)})  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-repeats", type=int, default=2)
    parser.add_argument("--with-j1", action="store_true", help="also time local -j1")
    opts = parser.parse_args()
    modes = ["local -j1"] * opts.with_j1 + ["local -j2", "cluster"]
    logs = Path(tempfile.mkdtemp(prefix="tabserve-bench-grid-"))
    address, procs = start_cluster(opts.workers, opts.threads, logs)
    print(f"cluster {address}: {opts.workers} worker(s) x {opts.threads} thread(s); "
          f"{os.cpu_count()} cores here; logs in {logs}")  # fmt: skip
    try:
        grid: dict[str, list[float]] = {m: [] for m in modes}
        fits: dict[str, list[float]] = {m: [] for m in modes}
        connects: list[float] = []
        for r in range(opts.repeats):
            for mode in modes if r % 2 == 0 else reversed(modes):
                total, connect, fitted = grid_once(mode, address)
                grid[mode].append(total)
                fits[mode].append(fitted)
                connects += [connect] if mode == "cluster" else []
        trains: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(opts.train_repeats):  # a fresh store each time: all pay the same setup
            for mode in modes if r % 2 == 0 else reversed(modes):
                home = logs / "home" / f"{mode.replace(' ', '')}-{r}"
                trains[mode].append(train_once(mode, address, home))
    finally:
        for proc in reversed(procs):
            stop(proc, 15)
    base = statistics.median(grid["local -j2"])
    train_base = statistics.median(trains["local -j2"])
    print(f"\n{'':<10} {'grid median s':>14} {'min':>6} {'max':>6} {'÷ local -j2':>12}"
          f" {'fits s (sum)':>13} {'tabserve train s':>17} {'÷ local -j2':>12}")  # fmt: skip
    for mode in modes:
        runs, train = grid[mode], statistics.median(trains[mode])
        med, fit = statistics.median(runs), statistics.median(fits[mode])
        print(f"{mode:<10} {med:>14.2f} {min(runs):>6.2f} {max(runs):>6.2f} {med / base:>12.2f}"
              f" {fit:>13.2f} {train:>17.1f} {train / train_base:>12.2f}")  # fmt: skip
    print(
        f"\ncluster: connect + version check {statistics.median(connects):.2f} s (median) of"
        f" the grid's {statistics.median(grid['cluster']):.2f} s;"
        f" {opts.repeats} grid runs and {opts.train_repeats} trainings per mode, interleaved"
    )


if __name__ == "__main__":
    main()
