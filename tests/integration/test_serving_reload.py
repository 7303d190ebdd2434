"""Hot reload: `--watch` follows the alias and swaps versions under load with zero failures."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tabserve.settings import Settings
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration

RECORD = {"Pclass": 1, "Sex": "female", "Age": 30, "SibSp": 0, "Parch": 0, "Fare": 80.0}
RECORD["Embarked"] = "C"


async def load_until(url: str, stop: asyncio.Event, concurrency: int = 8) -> Counter[str]:
    """Closed-loop POSTs until ``stop``; counts answers by status and model version."""
    seen: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) as client:

        async def worker() -> None:
            while not stop.is_set():
                try:
                    r = await client.post(f"{url}/predict", json=[RECORD, RECORD])
                except httpx.HTTPError as exc:
                    seen[f"error:{type(exc).__name__}"] += 1
                    continue
                if r.status_code == 200:
                    answer = r.json()
                    p1 = round(answer["predictions"][0]["probabilities"]["1"], 6)
                    seen[f"version:{answer['version']}"] += 1
                    seen[f"p:{answer['version']}:{p1}"] += 1
                else:
                    seen[f"status:{r.status_code}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


def survival_probability(model_dir: Path) -> float:
    """What the model itself says for RECORD (the answer the server must give)."""
    from tabserve.modeldir import ModelDir
    from tabserve.serving.runtimes import OnnxRuntime
    from tabserve.serving.validation import ValidationOptions, validate_records

    model = ModelDir(model_dir)
    batch = validate_records(model.spec(), [RECORD], ValidationOptions())
    probabilities = OnnxRuntime(model).predict(batch.columns).probabilities
    assert probabilities is not None
    return round(float(probabilities[0, 1]), 6)


def test_alias_move_swaps_version_without_failed_requests(
    own_titanic_registry: tuple[Path, Settings], titanic_model_dir: Path, tmp_path: Path
) -> None:
    from tabserve.datasets import load_builtin
    from tabserve.registry import current_alias_version, register_model_dir
    from tabserve.training import fit_model_dir

    home, settings = own_titanic_registry
    # Another family, so the new version's answers differ from the old one's.
    other = fit_model_dir(
        load_builtin("titanic"), "Survived", tmp_path / "forest", "random_forest",
        {"n_estimators": 30, "max_depth": 5}, name="titanic",
    ).path  # fmt: skip
    old_p, new_p = survival_probability(titanic_model_dir), survival_probability(other)
    assert old_p != new_p
    before = current_alias_version("titanic", "champion", settings)
    env = {"TABSERVE_HOME": str(home)}
    args = ("--watch", "--watch-interval", "0.3")
    with running_server("models:/titanic@champion", *args, env=env) as server:
        assert httpx.get(f"{server.url}/ready").json()["version"] == before

        async def scenario() -> Counter[str]:
            stop = asyncio.Event()
            load = asyncio.create_task(load_until(server.url, stop))
            await asyncio.sleep(1.0)
            new = await asyncio.to_thread(
                register_model_dir, other, "titanic", settings, alias="champion"
            )
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient() as probe:
                while time.monotonic() < deadline:
                    ready = (await probe.get(f"{server.url}/ready")).json()
                    if ready.get("version") == new:
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # keep the load on after the swap
            stop.set()
            seen = await load
            seen[f"new:{new}"] = 1
            return seen

        seen = asyncio.run(scenario())
    new_version = next(k.split(":")[1] for k in seen if k.startswith("new:"))
    failures = {k: v for k, v in seen.items() if not k.startswith(("version:", "new:", "p:"))}
    assert failures == {}, seen
    assert seen[f"version:{before}"] > 0 and seen[f"version:{new_version}"] > 0, seen
    # Each version answered with its own model's probability, and only that one.
    answers = {k for k in seen if k.startswith("p:")}
    assert answers == {f"p:{before}:{old_p}", f"p:{new_version}:{new_p}"}, seen
