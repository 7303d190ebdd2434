"""Admission control: past ``--max-in-flight`` model requests per worker, answer 503 at once.

A request admitted past that point would only wait in the batcher's queue behind the others,
and every answer would be late; Triton and BentoML shed load the same way, and tritonclient,
Envoy and the kubelet understand 503 with Retry-After. REST (app.py) and gRPC share one
Admission per worker, so the bound holds across protocols.
"""

from __future__ import annotations

from types import TracebackType

from tabserve.serving import metrics
from tabserve.serving.errors import Overloaded


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)  # 0: no bound
        self.in_flight = 0
        self._shed = metrics.SHED.labels("overload")

    def __enter__(self) -> None:
        if self.limit and self.in_flight >= self.limit:
            self._shed.inc()
            raise Overloaded(
                f"overloaded: {self.in_flight} requests in flight (the limit is {self.limit}); "
                "retry after a second"
            )
        self.in_flight += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.in_flight -= 1
