"""Metric names a config may use, their sklearn scorers, which way is better, and evaluation.

Values are reported in their natural sign (rmse 3.2, not -3.2); ``better`` compares them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "rmse", "mae")
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}


def metrics_for(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def scorer_name(metric: str, n_classes: int) -> str:
    """The sklearn scoring string (binary and multiclass variants differ)."""
    multiclass = n_classes > 2
    return {
        "accuracy": "accuracy",
        "f1": "f1_macro" if multiclass else "f1",
        "roc_auc": "roc_auc_ovr" if multiclass else "roc_auc",
        "log_loss": "neg_log_loss",
        "r2": "r2",
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
    }[metric]


def natural(metric: str, sklearn_score: float) -> float:
    """sklearn's greater-is-better score → the metric's usual value."""
    return -sklearn_score if metric in LOWER_IS_BETTER else sklearn_score


def better(metric: str, candidate: float, incumbent: float) -> bool:
    """Strictly better: a tie keeps the incumbent."""
    return candidate < incumbent if metric in LOWER_IS_BETTER else candidate > incumbent


def evaluate(
    pipeline: Any, prepared: pd.DataFrame, y: np.ndarray, task: str, n_classes: int
) -> dict[str, float]:
    """Every metric of the task on one prepared frame (the test split)."""
    from sklearn.metrics import get_scorer

    out: dict[str, float] = {}
    for metric in metrics_for(task):
        scorer = get_scorer(scorer_name(metric, n_classes))
        try:
            out[metric] = natural(metric, float(scorer(pipeline, prepared, y)))
        except ValueError:
            # e.g. roc_auc when the test split lacks a class: skip that one metric.
            continue
    return out
