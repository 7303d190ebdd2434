"""``tabserve feedback FILE``: ground truth from a file, to a running server or straight to the
prediction log's database.

A file holds one item per row: ``request_id``, ``record_index`` (optional, 0 when empty or
absent) and ``label`` (a classifier) or ``value`` (a regression model) — CSV, JSON (an array of
objects, one object, or columns ``{name: [...]}``) or JSON Lines. Other columns are ignored and
named once. CSV has no types, so a ``label`` cell is read as the class whose text it is (the
model's classes from its FeatureSpec) and a ``value`` cell as a number; JSON keeps its own
types and is held to the server's rule (no coercion: "1" is not the class 1).

The whole file is checked first, with the server's own function (predlog/feedback.py), so a
bad row 90,000 is one line naming it before anything is sent. Then:

- ``--url URL``: ``POST /feedback`` in batches (``--api-key`` when the server has keys); the
  server checks again and queues the items for its log writer.
- ``--log-db URL --model MODEL``: upserted into the ``feedback`` table directly, in batches,
  the table created if missing (what the server's writer does, without a server).

Sending a file twice is harmless: the table keeps one truth per record, the one received last.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from tabserve.errors import ServiceUnavailable, UserError, first_problem
from tabserve.json_records import records_from_json
from tabserve.predlog.feedback import FIELDS, FeedbackInvalid, check_items
from tabserve.redact import mask_url, scrub
from tabserve.settings import Settings
from tabserve.spec import FeatureSpec, Target


def read_items(path: Path, target: Target) -> tuple[list[dict[str, Any]], list[str]]:
    """The file's items (only the item fields), and the other columns it had."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            raw = _from_csv(path.read_text(encoding="utf-8-sig"), target)
        elif suffix == ".json":
            raw = records_from_json(orjson.loads(path.read_bytes()))
        elif suffix in (".jsonl", ".ndjson"):
            raw = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        else:
            raise UserError(f"{path}: unknown format {suffix!r} (use .csv, .json or .jsonl)")
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    others = sorted({k for r in raw if isinstance(r, dict) for k in r} - set(FIELDS))
    items = [{k: v for k, v in r.items() if k in FIELDS} if isinstance(r, dict) else r for r in raw]
    return items, others


def _from_csv(text: str, target: Target) -> list[dict[str, Any]]:
    # A label cell is the class with that text: "1" is 1 for int classes, "yes" stays "yes".
    by_text: dict[str, Any] = {}
    for c in target.classes or []:
        by_text.setdefault(str(c), c)
        if isinstance(c, bool):
            by_text.setdefault(str(c).lower(), c)
        elif isinstance(c, float) and c.is_integer():
            by_text.setdefault(str(int(c)), c)
    out = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        item: dict[str, Any] = {}
        for key, cell in row.items():
            if key is None:
                raise ValueError(f"CSV line {line} has more values than the header has columns")
            text_value = (cell or "").strip()
            if key == "record_index":
                if text_value:
                    item[key] = int(text_value) if text_value.lstrip("-").isdigit() else cell
            elif key == "label":
                item[key] = by_text.get(text_value, text_value) if text_value else None
            elif key == "value":
                item[key] = _number(text_value)
            else:
                item[key] = cell
        out.append(item)
    return out


def _number(text: str) -> Any:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # check_items names it: value expects a number, got the string '…'


