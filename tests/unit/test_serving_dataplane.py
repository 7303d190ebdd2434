"""DataPlane: the heap freeze that keeps full collections off the hot path, request ids."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from tabserve.modeldir import ModelDir
from tabserve.serving.dataplane import DataPlane, request_ids
from tabserve.serving.runtimes import load_runtime


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
