"""The load tester's own ceiling, measured against wrk on the same endpoint in the same run.

A Python generator on a 2-core machine shares the CPU with the server it measures; if it is the
bottleneck, every figure it reports is a figure about itself. wrk (C, epoll) is the yardstick:
both tools hit the same endpoint with the same body and concurrency, alternating A-B-A-B so a
noisy neighbour hurts both alike.

    python -m tabserve.loadtest.ceiling http://127.0.0.1:8000 --concurrency 50 --duration 5
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tabserve.errors import UserError
from tabserve.loadtest.client import new_event_loop
from tabserve.loadtest.closed_loop import run_level
from tabserve.loadtest.engine import Plan
from tabserve.loadtest.sweep import prepare

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


@dataclass
class CeilingRow:
    tool: str
    round: int
    throughput_rps: float
    errors: int
    client_us_per_request: float | None = None


def _lua_string(data: bytes) -> str:
    """A Lua long-bracket string that cannot be closed by the body's own bytes."""
    text = data.decode()
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(path: str, body: bytes) -> str:
    return (
        'wrk.method = "POST"\n'
        f"wrk.path = {_lua_string(path.encode())}\n"
        f"wrk.body = {_lua_string(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


def run_wrk(url: str, path: str, body: bytes, concurrency: int, duration: float) -> CeilingRow:
    """One wrk run (one thread: it needs far less than a core at these rates)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise UserError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(wrk_script(path, body))
        cmd = [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "-s", str(script)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=duration + 30, check=True
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps = _RPS.search(out)
    if rps is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    non_2xx = _NON_2XX.search(out)
    socket_errors = _ERRORS.search(out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    throughput = float(rps.group(1))
    us_per_request = cpu / max(throughput * duration, 1) * 1e6
    return CeilingRow("wrk", 0, throughput, errors, us_per_request)


def run_ours(plan: Plan, concurrency: int, duration: float) -> CeilingRow:
    loop = new_event_loop()
    try:
        result = loop.run_until_complete(
            run_level(plan, concurrency, 10**9, warmup=concurrency * 2, duration=duration)
        )
    finally:
        loop.close()
    return CeilingRow(
        "tabserve loadtest", 0, result.throughput_rps, result.errors, result.client_us_per_request
    )


def compare(
    url: str,
    concurrency: int = 50,
    duration: float = 5.0,
    rounds: int = 2,
    spec: Path | None = None,
) -> list[CeilingRow]:
    """Alternate wrk and tabserve's generator ``rounds`` times on the server's /predict.

    ``spec`` (feature_spec.json or a model dir) for servers without ``GET /spec``, e.g. the floor.
    """
    setup = prepare(url, spec=spec)
    body = setup.plan.requests[0].split(b"\r\n\r\n", 1)[1]
    rows = []
    for i in range(1, rounds + 1):
        for row in (
            run_wrk(
                setup.plan.target.url,
                f"{setup.plan.target.base_path}/predict",
                body,
                concurrency,
                duration,
            ),
            run_ours(setup.plan, concurrency, duration),
        ):
            row.round = i
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spec", type=Path, help="feature_spec.json or model dir (floor server)")
    args = parser.parse_args()
    rows = compare(args.url, args.concurrency, args.duration, args.rounds, args.spec)
    print(f"{'tool':<20}{'round':>6}{'req/s':>10}{'errors':>8}{'client µs/req':>15}")
    for r in rows:
        us = f"{r.client_us_per_request:.1f}" if r.client_us_per_request else "—"
        print(f"{r.tool:<20}{r.round:>6}{r.throughput_rps:>10,.0f}{r.errors:>8}{us:>15}")


if __name__ == "__main__":
    main()
