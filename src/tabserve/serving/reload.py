"""Hot reload: follow a registry alias and swap to its new version without failing a request.

Every ``watch_interval_s`` the watcher resolves the alias (``models:/name@alias``). When it names
another version, the new model is loaded and warmed up in a thread while the old one keeps
serving, then ``swap_dataplane`` replaces ``app.state.dataplane`` in one attribute store. Requests
that already hold the old DataPlane finish on it; it closes once they are done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI

from tabserve.modeldir import ModelDir
from tabserve.settings import Settings

log = logging.getLogger("tabserve.serving.reload")


async def watch_registry(app: FastAPI, uri: str, settings: Settings, prediction_log: Any) -> None:
    """Poll ``uri`` forever (until cancelled); errors are logged and retried next interval."""
    from tabserve.serving.app import build_dataplane, swap_dataplane

    while True:
        await asyncio.sleep(settings.watch_interval_s)
        try:
            model_dir = await asyncio.to_thread(_resolve, uri, settings)
        except Exception as exc:  # registry down: keep serving what we have
            log.warning("watch: cannot resolve %s: %s", uri, exc)
            continue
        current = app.state.dataplane
        if current is not None and _same_model(current.model_dir, model_dir, current.model_version):
            continue
        try:
            plane = await asyncio.to_thread(build_dataplane, model_dir, settings, prediction_log)
        except Exception:
            log.exception("watch: version at %s failed to load; still serving the old one", uri)
            continue
        old_version = None if current is None else current.model_version
        await swap_dataplane(app, plane)
        log.info("watch: %s swapped from version %s to %s", uri, old_version, plane.model_version)


def _resolve(uri: str, settings: Settings) -> ModelDir:
    from tabserve import registry  # type: ignore[attr-defined,unused-ignore]

    model_dir: ModelDir = registry.resolve(uri, settings)
    model_dir.check()
    return model_dir


def _same_model(current: ModelDir, new: ModelDir, current_version: str) -> bool:
    return current.path == new.path or (new.version == current_version and new.name == current.name)
