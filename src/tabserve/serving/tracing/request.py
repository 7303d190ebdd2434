"""The state of one sampled request while it is handled: its server span and the marks
(nanosecond times, the route, the model, a failure) its step spans are cut from afterwards.

``CURRENT`` holds it for the request's task (each request runs in its own asyncio task, whose
context is its own copy), so the data plane and the batcher find it without it being passed
through every call; it is None outside a request and for a request sampled out.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from tabserve.serving.errors import ServingError, ValidationFailed


def now() -> int:
    return time.time_ns()


class RequestTrace:
    """One sampled request: its server span and the marks its child spans are made from."""

    __slots__ = (
        "context", "failure", "handler_end", "handler_start", "model", "predict_end",
        "request_id", "route", "span", "validate_start",
    )  # fmt: skip

    def __init__(self, span: Any, parent: Context) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span, parent)
        self.route: str | None = None
        self.request_id: str | None = None
        self.model: tuple[str, str] | None = None
        self.handler_start = 0
        self.handler_end = 0
        self.validate_start = 0
        self.predict_end = 0
        self.failure: BaseException | None = None


# The request being handled, when it is sampled (each request runs in its own task).
CURRENT: ContextVar[RequestTrace | None] = ContextVar("tabserve_trace", default=None)


def _error_text(exc: BaseException) -> str:
    """What a span says about a failure: the server's message, never the client's values."""
    if isinstance(exc, ValidationFailed):
        reasons = [
            f"{'(extra)' if d['reason'] == 'extra_field' else d.get('field') or '(record)'}: "
            f"{d['reason']}"
            for d in exc.details[:20]
        ]
        return f"{exc.message}: {', '.join(reasons)}"
    if isinstance(exc, ServingError):
        return exc.message
    return type(exc).__name__


def fail(span: Any, exc: BaseException) -> None:
    if not isinstance(exc, ServingError):
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, _error_text(exc)))
