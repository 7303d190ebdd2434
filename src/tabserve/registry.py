"""The MLflow model registry as tabserve sees it: resolve, list, show, promote, register.

The server imports this module, and the server install has no pandas, scipy or scikit-learn.
MLflow itself imports pandas when it happens to be installed (``mlflow.data`` registers a pandas
dataset constructor under ``suppress(ImportError)``), so MLflow is imported lazily and, when
pandas is not loaded yet, with pandas/scipy/sklearn masked so that optional import is skipped.
Only ``MlflowClient`` and ``mlflow.artifacts`` are used: no flavours, no fluent API.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve.errors import ServiceUnavailable, UserError
from tabserve.modeldir import MLMODEL_FILE, ModelDir
from tabserve.settings import Settings, require_writable
from tabserve.spec import FILENAME as SPEC_FILE

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MODELS_PREFIX = "models:/"
RUNS_PREFIX = "runs:/"
MODEL_ARTIFACT_PATH = "model"
REGISTER_EXPERIMENT = "tabserve-registered"
# Model-version tags tabserve writes (read by `models show` and the champion comparison).
TAG_METRIC_NAME = "tabserve.metric"
TAG_METRIC_VALUE = "tabserve.metric_value"
TAG_ONNX = "tabserve.onnx"
_HEAVY = ("pandas", "scipy", "sklearn")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z]+)/(?P<path>[^?#]+?)/?$")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")
# MLflow's single-tenant workspace (mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME).
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/name@alias`` or ``models:/name/3``."""

    name: str
    alias: str | None = None
    version: str | None = None


def parse_model_uri(uri: str) -> ModelRef:
    match = _URI.match(uri)
    if not match:
        raise UserError(
            f"bad model URI {uri!r}: use models:/NAME@ALIAS, models:/NAME/VERSION or a directory"
        )
    return ModelRef(match["name"], match["alias"], match["version"])


_mask_heavy = True


def load_mlflow_whole() -> None:
    """From now on this process imports MLflow with pandas and its flavours (for adopting a
    model), not under the mask that keeps a plain resolve light. Call it before the first
    MLflow import: a flavour imported under the mask stays half-imported."""
    global _mask_heavy
    _mask_heavy = False


def _import_client() -> type[MlflowClient]:
    if importlib.util.find_spec("mlflow") is None:
        # The serving image has no MLflow (docs/adr/0011): it serves directories.
        raise UserError(
            "resolving a models:/ or runs:/ URI needs MLflow, which this install does not have: "
            "pip install 'tabserve[registry]', or fetch the model where MLflow is installed "
            "(tabserve fetch URI --out DIR) and serve the directory"
        )
    masked = [m for m in _HEAVY if m not in sys.modules] if _mask_heavy else []
    if "pandas" in masked:
        for m in masked:
            sys.modules[m] = None  # type: ignore[assignment]
    try:
        import mlflow.artifacts  # noqa: F401  (loaded under the same mask)
        from mlflow.tracking import MlflowClient
    finally:
        for m in masked:
            if sys.modules.get(m, "") is None:
                del sys.modules[m]
    return MlflowClient


def client(settings: Settings) -> MlflowClient:
    """An MlflowClient for the settings' tracking and registry URIs (server checked first)."""
    check_reachable(settings)
    cls = _import_client()
    # "Creating initial MLflow database tables..." on every fresh store is noise to a user.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    return cls(
        tracking_uri=settings.resolved_tracking_uri(),
        registry_uri=settings.resolved_registry_uri(),
    )


def check_reachable(settings: Settings, timeout_s: float = 5.0) -> None:
    """Fail fast with the URL when an MLflow tracking server does not answer.

    MLflow's own client retries a dead server with backoff for minutes before failing.
    """
    uri = settings.resolved_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    import httpx

    try:
        httpx.get(uri.rstrip("/") + "/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} is not reachable ({type(exc).__name__}); "
            "start it (`mlflow server`) or set TABSERVE_TRACKING_URI"
        ) from None


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (
        "not found" in str(exc).lower()
    )


