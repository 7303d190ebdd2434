"""What `tabserve loadtest` and `tabserve locustfile` do, so the CLI functions stay one call.

Parsing of the human forms ("1,2,5,10", "30s", "2m") lives here with its error messages.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from tabserve.errors import UserError
from tabserve.loadtest.payloads import Protocol
from tabserve.loadtest.report import CSV_NAME, JSON_NAME, print_table
from tabserve.loadtest.stats import LevelResult

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_levels(text: str) -> list[int]:
    """ "1,2,5,10" → [1, 2, 5, 10]."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--concurrency {text!r}: expected integers like 1,2,5,10") from None
    if not levels or any(level < 1 for level in levels):
        raise UserError(f"--concurrency {text!r}: expected positive integers like 1,2,5,10")
    return levels


def parse_duration(text: str) -> float:
    """ "30s", "2m", "500ms" or a plain number of seconds → seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--duration {text!r}: expected a positive duration like 30s, 2m, 500ms")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def loadtest(
    url: str,
    *,
    concurrency: str,
    requests: int,
    warmup: int | None,
    protocol: str,
    batch_size: int,
    data: Path | None,
    out: Path | None,
    rate: float | None,
    duration: str | None,
    connections: int,
    model: str | None,
    spec: Path | None,
    timeout: float,
    console: Console | None = None,
) -> list[LevelResult]:
    """Closed-loop sweep, or an open-loop run when ``rate`` is given; prints the table."""
    from tabserve.loadtest.sweep import run_open, run_sweep

    if protocol not in ("v1", "v2"):
        raise UserError(f"--protocol must be v1 or v2, not {protocol!r}")
    proto: Protocol = "v1" if protocol == "v1" else "v2"
    console = console or Console()
    common = {
        "protocol": proto,
        "batch_size": batch_size,
        "data": data,
        "model": model,
        "timeout": timeout,
        "spec": spec,
    }
    if rate is not None:
        seconds = parse_duration(duration or "10s")
        results = [
            run_open(url, rate, seconds, out, connections=connections, **common)  # type: ignore[arg-type]
        ]
    else:
        if duration is not None:
            raise UserError("--duration goes with --rate (open loop); use --requests for a sweep")
        results = run_sweep(
            url,
            parse_levels(concurrency),
            requests,
            out,
            warmup=warmup,
            **common,  # type: ignore[arg-type]
        )
    print_table(results, console)
    if out is not None:
        written = [out / CSV_NAME, out / JSON_NAME]
        if rate is None:
            written.append(out / "latency.png")
        console.print("wrote " + ", ".join(str(p) for p in written), soft_wrap=True)
    return results


def locustfile(url: str, *, protocol: str, batch_size: int, records: int, spec: Path | None) -> str:
    """The locustfile source for the server at ``url``, payloads from its spec."""
    from tabserve.loadtest import discovery
    from tabserve.loadtest.client import Target
    from tabserve.loadtest.locustfile import render_locustfile

    if protocol not in ("v1", "v2"):
        raise UserError(f"--protocol must be v1 or v2, not {protocol!r}")
    base = Target.parse(url).url
    feature_spec = discovery.fetch_spec(base) if spec is None else discovery.load_spec_file(spec)
    model = discovery.probe_model(base, feature_spec).get("model")
    return render_locustfile(
        url,
        feature_spec,
        model=model,
        protocol="v1" if protocol == "v1" else "v2",
        batch_size=batch_size,
        records=records,
    )
