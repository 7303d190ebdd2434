"""The app's front on one small route: the body limit after decompression, request metrics."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator
from types import SimpleNamespace

import orjson
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from tabserve.serving.admission import Admission
from tabserve.serving.app import TabserveApp
from tabserve.serving.http import Call, Reply, Route
from tabserve.settings import Settings

LIMIT = 64 * 1024


async def echo(call: Call) -> Reply:
    body = await call.body()
    seen = {"length": len(body), "head": body[:20].decode("latin-1")}
    return Reply(orjson.dumps(seen))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    state = SimpleNamespace(
        plane=None,
        settings=Settings(max_body_bytes=LIMIT),
        admission=Admission(1000),
        tracing=None,
    )
    app = TabserveApp(
        state,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        [Route("/echo/{thing}", echo, ("POST",))],
        open_log=lambda: None,
        load_in_background=True,
        watch_uri=None,
    )
    yield TestClient(app)  # no lifespan: there is no model to load


def post(client: TestClient, body: bytes | Iterator[bytes], **headers: str) -> tuple[int, dict]:
    r = client.post("/echo/x", content=body, headers=headers)
    return r.status_code, r.json()


def test_identity_bodies_up_to_the_limit_pass(client: TestClient) -> None:
    status, seen = post(client, b"a" * LIMIT)
    assert status == 200 and seen["length"] == LIMIT


def test_a_declared_length_over_the_limit_is_413_unread(client: TestClient) -> None:
    status, body = post(client, b"a" * (LIMIT + 1))
    assert status == 413 and "limit" in body["error"]


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"a" * (LIMIT // 8)

    status, body = post(client, chunks())
    assert status == 413 and "limit" in body["error"]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("GZIP", gzip.compress)],
)
def test_compressed_bodies_reach_the_route_inflated(
    client: TestClient, encoding: str, compress: object
) -> None:
    raw = b'{"hello": "world"}' * 100
    status, seen = post(client, compress(raw), **{"content-encoding": encoding})  # type: ignore[operator]
    assert status == 200
    assert seen == {"length": len(raw), "head": raw[:20].decode()}


def bomb(inflated: int) -> bytes:
    """gzip of ``inflated`` zero bytes, built in chunks so the test itself stays small."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [packer.compress(block) for _ in range(inflated >> 20)]
    return b"".join([*parts, packer.flush()])


def test_a_gzip_bomb_is_413_without_inflating_it(client: TestClient) -> None:
    body = bomb(200 << 20)  # 200 MiB of zeros in ~200 KiB: over the limit when compressed too
    small_bomb = bomb(8 << 20)[:LIMIT]  # under the limit on the wire, 8 MiB once inflated
    assert len(body) > LIMIT and len(small_bomb) <= LIMIT
    tracemalloc.start()
    try:
        status, reply = post(client, small_bomb, **{"content-encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413 and "decompressed" in reply["error"]
    assert peak < 8 * LIMIT, f"inflating cost {peak} bytes for a {LIMIT}-byte limit"
    status, _ = post(client, body, **{"content-encoding": "gzip"})
    assert status == 413


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"this is not gzip", "not valid gzip"),
        (gzip.compress(b"x" * 1000)[:-12], "truncated"),
        (gzip.compress(b"a") + b"junk", "data after"),
    ],
)
def test_broken_gzip_is_400(client: TestClient, body: bytes, why: str) -> None:
    status, reply = post(client, body, **{"content-encoding": "gzip"})
    assert status == 400 and why in reply["error"]


def test_unknown_encodings_are_415(client: TestClient) -> None:
    status, reply = post(client, b"xx", **{"content-encoding": "br"})
    assert status == 415 and "'br'" in reply["error"]


def sample(route: str, status: str) -> float:
    labels = {"route": route, "status": status, "model": "", "version": ""}
    return REGISTRY.get_sample_value("tabserve_requests_total", labels) or 0.0


def test_metrics_label_routes_by_template_and_count_early_answers(client: TestClient) -> None:
    before_ok, before_413 = sample("/echo/{thing}", "200"), sample("/echo/{thing}", "413")
    before_unmatched = sample("unmatched", "404")
    post(client, b"1")
    post(client, bomb(1 << 20)[: LIMIT // 2], **{"content-encoding": "gzip"})  # 413 in receive
    assert client.post("/nowhere/at/all", content=b"{}").status_code == 404
    assert sample("/echo/{thing}", "200") == before_ok + 1
    assert sample("/echo/{thing}", "413") == before_413 + 1
    # Unknown paths share one label: a scanner cannot grow the metric's label set.
    assert sample("unmatched", "404") == before_unmatched + 1
    assert sample("/nowhere/at/all", "404") == 0.0
