"""Grid search: one cross-validated fit per grid point, points fitted in parallel (joblib).

Each point is cross-validated on the training split and then refitted on all of it, in a worker
process — a local one (joblib's loky processes) or a Dask worker (``cluster``: see cluster.py,
the training data are scattered to the workers once); results stream back as they finish so the
Rich progress bar moves with real work. A point is one task: its CV folds run one after another
inside it, so the grid is the unit of parallelism everywhere, and each result says where it ran.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabserve.spec import FeatureSpec
from tabserve.training.evaluation import LOWER_IS_BETTER, natural, scorer_name
from tabserve.training.pipeline import build_pipeline

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from tabserve.training.cluster import DaskCluster


@dataclass
class PointResult:
    """One grid point: its parameters, CV score, fit time and the refitted pipeline."""

    index: int
    family: str
    params: dict[str, Any]
    cv_mean: float | None
    cv_std: float | None
    fit_time_s: float
    pipeline: Pipeline | None
    error: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    # HOST:PID of the process that fitted it (a Dask worker's, on a cluster).
    ran_on: str = ""


def _here() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _cv(spec: FeatureSpec, folds: int, seed: int) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    if spec.target.task == "classification":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def fit_point(
    index: int,
    family: str,
    params: dict[str, Any],
    spec: FeatureSpec,
    prepared: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    folds: int,
    seed: int,
) -> PointResult:
    """Cross-validate one grid point, then refit it on the whole training split."""
    from joblib import parallel_config
    from sklearn.model_selection import cross_val_score

    start = time.perf_counter()
    n_classes = len(spec.target.classes or [])
    try:
        # The folds run here, in order: on a Dask worker joblib would otherwise send each fold
        # to the cluster as a task of its own, with its own copy of the data.
        with parallel_config(backend="sequential"):
            pipeline = build_pipeline(spec, family, params, seed)
            scores = cross_val_score(
                pipeline,
                prepared,
                y,
                cv=_cv(spec, folds, seed),
                scoring=scorer_name(metric, n_classes),
            )
            values = [natural(metric, float(s)) for s in scores]
            pipeline.fit(prepared, y)
    except Exception as exc:  # a bad parameter value fails this point, not the whole search
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return PointResult(
            index, family, params, None, None, time.perf_counter() - start, None, first,
            ran_on=_here(),
        )  # fmt: skip
    import numpy as np

    return PointResult(
        index,
        family,
        params,
        float(np.mean(values)),
        float(np.std(values)),
        time.perf_counter() - start,
        pipeline,
        ran_on=_here(),
    )


def run_grid(
    points: list[tuple[str, dict[str, Any]]],
    spec: FeatureSpec,
    prepared: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    folds: int,
    seed: int,
    jobs: int,
    show_progress: bool = True,
    cluster: DaskCluster | None = None,
) -> list[PointResult]:
    """Fit every point (``jobs`` in parallel; -1 = all cores, or all worker threads of
    ``cluster``) with a progress bar."""
    from joblib import Parallel, delayed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    tasks = (
        delayed(fit_point)(i, family, params, spec, prepared, y, metric, folds, seed)
        for i, (family, params) in enumerate(points)
    )
    results: list[PointResult] = []
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=False,
    )
    where: contextlib.AbstractContextManager[dict[str, Any]] = contextlib.nullcontext(
        {"n_jobs": jobs}
    )
    if cluster is not None:
        # The same objects every task names: joblib's backend sends each task their keys.
        where = cluster.parallel(jobs, scatter=[spec, prepared, y])
    with progress, where as options:
        bar = progress.add_task(f"grid ({folds}-fold CV, {metric})", total=len(points))
        parallel = Parallel(return_as="generator_unordered", **options)
        for result in parallel(tasks):
            results.append(result)
            progress.advance(bar)
    return sorted(results, key=lambda r: r.index)


def best_point(results: list[PointResult], metric: str) -> PointResult | None:
    """The best CV score; ties go to the earlier (simpler, listed-first) point."""
    scored = [r for r in results if r.cv_mean is not None]
    if not scored:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return max(scored, key=lambda r: (sign * (r.cv_mean or 0.0), -r.index))
