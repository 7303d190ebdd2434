"""A small OTLP/HTTP trace receiver on 127.0.0.1: what a collector's ``otlphttp`` receiver does,
enough to check what tabserve exports.

It answers ``POST /v1/traces`` (``application/x-protobuf``, gzip or not) with an empty
``ExportTraceServiceResponse`` and decodes each request with opentelemetry-proto into plain
span dicts (ids as hex)::

    with OtlpReceiver() as receiver:          # a thread; receiver.endpoint = "http://127.0.0.1:N"
        ...                                   # point OTEL_EXPORTER_OTLP_ENDPOINT at it
        spans = receiver.wait_for(lambda spans: len(spans) >= 3, timeout=10)

As a script (``python tests/helpers/otlp_receiver.py --port N``, for benchmarks) it only counts
requests and spans (the protobuf is parsed, no dicts are built: as little of the shared CPU as
it can take), answers ``GET /count`` with them as JSON, and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import gzip
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Span = dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [_value(v) for v in value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.values}
    return value


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def decode(body: bytes) -> list[Span]:
    """An ExportTraceServiceRequest → one dict per span (resource attributes included)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append({
                    "name": s.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "trace_state": s.trace_state,
                    "kind": s.kind,  # 1 internal, 2 server
                    "start_ns": s.start_time_unix_nano,
                    "end_ns": s.end_time_unix_nano,
                    "attributes": _attributes(s.attributes),
                    "status_code": s.status.code,  # 0 unset, 1 ok, 2 error
                    "status_message": s.status.message,
                    "links": [
                        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                         "attributes": _attributes(link.attributes)}
                        for link in s.links
                    ],
                    "resource": resource,
                })  # fmt: skip
    return spans


def count(body: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


class OtlpReceiver:
    """The receiver in a thread (see the module docstring)."""

    def __init__(self, port: int = 0, count_only: bool = False) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.span_count = 0
        self._lock = threading.Lock()
        self._count_only = count_only
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with receiver._lock:
                    body = f'{{"requests": {receiver.requests}, "spans": {receiver.span_count}}}'
                self.send_response(200 if self.path == "/count" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._take(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet: tests read spans, not lines
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _take(self, body: bytes) -> None:
        if self._count_only:
            spans, n = [], count(body)
        else:
            spans = decode(body)
            n = len(spans)
        with self._lock:
            self.requests += 1
            self.span_count += n
            self.spans.extend(spans)

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, done: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        """The spans received once ``done(spans)`` holds; raises after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.snapshot()
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; received {len(spans)} spans")
            time.sleep(0.05)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def main() -> None:
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with OtlpReceiver(args.port, count_only=True) as receiver:
        print(f"listening on {receiver.endpoint}", flush=True)
        while not stop.wait(1.0):
            pass
        print(f"received {receiver.requests} requests, {receiver.span_count} spans", flush=True)


if __name__ == "__main__":
    main()
