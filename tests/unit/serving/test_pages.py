"""The server's pages for people: /docs and /redoc load nothing from another host, the model
page is written from the spec (whatever the spec does not know, it says), /stats counts what
/metrics counts, /report shows the latest report of this model only."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from starlette.testclient import TestClient

from tabserve.serving.app import create_app
from tabserve.serving.report_summary import NoReport, ReportReader
from tabserve.serving.rest import page
from tabserve.serving.state import ServerState
from tabserve.settings import Settings
from tabserve.spec import (
    CategoricalProfile,
    Feature,
    FeatureSpec,
    Histogram,
    NumericProfile,
    Target,
)

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
NOT_API = ("/", "/docs", "/redoc")


@pytest.fixture(scope="module")
def served(
    titanic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Path]]:
    reports = tmp_path_factory.mktemp("reports")
    settings = Settings(home=tmp_path_factory.mktemp("home"), log_db="off", report_dir=reports)
    app = create_app(settings, titanic_model_dir, prediction_log=None)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield client, reports


class _Refs(HTMLParser):
    """Every URL a page makes the browser load: script src, link href, img src, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value and tag in ("script", "link", "img", "iframe"):
                self.urls.append(value)


def loaded_urls(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("path", NOT_API)
def test_pages_load_only_their_own_assets(served: Any, path: str) -> None:
    client, _ = served
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", r.text)  # no external URL
    urls = [u for u in loaded_urls(r.text) if not u.startswith("data:")]
    assert urls, "the page loads its scripts and styles"
    for url in urls:
        asset = client.get("/" + url)  # relative to the root-level page
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css")), url
        assert len(asset.content) > 100


def test_docs_assets_are_the_pinned_packages_swagger_ui_and_redoc(served: Any) -> None:
    client, _ = served
    bundle = client.get("/assets/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-encoding"] == "gzip"  # 1.5 MB → a third on the wire
    assert b"5.33.1" in bundle.content  # Swagger UI 5 reads OpenAPI 3.1
    assert b"Redoc" in client.get("/assets/docs/redoc.standalone.js").content
    for licence in ("swagger-ui.LICENSE.txt", "redoc.LICENSE.txt"):
        assert client.get(f"/assets/docs/{licence}").status_code == 200
    again = client.get(
        "/assets/docs/swagger-ui-bundle.js", headers={"if-none-match": bundle.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content
    assert client.get("/redoc/logo-mini.svg").headers["content-type"] == "image/svg+xml"
    init = client.get("/assets/docs/swagger-init.js").text
    assert "validatorUrl: null" in init  # no badge fetched from validator.swagger.io


@pytest.mark.parametrize(
    "name", ["nope.js", "..%2F..%2Fsettings.py", "%2Fetc%2Fpasswd", "page.py", "__init__.py"]
)
def test_assets_are_a_list_not_a_directory(served: Any, name: str) -> None:
    client, _ = served
    for prefix in ("/assets/docs/", "/assets/page/", "/redoc/"):
        r = client.get(prefix + name)
        # Either no such name in the list, or (an encoded slash) no such route at all.
        assert r.status_code == 404 and r.json()["error"].startswith(("no asset", "no endpoint"))


def test_model_page_shows_the_served_model_and_its_form(served: Any) -> None:
    client, _ = served
    html = client.get("/").text
    assert '<h1 id="model-name">titanic</h1>' in html
    assert '<b id="model-runtime">onnx</b>' in html
    for name in RECORD:
        assert f'data-feature="{name}"' in html
    # Prefilled with typical values, so the first click predicts.
    assert 'name="Sex" type="text" value="male"' in html
    # In the table and in the form: 5 of 7 (Age and Embarked are nullable).
    assert html.count('<span class="tag req">required</span>') == 2 * 5


def _hostile_spec() -> FeatureSpec:
    """A spec with what may be unknown left unknown, and a name that is markup."""
    hist = Histogram(edges=[0.0, 1.0], counts=[3])
    numeric = NumericProfile(
        count=3,
        missing=1,
        min=0.0,
        max=1.0,
        mean=0.5,
        std=0.1,
        quantiles={"0.5": 0.5},
        histogram=hist,
    )
    return FeatureSpec(
        features=[
            Feature(
                name="<script>alert(1)</script>", kind="categorical", dtype="string", nullable=False
            ),
            Feature(name="no_profile", kind="numeric", dtype="float64", nullable=True),
            Feature(name="ranged", kind="numeric", dtype="int64", nullable=False, profile=numeric),
            Feature(
                name="colour",
                kind="categorical",
                dtype="string",
                nullable=True,
                profile=CategoricalProfile(
                    count=4, missing=0, categories={"red": 3, "</script>": 1}
                ),
            ),
            Feature(name="flag", kind="boolean", dtype="bool", nullable=True),
        ],
        target=Target(name="y", task="classification", classes=["a", "b"]),
        sources={"features": "MLflow signature", "categories": "the model's OneHotEncoder"},
    )


def test_page_says_what_the_spec_does_not_know_and_escapes_everything(tmp_path: Path) -> None:
    state = ServerState(settings=Settings(home=tmp_path), spec=_hostile_spec())
    html = page.render(state)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("</script>") == 2  # the data block's and page.js's closing tags only
    data = re.search(r'id="page-data">(.*?)</script>', html, re.S)
    assert data is not None
    parsed = orjson.loads(data.group(1))
    assert parsed["features"][0]["name"] == "<script>alert(1)</script>"
    assert "categories unknown: any value passes to the model" in html
    assert "no training profile (no reference data)" in html
    assert "0 … 1" in html and "33.3 %" in html  # range and training missing share
    assert "<b>features</b>: MLflow signature" in html  # spec.sources, shown
    assert "loading" in html  # no plane yet: the page says so and still shows the spec


def test_stats_counts_what_metrics_counts(served: Any) -> None:
    client, _ = served
    before = client.get("/stats").json()
    n = 7
    for _ in range(n):
        assert client.post("/predict", json={**RECORD, "Embarked": "S"}).status_code == 200
    client.post("/predict", json={**RECORD, "Sex": "robot"})
    after = client.get("/stats").json()
    schema = page.OPENAPI_PATHS["/stats"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    jsonschema.validate(after, schema, cls=jsonschema.Draft202012Validator)

    def count(snap: dict[str, Any], status: str) -> float:
        return sum(
            r["count"]
            for r in snap["requests"]
            if r["route"] == "/predict" and r["status"] == status
        )

    assert count(after, "200") - count(before, "200") == n
    assert count(after, "400") - count(before, "400") == 1
    latency = after["latency"]["/predict"]
    assert latency["buckets"][-1] == [None, latency["count"]]  # +Inf holds every request
    assert sum(after["predictions"].values()) - sum(before["predictions"].values()) == n
    assert {"field": "Sex", "reason": "unknown_category"}.items() <= next(
        e for e in after["validation_errors"] if e["field"] == "Sex"
    ).items()
    assert after["in_flight"] == 0  # the /stats request itself is not counted
    assert after["prediction_log"] == {}  # --log-db off: no log figures at all


def _report(model: str = "titanic", **extra: Any) -> dict[str, Any]:
    """The shape `tabserve drift --json` writes (monitoring/report.py to_dict)."""
    feature = {
        "name": "Fare",
        "kind": "numeric",
        "test": "ks",
        "test_label": "K-S p-value",
        "value": 0.001,
        "threshold": 0.05,
        "drifted": True,
        "severity": 2.3,
        "psi": 0.4,
        "note": None,
    }
    calm = {**feature, "name": "Sex", "drifted": False, "value": 0.6, "psi": 0.01}
    return {
        "model": model,
        "version": "1",
        "generated_at": "2026-12-01T10:00:00+00:00",
        "window": {"since": None, "until": None},
        "rows": {"current": 300, "reference": 700},
        "versions_seen": ["1"],
        "dataset_drift": False,
        "drifted_features": 1,
        "tested_features": 2,
        "share_drifted": 0.5,
        "drift_share_threshold": 0.5,
        "prediction_drift": {**calm, "name": "prediction"},
        "features": [calm, feature],
        "notes": [],
        **extra,
    }


def test_report_shows_the_latest_report_of_this_model(served: Any) -> None:
    client, reports = served
    path = reports / "drift.json"
    path.unlink(missing_ok=True)
    missing = client.get("/report")
    assert missing.status_code == 404 and "tabserve drift" in missing.json()["error"]
    path.write_bytes(orjson.dumps(_report()))
    body = client.get("/report").json()
    schema = page.OPENAPI_PATHS["/report"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    assert [f["name"] for f in body["features"]] == ["Fare", "Sex"]  # drifted first
    assert "quality" not in body
    # A new report (a cron job's) shows without a restart.
    path.write_bytes(orjson.dumps(_report(quality={"overall": {"accuracy": 0.81}})))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert client.get("/report").json()["quality"] == {"overall": {"accuracy": 0.81}}
    path.write_bytes(orjson.dumps(_report(model="heart")))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    other = client.get("/report")
    assert other.status_code == 404 and "'heart', not 'titanic'" in other.json()["error"]
    path.unlink()


def test_unreadable_report_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    path.write_text("{not json")
    with pytest.raises(NoReport, match="not readable JSON"):
        ReportReader(path).summary("titanic")


def test_report_directory_defaults_to_the_home(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).resolved_report_dir() == tmp_path
    assert Settings(home=tmp_path, report_dir=tmp_path / "r").resolved_report_dir() == (
        tmp_path / "r"
    )
