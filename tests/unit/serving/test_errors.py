"""The one error envelope: every ServingError renders as {"error", "details"?} with its status."""

from __future__ import annotations

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
    response = errors.render(None, error)
    assert response.status_code == status
    body = orjson.loads(response.body)
    assert set(body) <= {"error", "details"} and isinstance(body["error"], str)
    assert response.headers["content-type"] == "application/json"


def test_not_ready_tells_clients_when_to_come_back() -> None:
    assert errors.render(None, errors.NotReady("loading")).headers["retry-after"] == "1"


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
