"""DataPlane with a fake runtime (row limit, validation metrics, batching, runtime failures,
the prediction log hook), and with the real ONNX runtime (the heap freeze, request ids)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from prometheus_client import REGISTRY

from tabserve.modeldir import ModelDir
from tabserve.serving.batcher import BatchingOptions
from tabserve.serving.dataplane import DataPlane, request_ids
from tabserve.serving.errors import BadRequest, PayloadTooLarge, RuntimeFailure, ValidationFailed
from tabserve.serving.runtimes import Prediction, load_runtime
from tabserve.spec import (
    CategoricalProfile,
    Feature,
    FeatureSpec,
    Histogram,
    NumericProfile,
    Target,
)

T = TypeVar("T")


class FakeRuntime:
    """Label = 1 when x > 0; probabilities from x. Records every call; fails on x == 13."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, columns: dict[str, np.ndarray]) -> Prediction:
        x = columns["x"]
        self.calls.append(len(x))
        if (x == 13).any():
            raise ArithmeticError("unlucky")
        p1 = 1 / (1 + np.exp(-x))
        return Prediction((x > 0).astype(np.int64), np.stack([1 - p1, p1], axis=1))


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int, Any]] = []
        self.fail = fail

    def submit(self, request_id: str, model_name: str, model_version: str, columns: Any,
               n_rows: int, predictions: Any, **kwargs: Any) -> bool:  # fmt: skip
        if self.fail:
            raise OSError("disk on fire")
        self.calls.append((request_id, n_rows, columns))
        return True


def fake_model(tmp_path: Path) -> ModelDir:
    profile = NumericProfile(
        count=10, missing=0, min=-5, max=5, mean=0, std=1, quantiles={"0.5": 0.0},
        histogram=Histogram(edges=[-5, 5], counts=[10]),
    )  # fmt: skip
    spec = FeatureSpec(
        features=[
            Feature(name="x", kind="numeric", dtype="float64", nullable=False, profile=profile),
            Feature(
                name="city",
                kind="categorical",
                dtype="string",
                nullable=True,
                profile=CategoricalProfile(count=10, missing=1, categories={"a": 6, "b": 4}),
            ),
        ],
        target=Target(name="y", task="classification", classes=[0, 1]),
    )
    spec.save(tmp_path)
    ModelDir(tmp_path).write_info(name="fake", version="7")
    return ModelDir(tmp_path)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    finally:
        gc.unfreeze()  # start() freezes the heap; keep the test process as it was


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("batching", [True, False])
def test_valid_records_are_predicted_and_logged(tmp_path: Path, batching: bool) -> None:
    runtime, sink = FakeRuntime(), Sink()
    plane = DataPlane(fake_model(tmp_path), runtime, BatchingOptions(enabled=batching), sink)

    async def go() -> list[Prediction]:
        await plane.start()
        batches = [plane.validate_records([{"x": float(v), "city": "a"}]) for v in (-1, 2, 3)]
        answers = await asyncio.gather(*(plane.predict(b, f"r{i}") for i, b in enumerate(batches)))
        await plane.close()
        return list(answers)

    answers = run(go())
    assert [a.labels.tolist() for a in answers] == [[0], [1], [1]]
    assert plane.model_name == "fake" and plane.model_version == "7"
    assert plane.class_keys == ["0", "1"]
    # Batching merges the three concurrent requests into one runtime call.
    assert runtime.calls == ([3] if batching else [1, 1, 1])
    assert [(rid, n) for rid, n, _ in sink.calls] == [("r0", 1), ("r1", 1), ("r2", 1)]
    assert sink.calls[0][2] == [{"x": -1.0, "city": "a"}]  # the records as received


def test_row_limit_is_the_data_planes_for_records_and_columns(tmp_path: Path) -> None:
    plane = DataPlane(fake_model(tmp_path), FakeRuntime(), max_rows=3)
    record = {"x": 1.0, "city": "b"}
    assert plane.validate_records([record] * 3).n_rows == 3
    with pytest.raises(PayloadTooLarge, match="3-record limit"):
        plane.validate_records([record] * 4)
    with pytest.raises(PayloadTooLarge):
        plane.validate_columns({"x": [1.0] * 4, "city": ["a"] * 4}, 4)
    with pytest.raises(BadRequest, match="no records"):
        plane.validate_records([])
    with pytest.raises(BadRequest, match="no records"):
        plane.validate_columns({"x": [], "city": []}, 0)


