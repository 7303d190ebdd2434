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


def _store_path(settings: Settings) -> Path:
    return Path(settings.resolved_registry_uri().removeprefix("sqlite:///"))


def test_the_installed_mlflow_schema_is_read_fast(
    own_titanic_registry: tuple[Path, Settings],
) -> None:
    """Relocking to an MLflow whose store this check does not accept fails here, not silently
    (a disabled fast path only shows up as a slower cold start)."""
    from tabserve.registry import _alias_version_fast

    _, settings = own_titanic_registry
    assert _alias_version_fast("titanic", "champion", settings) == "1"
    assert _alias_version_fast("titanic", "nope", settings) is None


def test_an_unknown_schema_revision_falls_back_to_mlflow(
    own_titanic_registry: tuple[Path, Settings],
) -> None:
    import sqlite3

    import pytest

    from tabserve.registry import _alias_version_fast, _UnknownSchema

    _, settings = own_titanic_registry
    with sqlite3.connect(_store_path(settings)) as db:
        db.execute("UPDATE alembic_version SET version_num = 'from_a_newer_mlflow'")
    with pytest.raises(_UnknownSchema):
        _alias_version_fast("titanic", "champion", settings)
    # resolve() still works, through the MLflow client.
    assert resolve("models:/titanic@champion", settings).version == "1"


def test_an_alias_in_another_workspace_is_not_read(
    own_titanic_registry: tuple[Path, Settings],
) -> None:
    """MLflow's single-tenant store reads the default workspace only; so does the fast path."""
    import sqlite3

    from tabserve.registry import _alias_version_fast

    _, settings = own_titanic_registry
    with sqlite3.connect(_store_path(settings)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(registered_model_aliases)")}
        assert "workspace" in columns  # MLflow >= the workspaces migration (1b5f0d9ad7c1)
        db.execute("UPDATE registered_model_aliases SET workspace = 'team-b'")
    assert _alias_version_fast("titanic", "champion", settings) is None


def test_a_store_written_at_another_path_says_so(
    own_titanic_registry: tuple[Path, Settings], tmp_path: Path
) -> None:
    """A host's embedded store mounted elsewhere holds the host's absolute artifact paths."""
    import shutil

    import pytest

    from tabserve.errors import UserError

    home, _ = own_titanic_registry
    moved = tmp_path / "mounted-elsewhere"
    shutil.copytree(home, moved)
    shutil.rmtree(home / "mlartifacts")
    with pytest.raises(UserError, match=r"does not exist here: the store .* another path"):
        resolve("models:/titanic@champion", Settings(home=moved))
