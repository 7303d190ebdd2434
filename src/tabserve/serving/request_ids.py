"""Request ids: unique per request, across processes and restarts, without a syscall each.

A random per-process prefix (96 bits) and a counter. ``uuid.uuid4()`` reads os.urandom on
every call (~6 % of a single-record request's samples). The prediction log's key is this id,
so uniqueness matters: a forked child draws its own prefix.
"""

from __future__ import annotations

import itertools
import os


class _RequestIds:
    """A random per-process prefix and a counter (see the module docstring)."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(12).hex() + "-"
        self._counter = itertools.count()

    def next(self) -> str:
        return self._prefix + format(next(self._counter), "x")


request_ids = _RequestIds()