def test_validation_failures_are_counted_by_field_and_reason(tmp_path: Path) -> None:
    plane = DataPlane(fake_model(tmp_path), FakeRuntime())
    before = counter(
        "tabserve_validation_errors_total",
        model="fake",
        version="7",
        field="city",
        reason="unknown_category",
    )
    extra = counter(
        "tabserve_validation_errors_total",
        model="fake",
        version="7",
        field="(extra)",
        reason="extra_field",
    )
    with pytest.raises(ValidationFailed):
        plane.validate_records([{"x": 1.0, "city": "zz", "secret-field-name": 1}])
    after = counter(
        "tabserve_validation_errors_total",
        model="fake",
        version="7",
        field="city",
        reason="unknown_category",
    )
    assert after == before + 1
    # The client's key never becomes a label value (it would grow the label set without bound).
    assert counter(
        "tabserve_validation_errors_total",
        model="fake",
        version="7",
        field="(extra)",
        reason="extra_field",
    ) == (extra + 1)


@pytest.mark.parametrize("batching", [True, False])
def test_a_runtime_failure_is_a_500_for_its_batch_only(tmp_path: Path, batching: bool) -> None:
    plane = DataPlane(fake_model(tmp_path), FakeRuntime(), BatchingOptions(enabled=batching))

    async def go() -> tuple[BaseException | None, Prediction]:
        await plane.start()
        bad = plane.validate_records([{"x": 13.0, "city": "a"}])
        try:
            await plane.predict(bad)
            failure = None
        except RuntimeFailure as exc:
            failure = exc
        good = await plane.predict(plane.validate_records([{"x": 1.0, "city": "a"}]))
        await plane.close()
        return failure, good

    failure, good = run(go())
    assert isinstance(failure, RuntimeFailure) and failure.status == 500
    assert "ArithmeticError" in failure.message and "unlucky" not in failure.message
    assert good.labels.tolist() == [1]


def test_a_failing_log_never_fails_a_prediction(tmp_path: Path) -> None:
    plane = DataPlane(fake_model(tmp_path), FakeRuntime(), prediction_log=Sink(fail=True))

    async def go() -> Prediction:
        await plane.start()
        answer = await plane.predict(plane.validate_records([{"x": 2.0, "city": None}]))
        await plane.close()
        return answer

    assert run(go()).labels.tolist() == [1]


def plane_for(model_dir: Path) -> DataPlane:
    directory = ModelDir(model_dir)
    return DataPlane(directory, load_runtime(directory, "onnx", 1))


def test_start_freezes_the_heap_so_full_collections_skip_it(titanic_model_dir: Path) -> None:
    # Unfrozen, a full collection walked the whole heap (model, app, imports): 30-55 ms every
    # ~0.5 s under load, the p99 at c=50. After start nothing old is left for it to walk.
    async def go() -> tuple[int, int]:
        plane = plane_for(titanic_model_dir)
        await plane.start()
        counts = gc.get_freeze_count(), len(gc.get_objects(generation=2))
        await plane.close()
        return counts

    try:
        frozen, old_unfrozen = asyncio.run(go())
    finally:
        gc.unfreeze()
    assert frozen > 10_000
    assert old_unfrozen < frozen / 100


def test_a_replaced_plane_is_freed_despite_the_freeze(titanic_model_dir: Path) -> None:
    # A hot reload starts the new plane while the old one is alive (so it gets frozen); the
    # next start must still let the old one go, or each reload would keep a model in memory.
    async def go() -> weakref.ref[DataPlane]:
        old = plane_for(titanic_model_dir)
        await old.start()
        new = plane_for(titanic_model_dir)
        await new.start()
        await old.close()
        ref = weakref.ref(old)
        del old
        newer = plane_for(titanic_model_dir)
        await newer.start()
        await new.close()
        await newer.close()
        return ref

    try:
        ref = asyncio.run(go())
    finally:
        gc.unfreeze()
    assert ref() is None


def test_request_ids_are_unique_and_fit_the_log_key() -> None:
    ids = [request_ids.next() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 64 for i in ids)  # prediction log: request_id String(64)
    assert len({i.split("-")[0] for i in ids}) == 1 and len(ids[0].split("-")[0]) == 24
