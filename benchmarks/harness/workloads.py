"""The workloads run against every server, and the correctness pass that guards them.

Load comes from tabserve's own load tester (``tabserve.loadtest``: pre-encoded bodies on
keep-alive connections, a closed loop per level, every answer checked). Its checker here is the
server's codec: an answer that does not parse into one valid class label per record sent counts
as an error. Labels alone cannot prove the model ran (a constant 0 is a valid label), so before
and after the load each record is also sent once and its answer compared with the sklearn
pipeline's own prediction for it.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.model import Workbench
from harness.protocols import Codec, label_key
from tabserve.loadtest.client import Target, new_event_loop
from tabserve.loadtest.closed_loop import run_level
from tabserve.loadtest.engine import Plan

PROBA_TOLERANCE = 1e-4  # ONNX float vs sklearn double on the same row


@dataclass
class Correctness:
    checked: int = 0
    wrong: int = 0
    failed: int = 0  # no parseable answer (status, JSON, shape)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and self.wrong == 0 and self.failed == 0

    def note(self, message: str) -> None:
        if len(self.examples) < 3:
            self.examples.append(message)


def check_correctness(
    url: str, codec: Codec, bench: Workbench, singles: int, batches: int, batch_size: int
) -> Correctness:
    """Send ``singles`` records one by one and ``batches`` batches; compare with sklearn."""
    result = Correctness()
    if not codec.checks_answers:
        return result
    plan: list[tuple[list[int], bool]] = [([i], False) for i in range(singles)]
    n = len(bench.records)
    for b in range(batches):
        plan.append(([(b * batch_size + j) % n for j in range(batch_size)], True))
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for indexes, batch in plan:
            records = [bench.records[i % n] for i in indexes]
            try:
                response = client.post(
                    codec.path(batch),
                    content=codec.encode(records, batch),
                    headers={"content-type": "application/json"},
                )
                if response.status_code != 200:
                    raise ValueError(f"status {response.status_code}: {response.text[:200]}")
                answer = codec.decode(response.content, len(records), batch)
            except (httpx.HTTPError, ValueError) as exc:
                result.failed += len(indexes)
                result.checked += len(indexes)
                result.note(f"{type(exc).__name__}: {exc}")
                continue
            for k, i in enumerate(indexes):
                result.checked += 1
                i %= n
                expected = label_key(bench.labels[i])
                got = label_key(answer.labels[k])
                proba = answer.positive_proba[k] if answer.positive_proba else None
                if got != expected or (
                    proba is not None and abs(proba - bench.positive_proba[i]) > PROBA_TOLERANCE
                ):
                    result.wrong += 1
                    result.note(
                        f"record {i}: got {got} (p={proba}), sklearn says {expected} "
                        f"(p={bench.positive_proba[i]:.6f})"
                    )
    return result


def _checker(codec: Codec, n: int, batch: bool, classes: set[str]) -> Any:
    def check(body: bytes) -> str | None:
        try:
            answer = codec.decode(body, n, batch)
        except (ValueError, TypeError, AttributeError, KeyError):
            return "wrong_answer"
        if codec.checks_answers and not all(label_key(v) in classes for v in answer.labels):
            return "wrong_answer"
        return None

    return check


def closed_loop(
    url: str,
    codec: Codec,
    bench: Workbench,
    *,
    concurrency: int,
    requests: int,
    warmup: int,
    batch_size: int = 1,
    max_seconds: float | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """One closed-loop level with the load tester's engine; its LevelResult as a dict."""
    batch = batch_size > 1
    n = len(bench.records)
    groups = [
        [bench.records[(g * batch_size + j) % n] for j in range(batch_size)]
        for g in range(max(1, n // batch_size) if batch else n)
    ]
    target = Target.parse(url)
    wire = [target.post(codec.path(batch), codec.encode(g, batch)) for g in groups]
    classes = {label_key(c) for c in (bench.spec.target.classes or [])}
    plan = Plan(target, wire, _checker(codec, batch_size, batch, classes), batch_size, timeout)
    loop = new_event_loop()
    try:
        level = loop.run_until_complete(
            run_level(plan, concurrency, requests, warmup=warmup, duration=max_seconds)
        )
    except ConnectionError as exc:
        return {"concurrency": concurrency, "failed": str(exc)}
    finally:
        loop.close()
    return asdict(level)


_PA_PATTERNS = {
    "throughput_rps": re.compile(r"Throughput: ([0-9.]+) infer/sec"),
    "p50_ms": re.compile(r"p50 latency: ([0-9]+) usec"),
    "p99_ms": re.compile(r"p99 latency: ([0-9]+) usec"),
}


def perf_analyzer(
    port: int,
    model: str,
    bench: Workbench,
    concurrency: int,
    window_ms: int,
    *,
    protocol: str = "http",
    tensor_format: str = "json",
) -> dict[str, Any]:
    """Triton's perf_analyzer (http or grpc) with the pool's rows as input data. Over HTTP the
    tensors are JSON by default: the binary extension is Triton's, MLServer does not read it."""
    from tabserve.tools.perf_analyzer import PerfAnalyzerUnavailable, ensure_perf_analyzer
    from tabserve.tools.perf_data import input_data

    try:
        tool = ensure_perf_analyzer()
    except PerfAnalyzerUnavailable as exc:
        return {"failed": f"perf_analyzer unavailable: {exc}"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        import json

        json.dump(input_data(bench.spec, bench.records[:100]), handle)
    argv = [str(tool.binary), "-m", model, "-u", f"127.0.0.1:{port}", "-i", protocol]
    argv += ["--concurrency-range", str(concurrency), "--input-data", handle.name]
    if protocol == "http":
        argv += ["--input-tensor-format", tensor_format]
    argv += ["-p", str(window_ms), "--stability-percentage", "100"]
    argv += ["--percentile", "99"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=tool.env(), timeout=180)
    except subprocess.TimeoutExpired:
        return {"failed": "perf_analyzer timed out"}
    finally:
        Path(handle.name).unlink(missing_ok=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        last = [line for line in output.strip().splitlines() if line.strip()][-1:]
        return {"failed": f"exit {done.returncode}: {' '.join(last)[:300]}"}
    result: dict[str, Any] = {"concurrency": concurrency}
    for key, pattern in _PA_PATTERNS.items():
        match = pattern.search(output)
        value = float(match.group(1)) if match else math.nan
        result[key] = value / 1000.0 if key.endswith("_ms") else value
    result["errors"] = 0  # perf_analyzer stops with a non-zero exit on any failed request
    return result