def _mlflow_error(exc: Exception, what: str, settings: Settings) -> UserError:
    """MlflowException → a one-line UserError (or ServiceUnavailable for connection trouble)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Connection" in text or "Max retries" in text:
        return ServiceUnavailable(
            f"MLflow at {settings.resolved_tracking_uri()} is not reachable: {text}"
        )
    if _is_not_found(exc):
        return UserError(f"{what} not found in the registry at {settings.resolved_registry_uri()}")
    return UserError(f"{what}: {text}")


def _version_for(ref: ModelRef, mlflow_client: MlflowClient, settings: Settings) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        if ref.alias is not None:
            return mlflow_client.get_model_version_by_alias(ref.name, ref.alias)
        return mlflow_client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        what = (
            f"model {ref.name!r} alias {ref.alias!r}"
            if ref.alias is not None
            else f"model {ref.name!r} version {ref.version}"
        )
        raise _mlflow_error(exc, what, settings) from None


def fetch(uri: str, settings: Settings) -> ModelDir:
    """The local directory ``uri`` names, unchecked: a tabserve model or a plain MLflow model.

    - a directory: itself;
    - ``models:/name/3`` or ``models:/name@alias``: ``<cache>/<name>/<version>``, downloaded
      once (versions are immutable; aliases are looked up every time, without importing MLflow
      when the version is cached);
    - ``runs:/<run_id>/<path>``: ``<cache>/runs/<run_id>/<path>``, downloaded once.
    """
    if uri.startswith(RUNS_PREFIX):
        return _fetch_run(uri, settings)
    if not uri.startswith(MODELS_PREFIX):
        path = Path(uri).expanduser()
        if not path.is_dir():
            raise UserError(f"{uri}: not a model directory, and not a models:/ or runs:/ URI")
        return ModelDir(path.resolve())
    ref = parse_model_uri(uri)
    cached = _cached_model(ref, settings)
    if cached is not None:
        return cached
    mlflow_client = client(settings)
    version = _version_for(ref, mlflow_client, settings)
    target = settings.resolved_cache_dir() / ref.name / str(version.version)
    if not _complete(target):
        _download(mlflow_client, ref.name, str(version.version), target, settings)
        ModelDir(target).write_info(
            name=ref.name, version=str(version.version), run_id=version.run_id
        )
    return ModelDir(target)


def resolve(uri: str, settings: Settings) -> ModelDir:
    """A checked tabserve model directory for ``uri`` (see ``fetch``). A plain MLflow model
    is not one until adopted: ``tabserve.adoption.resolve`` does both."""
    model = fetch(uri, settings)
    model.check()
    return model


def peek_version(uri: str, settings: Settings) -> str | None:
    """The version a ``models:/`` URI names now, cheaply (no MLflow import); None if unknown.

    For a hot-reload watcher that must not pay an MLflow import (or a subprocess) per poll.
    """
    try:
        ref = parse_model_uri(uri)
        return ref.version or _alias_version_fast(ref.name, str(ref.alias), settings)
    except Exception:
        return None


def _complete(target: Path) -> bool:
    """A download is renamed into place whole: an MLmodel or a spec marks it present."""
    return (target / MLMODEL_FILE).is_file() or (target / SPEC_FILE).is_file()


def _fetch_run(uri: str, settings: Settings) -> ModelDir:
    match = _RUNS_URI.match(uri)
    if not match:
        raise UserError(f"bad run URI {uri!r}: use runs:/<run_id>/<artifact path>")
    target = settings.resolved_cache_dir() / "runs" / match["run"] / match["path"]
    if _complete(target):
        return ModelDir(target)
    check_reachable(settings)
    _import_client()
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    require_writable(target.parent, "the model cache")
    staging = Path(tempfile.mkdtemp(prefix=".run-", dir=target.parent))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(staging),
                tracking_uri=settings.resolved_tracking_uri(),
            )
        )  # fmt: skip
        if not _complete(local):
            raise UserError(f"{uri} holds no MLflow model (no MLmodel file)")
        try:
            os.rename(local, target)
        except OSError:
            if not _complete(target):
                raise
    except MlflowException as exc:
        raise _mlflow_error(exc, f"artifacts of {uri}", settings) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ModelDir(target).write_info(name=match["path"].rsplit("/", 1)[-1], run_id=match["run"])
    return ModelDir(target)


def _cached_model(ref: ModelRef, settings: Settings) -> ModelDir | None:
    """The cached version ``ref`` names, found without importing MLflow; None to ask MLflow.

    Importing the MLflow client and opening its store costs ~2.5 s, most of a server's cold
    start. A version number needs no lookup (versions are immutable); an alias is one query:
    MLflow's REST endpoint on a tracking server, or its ``registered_model_aliases`` table in the
    embedded SQLite store (read-only). Anything unexpected falls back to the MLflow client.
    """
    try:
        version = ref.version or _alias_version_fast(ref.name, str(ref.alias), settings)
    except Exception:
        return None
    if version is None:
        return None
    target = settings.resolved_cache_dir() / ref.name / str(version)
    return ModelDir(target) if _complete(target) else None


def _alias_version_fast(name: str, alias: str, settings: Settings) -> str | None:
    uri = settings.resolved_registry_uri()
    if uri.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(
            f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias",
            params={"name": name, "alias": alias},
            timeout=5.0,
            **_mlflow_http_options(),
        )
        return str(response.json()["model_version"]["version"]) if response.is_success else None
    if uri.startswith("sqlite:///"):
        # sqlite:////abs/path or sqlite:///relative/to/cwd, as SQLAlchemy reads them.
        return _sqlite_alias_version(Path(uri.removeprefix("sqlite:///")).resolve(), name, alias)
    return None


def _mlflow_http_options() -> dict[str, Any]:
    """Credentials and TLS options from the environment variables MLflow's own client reads,
    so the fast alias read works against a tracking server that needs them."""
    env = os.environ
    options: dict[str, Any] = {}
    if env.get("MLFLOW_TRACKING_TOKEN"):
        options["headers"] = {"Authorization": f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"}
    elif env.get("MLFLOW_TRACKING_USERNAME"):
        options["auth"] = (env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        options["verify"] = False
    elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        options["verify"] = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    return options


class _UnknownSchema(Exception):
    """The embedded store's schema is not one this MLflow knows: ask MLflow instead."""


