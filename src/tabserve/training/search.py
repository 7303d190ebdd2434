"""Grid search: one cross-validated fit per grid point, points fitted in parallel (joblib).

Each point is cross-validated on the training split and then refitted on all of it, in a worker
process; results stream back as they finish so the Rich progress bar moves with real work.
"""

from __future__ import annotations

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
    from sklearn.model_selection import cross_val_score

    start = time.perf_counter()
    n_classes = len(spec.target.classes or [])
    try:
        pipeline = build_pipeline(spec, family, params, seed)
        scores = cross_val_score(
            pipeline, prepared, y, cv=_cv(spec, folds, seed), scoring=scorer_name(metric, n_classes)
        )
        values = [natural(metric, float(s)) for s in scores]
        pipeline.fit(prepared, y)
    except Exception as exc:  # a bad parameter value fails this point, not the whole search
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return PointResult(
            index, family, params, None, None, time.perf_counter() - start, None, first
        )
    import numpy as np

    return PointResult(
        index,
        family,
        params,
        float(np.mean(values)),
        float(np.std(values)),
        time.perf_counter() - start,
        pipeline,
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
) -> list[PointResult]:
    """Fit every point (``jobs`` in parallel; -1 = all cores) with a progress bar."""
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
    with progress:
        bar = progress.add_task(f"grid ({folds}-fold CV, {metric})", total=len(points))
        parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
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
