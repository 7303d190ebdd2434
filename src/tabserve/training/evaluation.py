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


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of raw values as request records (NaN → null, numpy scalars → Python values)."""
    import math

    out = []
    for row in frame.to_dict(orient="records"):
        record = {}
        for key, value in row.items():
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, float) and math.isnan(value):
                value = None
            record[str(key)] = value
        out.append(record)
    return out


def score(
    metric: str,
    y: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list[Any] | None,
) -> float:
    """One metric from a model's answers (labels, probabilities in ``classes`` order)."""
    import numpy as np
    from sklearn import metrics as m

    if metric == "accuracy":
        return float(m.accuracy_score(y, labels))
    if metric == "f1":
        if classes and len(classes) == 2:
            return float(m.f1_score(y, labels, pos_label=classes[-1]))
        return float(m.f1_score(y, labels, average="macro"))
    if metric in ("roc_auc", "log_loss"):
        if probabilities is None or not classes:
            raise ValueError(f"{metric} needs class probabilities")
        if metric == "log_loss":
            return float(m.log_loss(y, probabilities, labels=classes))
        if len(classes) == 2:
            return float(m.roc_auc_score(np.asarray(y) == classes[1], probabilities[:, 1]))
        return float(m.roc_auc_score(y, probabilities, multi_class="ovr", labels=classes))
    if metric == "r2":
        return float(m.r2_score(y, labels))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y, labels)))
    if metric == "mae":
        return float(m.mean_absolute_error(y, labels))
    raise ValueError(f"unknown metric {metric!r}")


def evaluate_model_dir(model_dir: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Every metric of the task for a served model (its runtime, as the server runs it) on
    ``frame``, which holds the features and the spec's target column. Works for models
    tabserve trained and for adopted ones alike."""
    from tabserve.serving.runtimes import load_runtime
    from tabserve.serving.validation import ValidationOptions, validate_records
    from tabserve.training.fit import target_values

    spec = model_dir.spec()
    rows = frame[frame[spec.target.name].notna()]
    batch = validate_records(
        spec, frame_records(rows[spec.names]), ValidationOptions(coerce=True, ood="off")
    )
    answer = load_runtime(model_dir, "auto").predict(batch.columns)
    y = target_values(rows, spec)
    out: dict[str, float] = {}
    for metric in metrics_for(spec.target.task):
        try:
            out[metric] = score(metric, y, answer.labels, answer.probabilities,
                                spec.target.classes)  # fmt: skip
        except ValueError:  # e.g. roc_auc when the data lacks a class
            continue
    return out
