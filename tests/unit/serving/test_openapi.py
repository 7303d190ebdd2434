"""The OpenAPI document says what the server does: every route is in it, and real answers
(good and bad) validate against the schema documented for their status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from tabserve.serving.app import create_app
from tabserve.settings import Settings

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
RECORD["Embarked"] = "S"


@pytest.fixture(scope="module")
def served(titanic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(home=tmp_path_factory.mktemp("home"), log_db="off", max_rows=3)
    app = create_app(settings, titanic_model_dir, prediction_log=None)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield app, client, client.get("/openapi.json").json()


def check(document: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """Validate ``body`` against the schema the document gives for this status."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    resolver_doc = {"components": document["components"], **schema}
    jsonschema.validate(body, resolver_doc, cls=jsonschema.Draft202012Validator)


def test_every_route_is_documented(served: Any) -> None:
    app, _, document = served
    routes = {(r.path, m.lower()) for r in app.routes if r.in_schema for m in r.methods}
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    assert routes == documented


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (RECORD, 200),
        ([RECORD, {**RECORD, "Age": None}], 200),
        ({**RECORD, "Sex": "robot", "Cabin": "C85"}, 400),
        ([[None, None]], 400),  # a record that is not an object: field is null, as documented
        ([RECORD] * 4, 413),
        ("just a string", 400),
    ],
)
def test_predict_answers_match_their_documented_schema(served: Any, body: Any, status: int) -> None:
    _, client, document = served
    r = client.post("/predict", json=body)
    assert r.status_code == status
    check(document, "/predict", "post", status, r.json())


def test_media_and_method_errors_are_json_too(served: Any) -> None:
    _, client, document = served
    r = client.post("/predict", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    check(document, "/predict", "post", 415, r.json())
    r = client.get("/predict")
    assert r.status_code == 405 and "GET" in r.json()["error"]
    r = client.get("/v2/models/nope")
    assert r.status_code == 404
    check(document, "/v2/models/{name}", "get", 404, r.json())


def test_infer_answers_match_their_documented_schema(served: Any) -> None:
    _, client, document = served
    example = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"][
        "application/json"
    ]["example"]
    r = client.post("/v2/models/titanic/infer", json=example)
    assert r.status_code == 200, r.text
    check(document, "/v2/models/{name}/infer", "post", 200, r.json())
    bad = {"inputs": [{**example["inputs"][0], "datatype": {"oops": 1}}]}
    r = client.post("/v2/models/titanic/infer", json=bad)
    assert r.status_code == 400
    check(document, "/v2/models/{name}/infer", "post", 400, r.json())


def test_the_record_schema_comes_from_the_spec(served: Any) -> None:
    _, _, document = served
    record = document["components"]["schemas"]["Record"]
    assert record["required"] == [k for k in RECORD if k not in ("Age", "Embarked")]
    assert set(record["properties"]["Sex"]["enum"]) == {"male", "female"}
    assert record["additionalProperties"] is False
    jsonschema.validate(RECORD, record)
