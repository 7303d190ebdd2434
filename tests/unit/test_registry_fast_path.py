"""A cached registry model resolves without importing MLflow, and never goes stale on an alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabserve.registry import register_model_dir, resolve
from tabserve.settings import Settings

PROBE = """
import json, sys
from tabserve.registry import resolve
from tabserve.settings import Settings
model = resolve(sys.argv[1], Settings())
print(json.dumps({"path": str(model.path), "mlflow": "mlflow" in sys.modules}))
"""


def _resolve_in_subprocess(uri: str, home: Path) -> dict[str, object]:
    env = os.environ | {"TABSERVE_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, uri],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_cached_alias_and_version_resolve_without_mlflow(
    own_titanic_registry: tuple[Path, Settings],
) -> None:
    home, settings = own_titanic_registry
    first = resolve("models:/titanic@champion", settings)  # downloads into the cache
    by_alias = _resolve_in_subprocess("models:/titanic@champion", home)
    by_version = _resolve_in_subprocess(f"models:/titanic/{first.version}", home)
    assert by_alias == {"path": str(first.path), "mlflow": False}
    assert by_version == {"path": str(first.path), "mlflow": False}


def test_a_moved_alias_is_followed_not_served_from_cache(
    own_titanic_registry: tuple[Path, Settings], titanic_model_dir: Path
) -> None:
    home, settings = own_titanic_registry
    old = resolve("models:/titanic@champion", settings)
    new_version = register_model_dir(titanic_model_dir, "titanic", settings, alias="champion")
    moved = _resolve_in_subprocess("models:/titanic@champion", home)
    assert moved["path"] != str(old.path)
    assert Path(str(moved["path"])).name == str(new_version)
    # Once the new version is cached, the fast path serves it too.
    again = _resolve_in_subprocess("models:/titanic@champion", home)
    assert again == {"path": moved["path"], "mlflow": False}


def test_the_fast_alias_read_sends_mlflows_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a tracking server that needs a token, the watcher's alias read sends the one
    MLflow's client would (MLFLOW_TRACKING_TOKEN) — else it would fall back to a full fetch
    on every poll."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tabserve.registry import peek_version

    seen: list[str | None] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != "Bearer t0ken":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"model_version": {"version": "7"}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings = Settings(tracking_uri=url)
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
        assert peek_version("models:/churn@prod", settings) is None
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")
        assert peek_version("models:/churn@prod", settings) == "7"
        assert seen == [None, "Bearer t0ken"]
    finally:
        server.shutdown()
        server.server_close()
