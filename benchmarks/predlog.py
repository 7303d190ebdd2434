"""Prediction-log throughput and drift-report time, measured on this machine.

    .venv/bin/python benchmarks/predlog.py writer --db sqlite:////tmp/bench.db --rows 200000
    .venv/bin/python benchmarks/predlog.py writer --db postgresql+psycopg://... --rows 200000
    .venv/bin/python benchmarks/predlog.py writer --postgres --rows 200000   # throw-away cluster
    .venv/bin/python benchmarks/predlog.py report --model DIR --rows 100000

`writer`: submits Titanic-shaped records (7 features, label + 2 probabilities) as fast as one
thread can, then waits for the flush; rows/s = rows / (first submit → all committed), and the
CPU the writer thread spent per row (the GIL share it takes from serving, plus the database
driver's own work, which runs without the GIL). `report`:
logs N rows into a fresh SQLite log, then times `analyze` + HTML + JSON for the whole window.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _columns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "Pclass": rng.integers(1, 4, n).astype(np.float64),
        "Sex": np.array(rng.choice(["male", "female"], n), dtype=object),
        "Age": rng.normal(30, 14, n),
        "SibSp": rng.integers(0, 4, n).astype(np.float64),
        "Parch": rng.integers(0, 3, n).astype(np.float64),
        "Fare": rng.exponential(30, n),
        "Embarked": np.array(rng.choice(["S", "C", "Q"], n), dtype=object),
    }


def bench_writer(url: str, rows: int, per_request: int) -> dict[str, float]:
    from tabserve.predlog import PredictionLog

    rng = np.random.default_rng(0)
    cols = _columns(per_request, rng)
    labels = rng.integers(0, 2, per_request)
    probs = rng.random((per_request, 2))
    with tempfile.TemporaryDirectory() as spool:
        # A queue that holds the whole run: this measures the database path, not the spool.
        plog = PredictionLog(url, spool_dir=Path(spool), queue_rows=rows * 10)
        assert plog.flush(30), "database not reachable"
        requests = rows // per_request
        start = time.perf_counter()
        cpu_start, own_start = time.process_time(), time.thread_time()
        for i in range(requests):
            plog.submit(
                f"b{start}-{i}", "titanic", "1", cols, per_request, labels, probs, [0, 1], 1.0
            )
        submitted = time.perf_counter()
        assert plog.flush(600), plog.stats()
        done = time.perf_counter()
        # CPU of every other thread (the writer, and the driver's work it does off the GIL).
        writer_cpu = (time.process_time() - cpu_start) - (time.thread_time() - own_start)
        stats = plog.stats()
        plog.close()
    total = requests * per_request
    return {
        "rows": total,
        "rows_per_request": per_request,
        "submit_us_per_request": (submitted - start) / requests * 1e6,
        "rows_per_s": total / (done - start),
        "writer_cpu_us_per_row": writer_cpu / total * 1e6,
        "spooled": stats["spooled"],
        "dropped": stats["dropped"],
    }


def bench_report(model: Path, rows: int) -> dict[str, float]:
    from tabserve.modeldir import ModelDir
    from tabserve.monitoring.drift import analyze
    from tabserve.monitoring.report import render_html, to_json
    from tabserve.predlog import PredictionLog
    from tabserve.predlog.store import make_engine

    model_dir = ModelDir(model)
    ref = model_dir.reference_sample()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/log.db"
        plog = PredictionLog(url, spool_dir=Path(tmp) / "spool", queue_rows=rows + 1)
        n_ref = len(next(iter(ref.values())))
        for start in range(0, rows, 100):
            idx = rng.integers(0, n_ref, 100)
            cols = {k: np.array([v[i] for i in idx], dtype=object) for k, v in ref.items()}
            plog.submit(f"r{start}", model_dir.name, model_dir.version, cols, 100,
                        rng.integers(0, 2, 100))  # fmt: skip
        assert plog.flush(600)
        plog.close()
        engine = make_engine(url)
        t0 = time.perf_counter()
        result = analyze(model_dir, engine)
        t1 = time.perf_counter()
        page, js = render_html(result), to_json(result)
        t2 = time.perf_counter()
    return {
        "rows": result.n_current,
        "analyze_s": t1 - t0,
        "render_s": t2 - t1,
        "total_s": t2 - t0,
        "html_kb": len(page) / 1024,
        "json_kb": len(js) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("writer")
    w.add_argument("--db")
    w.add_argument("--postgres", action="store_true", help="start a throw-away cluster")
    w.add_argument("--fsync", action="store_true", help="that cluster with fsync on")
    w.add_argument("--rows", type=int, default=200_000)
    w.add_argument("--per-request", type=int, nargs="+", default=[1, 10])
    r = sub.add_parser("report")
    r.add_argument("--model", type=Path, required=True)
    r.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    if args.what == "report":
        print(bench_report(args.model, args.rows))
        return
    server = None
    url = args.db
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures.postgres import start_postgres

        server = start_postgres(fsync=args.fsync)
        url = server.url
    try:
        for per_request in args.per_request:
            print(url.split("://")[0], bench_writer(url, args.rows, per_request))
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
