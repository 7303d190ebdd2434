"""The floor: a constant-answer server on the same stack as ``tabserve serve``.

Same FastAPI, uvicorn (uvloop + httptools when installed) and orjson as the real server; its
``POST /predict`` reads and parses the body, then answers a fixed v1 prediction with no model,
no validation and no metrics. Whatever a load test measures here is the cost of the stack and
the load generator, so tabserve's own cost is the difference. Used by the serving benchmarks
(a benchmark baseline, so it lives here and not in the package a server installs).

    python benchmarks/peers/floor.py --port 8001 [--host 127.0.0.1] [--workers 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

ANSWER = orjson.dumps(
    {
        "prediction": 0,
        "probabilities": {"0": 0.9, "1": 0.1},
        "model": "floor",
        "version": "1",
    }
)


def create_floor_app() -> FastAPI:
    app = FastAPI(title="tabserve floor")

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        orjson.loads(await request.body())  # parsing is part of any real server's floor
        return Response(ANSWER, media_type="application/json")

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"alive"}', media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        "floor:create_floor_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
