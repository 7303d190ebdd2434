"""What tracing and the access log cost: single-record /predict at c=50, off and on, in one run.

    python benchmarks/tracing.py --out benchmarks/results/tracing/     # 10 rounds (~6 min)
    python benchmarks/tracing.py --quick                               # 3 short rounds (~2 min)
    python benchmarks/tracing.py --baseline-src /tmp/before/src        # + the code before tracing

Trains a Titanic model, starts an OTLP/HTTP receiver on 127.0.0.1 (tests/helpers/otlp_receiver.py
as a script: it parses each export and counts its spans, nothing more) and one server per
variant (one worker, ONNX, batching, prediction log on SQLite — the defaults), all at once; then
each round drives every variant in turn (the order rotates) with a short closed loop of
tabserve's load generator (c=50, every answer checked). Short alternating bursts pair the
variants under the same background load: on a shared machine that load moves more between
minutes than a variant's cost does.

    baseline     (with --baseline-src) tabserve from another checkout's src/, its defaults: the
                 code before tracing existed — ``off`` must match it
    off          this checkout, defaults (tracing off, access log off): the reference
    access-log   --access-log (lines to a file, as a container runtime would take them)
    trace-0.1    --tracing, OTEL_TRACES_SAMPLER=parentbased_traceidratio, _ARG=0.1
    trace-1.0    --tracing, the same with 1.0 (every request traced)

and, when named in --variants, two that split the cost of tracing:

    trace-0.0            --tracing with a ratio of 0: what a sampled-out request still pays
    trace-1.0-noexport   --tracing, ratio 1.0, OTEL_TRACES_EXPORTER=none: spans made, not sent

The traced variants export every 200 ms (OTEL_BSP_SCHEDULE_DELAY) so a burst's spans are
counted in that burst; queue and batch sizes are the SDK's defaults. The receiver runs on the
same two cores as the servers and the load generator, so its share of the CPU is in the
traced figures (a collector on another host would not be).

Reports per variant good answers per second and p50/p99, each round's figure as a ratio to
``off`` of the same round (median, and the middle half's range), and the spans the receiver got
per request (a traced request makes 6 — server span, decode, validate, queue_wait, log_enqueue,
encode — plus its share of the model call's; fewer means the exporter dropped some). Prints the
table and writes tracing.json (every burst, the summary, the machine and versions).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from harness.report import machine_info
from tabserve.loadtest.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
RECEIVER = ROOT / "tests" / "helpers" / "otlp_receiver.py"
REFERENCE = "off"
CONCURRENCY = 50
WARMUP = 200  # unrecorded requests before each burst (their spans are counted too)

_TRACED_ENV = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_BSP_SCHEDULE_DELAY": "200"}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"flags": [], "env": {}},
    "off": {"flags": [], "env": {}},
    "access-log": {"flags": ["--access-log"], "env": {}},
    "trace-0.1": {"flags": ["--tracing"], "env": {**_TRACED_ENV, "OTEL_TRACES_SAMPLER_ARG": "0.1"}},
    "trace-1.0": {"flags": ["--tracing"], "env": {**_TRACED_ENV, "OTEL_TRACES_SAMPLER_ARG": "1.0"}},
    "trace-0.0": {"flags": ["--tracing"], "env": {**_TRACED_ENV, "OTEL_TRACES_SAMPLER_ARG": "0"}},
    "trace-1.0-noexport": {
        "flags": ["--tracing"],
        "env": {**_TRACED_ENV, "OTEL_TRACES_SAMPLER_ARG": "1.0", "OTEL_TRACES_EXPORTER": "none"},
    },
}
DEFAULT_VARIANTS = ("off", "access-log", "trace-0.1", "trace-1.0")
OTEL_PACKAGES = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http")
_RUNNING: list[subprocess.Popen[bytes]] = []  # stopped by PID on exit or a signal


def otel_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in OTEL_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def spans_received(receiver: str) -> int:
    return int(httpx.get(f"{receiver}/count", timeout=5).json()["spans"])


def start_variant(name: str, model: Path, work: Path, receiver: str, src: Path | None) -> str:
    """``tabserve serve`` for one variant on a free port; its URL once /ready answers."""
    from tabserve.local_server import free_port, wait_ready

    variant = VARIANTS[name]
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    env = {**os.environ, "TABSERVE_HOME": str(home), "TABSERVE_LOG_DB": f"sqlite:///{home}/log.db",
           "OTEL_EXPORTER_OTLP_ENDPOINT": receiver, **variant["env"]}  # fmt: skip
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = [sys.executable, "-m", "tabserve", "serve", str(model), "--port", str(port)]
    server = subprocess.Popen(
        [*argv, *variant["flags"]],
        env=env, stdout=(home / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    _RUNNING.append(server)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, server, 120)
    return url


def burst(name: str, url: str, receiver: str, args: argparse.Namespace) -> dict[str, Any]:
    """One timed closed loop at c=50 against a running server, and the spans it exported."""
    before = spans_received(receiver)
    level = run_sweep(url, [CONCURRENCY], args.requests, None, warmup=WARMUP, progress=False)[0]
    time.sleep(args.pause)  # the exporter sends what it holds before the next burst
    spans = spans_received(receiver) - before
    return {
        "variant": name, "requests": level.requests, "ok": level.ok,
        "errors": level.requests - level.ok, "ok_per_s": level.throughput_rps,
        "p50_ms": level.q50_ms, "p99_ms": level.q99_ms,
        "spans_per_request": spans / (level.requests + WARMUP) if level.requests else 0.0,
    }  # fmt: skip


def _ratios(results: list[dict[str, Any]], name: str, key: str) -> list[float]:
    """Each round's ``key`` of ``name`` over that of the reference in the same round."""
    ref = {r["round"]: r[key] for r in results if r["variant"] == REFERENCE}
    return [r[key] / ref[r["round"]] for r in results
            if r["variant"] == name and ref.get(r["round"])]  # fmt: skip


