"""The raw floor: a bare ASGI callable on uvicorn answering a constant — the limit of this
machine's HTTP stack (uvicorn + httptools + uvloop) with no framework and no model at all.

    python raw_floor.py --port 8006
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn

ANSWER = orjson.dumps(
    {"prediction": 0, "probabilities": {"0": 0.9, "1": 0.1}, "model": "floor", "version": "1"}
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        orjson.loads(body)  # parsing is part of any real server's floor
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8006)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
