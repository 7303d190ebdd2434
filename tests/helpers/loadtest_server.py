"""A small stand-in model server for the load tester's tests, run as a real process.

It speaks the tabserve contract (``GET /spec``, ``POST /predict`` v1, ``/v2/models/{m}/infer``)
with a FeatureSpec built by ``build_spec`` from a small frame, and can misbehave on purpose:

    --mode ok      valid answers
    --mode wrong   200 with a prediction outside the label set
    --mode error   500 on every prediction
    --mode close   valid answers, each with ``Connection: close`` (the client must reconnect)
    --delay-ms D --serial   one request at a time, D ms each (a server of known capacity)

Run: ``python tests/helpers/loadtest_server.py --port P [--mode ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tabserve.local_server import free_port

MODEL = "toy"


def toy_spec_json() -> bytes:
    import pandas as pd

    from tabserve.training.profile import build_spec

    n = 60
    frame = pd.DataFrame(
        {
            "Pclass": [1 + i % 3 for i in range(n)],
            "Sex": ["male" if i % 3 else "female" for i in range(n)],
            "Age": [None if i % 10 == 0 else 5.0 + i for i in range(n)],
            "Fare": [7.25 + 3 * i for i in range(n)],
            "Alone": [i % 2 == 0 for i in range(n)],
            "Survived": [i % 2 for i in range(n)],
        }
    )
    return build_spec(frame, "Survived").to_json()


def build_app(mode: str, delay_ms: float, serial: bool):  # type: ignore[no-untyped-def]
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    spec = toy_spec_json()
    lock = asyncio.Lock()

    closing = {"connection": "close"} if mode == "close" else None

    def json(payload: object, status: int = 200) -> Response:
        return Response(
            orjson.dumps(payload), status, headers=closing, media_type="application/json"
        )

    async def work() -> None:
        if delay_ms <= 0:
            return
        if serial:
            async with lock:
                await asyncio.sleep(delay_ms / 1000)
        else:
            await asyncio.sleep(delay_ms / 1000)

    def label() -> object:
        return "banana" if mode == "wrong" else 1

    async def predict(request: Request) -> Response:
        body = orjson.loads(await request.body())
        await work()
        if mode == "error":
            return json({"error": "boom"}, 500)
        one = {"prediction": label(), "probabilities": {"0": 0.3, "1": 0.7}}
        if isinstance(body, list):
            return json({"predictions": [one] * len(body), "model": MODEL, "version": "1"})
        return json({**one, "model": MODEL, "version": "1"})

    async def infer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        await work()
        if mode == "error":
            return json({"error": "boom"}, 500)
        n = body["inputs"][0]["shape"][0]
        outputs = [
            {"name": "label", "shape": [n], "datatype": "INT64", "data": [label()] * n},
            {"name": "probabilities", "shape": [n, 2], "datatype": "FP64", "data": [0.3, 0.7] * n},
        ]
        return json({"model_name": MODEL, "model_version": "1", "outputs": outputs})

    async def get_spec(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def health(request: Request) -> Response:
        return json({"status": "ok"})

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/spec", get_spec),
            Route("/health", health),
        ]
    )


@contextlib.contextmanager
def running_server(
    mode: str = "ok", delay_ms: float = 0.0, serial: bool = False, startup_s: float = 30.0
) -> Iterator[str]:
    """Start the stand-in server as a subprocess; yield its URL; stop it by PID."""
    port = free_port()
    cmd = [sys.executable, str(Path(__file__)), "--port", str(port), "--mode", mode]
    cmd += ["--delay-ms", str(delay_ms)] + (["--serial"] if serial else [])
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"test server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["ok", "wrong", "error", "close"], default="ok")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--serial", action="store_true")
    args = parser.parse_args()
    app = build_app(args.mode, args.delay_ms, args.serial)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
