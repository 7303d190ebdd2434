"""pyproject.toml and requirements.lock: ranges for users, one lock for CI and the images.

The published extras carry ranges, never == pins (a pin conflicts with a team's own MLflow or
numpy); the lock pins every one of them to a version inside its range, so `make install`, CI and
both images (pip -c requirements.lock) install what was tested. Checked offline: re-resolving is
`make lock` (uv), which needs the index.
"""

from __future__ import annotations

import re
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import tabserve

tomllib = pytest.importorskip("tomllib")  # 3.11+; CI runs 3.11
ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirements() -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        found += [Requirement(r) for r in extra]
    return [r for r in found if canonicalize_name(r.name) != "tabserve"]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def test_no_exact_pins_in_what_users_install() -> None:
    for requirement in _requirements():
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), requirement


def test_every_requirement_is_locked_within_its_range() -> None:
    pins = _lock()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: `make lock`"
        )


def test_the_lock_holds_no_extras_syntax() -> None:
    """pip refuses extras in a constraints file ("Constraints cannot have extras")."""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            assert "[" not in line.split(";")[0], line


def test_floors_that_the_code_needs() -> None:
    by_name = {canonicalize_name(r.name): r for r in _requirements()}
    # training/search.py: Parallel(return_as="generator_unordered") is new in joblib 1.4.
    assert not by_name["joblib"].specifier.contains("1.3.2")
    assert by_name["joblib"].specifier.contains("1.4.0")
    # The SPDX `license = "Apache-2.0"` string needs setuptools >= 77 (PEP 639).
    backend = Requirement(PYPROJECT["build-system"]["requires"][0])
    assert backend.name == "setuptools" and not backend.specifier.contains("76.1")


def test_extras_users_ask_for() -> None:
    extras = PROJECT["optional-dependencies"]
    names = {k: {canonicalize_name(Requirement(r).name) for r in v} for k, v in extras.items()}
    assert "scipy" in names["monitor"]  # tabserve drift
    assert "uvloop" in names["loadtest"]  # the generator's loop (loadtest/client.py)
    assert {"uvloop", "httptools"} <= names["serve"]  # what uvicorn picks when present
    assert not names["serve"] & {"mlflow", "mlflow-skinny", "boto3", "scikit-learn", "pandas"}
    assert "mlflow-skinny" in names["registry"]
    # --tracing: the SDK and the one exporter it uses (serving/tracing/environment.py); the
    # serve install carries none of it (docs/adr/0016).
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= names["otel"]
    assert not any(n.startswith("opentelemetry") for n in names["serve"])


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "tabserve.__version__"
    assert installed_version("tabserve") == tabserve.__version__
