"""Every error a server answers with: one hierarchy, one JSON body, one renderer.

    ServingError(status, message, details)        {"error": message[, "details": [...]]}
     ├── BadRequest             400  the request breaks the protocol (bad JSON, shape, datatype)
     │    └── ValidationFailed  400  values the FeatureSpec rejects, each named in ``details``
     ├── NotFound               404  unknown model, version or endpoint
     ├── MethodNotAllowed       405
     ├── PayloadTooLarge        413  body over --max-body-bytes (after decompression), or rows
     │                               over --max-rows
     ├── UnsupportedMediaType   415  content type, or a Content-Encoding other than gzip/deflate
     ├── NotReady               503  no model loaded yet (Retry-After)
     ├── Overloaded             503  too many requests in flight, or one waited past
     │                               --request-timeout for the model (Retry-After)
     ├── Unauthorized           401  no or a wrong API key (auth.py)
 ├── NotConfigured          501  a route this server was started without (POST /feedback
 │                               with the prediction log off)
     └── RuntimeFailure         500  the model raised on a valid batch: our fault, logged

Every protocol renders the same envelope: ``error`` is one line a person can act on (tritonclient
shows exactly this key to its user), ``details`` lists field-level problems when there are any.
v1 keeps ``"validation failed"`` as the line and puts the fields in ``details``; v2 clients often
show only the line, so their ValidationFailed carries a summary naming the first few fields
(``summarized()``). Messages never echo more than 40 characters of a client's value.

Routes, codecs and the data plane raise; the app (app.py) sends ``asgi_response`` for any of
them, whether a route raised it or the app answered before a route ran (limits, auth, load).
Nothing else builds an error body.
"""

from __future__ import annotations

from typing import Any

import orjson

# How many problems the one-line summary of a ValidationFailed names (all are in details).
SUMMARY_ITEMS = 5
JSON = b"application/json"


class ServingError(Exception):
    """An answer other than 200: status, a one-line message and optional field details."""

    status = 500
    headers: dict[str, str] = {}

    def __init__(
        self, message: str, details: list[dict[str, Any]] | None = None, *, status: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status:
            self.status = status

    def body(self) -> bytes:
        content: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            content["details"] = self.details
        return orjson.dumps(content)


class BadRequest(ServingError):
    status = 400


class ValidationFailed(BadRequest):
    """The client sent values the model cannot take; ``details`` names each one and why.

    ``total`` counts every problem found; ``details`` holds the first ``MAX_DETAILS``.
    """

    def __init__(
        self,
        details: list[dict[str, Any]],
        total: int | None = None,
        message: str = "validation failed",
    ) -> None:
        super().__init__(message, details)
        self.details: list[dict[str, Any]] = details
        self.total = total if total is not None else len(details)

    def summarized(self) -> ValidationFailed:
        """The same problems, with a message that names them (``Sex: ... at row 3; ...``)."""
        parts = []
        for d in self.details[:SUMMARY_ITEMS]:
            row = f" at row {d['record']}" if "record" in d else ""
            parts.append(f"{d.get('message') or d['reason']}{row}")
        more = self.total - len(parts)
        suffix = f"; and {more} more" if more > 0 else ""
        return ValidationFailed(
            self.details, self.total, f"validation failed: {'; '.join(parts)}{suffix}"
        )


class NotFound(ServingError):
    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class NotReady(ServingError):
    status = 503
    # Loading takes seconds: tell clients (and tritonclient's retry) when to come back.
    headers = {"retry-after": "1"}


class Overloaded(ServingError):
    status = 503
    # Long enough for a burst to pass; tritonclient, Envoy and kubelet honour it.
    headers = {"retry-after": "1"}


class NotConfigured(ServingError):
    status = 501


class RuntimeFailure(ServingError):
    status = 500


async def asgi_response(
    send: Any, error: ServingError, *, close: bool = False, request_id: bytes | None = None
) -> None:
    """Send ``error`` on a raw ASGI connection (middleware that answers before any route).
    ``request_id`` is the answer's ``X-Request-ID``, so a client can find an error's lines in
    the server's log as it finds an answer's."""
    body = error.body()
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    if close:  # the rest of an oversized body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
