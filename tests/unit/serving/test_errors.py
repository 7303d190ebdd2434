"""The one error envelope: every ServingError renders as {"error", "details"?} with its status."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tabserve.serving import errors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadRequest("x"), 400),
        (errors.ValidationFailed([{"field": "a", "reason": "null", "message": "m"}]), 400),
        (errors.NotFound("x"), 404),
        (errors.PayloadTooLarge("x"), 413),
        (errors.UnsupportedMediaType("x"), 415),
        (errors.NotReady("x"), 503),
        (errors.RuntimeFailure("x"), 500),
    ],
)
def test_each_error_renders_its_status_and_the_envelope(
    error: errors.ServingError, status: int
) -> None:
    sent = answer(error)
    assert sent[0]["status"] == status
    body = orjson.loads(sent[1]["body"])
    assert set(body) <= {"error", "details"} and isinstance(body["error"], str)
    assert (b"content-type", b"application/json") in sent[0]["headers"]


def answer(error: errors.ServingError, **kw: bool) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(errors.asgi_response(send, error, **kw))
    return sent


def test_not_ready_tells_clients_when_to_come_back() -> None:
    assert (b"retry-after", b"1") in answer(errors.NotReady("loading"))[0]["headers"]


def test_an_oversized_body_closes_the_connection() -> None:
    headers = answer(errors.PayloadTooLarge("big"), close=True)[0]["headers"]
    assert (b"connection", b"close") in headers


def test_a_v2_summary_names_the_first_fields_and_counts_the_rest() -> None:
    details = [
        {"record": i, "field": f"f{i}", "reason": "null", "message": f"f{i} may not be null"}
        for i in range(8)
    ]
    failed = errors.ValidationFailed(details, total=12)
    assert failed.message == "validation failed"
    summary = failed.summarized()
    assert summary.message.startswith("validation failed: f0 may not be null at row 0; f1")
    assert summary.message.endswith("; and 7 more")
    assert summary.details == details and summary.status == 400
