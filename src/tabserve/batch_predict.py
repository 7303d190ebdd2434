"""``tabserve predict``: a file of records → predictions, via a server or a local model.

A client of the server, so it lives beside the CLI and not in ``serving/`` (a server process
never needs it). Against a local model it runs the server's own validation and runtime and
writes the rows with the v1 codec's ``encode_rows``: both paths answer in the same shape.

Input: CSV (values typed from the FeatureSpec, since CSV has no types), JSON (one object, an
array of objects, or columns ``{feature: [...]}``), JSON Lines, or Parquet (needs pyarrow).
Columns that are not features (ids, the target) are dropped and named once on stderr. Records go
out in batches with a progress bar; the answer is written as CSV, JSON or JSON Lines, or printed
as JSON Lines when ``--out`` is not given.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from tabserve.errors import ServiceUnavailable, UserError, first_problem
from tabserve.json_records import records_from_json
from tabserve.serving.codecs.csv_records import records_from_csv
from tabserve.settings import Settings
from tabserve.spec import FeatureSpec


class Predictor(Protocol):
    spec: FeatureSpec

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


class RemotePredictor:
    """A running tabserve server's v1 ``/predict`` (spec from ``GET /spec``)."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)
        try:
            response = self._client.get(f"{self.url}/spec")
        except httpx.HTTPError as exc:
            message = f"cannot reach {self.url} ({exc}); is `tabserve serve` running?"
            raise ServiceUnavailable(message) from None
        if response.status_code != 200:
            raise ServiceUnavailable(f"{self.url}/spec answered {response.status_code}")
        self.spec = FeatureSpec.from_json(response.content)

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self._client.post(
            f"{self.url}/predict",
            content=orjson.dumps(records),
            headers={"content-type": "application/json"},
        )
        body = response.json()
        if response.status_code == 400 and "details" in body:
            raise _RejectedBatch(body["details"])
        if response.status_code != 200:
            raise UserError(f"{self.url}/predict answered {response.status_code}: {body}")
        predictions: list[dict[str, Any]] = body["predictions"]
        # What names each prediction in the server's log, so labels can come back for it later
        # (`tabserve feedback FILE` with request_id, record_index and the label or value).
        request_id = response.headers.get("x-request-id")
        if request_id:
            for index, prediction in enumerate(predictions):
                prediction["request_id"] = request_id
                prediction["record_index"] = index
        return predictions


class LocalPredictor:
    """The model in-process: same validation, runtime and row encoding as the server."""

    def __init__(self, model_uri: str, settings: Settings) -> None:
        from tabserve.adoption import resolve
        from tabserve.serving.runtimes import load_runtime
        from tabserve.serving.validation import ValidationOptions

        model_dir = resolve(model_uri, settings, reference=settings.reference)
        self._runtime = load_runtime(model_dir, settings.runtime, settings.intra_op_threads)
        self.spec = model_dir.spec()
        self._options = ValidationOptions(coerce=settings.coerce, ood="off")
        self._keys = [str(c) for c in self.spec.target.classes or []]

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from tabserve.serving.codecs.v1 import encode_rows
        from tabserve.serving.errors import ValidationFailed
        from tabserve.serving.validation import validate_records

        try:
            batch = validate_records(self.spec, records, self._options)
        except ValidationFailed as exc:
            raise _RejectedBatch(exc.details) from None
        result = self._runtime.predict(batch.columns)
        return encode_rows(self._keys, result.labels, result.probabilities)


class _RejectedBatch(Exception):
    def __init__(self, details: list[dict[str, Any]]) -> None:
        self.details = details


# ---- reading input ---------------------------------------------------------------------------


def read_records(data: str, spec: FeatureSpec) -> tuple[list[dict[str, Any]], list[str]]:
    """Records keyed by feature name, and the input columns that were dropped."""
    text = data.lstrip()
    path = Path(data)
    if text[:1] in ("{", "[") and not path.is_file():
        raw = _from_json(data.encode())
    elif not path.is_file():
        raise UserError(f"--data {data!r} is neither a file nor inline JSON")
    else:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            raw = records_from_csv(path.read_text(encoding="utf-8-sig"), spec)
        elif suffix == ".json":
            raw = _from_json(path.read_bytes())
        elif suffix in (".jsonl", ".ndjson"):
            raw = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        elif suffix in (".parquet", ".pq"):
            raw = _from_parquet(path)
        else:
            raise UserError(
                f"{path}: unknown format {suffix!r} (use .csv, .json, .jsonl, .parquet)"
            )
    names = set(spec.names)
    dropped = sorted({k for r in raw if isinstance(r, dict) for k in r} - names)
    if dropped:
        raw = [
            {k: v for k, v in r.items() if k in names} if isinstance(r, dict) else r for r in raw
        ]
    return raw, dropped


def _from_json(content: bytes) -> list[dict[str, Any]]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UserError(f"--data is not valid JSON: {exc}") from None
    try:
        return records_from_json(value)
    except ValueError as exc:
        raise UserError(f"--data: {exc}") from None


def _from_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("reading Parquet needs pyarrow: pip install 'tabserve[train]'") from None
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and value != value:
                row[key] = None
    return rows


# ---- running ---------------------------------------------------------------------------------


def _chunks(records: list[dict[str, Any]], size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for start in range(0, len(records), size):
        yield start, records[start : start + size]


def run_batch_predict(
    target: str, data: str, out: str | None, batch_size: int, settings: Settings
) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    is_url = target.startswith(("http://", "https://"))
    predictor: Predictor = RemotePredictor(target) if is_url else LocalPredictor(target, settings)
    records, dropped = read_records(data, predictor.spec)
    console = Console(stderr=True)
    if dropped:
        console.print(f"ignoring column(s) that are not features: {', '.join(dropped)}")
    if not records:
        raise UserError("--data holds no records")
    results: list[dict[str, Any]] = []
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("predicting", total=len(records))
        for start, chunk in _chunks(records, batch_size):
            try:
                results.extend(predictor.predict(chunk))
            except _RejectedBatch as rejected:
                raise UserError(first_problem(rejected.details, offset=start)) from None
            progress.advance(task, len(chunk))
    _write(results, out, predictor.spec)
    if out:
        console.print(f"wrote {len(results)} prediction(s) to {out}")


def _write(results: list[dict[str, Any]], out: str | None, spec: FeatureSpec) -> None:
    if out is None:
        sys.stdout.buffer.write(b"".join(orjson.dumps(r) + b"\n" for r in results))
        sys.stdout.flush()
        return
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_bytes(orjson.dumps(results))
    elif suffix in (".jsonl", ".ndjson"):
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in results))
    else:
        classes = (
            [str(c) for c in spec.target.classes or []]
            if results and "probabilities" in results[0]
            else []
        )
        ids = ["request_id", "record_index"] if results and "request_id" in results[0] else []
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            head = ["row", *ids, "prediction", *(f"probability_{c}" for c in classes)]
            writer.writerow(head)
            for i, r in enumerate(results):
                probs = r.get("probabilities") or {}
                writer.writerow(
                    [i, *(r[k] for k in ids), r["prediction"], *(probs.get(c) for c in classes)]
                )