def _sqlite_alias_version(path: Path, name: str, alias: str) -> str | None:
    """The alias's version read from MLflow's SQLite store directly, or _UnknownSchema.

    The table is MLflow's, not a documented API, so the read is trusted only when (1) the
    store's Alembic revision is one the installed MLflow's migrations define — a store written
    by a newer MLflow may mean something else by the same rows — and (2) the columns read are
    there. Since the workspaces migration (1b5f0d9ad7c1) an alias is keyed by workspace too: the
    embedded store is single-tenant and MLflow reads the ``default`` workspace there, so do we;
    with MLFLOW_ENABLE_WORKSPACES set the workspace is MLflow's business (fall back).
    """
    import sqlite3

    if os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("1", "true", "yes"):
        raise _UnknownSchema("workspaces enabled")
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5) as db:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
        if revision is None or revision[0] not in _mlflow_schema_revisions():
            raise _UnknownSchema(f"schema revision {revision and revision[0]!r}")
        columns = {row[1] for row in db.execute("PRAGMA table_info(registered_model_aliases)")}
        if not {"name", "alias", "version"} <= columns:
            raise _UnknownSchema(f"registered_model_aliases has columns {sorted(columns)}")
        query = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
        params: tuple[str, ...] = (name, alias)
        if "workspace" in columns:
            query += " AND workspace = ?"
            params += (DEFAULT_WORKSPACE,)
        row = db.execute(query, params).fetchone()
    return str(row[0]) if row else None


@functools.lru_cache(maxsize=1)
def _mlflow_schema_revisions() -> frozenset[str]:
    """The Alembic revisions the installed MLflow's migrations define, read from its files
    (without importing MLflow: that is what the fast path avoids); empty without MLflow."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return frozenset()
    versions = Path(spec.origin).parent / "store" / "db_migrations" / "versions"
    pattern = re.compile(r"^revision\s*=\s*[\"'](\w+)[\"']", re.MULTILINE)
    found = set()
    for script in versions.glob("*.py"):
        match = pattern.search(script.read_text(errors="replace"))
        if match:
            found.add(match[1])
    return frozenset(found)


def _download(
    mlflow_client: MlflowClient, name: str, version: str, target: Path, settings: Settings
) -> None:
    """Download into a sibling temp dir and rename, so concurrent workers never see half."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    require_writable(target.parent, "the model cache")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        # The version's own source URI (file:, s3:, mlflow-artifacts:): `models:/` URIs are
        # resolved against the process-global registry, not the one passed in.
        source = mlflow_client.get_model_version_download_uri(name, version)
        _check_local_source(source, f"models:/{name}/{version}", settings)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source,
                dst_path=str(staging),
                tracking_uri=settings.resolved_tracking_uri(),
            )
        )
        if not _complete(local):
            raise UserError(f"models:/{name}/{version} holds no MLflow model (no MLmodel file)")
        try:
            os.rename(local, target)
        except OSError:
            if not _complete(target):  # lost a race only if the winner is whole
                raise
    except MlflowException as exc:
        raise _mlflow_error(exc, f"artifacts of models:/{name}/{version}", settings) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_local_source(source: str, what: str, settings: Settings) -> None:
    """An embedded store records absolute ``file://`` artifact paths of the machine that wrote
    it. Mounted elsewhere (a host's TABSERVE_HOME in a container), those paths do not exist:
    say so, instead of MLflow's "not found", which reads as if the registry lacked the model."""
    if not source.startswith("file:"):
        return
    from urllib.parse import unquote, urlsplit

    path = Path(unquote(urlsplit(source).path))
    if not path.exists():
        raise UserError(
            f"artifacts of {what} are recorded at {path}, which does not exist here: the store "
            f"{settings.resolved_registry_uri()} was written at another path. Mount it at the "
            f"path it was written at, or run `tabserve fetch {what} --out DIR` where it was "
            "trained and serve DIR"
        )


