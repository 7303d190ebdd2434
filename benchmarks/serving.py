"""Side-by-side serving benchmark: tabserve against the floor and its peers, in one run.

Trains one Titanic model into a temporary TABSERVE_HOME, registers it as
``models:/titanic@champion``, then starts each server in turn on 127.0.0.1 (one worker each,
tabserve also with two), measures cold start, single-record closed loops over a concurrency
sweep, 100-row batches, perf_analyzer for the v2 servers, RSS after the run, and checks every
server's answers against the sklearn pipeline. Prints a table with ratios to tabserve and writes
results.json, results.md and serving.png.

    python benchmarks/serving.py --out benchmarks/results/            # the full run (make bench)
    python benchmarks/serving.py --quick --servers floor,tabserve     # a smoke run, ~30 s
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import goals, report
from harness.servers import SERVERS, Running, StartError, start
from harness.workloads import check_correctness, closed_loop, perf_analyzer

FULL_LEVELS = "1,2,5,10,20,50"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    defaults = ",".join(n for n in SERVERS if n != "tabserve-baseline")  # it needs a checkout
    p.add_argument("--servers", default=defaults, help=f"comma-separated subset [{defaults}]")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (figures meaningless)")
    p.add_argument("--levels", default=None, help=f"single-record concurrencies [{FULL_LEVELS}]")
    p.add_argument("--seconds", type=float, default=None, help="aim of each level, s [5]")
    p.add_argument("--requests", type=int, default=None, help="most timed requests a level [50000]")
    p.add_argument("--min-requests", type=int, default=500, help="fewest timed requests a level")
    p.add_argument("--max-seconds", type=float, default=None, help="time cap per level [20]")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--batch-concurrency", type=int, default=4)
    p.add_argument("--pa-concurrency", type=int, default=8)
    p.add_argument("--pa-window-ms", type=int, default=None, help="perf_analyzer window [3000]")
    p.add_argument("--no-perf-analyzer", action="store_true")
    p.add_argument("--pool", type=int, default=512, help="distinct records in the payloads")
    p.add_argument("--family", default="logistic", help="model family trained for the run")
    p.add_argument("--ready-timeout", type=float, default=180.0)
    p.add_argument("--keep-work", action="store_true", help="keep the temporary directory")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure the servers this many times, interleaved (A B A B)")  # fmt: skip
    p.add_argument("--cold-starts", type=int, default=3,
                   help="repeats of the first-resolve and cached start (0: skip)")  # fmt: skip
    p.add_argument("--baseline-src", type=Path, default=None,
                   help="src/ of another checkout, served as tabserve-baseline")  # fmt: skip
    args = p.parse_args(argv)
    quick = args.quick
    args.levels = [int(c) for c in (args.levels or ("1,20" if quick else FULL_LEVELS)).split(",")]
    args.seconds = args.seconds or (0.5 if quick else 5.0)
    args.requests = args.requests or (200 if quick else 50_000)
    args.min_requests = min(args.min_requests, args.requests) if not quick else 20
    args.max_seconds = args.max_seconds or (5.0 if quick else 20.0)
    args.pa_window_ms = args.pa_window_ms or (500 if quick else 3000)
    args.correct_singles = 20 if quick else 200
    args.correct_batches = 1 if quick else 3
    args.pool = min(args.pool, 64) if quick else args.pool
    # A name may repeat (a,b,a,b): rounds interleaved in one run, reported as name, name#2, ...
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        p.error(f"--servers: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(SERVERS)}")
    if any(c < 1 for c in args.levels):
        p.error("--levels: positive integers, e.g. 1,10,50")
    if "tabserve-baseline" in names:
        if args.baseline_src is None or not (args.baseline_src / "tabserve").is_dir():
            p.error("--servers tabserve-baseline needs --baseline-src DIR (a checkout's src/)")
        from harness.servers import BASELINE_ENV

        os.environ[BASELINE_ENV] = str(args.baseline_src.resolve())
    args.server_names = names * max(1, args.rounds)
    return args


def measure(running: Running, args: argparse.Namespace, bench: Any, console: Console) -> dict:
    """Every workload against one running server; the server's section of results.json."""
    d = running.definition
    codec = d.codec(bench)
    out: dict[str, Any] = {"label": d.label, "kind": d.kind, "workers": d.workers}
    out["cold_start_s"] = running.cold_start_s
    # Other users of the machine show up here: a busy neighbour slows every server alike.
    out["load_average_at_start"] = os.getloadavg()
    batch = args.batch_size
    check = [check_correctness(running.url, codec, bench, args.correct_singles, 0, batch)]
    out["single"] = {}
    for c in args.levels:
        warmup = max(50, 2 * c) if not args.quick else 2 * c
        level = _level(running, codec, bench, args, concurrency=c, warmup=warmup)
        out["single"][str(c)] = level
        console.print(f"  c={c:<3} {_brief(level)}")
    bc = args.batch_concurrency
    level = _level(running, codec, bench, args, concurrency=bc, warmup=4 * bc, batch_size=batch)
    out["batch"] = level
    console.print(f"  batch {batch} c={args.batch_concurrency} {_brief(level)}")
    if d.v2_model and not args.no_perf_analyzer:
        pa = perf_analyzer(running.port, d.v2_model, bench, args.pa_concurrency, args.pa_window_ms)
        out["perf_analyzer"] = pa
        console.print(f"  perf_analyzer http/json c={args.pa_concurrency} {pa}")
        if d.name == "tabserve-grpc":  # the same v2 request over REST (binary) and gRPC
            for key, kw in (("perf_analyzer_binary", {"tensor_format": "binary"}),
                            ("perf_analyzer_grpc", {"protocol": "grpc"})):  # fmt: skip
                result = perf_analyzer(running.port + (1000 if "grpc" in key else 0),
                                       d.v2_model, bench, args.pa_concurrency,
                                       args.pa_window_ms, **kw)  # fmt: skip
                out[key] = result
                console.print(f"  {key} c={args.pa_concurrency} {result}")
    # After the load too: a server that degrades under load must not pass on its first answers.
    check.append(
        check_correctness(
            running.url, codec, bench, args.correct_singles, args.correct_batches, batch
        )
    )
    if d.kind == "tabserve":
        from harness.protocols import tabserve_v2_codec

        v2 = tabserve_v2_codec(bench.spec)
        check.append(check_correctness(running.url, v2, bench, 0, args.correct_batches, batch))
    out["correctness"] = [vars(c) for c in check if c.checked]
    out["memory"] = running.memory()
    return out


