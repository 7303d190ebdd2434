"""ServerState: everything a route may read, typed, in one object the routes close over.

The app builds one per process; routes, the lifespan and the hot-reload watcher receive it
explicitly (no ``request.app.state`` lookups). ``plane`` is replaced in one attribute store by a
hot reload: read it once per request and keep that reference for the whole request, so a
request finishes on the plane it started on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tabserve.serving.admission import Admission
from tabserve.serving.dataplane import DataPlane, PredictionSink
from tabserve.serving.errors import NotReady
from tabserve.settings import Settings
from tabserve.spec import FeatureSpec


@dataclass
class ServerState:
    settings: Settings
    # The spec /docs and /openapi.json describe: the served model's, or the one being loaded.
    spec: FeatureSpec
    plane: DataPlane | None = None
    # Why the model did not load (shown by /ready) when loading failed.
    load_error: str | None = None
    prediction_log: PredictionSink | None = None
    # True from SIGTERM on: /ready answers 503 so load balancers stop sending, while the
    # requests already on their way are still answered.
    draining: bool = False
    # One per worker, shared by REST and gRPC (admission.py); made from settings.max_in_flight.
    admission: Admission = field(default_factory=lambda: Admission(0))
    # Called when the model cannot be loaded at start (the server process exits 2).
    on_fatal: Callable[[str], None] | None = None
    # tracing.Tracing when --tracing (planes are built traced, the exporter flushed at exit).
    tracing: Any = None

    def ready_plane(self) -> DataPlane:
        """The plane serving now, or NotReady (503) while none is loaded."""
        plane = self.plane
        if plane is None:
            raise NotReady(
                "the model failed to load; see /ready" if self.load_error else
                "the model is still loading"
            )  # fmt: skip
        return plane