def current_alias_version(name: str, alias: str, settings: Settings) -> str | None:
    """The version an alias points at now (None when the alias or model does not exist)."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    try:
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _is_not_found(exc) or "alias" in str(exc).lower():
            return None
        raise _mlflow_error(exc, f"model {name!r} alias {alias!r}", settings) from None


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """One row per registered model: name, latest version, aliases."""
    mlflow_client = client(settings)
    rows = []
    for model in mlflow_client.search_registered_models():
        versions = [int(v.version) for v in (model.latest_versions or [])]
        rows.append(
            {
                "name": model.name,
                "latest_version": str(max(versions)) if versions else None,
                "aliases": {k: str(v) for k, v in sorted((model.aliases or {}).items())},
            }
        )
    return sorted(rows, key=lambda r: r["name"])


def show_model(name: str, settings: Settings) -> dict[str, Any]:
    """A registered model with every version: aliases, metric tags, ONNX status, run id."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    try:
        model = mlflow_client.get_registered_model(name)
        versions = mlflow_client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        raise _mlflow_error(exc, f"model {name!r}", settings) from None
    aliases_by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases_by_version.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version)):
        tags = v.tags or {}
        rows.append(
            {
                "version": str(v.version),
                "aliases": sorted(aliases_by_version.get(str(v.version), [])),
                "metric": tags.get(TAG_METRIC_NAME),
                "metric_value": tags.get(TAG_METRIC_VALUE),
                "onnx": tags.get(TAG_ONNX),
                "run_id": v.run_id,
                "created": v.creation_timestamp,
            }
        )
    aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
    return {"name": model.name, "aliases": aliases, "versions": rows}


def promote(name: str, version: str, alias: str, settings: Settings) -> str | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before (or None)."""
    from mlflow.exceptions import MlflowException

    previous = current_alias_version(name, alias, settings)
    mlflow_client = client(settings)
    try:
        mlflow_client.get_model_version(name, str(version))
        mlflow_client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as exc:
        raise _mlflow_error(exc, f"model {name!r} version {version}", settings) from None
    return previous


def experiment_id_for(mlflow_client: MlflowClient, name: str, settings: Settings) -> str:
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    # The embedded store has no server to choose an artifact root: keep it under TABSERVE_HOME.
    embedded = not settings.resolved_tracking_uri().startswith(("http://", "https://"))
    location = settings.artifact_root() + "/" + name if embedded else None
    return str(mlflow_client.create_experiment(name, artifact_location=location))


def register_model_dir(
    model_dir: Path,
    name: str,
    settings: Settings,
    *,
    alias: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log a model directory as the ``model`` artifact of a run and register it.

    With ``run_id`` the directory is logged into that run (training's parent run); otherwise a
    run is created in the ``tabserve-registered`` experiment. Returns the new version.
    """
    mlflow_client = client(settings)
    own_run = run_id is None
    if own_run:
        experiment_id = experiment_id_for(mlflow_client, REGISTER_EXPERIMENT, settings)
        run_id = mlflow_client.create_run(experiment_id, run_name=f"register-{name}").info.run_id
    assert run_id is not None
    mlflow_client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
    if own_run:
        mlflow_client.set_terminated(run_id)
    source = f"{mlflow_client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_PATH}"
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)
    version = mlflow_client.create_model_version(name, source, run_id=run_id, tags=tags or {})
    if alias:
        mlflow_client.set_registered_model_alias(name, alias, str(version.version))
    return str(version.version)
