"""`make stack`: the compose stack for real — build, bring up, train, serve, load-test, tear down.

    python scripts/stack.py [--replicas 2] [--keep]

Every step is timed and printed; the stack is always torn down (``down -v``) unless ``--keep``.
Steps: build the five images (scripts/images.py) → `up --wait mlflow` (PostgreSQL, S3 and its
bucket, MLflow) → `run trainer` (the Titanic grid, registered through the tracking server) →
`up --wait lb` (fetch the champion into the models volume, N replicas, HAProxy) → a checked
closed-loop sweep with `tabserve loadtest` through the balancer from the host → Locust master +
workers in the stack, headless → the prediction log counted in its own database → down.
Ports are free loopback ports chosen here, so the stack never collides with a server already
running on this machine. Exit 1 when a step fails (after tearing down).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import images

from tabserve.local_server import free_port

PROJECT = "tabserve-stack"
ROOT = images.ROOT


class StepFailed(RuntimeError):
    pass


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env, "COMPOSE_BAKE": "false"}
        self.base = [*images.compose_command(), "-p", PROJECT, "-f", str(images.COMPOSE_FILE)]
        self.timings: list[tuple[str, float]] = []

    def compose(self, *args: str, timeout: float = 900, capture: bool = False) -> str:
        done = subprocess.run(
            [*self.base, *args], env=self.env, timeout=timeout, text=True,
            capture_output=capture, stdout=None if capture else sys.stderr,
            stderr=None if capture else subprocess.STDOUT,
        )  # fmt: skip
        if done.returncode != 0:
            detail = (done.stdout or "") + (done.stderr or "") if capture else "(output above)"
            raise StepFailed(f"docker compose {' '.join(args)} exited {done.returncode}: "
                             f"{detail.strip()[-1500:]}")  # fmt: skip
        return done.stdout or ""

    def step(self, name: str, fn: object, *args: object, **kwargs: object) -> object:
        print(f"\n───── {name} ─────", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = fn(*args, **kwargs)  # type: ignore[operator]
        seconds = time.monotonic() - started
        self.timings.append((name, seconds))
        print(f"      {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        return result


def _wait_ready(url: str, timeout_s: float = 120.0) -> None:
    """`up --wait` can exit 0 when a one-shot dependency failed: check the balancer's answer."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StepFailed(f"{url}/ready did not answer 200 within {timeout_s:.0f} s")


def _loadtest(url: str, out: Path) -> list[dict[str, object]]:
    subprocess.run(
        [sys.executable, "-m", "tabserve", "loadtest", url, "--concurrency", "1,10,50",
         "--requests", "400", "--out", str(out)],
        check=True, timeout=600,
    )  # fmt: skip
    return list(json.loads((out / "results.json").read_text())["levels"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="tabserve replicas [2]")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)
    total = time.monotonic()
    try:
        started_pid = images.ensure_engine()
        env = images.build_env()
    except images.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ports = {"TABSERVE_PORT": free_port(), "MLFLOW_PORT": free_port(), "LOCUST_PORT": free_port()}
    env |= {k: str(v) for k, v in ports.items()}
    env["TABSERVE_REPLICAS"] = str(args.replicas)
    stack = Stack(env)
    url = f"http://127.0.0.1:{ports['TABSERVE_PORT']}"
    out = ROOT / "results" / "stack"
    ok = False
    try:
        stack.step("build the images", images.build, images.APP_SERVICES + images.STACK_SERVICES,
                   env)  # fmt: skip
        stack.step("up: PostgreSQL, S3, MLflow", stack.compose, "up", "-d", "--wait", "mlflow")
        stack.step("train + register (trainer)", stack.compose, "--profile", "train", "run",
                   "--rm", "trainer")  # fmt: skip
        stack.step(f"up: fetch, {args.replicas} replicas, balancer", stack.compose,
                   "up", "-d", "--wait", "lb")  # fmt: skip
        stack.step("balancer answers /ready", _wait_ready, url)
        levels = stack.step("tabserve loadtest through the balancer", _loadtest, url, out)
        locust_args = "--headless -u 20 -r 10 -t 15s --only-summary"
        stack.env["LOCUST_ARGS"] = locust_args
        locust = stack.step("Locust master + workers, 15 s", stack.compose, "--profile",
                            "loadtest", "up", "--abort-on-container-exit", "--exit-code-from",
                            "locust-master", "locust-master", "locust-worker",
                            capture=True, timeout=300)  # fmt: skip
        # `up` attaches to short-lived containers late; their logs are kept until `down`.
        locust = str(locust) + stack.compose("logs", "--no-color", "locust-master", capture=True)
        logged = stack.compose(
            "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "predictions", "-tAc",
            "SELECT count(*), count(DISTINCT model_version) FROM predictions", capture=True,
        ).strip()  # fmt: skip
        ok = True
    except (StepFailed, images.BuildError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        with_logs = ["logs", "--no-color", "--tail", "30"]
        with contextlib.suppress(StepFailed, subprocess.SubprocessError):
            print(stack.compose(*with_logs, capture=True, timeout=60), file=sys.stderr)
    finally:
        if not args.keep:
            try:
                stack.step("down -v", stack.compose, "--profile", "*", "down", "-v",
                           "--remove-orphans", timeout=300)  # fmt: skip
            except (StepFailed, subprocess.SubprocessError) as exc:
                print(f"error: tearing down: {exc}", file=sys.stderr)
                ok = False
        if started_pid:
            print(f"dockerd (PID {started_pid}) was started for this and keeps running",
                  file=sys.stderr)  # fmt: skip
    if not ok:
        return 1
    print("\n───── stack summary ─────")
    for name, seconds in stack.timings:
        print(f"  {name:45} {seconds:7.1f} s")
    print(f"  {'total':45} {time.monotonic() - total:7.1f} s")
    print("  tabserve loadtest via the balancer (closed loop, checked answers):")
    for level in levels:  # type: ignore[union-attr]
        print(f"    c={level['concurrency']:>3}  {level['throughput_rps']:8,.0f} req/s  "
              f"p50 {level['q50_ms']:6.2f} ms  p99 {level['q99_ms']:6.2f} ms  "
              f"errors {level['errors']}")  # fmt: skip
    (out / "locust.log").write_text(str(locust))
    print(f"  Locust (in the stack; {out / 'locust.log'}):")
    for line in str(locust).splitlines():  # the summary table, without compose's prefix
        text = line.split("|", 1)[-1].strip() if "locust-master" in line else ""
        if text.startswith(("Type ", "POST ", "Aggregated", "Response time percentiles")):
            print("    " + text)
    print(f"  prediction log (PostgreSQL, database predictions): rows, versions = {logged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
