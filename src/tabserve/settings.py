"""One settings object for the whole tool.

Every knob has an environment variable ``TABSERVE_<NAME>`` (and may sit in a ``.env`` file);
CLI flags override it. Nothing else in the code reads the environment for configuration.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tabserve.errors import UserError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``10m``, ``24h``, ``7d``, ``1w`` or a plain number of seconds;
    ValueError otherwise."""
    found = _DURATION.match(text.strip().lower())
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 24h or 7d")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TABSERVE_", env_file=".env", extra="ignore")

    # Where the embedded default keeps its state: mlflow.db, mlartifacts/, the model cache.
    home: Path = Field(default_factory=Path.cwd)
    # None means the embedded default: sqlite:///<home>/mlflow.db.
    tracking_uri: str | None = None
    registry_uri: str | None = None
    # Where resolved registry models are cached on this machine.
    cache_dir: Path | None = None

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    # OIP v2 over gRPC on its own port (every worker binds it, SO_REUSEPORT); None: off.
    grpc_port: int | None = None
    workers: int = 1
    # auto: ONNX when the model has it, else its native library (sklearn, xgboost, lightgbm).
    runtime: Literal["auto", "onnx", "native", "sklearn"] = "auto"
    max_batch_size: int = 64
    # 0: batch only what queued while the loop was busy (docs/adr/0002-dynamic-batching.md).
    max_queue_delay_us: int = 0
    batching: bool = True
    max_rows: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    # Load shedding: past this many model requests in flight per worker, answer 503 at once
    # (with Retry-After) rather than queue work nobody will wait for; 0 = no bound.
    max_in_flight: int = 256
    # A request that waited longer than this for the model answers 503 instead of running.
    request_timeout_s: float = 10.0
    # API keys: when set (comma-separated), every route but the health probes needs
    # "Authorization: Bearer <key>"; /metrics too unless metrics_public.
    api_keys: SecretStr | None = None
    metrics_public: bool = False
    intra_op_threads: int = 1
    ood: Literal["off", "warn", "reject"] = "warn"
    coerce: bool = False
    watch: bool = False
    watch_interval_s: float = 10.0
    # The server's own log lines: text or json (logs.py), and one line per request when
    # access_log (serving/access_log.py).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    # OpenTelemetry traces of requests (the otel extra; exporter, sampler and service name from
    # the standard OTEL_* variables; serving/tracing/).
    tracing: bool = False
    # For models tabserve did not train: training data to profile (categories, ranges, drift
    # reference), and the name to give their target.
    reference: Path | None = None
    target: str | None = None

    # Training: the grid on an existing Dask cluster (tcp://HOST:8786) instead of local processes.
    dask_scheduler: str | None = None

    # Monitoring. None means sqlite:///<home>/predictions.db; "off" disables the log.
    log_db: str | None = None
    log_sample: float = 1.0
    log_queue_size: int = 100_000
    # Where the model page looks for the latest `tabserve drift --json` report (drift.json);
    # None means the home.
    report_dir: Path | None = None
    # The server refreshes drift (and quality) from the log every this many seconds ("10m"
    # works too) over the last drift_window, sets the drift gauges and writes the report above;
    # None: off (serving/drift_refresh.py).
    drift_interval: float | None = None
    drift_window: str = "24h"

    @field_validator("drift_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value) if value.strip() else None
        return value

    @field_validator("drift_window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)  # an age `tabserve drift --since` takes
        if not value.strip()[-1:].isalpha():
            raise ValueError(f"{value!r} needs a unit: 30m, 24h, 7d")
        return value.strip()

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def resolved_registry_uri(self) -> str:
        return self.registry_uri or self.resolved_tracking_uri()

    def artifact_root(self) -> str:
        """Artifact location for experiments created against the embedded store."""
        return (self.home / "mlartifacts").resolve().as_uri()

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or (self.home / ".tabserve" / "models")

    def resolved_report_dir(self) -> Path:
        return self.report_dir or self.home

    def to_child_json(self) -> str:
        """These settings as JSON for a child process's environment, secrets in clear.

        ``model_dump_json`` masks a SecretStr as ``**********`` — right for anything printed,
        wrong for the server process ``tabserve serve`` execs, which needs the real keys."""
        payload = self.model_dump(mode="json")
        if self.api_keys is not None:
            payload["api_keys"] = self.api_keys.get_secret_value()
        return json.dumps(payload)

    def resolved_log_db(self) -> str | None:
        if self.log_db == "off":
            return None
        return self.log_db or f"sqlite:///{(self.home / 'predictions.db').resolve()}"


def require_writable(directory: Path, what: str) -> Path:
    """``directory``, created if missing; a one-line UserError when this process cannot write
    there (a read-only or foreign-owned volume mounted at TABSERVE_HOME, typically), naming the
    directory and the uid, instead of a PermissionError deep inside a server worker."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".tabserve-write-check-"):
            pass
    except OSError as exc:
        uid = os.getuid() if hasattr(os, "getuid") else "?"
        raise UserError(
            f"{what} {directory} is not writable by uid {uid} ({exc.strerror or exc}): "
            "mount a volume that uid can write, or point TABSERVE_HOME elsewhere"
        ) from None
    return directory


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
