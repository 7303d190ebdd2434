"""Log lines (tabserve/logs.py): text and JSON, the request id of the request being handled on
every line written while it is, and the server's one startup line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from starlette.testclient import TestClient

from tabserve import logs
from tabserve.modeldir import ModelDir
from tabserve.serving.admission import Admission
from tabserve.serving.app import TabserveApp
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.startup_line import startup_line
from tabserve.settings import Settings

inner = logging.getLogger("tabserve.serving.test_logs")


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream, handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_time_level_logger_message_fields_and_exceptions() -> None:
    stream = io.StringIO()
    log = logging.getLogger("tabserve.test.json")
    log.setLevel(logging.INFO)
    log.addHandler(logs.handler("json", stream))
    log.propagate = False
    try:
        log.warning("plain %s", "line", extra={"fields": {"model": "titanic", "rows": 3}})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        token = logs.REQUEST_ID.set("abc-1")
        log.info("inside")
        logs.REQUEST_ID.reset(token)
    finally:
        log.handlers.clear()
        log.propagate = True
    plain, failed, inside = _lines(stream)
    assert plain["message"] == "plain line" and plain["level"] == "WARNING"
    assert plain["logger"] == "tabserve.test.json"
    assert plain["model"] == "titanic" and plain["rows"] == 3
    assert plain["time"].endswith("Z") and "T" in plain["time"]
    assert "request_id" not in plain
    assert "ValueError: boom" in failed["exception"]
    assert inside["request_id"] == "abc-1"


def test_text_lines_show_the_request_id_before_the_message() -> None:
    stream = io.StringIO()
    log = logging.getLogger("tabserve.test.text")
    log.setLevel(logging.INFO)
    log.addHandler(logs.handler("text", stream))
    log.propagate = False
    try:
        log.info("outside")
        token = logs.REQUEST_ID.set("abc-2")
        log.info("inside")
        logs.REQUEST_ID.reset(token)
    finally:
        log.handlers.clear()
        log.propagate = True
    outside, inside = stream.getvalue().splitlines()
    assert outside.endswith("tabserve.test.text INFO outside")
    assert inside.endswith("tabserve.test.text INFO [abc-2] inside")


def test_a_line_written_while_handling_a_request_carries_its_id(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    async def handler(call: Call) -> Reply:
        inner.warning("handling it")
        return Reply(b"{}", headers=[call.id_header()])

    state = SimpleNamespace(plane=None, settings=Settings(), admission=Admission(10), tracing=None)
    app = TabserveApp(
        state,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        [Route("/work", handler, ("POST",), "model")],
        open_log=lambda: None, load_in_background=True, watch_uri=None,
    )  # fmt: skip
    client = TestClient(app)
    ids = [client.post("/work").headers["x-request-id"] for _ in range(3)]
    stream, _ = captured
    lines = [line for line in _lines(stream) if line["message"] == "handling it"]
    assert [line["request_id"] for line in lines] == ids
    assert len(set(ids)) == 3


def test_the_access_log_writes_one_line_per_request_without_query_or_secrets(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    async def handler(call: Call) -> Reply:
        return Reply(b"{}", headers=[call.id_header()])

    settings = Settings(access_log=True)
    state = SimpleNamespace(plane=None, settings=settings, admission=Admission(10), tracing=None)
    app = TabserveApp(
        state,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        [Route("/v2/models/{name}/infer", handler, ("POST",), "model")],
        open_log=lambda: None, load_in_background=True, watch_uri=None,
    )  # fmt: skip
    client = TestClient(app)
    ok = client.post("/v2/models/m/infer?token=query-secret", headers={
        "authorization": "Bearer header-secret", "x-request-id": "client-7"})  # fmt: skip
    missing = client.get("/no/such/path%0Aforged")
    stream, _ = captured
    access = [line for line in _lines(stream) if line["logger"] == "tabserve.access"]
    assert len(access) == 2
    first, second = access
    assert first["method"] == "POST" and first["route"] == "/v2/models/{name}/infer"
    assert first["status"] == 200 and first["duration_ms"] >= 0
    assert first["client_request_id"] == "client-7" == ok.headers["x-request-id"]
    assert first["request_id"] and first["request_id"] != "client-7"
    assert second["route"] == "unmatched" and second["status"] == missing.status_code == 404
    text = orjson.dumps(access).decode()  # (the test's own client logs its URLs too)
    for secret in ("query-secret", "header-secret", "forged"):
        assert secret not in text


def test_the_startup_line_says_what_is_served_with_the_password_masked(
    titanic_model_dir: Path,
) -> None:
    settings = Settings(
        log_db="postgresql+psycopg://tabserve:pg-Secret-1@db/tabserve", workers=2,
        max_batch_size=32, max_queue_delay_us=500, grpc_port=8081, drift_interval="10m",
    )  # fmt: skip
    text, fields = startup_line(settings, ModelDir(titanic_model_dir))
    assert "pg-Secret-1" not in text + repr(fields)
    assert fields["prediction_log"] == "postgresql+psycopg://tabserve:***@db/tabserve"
    assert fields["model"] == "titanic" and fields["runtime"] == "onnx"
    assert fields["workers"] == 2 and fields["max_batch_size"] == 32
    assert fields["grpc_port"] == 8081 and fields["tracing"] is False
    assert fields["drift_interval_s"] == 600 and fields["drift_window"] == "24h"
    for part in ("serving titanic version", "onnx runtime", "2 workers", "up to 32 rows",
                 "500 µs", "gRPC on 127.0.0.1:8081", "drift refresh every 600 s over 24h",
                 "tracing off", "access log off"):  # fmt: skip
        assert part in text, (part, text)


def test_a_model_call_serving_many_requests_logs_without_any_request_id(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    """The batcher's task starts in an empty context, not a copy of the first request's."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from tabserve.serving.batcher import BatchingOptions, DynamicBatcher
    from tabserve.serving.runtimes import Prediction

    def run(columns: dict[str, np.ndarray]) -> Prediction:
        inner.warning("model call")
        return Prediction(columns["x"])

    async def one(batcher: DynamicBatcher, i: int) -> None:
        logs.REQUEST_ID.set(f"req-{i}")
        await batcher.submit({"x": np.array([float(i)])}, 1)
        inner.warning("answered")

    async def go() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = DynamicBatcher(run, BatchingOptions(True, 64, 20_000), pool)
            await asyncio.gather(*(one(batcher, i) for i in range(3)))
            await batcher.close()

    asyncio.run(go())
    stream, _ = captured
    lines = _lines(stream)
    assert [line.get("request_id") for line in lines if line["message"] == "model call"] == [None]
    answered = [line["request_id"] for line in lines if line["message"] == "answered"]
    assert sorted(answered) == ["req-0", "req-1", "req-2"]
