"""Argument forms, the HTTP framing helpers and the generated locustfile."""

from __future__ import annotations

import pytest

from tabserve.errors import UserError
from tabserve.loadtest.ceiling import wrk_script
from tabserve.loadtest.client import Target, _dechunk
from tabserve.loadtest.command import parse_duration, parse_levels
from tabserve.loadtest.locustfile import render_locustfile
from tabserve.spec import Feature, FeatureSpec, Histogram, NumericProfile
from tabserve.spec import Target as SpecTarget


def test_levels_and_durations() -> None:
    assert parse_levels("1,2,5,10,20,50") == [1, 2, 5, 10, 20, 50]
    assert parse_levels(" 3 ") == [3]
    for bad in ("", "0", "1,x", "-1"):
        with pytest.raises(UserError):
            parse_levels(bad)
    assert parse_duration("30s") == 30.0
    assert parse_duration("2m") == 120.0
    assert parse_duration("500ms") == pytest.approx(0.5)
    assert parse_duration("1.5") == 1.5
    for bad in ("", "0s", "soon", "3d"):
        with pytest.raises(UserError):
            parse_duration(bad)


def test_target_parsing_and_request_bytes() -> None:
    target = Target.parse("http://127.0.0.1:8000/api/")
    assert (target.host, target.port, target.tls, target.base_path) == (
        "127.0.0.1",
        8000,
        False,
        "/api",
    )
    assert Target.parse("localhost:9").url == "http://localhost:9"
    assert Target.parse("https://example.org").port == 443
    with pytest.raises(UserError):
        Target.parse("ftp://x")
    wire = target.post("/predict", b'{"a":1}')
    assert wire.startswith(b"POST /api/predict HTTP/1.1\r\n")
    assert b"Content-Length: 7\r\n\r\n" in wire and wire.endswith(b'{"a":1}')


def test_chunked_bodies_are_reassembled_only_when_complete() -> None:
    raw = bytearray(b"HEAD" + b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\nNEXT")
    assert _dechunk(raw, 4) == (b"Wikipedia ", len(raw) - 4)
    assert _dechunk(bytearray(b"4\r\nWi"), 0) is None
    assert _dechunk(bytearray(b"4\r\nWiki\r\n0\r\n"), 0) is None


def test_wrk_script_quotes_any_body() -> None:
    script = wrk_script("/predict", b'{"s":"]]x"}')
    assert 'wrk.method = "POST"' in script
    assert "[=[" in script and '{"s":"]]x"}' in script


def _numeric_spec() -> FeatureSpec:
    profile = NumericProfile(
        count=10,
        missing=0,
        min=0.0,
        max=1.0,
        mean=0.5,
        std=0.3,
        quantiles={"0.5": 0.5},
        histogram=Histogram(edges=[0.0, 0.5, 1.0], counts=[5, 5]),
    )
    feature = Feature(name="x", kind="numeric", dtype="float64", nullable=False, profile=profile)
    return FeatureSpec(
        features=[feature], target=SpecTarget(name="y", task="classification", classes=[0, 1])
    )


def test_locustfile_is_valid_python_with_spec_payloads() -> None:
    source = render_locustfile("http://127.0.0.1:8000/", _numeric_spec(), model="m", records=5)
    compile(source, "locustfile.py", "exec")
    namespace: dict[str, object] = {}
    # Run everything but the locust import-dependent class, to check the answer logic.
    head = source.split("class TabserveUser")[0].replace(
        "from locust import FastHttpUser, task", ""
    )
    exec(head, namespace)
    assert namespace["PATH"] == "/predict"
    assert len(namespace["BODIES"]) == 5  # type: ignore[arg-type]
    problem_with = namespace["problem_with"]
    assert problem_with('{"prediction": 1}') is None  # type: ignore[operator]
    assert problem_with('{"prediction": 3}') == "bad prediction"  # type: ignore[operator]
    assert problem_with("nope") == "answer is not JSON"  # type: ignore[operator]
    v2 = render_locustfile("http://h:1", _numeric_spec(), model="m", protocol="v2", batch_size=2)
    assert "/v2/models/m/infer" in v2
