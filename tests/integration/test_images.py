"""The images, built and run for real on a Docker engine (deploy/Dockerfile, Dockerfile.train).

The serving image serves a model directory mounted read-only, hardened as Kubernetes runs it
(read-only root, no capabilities, no privilege escalation, uid 10001), turns healthy through its
own HEALTHCHECK, answers /predict and v2 from the host, and stops gracefully by container id.
It holds no MLflow and says so in one line when given a registry URI; an unwritable home is one
line naming the directory and the uid. The training image runs as uid 10001 and fetches a model
from a host-trained store mounted at the path it was written at (README, "Images").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.docker import Images, docker

pytestmark = pytest.mark.integration

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25,
          "Embarked": "S"}  # fmt: skip
# What Kubernetes' securityContext in deploy/k8s/ asks for, as docker run flags.
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--tmpfs", "/home/tabserve:uid=10001,gid=10001",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]  # fmt: skip
MAX_ADDED_MB = 170  # the serving image's budget over its base (issue 13)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory uid 10001 in a container can read (pytest's temp dirs are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tabserve-image-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _size_mb(image: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def test_serving_image_serves_a_mounted_model(
    tabserve_images: Images, run_container: Any, titanic_model_dir: Path, shared_dir: Path
) -> None:
    model = shutil.copytree(titanic_model_dir, shared_dir / "titanic")
    container = run_container(
        tabserve_images.serve,
        flags=[*HARDENED, "-p", "127.0.0.1::8000", "-v", f"{model}:/mnt/models:ro"],
    )
    seconds = container.wait_healthy(timeout_s=90)
    print(f"\nserving container healthy {seconds:.1f} s after docker run")
    config = container.inspect()["Config"]
    assert config["User"] == "10001:10001"
    url = f"http://127.0.0.1:{container.host_port()}"

    answer = httpx.post(f"{url}/predict", json=RECORD, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prediction"] in (0, 1) and body["model"] == "titanic"
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6

    inputs = [{"name": k, "shape": [1, 1],
               "datatype": "BYTES" if isinstance(v, str) else "INT64" if isinstance(v, int)
               else "FP64", "data": [v]} for k, v in RECORD.items()]  # fmt: skip
    inputs[2]["datatype"] = "FP64"  # Age is a float feature; 22 is sent as 22.0 on the wire
    inputs[2]["data"] = [22.0]
    inputs[5]["data"] = [7.25]
    v2 = httpx.post(f"{url}/v2/models/titanic/infer", json={"inputs": inputs}, timeout=10)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs and all(o["data"] for o in outputs.values())
    # The same answer through both protocols.
    label = next(o for o in outputs.values() if o["datatype"] in ("INT64", "BYTES"))
    assert str(label["data"][0]) == str(body["prediction"])
    assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200

    # SIGTERM drains and exits 0, well inside docker's grace period.
    docker("stop", "--time", "40", container.id, timeout=60)
    assert container.inspect()["State"]["ExitCode"] == 0, container.logs()


def test_serving_image_is_slim_and_has_no_mlflow(tabserve_images: Images) -> None:
    added = _size_mb(tabserve_images.serve) - _size_mb(tabserve_images.base)
    print(f"\nserving image: +{added:.0f} MB over {tabserve_images.base}")
    assert added < MAX_ADDED_MB
    probe = ("import importlib.util as u; print([m for m in ('mlflow', 'boto3', 'sklearn', "
             "'scipy', 'pandas') if u.find_spec(m)])")  # fmt: skip
    found = docker("run", "--rm", "--entrypoint", "python", tabserve_images.serve, "-c", probe)
    assert found == "[]"


def test_a_registry_uri_in_the_serving_image_is_one_line(tabserve_images: Images) -> None:
    done = subprocess.run(
        ["docker", "run", "--rm", tabserve_images.serve, "serve", "models:/titanic@champion"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: resolving a models:/ or runs:/ URI needs MLflow, which this install does not "
        "have: pip install 'tabserve[registry]', or fetch the model where MLflow is installed "
        "(tabserve fetch URI --out DIR) and serve the directory"
    ]


def test_an_unwritable_home_is_one_line(
    tabserve_images: Images, titanic_model_dir: Path, shared_dir: Path
) -> None:
    model = shutil.copytree(titanic_model_dir, shared_dir / "titanic")
    home = shared_dir / "home"  # root's, 0755: uid 10001 can read it, not write it
    home.mkdir()
    done = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{model}:/mnt/models:ro", "-v", f"{home}:/home/tabserve",
         tabserve_images.serve],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: TABSERVE_HOME (prediction log and spool) /home/tabserve is not writable by uid "
        "10001 (Permission denied): mount a volume that uid can write, or point TABSERVE_HOME "
        "elsewhere"
    ]


def test_training_image_fetches_from_a_host_trained_store(
    tabserve_images: Images, titanic_model_dir: Path, shared_dir: Path
) -> None:
    """The README's recipe: mount the host's TABSERVE_HOME at the path it was written at."""
    from tabserve.registry import register_model_dir
    from tabserve.settings import Settings

    home = shared_dir / "home"
    register_model_dir(titanic_model_dir, "titanic", Settings(home=home), alias="champion")
    out = shared_dir / "models"
    out.mkdir()
    for path in (home, out):  # the container's uid owns them, as a user's files are theirs
        subprocess.run(["chown", "-R", "10001:10001", str(path)], check=True)
    assert docker("run", "--rm", "--entrypoint", "id", tabserve_images.train, "-u") == "10001"

    # Mounted elsewhere, the store's absolute artifact paths point nowhere: one line says so.
    elsewhere = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{home}:/data", "-e", "TABSERVE_HOME=/data",
         tabserve_images.train, "fetch", "models:/titanic@champion"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert elsewhere.returncode == 2
    lines = elsewhere.stderr.strip().splitlines()
    assert len(lines) == 1 and f"are recorded at {home}/mlartifacts/" in lines[0], lines
    assert (
        "does not exist here: the store sqlite:////data/mlflow.db was written at another path"
        in lines[0]
    )

    # At the path it was written at, the store resolves, and the model lands in the volume.
    fetch = ["fetch", "models:/titanic@champion", "--out", "/mnt/models/titanic"]
    same_path = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{home}:{home}", "-e", f"TABSERVE_HOME={home}",
         "-v", f"{out}:/mnt/models", tabserve_images.train, *fetch],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert same_path.returncode == 0, same_path.stderr
    assert (out / "titanic" / "feature_spec.json").is_file()
    assert (out / "titanic" / "model.onnx").is_file()


def test_spooled_rows_survive_a_container_restart(
    tabserve_images: Images,
    run_container: Any,
    titanic_model_dir: Path,
    shared_dir: Path,
    postgres_server: Any,
) -> None:
    """ADR 0005's promise in a container: rows spooled while PostgreSQL was down live in the
    volume at TABSERVE_HOME (k8s: an emptyDir), and the next container replays them."""
    import uuid

    import sqlalchemy as sa

    from tabserve.local_server import free_port

    database = f"spool_{uuid.uuid4().hex[:8]}"
    # NullPool: the server is restarted below, a pooled connection would not survive it.
    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)  # fmt: skip
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {database}"))
    log_db = postgres_server.url.rsplit("/", 1)[0] + f"/{database}"
    model = shutil.copytree(titanic_model_dir, shared_dir / "titanic")
    volume = docker("volume", "create")
    port = free_port()
    flags = ["--network", "host", "-e", "TABSERVE_HOST=127.0.0.1", "-e", f"TABSERVE_PORT={port}",
             "-e", f"TABSERVE_LOG_DB={log_db}", "-v", f"{model}:/mnt/models:ro",
             "-v", f"{volume}:/home/tabserve", "--read-only", "--tmpfs", "/tmp"]  # fmt: skip
    spool_root = Path(docker("volume", "inspect", "--format", "{{.Mountpoint}}", volume))

    def spooled_rows() -> int:
        return sum(len(p.read_text().splitlines()) for p in spool_root.rglob("spool-*.jsonl"))

    started: list[str] = []
    try:
        postgres_server.stop()
        first = run_container(tabserve_images.serve, flags=flags)
        started.append(first.id)
        first.wait_healthy(timeout_s=90)  # a dead log database does not stop serving
        for _ in range(20):
            answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=RECORD, timeout=10)
            assert answer.status_code == 200
        docker("stop", "--time", "40", first.id, timeout=60)
        assert first.inspect()["State"]["ExitCode"] == 0, first.logs()
        assert spooled_rows() == 20, first.logs()

        postgres_server.start()
        second = run_container(tabserve_images.serve, flags=flags)  # a new container, same volume
        started.append(second.id)
        second.wait_healthy(timeout_s=90)
        engine = sa.create_engine(log_db)
        # The new container's writer claims the old writer's segments as orphans: at once
        # (their PID is free, or only a thread id in the new container, predlog/spool.py), or
        # at the next orphan scan if a short-lived process (a healthcheck) holds it just then.
        from tabserve.predlog.process import ORPHAN_SCAN_INTERVAL_S

        replay_started = time.monotonic()
        deadline = replay_started + ORPHAN_SCAN_INTERVAL_S + 30
        count = 0
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if sa.inspect(connection).has_table("predictions"):
                    count = connection.execute(
                        sa.text("SELECT count(*) FROM predictions")
                    ).scalar_one()
            if count >= 20 and spooled_rows() == 0:
                break
            time.sleep(0.5)
        engine.dispose()
        assert (count, spooled_rows()) == (20, 0), second.logs()
        print(f"\nspooled rows replayed {time.monotonic() - replay_started:.1f} s after restart")
    finally:
        if not postgres_server.is_running():
            postgres_server.start()
        docker("rm", "-f", *started, check=False)
        docker("volume", "rm", volume, check=False)
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()
