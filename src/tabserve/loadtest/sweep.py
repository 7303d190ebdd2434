"""The load test as one call: fetch the spec, build payloads, run the levels, write the results.

``run_sweep`` (closed loop over concurrency levels) and ``run_open`` (fixed rate) are what the CLI
and ``make demo`` call; both return LevelResult rows and, given ``out_dir``, write
results.csv, results.json and latency.png there.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tabserve.errors import ServiceUnavailable, UserError
from tabserve.loadtest import discovery
from tabserve.loadtest.answers import make_checker
from tabserve.loadtest.client import Target, new_event_loop
from tabserve.loadtest.closed_loop import run_level
from tabserve.loadtest.engine import Plan
from tabserve.loadtest.open_loop import run_open_loop
from tabserve.loadtest.payloads import Protocol, make_payloads
from tabserve.loadtest.stats import LevelResult
from tabserve.spec import FeatureSpec

DEFAULT_LEVELS = (1, 2, 5, 10, 20, 50)
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """A run's plan plus what the results file says about the server and the payloads."""

    plan: Plan
    info: dict[str, Any]


def prepare(
    url: str,
    *,
    protocol: Protocol = "v1",
    batch_size: int = 1,
    data: Path | None = None,
    model: str | None = None,
    timeout: float = 10.0,
    seed: int = 0,
    spec: FeatureSpec | Path | None = None,
) -> Setup:
    """Ask the server for its spec (and model name), then encode every request body.

    ``spec`` (a FeatureSpec or a path to one) replaces ``GET /spec`` for servers without it.
    """
    if protocol not in ("v1", "v2"):
        raise UserError(f"--protocol must be v1 or v2, not {protocol!r}")
    target = Target.parse(url)
    if spec is None:
        spec = discovery.fetch_spec(target.url)
    elif not isinstance(spec, FeatureSpec):
        spec = discovery.load_spec_file(Path(spec))
    served = discovery.probe_model(target.url, spec)
    model = model or served.get("model")
    payloads = make_payloads(
        spec, protocol=protocol, batch_size=batch_size, data=data, model=model, seed=seed
    )
    plan = Plan.build(target, payloads, make_checker(spec, protocol, batch_size), timeout)
    info = {
        "url": target.url,
        "endpoint": payloads.path,
        "protocol": protocol,
        "batch_size": batch_size,
        "payload_source": str(data) if data else "feature_spec",
        "distinct_bodies": len(payloads.bodies),
        "model": model,
        "model_version": served.get("version"),
        "task": spec.target.task,
    }
    return Setup(plan, info)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh (uv)loop; a server that goes away mid-run is the user's to know about."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    except ConnectionError as exc:
        raise ServiceUnavailable(str(exc)) from exc
    finally:
        loop.close()


def _progress(console: Console | None, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not enabled,
    )


def run_sweep(
    url: str,
    levels: Sequence[int] = DEFAULT_LEVELS,
    requests: int = 500,
    out_dir: Path | str | None = None,
    *,
    warmup: int | None = None,
    protocol: Protocol = "v1",
    batch_size: int = 1,
    data: Path | None = None,
    model: str | None = None,
    timeout: float = 10.0,
    progress: bool = True,
    console: Console | None = None,
    plot: bool = True,
    spec: FeatureSpec | Path | None = None,
) -> list[LevelResult]:
    """Closed-loop sweep: ``requests`` checked requests at each concurrency in ``levels``.

    ``warmup`` unrecorded requests precede each level (default: max(20, 2 * concurrency)).
    """
    if not levels or any(c < 1 for c in levels):
        raise UserError("--concurrency needs positive integers, e.g. 1,2,5,10")
    if requests < 1:
        raise UserError("--requests must be at least 1")
    setup = prepare(
        url,
        protocol=protocol,
        batch_size=batch_size,
        data=data,
        model=model,
        timeout=timeout,
        spec=spec,
    )
    results: list[LevelResult] = []
    with _progress(console, progress) as bar:
        for concurrency in levels:
            task = bar.add_task(f"c={concurrency}", total=requests)

            def update(done: int, task: Any = task) -> None:
                bar.update(task, completed=done)

            level_warmup = max(20, 2 * concurrency) if warmup is None else warmup
            level = run_level(
                setup.plan, concurrency, requests, warmup=level_warmup, progress=update
            )
            results.append(_run(level))
    info = {**setup.info, "mode": "closed", "requests_per_level": requests}
    _write(results, info, out_dir, plot)
    return results


def run_open(
    url: str,
    rate: float,
    duration: float,
    out_dir: Path | str | None = None,
    *,
    connections: int = 64,
    protocol: Protocol = "v1",
    batch_size: int = 1,
    data: Path | None = None,
    model: str | None = None,
    timeout: float = 10.0,
    progress: bool = True,
    console: Console | None = None,
    spec: FeatureSpec | Path | None = None,
) -> LevelResult:
    """Open loop: ``rate`` requests per second for ``duration`` seconds, latency from schedule."""
    if rate <= 0 or duration <= 0:
        raise UserError("--rate and --duration must be positive")
    if connections < 1:
        raise UserError("--connections must be at least 1")
    setup = prepare(
        url,
        protocol=protocol,
        batch_size=batch_size,
        data=data,
        model=model,
        timeout=timeout,
        spec=spec,
    )
    total = max(1, round(rate * duration))
    with _progress(console, progress) as bar:
        task = bar.add_task(f"{rate:g}/s", total=total)

        def update(done: int) -> None:
            bar.update(task, completed=done)

        result = _run(
            run_open_loop(setup.plan, rate, duration, connections=connections, progress=update)
        )
    info = {**setup.info, "mode": "open", "rate": rate, "duration_s": duration}
    _write([result], info, out_dir, plot=False)
    return result


def _write(
    results: list[LevelResult], info: dict[str, Any], out_dir: Path | str | None, plot: bool
) -> None:
    if out_dir is None:
        return
    from tabserve.loadtest import report

    out = Path(out_dir)
    report.write_results(results, info, out)
    if plot and results:
        from tabserve.loadtest.plot import plot_sweep

        plot_sweep(results, out / "latency.png", title=f"{info.get('model')} · {info['endpoint']}")
