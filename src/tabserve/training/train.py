"""`tabserve train`: config → data → FeatureSpec → grid search → MLflow → registry → champion.

The best grid point (by cross-validated metric on the training split) is exported to ONNX and
parity-checked on the test split, written as one model directory (MLflow sklearn model plus
tabserve's files), logged into the parent run and registered; the champion alias moves only
when the new version beats the incumbent (see champion.py).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve import registry
from tabserve.datasets import load_table
from tabserve.errors import UserError
from tabserve.settings import Settings
from tabserve.spec import FeatureSpec
from tabserve.training.champion import Decision, decide
from tabserve.training.config import ExperimentConfig, GridConfig
from tabserve.training.evaluation import (
    DEFAULT_METRIC,
    evaluate,
    evaluate_model_dir,
    metrics_for,
)
from tabserve.training.onnx_export import ExportResult, export_with_parity
from tabserve.training.pipeline import prepare_frame
from tabserve.training.profile import build_spec
from tabserve.training.search import PointResult, best_point, run_grid

if TYPE_CHECKING:
    from rich.console import Console

    from tabserve.training.cluster import DaskCluster


@dataclass
class TrainResult:
    name: str
    version: str
    metric: str
    best: PointResult
    test_metrics: dict[str, float]
    export: ExportResult
    decision: Decision
    points: list[PointResult] = field(default_factory=list)
    run_id: str = ""
    wall_time_s: float = 0.0
    # The Dask scheduler the grid ran on (None: local processes).
    cluster: str | None = None


def _spec(config: ExperimentConfig, frame: Any, console: Console) -> FeatureSpec:
    try:
        spec = build_spec(
            frame,
            config.target,
            features=config.features,
            exclude=config.exclude,
            kinds=config.kinds,
            task=config.task,
        )
    except (KeyError, ValueError) as exc:
        raise UserError(f"{config.data}: {exc.args[0] if exc.args else exc}") from None
    for excluded in spec.excluded:
        if excluded.reason == "excluded by config":
            continue
        console.print(
            f"[yellow]excluded[/] {excluded.name!r}: {excluded.reason} "
            "(list it under `features:` to force it in)"
        )
    if spec.target.task == "classification" and len(spec.target.classes or []) < 2:
        raise UserError(f"target {config.target!r} has fewer than two classes")
    return spec


def _metric(config: ExperimentConfig, spec: FeatureSpec) -> str:
    metric = config.metric or DEFAULT_METRIC[spec.target.task]
    if metric not in metrics_for(spec.target.task):
        raise UserError(
            f"metric {metric!r} does not fit the {spec.target.task} target {spec.target.name!r}; "
            f"use one of {', '.join(metrics_for(spec.target.task))}"
        )
    return metric


def _cluster(settings: Settings, jobs: int, console: Console) -> DaskCluster | None:
    """The Dask cluster the settings name (connected, checked), or None to train locally."""
    if not settings.dask_scheduler:
        return None
    from tabserve.training.cluster import connect

    cluster = connect(settings.dask_scheduler)
    at_once = cluster.concurrency(jobs)
    console.print(
        f"grid on the Dask cluster at {cluster.address}: {cluster.workers} worker(s), "
        f"{cluster.threads} thread(s); {at_once} fit(s) at a time, the data scattered once"
    )
    if cluster.threads == 1 or at_once == 1:
        # joblib's Dask backend would run a job it sizes as 1 in this process, silently.
        console.print(
            "[yellow]one fit at a time[/]: dispatched to the cluster anyway (joblib alone would "
            "run every fit in this process when it sizes the job as 1)"
        )
    return cluster


def train(
    config: ExperimentConfig,
    grid: GridConfig | None,
    settings: Settings,
    console: Console,
    jobs: int = 1,
) -> TrainResult:
    """Run one training end to end and return what happened (printed along the way).

    With ``settings.dask_scheduler`` the grid runs on that Dask cluster (connected first, so a
    dead scheduler fails before any work); ``jobs`` then caps the fits in flight there.
    """
    started = time.perf_counter()  # the wall time includes connecting to a cluster
    cluster = _cluster(settings, jobs, console)
    try:
        return _train(config, grid, settings, console, jobs, cluster, started)
    finally:
        if cluster is not None:
            cluster.close()


def _train(
    config: ExperimentConfig,
    grid: GridConfig | None,
    settings: Settings,
    console: Console,
    jobs: int,
    cluster: DaskCluster | None,
    started: float,
) -> TrainResult:
    from tabserve.training.artifacts import write_model_dir
    from tabserve.training.fit import split_frame, target_values
    from tabserve.training.tracking import TrainingRun

    if config.tracking_uri:
        settings = settings.model_copy(update={"tracking_uri": config.tracking_uri})
    frame = load_table(config.data_source())
    spec = _spec(config, frame, console)
    metric = _metric(config, spec)
    train_frame, test_frame = split_frame(frame, spec, config.split.test_size, config.seed)
    prepared, y = prepare_frame(train_frame, spec), target_values(train_frame, spec)
    test_prepared, test_y = prepare_frame(test_frame, spec), target_values(test_frame, spec)
    points: list[tuple[str, dict[str, Any]]] = (
        grid.points() if grid else [(str(config.model), dict(config.params))]
    )
    console.print(
        f"{spec.target.task} of {spec.target.name!r} on {len(spec.features)} features: "
        f"{len(train_frame)} train / {len(test_frame)} test rows, {len(points)} grid point(s)"
    )

    mlflow_client = registry.client(settings)
    run = TrainingRun(mlflow_client, config.experiment_name, settings)
    ok = False
    try:
        results = run_grid(
            points, spec, prepared, y, metric, config.cv_folds, config.seed, jobs,
            cluster=cluster,
        )  # fmt: skip
        n_classes = len(spec.target.classes or [])
        for point in results:
            if point.pipeline is not None:
                point.test_metrics = evaluate(
                    point.pipeline, test_prepared, test_y, spec.target.task, n_classes
                )
            run.log_point(point, metric)
        best = best_point(results, metric)
        if best is None or best.pipeline is None:
            errors = "; ".join(sorted({r.error or "" for r in results}))
            raise UserError(f"every grid point failed to fit: {errors}")
        export = export_with_parity(best.pipeline, spec, test_frame)
        run.log(
            params={
                "data": config.data,
                "target": spec.target.name,
                "metric": metric,
                "grid_points": len(points),
                "best_family": best.family,
                **{f"best_{k}": v for k, v in best.params.items()},
            },
            metrics={
                f"best_cv_{metric}": best.cv_mean or 0.0,
                **{f"test_{k}": v for k, v in best.test_metrics.items()},
                "onnx_parity_ok": 1.0 if export.parity_ok else 0.0,
                **(
                    {"onnx_parity_max_deviation": export.max_deviation}
                    if export.max_deviation is not None
                    else {}
                ),
            },
        )
        with tempfile.TemporaryDirectory(prefix="tabserve-model-") as tmp:
            info = {
                "family": best.family,
                "params": best.params,
                "metric": metric,
                "test_metrics": best.test_metrics,
                "run_id": run.run_id,
            }
            model_dir = write_model_dir(
                Path(tmp) / "model", best.pipeline, spec, export, train_frame, info
            )
            # Scored as the champion rule scores the incumbent: by the runtime that will
            # serve it, so the same model registered twice ties exactly.
            served_metrics = evaluate_model_dir(model_dir, test_frame)
            tags = {
                registry.TAG_METRIC_NAME: metric,
                registry.TAG_METRIC_VALUE: repr(served_metrics.get(metric, float("nan"))),
                registry.TAG_ONNX: "yes" if export.onnx_bytes else "no",
            }
            version = registry.register_model_dir(
                model_dir.path, config.registered_model, settings, run_id=run.run_id, tags=tags
            )
        new_score = served_metrics.get(metric)
        if new_score is None:
            decision = Decision(False, None, None, f"no test {metric}: champion unchanged")
        else:
            decision = decide(
                config.registered_model, version, new_score, metric, test_frame, settings
            )
        ok = True
    finally:
        run.finish(ok)
    return TrainResult(
        config.registered_model,
        version,
        metric,
        best,
        best.test_metrics,
        export,
        decision,
        results,
        run.run_id,
        time.perf_counter() - started,
        cluster.address if cluster is not None else None,
    )
