"""What ground truth costs: POST /feedback throughput, /predict beside it, and drift refreshes.

    .venv/bin/python benchmarks/feedback.py serve [--rounds 3]
    .venv/bin/python benchmarks/feedback.py refresh [--rows 10000 100000]

`serve`: one tabserve worker (ONNX, batching, prediction log on SQLite), interleaved rounds of
  A  /predict closed loop at c=50 alone (tabserve's load tester, every answer checked),
  B  the same with 100-item POST /feedback beside it at a fixed 10 posts/s (1,000 items/s),
  C  100-item POST /feedback alone, closed loop at c=4 (posts/s, items/s, p50/p99),
then waits until the writer has stored every feedback item and checks the table holds them.
Prints B/A (predict throughput and p99 with feedback traffic beside it) as ratios.

`refresh`: logs N Titanic rows (10 % with feedback) into a fresh SQLite log the way the server
does, then times the exact command the drift refresher runs (`tabserve drift MODEL --since 24h
--json … --out … --log-db …`, a child process), median of 3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from tabserve.loadtest.sweep import run_sweep

FEEDBACK_RATE = 10.0  # posts/s beside /predict in B
ITEMS = 100


def _model(work: Path) -> Path:
    from tabserve.datasets import DATASETS, load_builtin
    from tabserve.training import fit_model_dir

    return fit_model_dir(load_builtin("titanic"), DATASETS["titanic"].target, work / "model",
                         "logistic", name="titanic").path  # fmt: skip


def _body(tag: str, n: int) -> bytes:
    return orjson.dumps([{"request_id": f"{tag}-{i}", "label": i % 2} for i in range(n)])


class FeedbackStream:
    """100-item posts at a fixed rate on one connection until stopped (side traffic)."""

    def __init__(self, url: str, rate: float, tag: str) -> None:
        self.url, self.rate, self.tag = url, rate, tag
        self.sent = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FeedbackStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            start = time.monotonic()
            while not self._stop.is_set():
                due = start + self.sent / self.rate
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                r = client.post("/feedback", content=_body(f"{self.tag}-{self.sent}", ITEMS),
                                headers={"content-type": "application/json"})  # fmt: skip
                self.sent += 1
                self.failed += r.status_code != 202


def feedback_alone(url: str, tag: str, posts: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    failed = [0]

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(k, posts, concurrency):
                body = _body(f"{tag}-{i}", ITEMS)
                t0 = time.perf_counter()
                r = client.post("/feedback", content=body,
                                headers={"content-type": "application/json"})  # fmt: skip
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    failed[0] += r.status_code != 202

    for k in range(concurrency):  # warm the connections
        httpx.post(f"{url}/feedback", content=_body(f"{tag}-warm-{k}", ITEMS),
                   headers={"content-type": "application/json"})  # fmt: skip
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    q = np.quantile(latencies, [0.5, 0.99]) * 1000
    return {
        "posts": posts,
        "failed": failed[0],
        "posts_per_s": posts / elapsed,
        "items_per_s": posts * ITEMS / elapsed,
        "p50_ms": float(q[0]),
        "p99_ms": float(q[1]),
    }


def serve(rounds: int, requests: int) -> None:
    from tabserve.local_server import free_port, stop, wait_ready

    work = Path(tempfile.mkdtemp(prefix="tabserve-bench-feedback-"))
    model = _model(work)
    port = free_port()
    db = work / "log.db"
    env = {**os.environ, "TABSERVE_HOME": str(work), "TABSERVE_LOG_DB": f"sqlite:///{db}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tabserve", "serve", str(model), "--port", str(port)],
        env=env, stdout=(work / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[Any]] = {"A": [], "B": [], "C": []}
    sent_items = 0
    try:
        wait_ready(url, server)
        run_sweep(url, [50], 2_000, None, progress=False, plot=False)  # warm
        for r in range(rounds):
            a = run_sweep(url, [50], requests, None, progress=False, plot=False)[0]
            with FeedbackStream(url, FEEDBACK_RATE, f"side{r}") as side:
                b = run_sweep(url, [50], requests, None, progress=False, plot=False)[0]
            sent_items += side.sent * ITEMS
            c = feedback_alone(url, f"alone{r}", 300, 4)
            sent_items += (300 + 4) * ITEMS
            results["A"].append(a)
            results["B"].append((b, side.sent / b.elapsed_s, side.failed))
            results["C"].append(c)
            print(f"round {r + 1}: A {a.throughput_rps:,.0f} req/s p99 {a.q99_ms:.1f} ms | "
                  f"B {b.throughput_rps:,.0f} req/s p99 {b.q99_ms:.1f} ms with "
                  f"{side.sent / b.elapsed_s:.1f} feedback posts/s ({side.failed} failed) | "
                  f"C {c['posts_per_s']:,.0f} posts/s = {c['items_per_s']:,.0f} items/s "
                  f"p50 {c['p50_ms']:.1f} p99 {c['p99_ms']:.1f} ms ({c['failed']} failed)",
                  flush=True)  # fmt: skip
        t0 = time.monotonic()
        stored = 0
        while time.monotonic() - t0 < 120:
            import sqlite3

            with sqlite3.connect(db) as conn:
                stored = conn.execute("SELECT count(*) FROM feedback").fetchone()[0]
            if stored >= sent_items:
                break
            time.sleep(0.5)
        print(f"feedback rows stored {stored:,} of {sent_items:,} sent "
              f"({time.monotonic() - t0:.1f} s after the last post)")  # fmt: skip
    finally:
        stop(server)
    ratios = [b.throughput_rps / a.throughput_rps for a, (b, _, _) in
              zip(results["A"], results["B"], strict=True)]  # fmt: skip
    p99 = [b.q99_ms / a.q99_ms for a, (b, _, _) in zip(results["A"], results["B"], strict=True)]
    print(f"B/A predict throughput: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(median {statistics.median(ratios):.2f}); p99 B/A: "
          f"{', '.join(f'{x:.2f}' for x in p99)}")  # fmt: skip
    items = [c["items_per_s"] for c in results["C"]]
    print(f"feedback alone: {', '.join(f'{x:,.0f}' for x in items)} items/s "
          f"(median {statistics.median(items):,.0f})")  # fmt: skip


def refresh(rows_list: list[int], repeats: int) -> None:
    from tabserve.modeldir import ModelDir
    from tabserve.predlog import PredictionLog

    work = Path(tempfile.mkdtemp(prefix="tabserve-bench-refresh-"))
    model_dir = ModelDir(_model(work))
    ref = model_dir.reference_sample()
    n_ref = len(next(iter(ref.values())))
    rng = np.random.default_rng(0)
    for rows in rows_list:
        url = f"sqlite:///{work}/log-{rows}.db"
        plog = PredictionLog(url, spool_dir=work / f"spool-{rows}", queue_rows=2 * rows + 1)
        for start in range(0, rows, 100):
            idx = rng.integers(0, n_ref, 100)
            cols = {k: np.array([v[i] for i in idx], dtype=object) for k, v in ref.items()}
            probs = rng.random((100, 2))
            probs /= probs.sum(axis=1, keepdims=True)
            plog.submit(f"r{start}", model_dir.name, model_dir.version, cols, 100,
                        (probs[:, 1] > 0.5).astype(int), probs, [0, 1])  # fmt: skip
            if start % 1000 == 0:  # 10 %: every record of one request in ten
                plog.submit_feedback(
                    [(f"r{start}", j, int(rng.integers(0, 2))) for j in range(100)]
                )
        assert plog.flush(600), plog.stats()
        plog.close()
        argv = [sys.executable, "-m", "tabserve", "drift", str(model_dir.path), "--since", "24h",
                "--json", str(work / "drift.json"), "--out", str(work / "drift.html"),
                "--log-db", url]  # fmt: skip
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - t0)
            assert done.returncode == 0, done.stderr
        report = orjson.loads((work / "drift.json").read_bytes())
        print(f"{rows:,} logged rows: refresh {', '.join(f'{t:.2f}' for t in times)} s "
              f"(median {statistics.median(times):.2f} s); rows {report['rows']['current']:,}, "
              f"with feedback {report['quality']['with_feedback']:,}")  # fmt: skip
        print(f"  in-process, median of {repeats}: {_in_process(model_dir, url, repeats)}")


def _in_process(model_dir: Any, url: str, repeats: int) -> str:
    """Where a refresh's time goes, without the child's start: the window read alone, the
    same read joining feedback, and the whole analysis."""
    from tabserve.monitoring.drift import analyze
    from tabserve.monitoring.quality import FeedbackJoin
    from tabserve.monitoring.sources import load_window
    from tabserve.predlog.store import make_engine, read_feedback

    engine = make_engine(url)
    names = model_dir.spec().names
    plain, joined, whole = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load_window(engine, model_dir.name, names)
        t1 = time.perf_counter()
        load_window(engine, model_dir.name, names, join=FeedbackJoin(read_feedback(engine)))
        t2 = time.perf_counter()
        analyze(model_dir, engine)
        t3 = time.perf_counter()
        plain.append(t1 - t0)
        joined.append(t2 - t1)
        whole.append(t3 - t2)
    engine.dispose()
    med = statistics.median
    return (
        f"read {med(plain):.2f} s, read + feedback join {med(joined):.2f} s "
        f"({med(joined) / med(plain):.2f}x), analyze (drift + quality) {med(whole):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--requests", type=int, default=10_000)
    r = sub.add_parser("refresh")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    r.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "serve":
        serve(args.rounds, args.requests)
    else:
        refresh(args.rows, args.repeats)


if __name__ == "__main__":
    main()
