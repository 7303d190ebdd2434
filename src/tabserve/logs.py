"""Log lines, as text or as JSON, each carrying the id of the request it was written for.

Every process of a server — the uvicorn supervisor, each worker, each prediction-log writer —
calls ``configure(fmt)`` once: one handler on stderr for the root logger, so tabserve's lines,
uvicorn's and those of any library look the same. ``text`` is for a terminal; ``json`` is one
object per line for a log pipeline (Loki, Elasticsearch, CloudWatch...)::

    {"time": "2026-12-01T10:00:00.123Z", "level": "ERROR", "logger": "tabserve.serving",
     "message": "the onnx runtime failed ...", "request_id": "9f2c...-1a", "exception": "..."}

``REQUEST_ID`` is the request being handled: the server's front sets it for every request
(serving/app.py for HTTP, serving/grpc/service.py for gRPC). Each request runs in its own
asyncio task, whose context is its own copy, so a line written anywhere while the request is
handled — the data plane, the prediction log's submit, a runtime failure — carries that id
(text: ``[id]`` before the message; JSON: ``request_id``), and lines written outside a request
(startup, a hot swap) carry none. Setting it costs the request path one ``ContextVar.set``.

A line with structured fields (the access log, the startup line) passes them as
``extra={"fields": {...}}``: JSON lines carry them as keys; text lines show only the message,
which the caller writes to say the same thing to a person. Standard library and orjson only:
the prediction-log writer imports this and nothing of serving.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

REQUEST_ID: ContextVar[str | None] = ContextVar("tabserve_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(request_tag)s%(message)s"


class TextFormatter(logging.Formatter):
    """``time logger LEVEL [request id] message``; the id only inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f"[{request_id}] " if request_id else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format must be text or json, not {fmt!r}")


def handler(fmt: str, stream: Any = None) -> logging.Handler:
    """A stderr handler in ``fmt`` that stamps request ids."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.setFormatter(formatter(fmt))
    out.addFilter(RequestIdFilter())
    return out


def configure(fmt: str, level: int = logging.INFO) -> None:
    """This process's root logger: one handler on stderr in ``fmt`` (replacing any other)."""
    # No format here shows a thread, process or multiprocessing name: skip looking them up
    # for every record (a third of a record's cost, which the access log pays per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(fmt))
    root.setLevel(level)
