"""MLflow logging for one training: a parent run, one nested run per grid point.

Everything goes through ``MlflowClient`` with explicit run ids (no fluent global state), so a
training never leaks its tracking URI or active run into the rest of the process.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tabserve.registry import experiment_id_for
from tabserve.settings import Settings
from tabserve.training.search import PointResult

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"


def _param_value(value: Any) -> str:
    return "None" if value is None else str(value)


class TrainingRun:
    """The parent run of one `tabserve train`; closes as FINISHED or FAILED."""

    def __init__(self, mlflow_client: MlflowClient, experiment: str, settings: Settings) -> None:
        self.client = mlflow_client
        self.experiment_id = experiment_id_for(mlflow_client, experiment, settings)
        run_name = f"train-{time.strftime('%Y%m%d-%H%M%S')}"
        self.run_id: str = mlflow_client.create_run(
            self.experiment_id, run_name=run_name, tags={"tabserve.kind": "train"}
        ).info.run_id

    def log(
        self,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id or self.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, _param_value(v)[:6000]) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )

    def log_point(self, point: PointResult, metric: str) -> str:
        """One nested run for a grid point: its params, CV metric, test metrics, fit time."""
        name = f"{point.index:03d}-{point.family}"
        child = self.client.create_run(
            self.experiment_id, run_name=name, tags={PARENT_TAG: self.run_id}
        ).info.run_id
        metrics: dict[str, float] = {"fit_time_s": point.fit_time_s}
        if point.cv_mean is not None:
            metrics[f"cv_{metric}"] = point.cv_mean
            metrics[f"cv_{metric}_std"] = point.cv_std or 0.0
        metrics.update({f"test_{k}": v for k, v in point.test_metrics.items()})
        tags = {"tabserve.error": point.error} if point.error else {}
        if point.ran_on:
            tags["tabserve.fitted_on"] = point.ran_on
        self.log({"family": point.family, **point.params}, metrics, tags, run_id=child)
        self.client.set_terminated(child, "FINISHED" if point.error is None else "FAILED")
        return child

    def finish(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")