def _level(running: Running, codec: Any, bench: Any, args: argparse.Namespace, **kw: Any) -> dict:
    """One level sized to last about --seconds at this server's own rate.

    The warm-up doubles as a probe of the rate: fast servers get thousands of requests (a
    level of 2000 at 3000/s would last under a second, all noise), slow peers get
    --min-requests; --max-seconds caps the level either way.
    """
    warmup = kw.pop("warmup")
    probe = closed_loop(running.url, codec, bench, requests=warmup, warmup=0, **kw)
    if "failed" in probe:
        return probe
    rate = probe.get("throughput_rps") or 0.0
    wanted = int(rate * args.seconds) if rate > 0 else args.min_requests
    requests = max(args.min_requests, min(args.requests, wanted))
    return closed_loop(
        running.url, codec, bench, requests=requests, warmup=0, max_seconds=args.max_seconds, **kw
    )


def _brief(level: dict) -> str:
    if "failed" in level:
        return f"[red]failed: {level['failed']}[/red]"
    return (
        f"{level['throughput_rps']:>9,.0f} req/s {level['rows_per_s']:>10,.0f} rows/s "
        f"p50 {level['q50_ms']:6.2f} ms p99 {level['q99_ms']:7.2f} ms "
        f"n={level['requests']} errors={level['errors']} {level['errors_by_kind'] or ''}"
    )