def _median_and_middle(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) < 2:
        return {"median": values[0], "q1": values[0], "q3": values[0]}
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "q1": q1, "q3": q3}


def summarize(results: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant: medians over its rounds and its ratios to ``off`` (median, middle half)."""
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [r for r in results if r["variant"] == name]
        summary[name] = {
            "rounds": len(rows),
            "ok_per_s": statistics.median(r["ok_per_s"] for r in rows),
            "p50_ms": statistics.median(r["p50_ms"] for r in rows),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows),
            "errors": sum(r["errors"] for r in rows),
            "spans_per_request": statistics.median(r["spans_per_request"] for r in rows),
            "ok_per_s_ratio": _median_and_middle(_ratios(results, name, "ok_per_s")),
            "p99_ratio": _median_and_middle(_ratios(results, name, "p99_ms")),
        }
    return summary


def _ratio_text(ratio: dict[str, float]) -> str:
    if not ratio:
        return "n/a"
    return f"{ratio['median']:.3f} ({ratio['q1']:.2f} to {ratio['q3']:.2f})"


def table(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> Table:
    out = Table(
        title=f"single-record /predict, c={CONCURRENCY}, one worker, {args.rounds} rounds of "
        f"{args.requests:,}; ratio to `{REFERENCE}` in the same round: median (middle half)"
    )
    columns = ("variant", "ok/s", "ok/s ratio", "p50 ms", "p99 ms", "p99 ratio", "spans/req",
               "errors")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "variant" else "right")
    for name, s in summary.items():
        out.add_row(
            name, f"{s['ok_per_s']:,.0f}", _ratio_text(s["ok_per_s_ratio"]), f"{s['p50_ms']:.1f}",
            f"{s['p99_ms']:.1f}", _ratio_text(s["p99_ratio"]), f"{s['spans_per_request']:.2f}",
            f"{s['errors']:,}",
        )  # fmt: skip
    return out


def _stop_all(*_: Any) -> None:
    from tabserve.local_server import stop

    for process in reversed(_RUNNING):
        stop(process, 10.0)
    _RUNNING.clear()


def _stop_on_signals(console: Console) -> None:
    """Ctrl-C or SIGTERM: stop every server and the receiver by PID, then exit (done in the
    handler: a KeyboardInterrupt inside the load generator's loop may not unwind to finally)."""

    def handler(signum: int, frame: Any) -> None:
        _stop_all()
        console.print(f"interrupted (signal {signum}); servers stopped")
        os._exit(130)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-src", type=Path, help="src/ of another checkout, run beside")
    p.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {', '.join(VARIANTS)}"
    )
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--requests", type=int, default=8_000, help="timed requests per burst")
    p.add_argument("--pause", type=float, default=1.0, help="seconds after each burst")
    p.add_argument("--quick", action="store_true", help="3 rounds of 2,000 requests")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/tracing"))
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 3, 2_000
    args.names = [n for n in args.variants.split(",") if n]
    if args.baseline_src is not None:
        args.baseline_src = args.baseline_src.resolve()
        if not (args.baseline_src / "tabserve").is_dir():
            p.error(f"--baseline-src {args.baseline_src}: no tabserve package there")
        if "baseline" not in args.names:
            args.names.insert(0, "baseline")
    elif "baseline" in args.names:
        p.error("the baseline variant needs --baseline-src")
    if unknown := [n for n in args.names if n not in VARIANTS]:
        p.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if REFERENCE not in args.names:
        p.error(f"--variants must include {REFERENCE!r}: the ratios are to it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 132)  # a log keeps the table whole
    _stop_on_signals(console)
    from tabserve.datasets import DATASETS, load_builtin
    from tabserve.local_server import free_port
    from tabserve.training import fit_model_dir

    work = Path(tempfile.mkdtemp(prefix="tabserve-tracing-"))
    model = fit_model_dir(load_builtin("titanic"), DATASETS["titanic"].target, work / "model",
                          "logistic", name="titanic")  # fmt: skip
    port = free_port()
    receiver_process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", str(port)], stdout=subprocess.PIPE
    )
    _RUNNING.append(receiver_process)
    receiver = f"http://127.0.0.1:{port}"
    machine = machine_info(otel_versions())  # the load average before the servers start
    results: list[dict[str, Any]] = []
    try:
        assert receiver_process.stdout is not None
        receiver_process.stdout.readline()  # "listening on ..."
        urls = {}
        for name in args.names:  # all up at once: bursts alternate within seconds
            src = args.baseline_src if name == "baseline" else None
            urls[name] = start_variant(name, model.path, work, receiver, src)
        for name in args.names:
            run_sweep(urls[name], [CONCURRENCY], 2_000, None, progress=False)  # warm
        for round_ in range(args.rounds):
            shift = round_ % len(args.names)
            for name in args.names[shift:] + args.names[:shift]:
                result = burst(name, urls[name], receiver, args) | {"round": round_ + 1}
                console.print(result)
                results.append(result)
    finally:
        _stop_all()
    summary = summarize(results, args.names)
    console.print(table(summary, args))
    args.out.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report = {"config": config, "machine": machine, "summary": summary, "bursts": results}
    (args.out / "tracing.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {args.out / 'tracing.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
