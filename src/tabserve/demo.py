"""``make demo``: the whole loop on the embedded default, as a new user would run it.

train Titanic (default grid) → register @champion → serve it (ONNX, background process) →
concurrency sweep → a batch of shifted traffic → drift report → print where everything is.

Each step is the public CLI or library call the README documents, so the demo shows the product
rather than a private path through it. The server is stopped by PID on success, failure and Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from rich.console import Console

from tabserve.errors import UserError
from tabserve.local_server import free_port, stop, wait_ready

MODEL_URI = "models:/titanic@champion"
LEVELS = [1, 2, 5, 10, 20, 50]
REQUESTS_PER_LEVEL = 500
SHIFTED_RECORDS = 600

console = Console(stderr=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tabserve", *args]


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _run(args: list[str]) -> None:
    code = subprocess.call(args)
    if code != 0:
        raise UserError(f"`{' '.join(args[2:])}` failed with exit code {code}")


def _send_shifted_traffic(url: str) -> int:
    """Records drawn from the training profile, then moved: older, richer, first class, female."""
    from tabserve.loadtest.payloads import records_from_spec
    from tabserve.spec import FeatureSpec

    spec = FeatureSpec.model_validate(httpx.get(f"{url}/spec", timeout=5).json())
    records = records_from_spec(spec, SHIFTED_RECORDS, seed=7, allow_null=False)
    shifts = {
        "Age": lambda v: v + 25,
        "Fare": lambda v: v * 4 + 40,
        "Pclass": lambda v: 1,
        "Sex": lambda v: "female",
    }
    for record in records:
        for name, shift in shifts.items():
            if name in record and record[name] is not None:
                record[name] = shift(record[name])
    sent = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for start in range(0, len(records), 100):
            chunk = records[start : start + 100]
            response = client.post("/predict", json=chunk)
            if response.status_code != 200:
                raise UserError(f"shifted batch rejected: {response.status_code} {response.text}")
            sent += len(chunk)
    return sent


def run(home: Path, configs: Path) -> None:
    results = home / "results"
    results.mkdir(parents=True, exist_ok=True)
    log_db = f"sqlite:///{(results / 'predictions.db').resolve()}"
    os.environ["TABSERVE_HOME"] = str(home)
    started = time.monotonic()

    _step("1/5 train Titanic with the default grid, register the champion")
    _run(_cli("train", str(configs / "titanic.yaml"), "--grid", str(configs / "titanic-grid.yaml")))

    _step("2/5 serve models:/titanic@champion (ONNX runtime, dynamic batching)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = (results / "server.log").open("wb")
    args = _cli("serve", MODEL_URI, "--port", str(port), "--log-db", log_db)
    server = subprocess.Popen(args, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, server, timeout_s=90.0)
        console.print(f"serving at {url} (pid {server.pid}); log: {results / 'server.log'}")

        _step("3/5 load test: closed-loop concurrency sweep")
        from tabserve.loadtest import print_table, run_sweep

        sweep = run_sweep(url, LEVELS, REQUESTS_PER_LEVEL, results)
        print_table(sweep)

        _step("4/5 a batch of shifted traffic (older, richer, first class, female)")
        shifted_since = datetime.now(timezone.utc)
        console.print(f"sent {_send_shifted_traffic(url)} shifted records")
    finally:
        stop(server)
        server_log.close()

    _step("5/5 drift report on the shifted window")
    since = shifted_since.strftime("%Y-%m-%dT%H:%M:%S")
    _run(
        _cli(
            "drift",
            MODEL_URI,
            "--log-db",
            log_db,
            "--since",
            since,
            "--out",
            str(results / "drift.html"),
            "--json",
            str(results / "drift.json"),
        )
    )

    console.rule("[bold green]done")
    console.print(
        f"finished in {time.monotonic() - started:.0f} s\n"
        f"  MLflow runs:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'}\n"
        f"  sweep table:   {results / 'results.csv'}  (+ results.json)\n"
        f"  latency plot:  {results / 'latency.png'}\n"
        f"  drift report:  {results / 'drift.html'}  (+ drift.json)\n"
        f"  predictions:   {log_db}\n"
        f"  server log:    {results / 'server.log'}"
    )


def main() -> None:
    home = Path(os.environ.get("TABSERVE_HOME", Path.cwd())).resolve()
    configs = Path(os.environ.get("TABSERVE_DEMO_CONFIGS", Path.cwd() / "configs")).resolve()
    if not (configs / "titanic.yaml").is_file():
        console.print(f"error: {configs / 'titanic.yaml'} not found: run `make demo` from the repo")
        sys.exit(2)
    try:
        run(home, configs)
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted; the server was stopped")
        sys.exit(130)


if __name__ == "__main__":
    main()