def peer_versions(names: list[str]) -> dict[str, str]:
    if "mlserver" not in names:
        return {}
    from harness.venvs import mlserver_bin

    code = "import importlib.metadata as m; print(m.version('mlserver'))"
    done = subprocess.run(
        [str(mlserver_bin() / "python"), "-c", code], capture_output=True, text=True
    )
    return {"mlserver": done.stdout.strip()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Wide enough for the tables when the output goes to a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 200)
    work = Path(tempfile.mkdtemp(prefix="tabserve-bench-"))
    _stop_on_signals(work, console)
    try:
        return run(args, work, console)
    finally:
        if args.keep_work:
            console.print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _stop_on_signals(work: Path, console: Console) -> None:
    """Ctrl-C or SIGTERM: stop the server in flight by PID and leave nothing behind.

    Done in the handler itself: a KeyboardInterrupt raised inside the load generator's event
    loop would not reliably unwind to the ``finally`` that stops the server.
    """

    def handler(signum: int, frame: Any) -> None:
        from harness.servers import RUNNING

        for running in list(RUNNING):
            running.stop(timeout=5.0)
        shutil.rmtree(work, ignore_errors=True)
        console.print(f"interrupted (signal {signum}); servers stopped")
        os._exit(130)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace, work: Path, console: Console) -> int:
    from harness.model import prepare_workbench
    from harness.venvs import VenvError, ensure_venv

    venvs = {SERVERS[n].needs_venv for n in set(args.server_names)} - {None}
    for name in sorted(v for v in venvs if v):
        console.print(f"peer venv benchmarks/.venv-{name} (built once, reused) …")
        try:
            ensure_venv(name, Path(__file__).parent / "peers" / f"requirements-{name}.txt")
        except VenvError as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 2
    console.print("training and registering the Titanic model …")
    began = time.perf_counter()
    bench = prepare_workbench(work / "bench", family=args.family, pool=args.pool)
    console.print(f"  done in {time.perf_counter() - began:.1f} s, {len(bench.records)} records")
    results: dict[str, Any] = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("out", "server_names", "servers")
        },
        "model": {"name": "titanic", "family": bench.family, "uri": "models:/titanic@champion"},
        "machine": report.machine_info(peer_versions(args.server_names)),
        "servers": {},
    }
    rounds: dict[str, int] = {}
    for server in args.server_names:
        definition = SERVERS[server]
        rounds[server] = rounds.get(server, 0) + 1
        name = server if rounds[server] == 1 else f"{server}#{rounds[server]}"
        console.print(f"[bold]{name}[/bold]: {definition.label}")
        try:
            running = start(definition, bench, work / name.replace("#", "-"), args.ready_timeout)
        except StartError as exc:
            console.print(f"[red]  did not start:[/red] {exc}")
            results["servers"][name] = {"label": definition.label, "failed": str(exc)[:2000]}
            continue
        console.print(f"  ready in {running.cold_start_s:.2f} s (pid {running.pid})")
        try:
            results["servers"][name] = measure(running, args, bench, console)
        finally:
            running.stop()
    if args.cold_starts and "tabserve" in args.server_names:
        results["cold_start"] = cold_starts(bench, work / "cold", args.cold_starts, console)
    results["goals"] = goals.evaluate(results)
    report.print_table(results, console)
    _print_goals(results["goals"], console)
    report.write(results, args.out)
    console.print(f"wrote {args.out}/results.json, results.md, serving.png")
    return 0


def cold_starts(bench: Any, work: Path, repeats: int, console: Console) -> dict[str, Any]:
    """Process start → first 200 on /ready for ``models:/titanic@champion``: with an empty
    model cache (download + adoption: FeatureSpec, ONNX conversion, parity), then cached."""
    import statistics

    from harness.servers import SERVERS, start

    first, cached = [], []
    for i in range(repeats):
        cache = work / f"cache-{i}"
        env_backup = os.environ.get("TABSERVE_CACHE_DIR")
        os.environ["TABSERVE_CACHE_DIR"] = str(cache)
        try:
            for bucket in (first, cached):
                running = start(SERVERS["tabserve"], bench, work / f"run-{i}-{len(bucket)}", 180)
                bucket.append(running.cold_start_s)
                running.stop()
        finally:
            if env_backup is None:
                os.environ.pop("TABSERVE_CACHE_DIR", None)
            else:
                os.environ["TABSERVE_CACHE_DIR"] = env_backup
    out = {"first_s": statistics.median(first), "cached_s": statistics.median(cached),
           "first_all_s": first, "cached_all_s": cached}  # fmt: skip
    console.print(f"cold start: first resolve {out['first_s']:.2f} s {first}, "
                  f"cached {out['cached_s']:.2f} s {cached}")  # fmt: skip
    return out


def _print_goals(rows: list[dict[str, Any]], console: Console) -> None:
    for row in rows:
        mark = {True: "[green]pass[/green]", False: "[red]miss[/red]", None: "[dim]n/m [/dim]"}
        value = row["value"]
        shown = f"{value:,.2f}" if isinstance(value, int | float) else str(value)
        console.print(f"  {mark[row['pass']]} {row['goal']}: {shown} (goal {row['target']})")


if __name__ == "__main__":
    sys.exit(main())
