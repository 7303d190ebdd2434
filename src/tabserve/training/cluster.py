"""The grid on an existing Dask distributed cluster, through joblib's Dask backend.

Contract:

- ``connect(address)`` → a ``DaskCluster`` (client, worker threads, address), or a one-line
  error: ``ServiceUnavailable`` naming the address and what to start when no scheduler answers
  or it has no worker; ``UserError`` when the ``dask`` extra is missing or a worker lacks
  tabserve / has another scikit-learn than this process (a pipeline fitted with one version and
  unpickled with another is not the pipeline that was scored).
- ``DaskCluster.parallel(jobs, scatter)`` is a context manager in which ``joblib.Parallel``
  dispatches to the cluster: ``scatter`` (the training data) is broadcast to every worker once,
  up front, and each task refers to it by key instead of carrying a copy. It yields the
  ``Parallel`` keyword arguments that make ``jobs`` hold (``-1``: every worker thread).

Why a backend subclass (docs/adr/0010-dask-for-the-grid.md), two changes and nothing else:

- joblib 1.6's ``DaskDistributedBackend`` sizes ``n_jobs`` as the cluster's thread total, and
  ``Parallel`` takes its sequential path — every task in *this* process, no warning — whenever
  that number is 1 (a cluster with one worker thread in all). ``_ClusterBackend`` never reports
  fewer than 2, so the tasks always go to the cluster, and the concurrency asked for is held
  with ``pre_dispatch`` instead (joblib keeps that many tasks in flight).
- joblib scatters with content-hashed keys; the subclass scatters under fresh ones (see there).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabserve.errors import ServiceUnavailable, UserError

if TYPE_CHECKING:
    from distributed import Client

BACKEND = "tabserve-dask"
CONNECT_TIMEOUT_S = 5.0
WORKER_WAIT_S = 10.0
# Packages whose versions must match between this process and the workers: the workers unpickle
# tabserve's task function, and this process unpickles the pipelines the workers fitted.
MATCHING = ("tabserve", "scikit-learn")


def _start_hint(address: str) -> str:
    return f"start one (`dask scheduler`, then `dask worker {address}`) or train without --cluster"


@dataclass
class DaskCluster:
    """A connected client and what the cluster offers."""

    address: str
    client: Client
    threads: int
    workers: int

    def concurrency(self, jobs: int) -> int:
        """Fits in flight: every worker thread for ``jobs`` < 1, else ``jobs``."""
        return self.threads if jobs < 1 else jobs

    @contextlib.contextmanager
    def parallel(self, jobs: int, scatter: list[Any]) -> Iterator[dict[str, Any]]:
        """joblib dispatches to this cluster inside the block; yields ``Parallel`` kwargs."""
        from joblib import parallel_config

        _register_backend()
        with parallel_config(backend=BACKEND, client=self.client, scatter=scatter):
            # One grid point per task: fits take seconds, so batching them buys nothing and
            # costs load balance. n_jobs is what the backend reports (never 1, see above).
            yield {"n_jobs": -1, "pre_dispatch": self.concurrency(jobs), "batch_size": 1}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)


_registered = False


def _register_backend() -> None:
    global _registered
    if _registered:
        return
    from joblib import register_parallel_backend
    from joblib._dask import DaskDistributedBackend

    class _ClusterBackend(DaskDistributedBackend):
        """joblib's Dask backend, minus the silent sequential path on a one-thread cluster,
        with the data scattered under fresh keys."""

        def __init__(self, *args: Any, scatter: list[Any] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if scatter:
                # joblib scatters with hash=True: the same data get the same keys, and when one
                # client scatters them again while its release of the last copy is in flight
                # the scheduler forgets them under the new tasks ("lost dependencies", or a
                # hang) — measured here under load. Unique keys cannot collide.
                self._scatter = list(scatter)
                futures = self.client.scatter(self._scatter, broadcast=True, hash=False)
                self.data_futures = {id(x): f for x, f in zip(self._scatter, futures, strict=True)}

        def effective_n_jobs(self, n_jobs: int) -> int:
            n = int(super().effective_n_jobs(n_jobs))
            return n if n == 0 else max(2, n)

    register_parallel_backend(BACKEND, _ClusterBackend)
    _registered = True


def connect(
    address: str,
    *,
    timeout_s: float = CONNECT_TIMEOUT_S,
    worker_wait_s: float = WORKER_WAIT_S,
) -> DaskCluster:
    """A client of the scheduler at ``address`` with at least one worker, versions checked."""
    try:
        from distributed import Client
    except ImportError:
        raise UserError(
            "--cluster needs Dask: pip install 'tabserve[dask]' (here and on every worker)"
        ) from None
    if "://" in address and not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise UserError(
            f"Dask scheduler address {address!r}: use tcp://HOST:PORT (8786 by default)"
        )
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        reason = type(exc).__name__
        raise ServiceUnavailable(
            f"Dask scheduler at {address} is not reachable ({reason}); {_start_hint(address)}"
        ) from None
    except ValueError as exc:
        raise UserError(f"Dask scheduler address {address!r}: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=worker_wait_s)
        except TimeoutError:
            raise ServiceUnavailable(
                f"Dask scheduler at {address} has no worker after {worker_wait_s:.0f} s; "
                f"start one: `dask worker {address}`"
            ) from None
        _check_versions(client, address)
        ncores = client.ncores()
        return DaskCluster(address, client, sum(ncores.values()), len(ncores))
    except BaseException:
        client.close()
        raise


def _check_versions(client: Client, address: str) -> None:
    """Every worker has tabserve and this process's scikit-learn (one line naming who differs)."""
    for package in MATCHING:
        here = importlib.metadata.version(package)
        # A stdlib function, pickled by reference: runs on a worker that lacks tabserve.
        found = client.run(importlib.metadata.version, package, on_error="return")
        for worker, version in sorted(found.items()):
            if isinstance(version, BaseException):
                raise UserError(
                    f"Dask worker {worker} (scheduler {address}) has no {package}: install "
                    f"tabserve[train]=={importlib.metadata.version('tabserve')} on every worker"
                )
            if version != here:
                raise UserError(
                    f"Dask worker {worker} (scheduler {address}) has {package} {version}, this "
                    f"process {here}: install the same version on every worker"
                )