def _batches(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


# ---- the two ways in ---------------------------------------------------------------------------


class ServerSink:
    """A running server's ``POST /feedback`` (the target from ``GET /spec``)."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        response = self._get("/spec")
        self.target = FeatureSpec.from_json(response.content).target

    def _get(self, path: str) -> Any:
        import httpx

        try:
            response = self._client.get(self.url + path)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"cannot reach {mask_url(self.url)} ({exc}); is `tabserve serve` running?"
            ) from None
        self._check(response, path)
        return response

    def _check(self, response: Any, path: str) -> None:
        if response.status_code == 401:
            raise UserError(
                f"{mask_url(self.url)}{path}: the server wants an API key: pass --api-key "
                "(or set TABSERVE_API_KEY)"
            )
        if response.status_code >= 300:
            try:
                message = response.json().get("error", "")
            except ValueError:
                message = response.text[:200]
            raise ServiceUnavailable(
                f"{mask_url(self.url)}{path} answered {response.status_code}: {message}"
            )

    def send(self, items: Sequence[dict[str, Any]]) -> None:
        import httpx

        try:
            response = self._client.post(
                f"{self.url}/feedback",
                content=orjson.dumps(list(items)),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"cannot reach {mask_url(self.url)} ({exc})") from None
        if response.status_code == 400 and "details" in response.json():
            body = response.json()
            raise FeedbackInvalid(body["details"], len(body["details"]))
        if response.status_code == 413:
            raise UserError(f"{mask_url(self.url)}/feedback: {response.json()['error']}: "
                            "lower --batch-size")  # fmt: skip
        self._check(response, "/feedback")

    def close(self) -> None:
        self._client.close()


class DatabaseSink:
    """The ``feedback`` table of a prediction-log database, without a server."""

    def __init__(self, url: str, target: Target) -> None:
        import sqlalchemy as sa

        from tabserve.predlog.store import FeedbackInserter, ensure_schema, make_engine

        self.url = url
        self.target = target
        self.engine = make_engine(url)
        self._ts = time.time()  # one "received" time for the whole file
        try:
            ensure_schema(self.engine)
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise ServiceUnavailable(
                f"cannot write to the prediction log at {mask_url(url)}: "
                f"{scrub(str(exc.orig).strip().splitlines()[0], url)}"
            ) from None
        self._inserter = FeedbackInserter(self.engine)

    def send(self, items: Sequence[tuple[str, int, Any]]) -> None:
        import sqlalchemy as sa

        try:
            self._inserter.insert([[rid, idx, self._ts, truth] for rid, idx, truth in items])
        except sa.exc.DBAPIError as exc:
            why = scrub(str(exc.orig).strip().splitlines()[0], self.url)
            raise ServiceUnavailable(
                f"the prediction log at {mask_url(self.url)} failed: {why}; nothing after this "
                "batch was written (sending the file again is harmless)"
            ) from None

    def close(self) -> None:
        self.engine.dispose()


def run_feedback(
    file: Path,
    settings: Settings,
    *,
    url: str | None,
    log_db: str | None,
    model: str | None,
    api_key: str | None,
    batch_size: int,
) -> str:
    """Send the file; the summary line to print."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if (url is None) == (log_db is None):
        raise UserError(
            "say where the feedback goes: --url http://HOST:PORT (a running server) or "
            "--log-db URL --model MODEL (the prediction log's database)"
        )
    if log_db is not None and model is None:
        raise UserError(
            "--log-db needs --model MODEL (models:/name@alias or a model directory): its "
            "classes are what a label is checked against"
        )
    sink: ServerSink | DatabaseSink
    if url is not None:
        sink = ServerSink(url, api_key)
    else:
        from tabserve import adoption

        assert model is not None and log_db is not None
        sink = DatabaseSink(log_db, adoption.resolve(model, settings).spec().target)
    console = Console(stderr=True)
    try:
        items, others = read_items(file, sink.target)
        if others:
            console.print(f"ignoring column(s) that are not feedback fields: {', '.join(others)}")
        if not items:
            raise UserError(f"{file}: holds no feedback items")
        try:
            checked = check_items(sink.target, items)
        except FeedbackInvalid as exc:
            raise UserError(f"{file}: {first_problem(exc.details, exc.total)}") from None
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("sending feedback", total=len(items))
            if isinstance(sink, ServerSink):
                for start, chunk in _batches(items, batch_size):
                    try:
                        sink.send(chunk)
                    except FeedbackInvalid as exc:  # the server's spec changed in between
                        raise UserError(
                            f"{file}: {first_problem(exc.details, exc.total, start)}"
                        ) from None
                    progress.advance(task, len(chunk))
            else:
                for _, chunk in _batches(checked, batch_size):
                    sink.send(chunk)
                    progress.advance(task, len(chunk))
    finally:
        sink.close()
    where = mask_url(url) if url is not None else mask_url(log_db or "")
    return f"sent {len(items):,} feedback item(s) from {file} to {where}"
