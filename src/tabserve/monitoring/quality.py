"""Model quality from ground truth: feedback joined to the window's logged predictions, scored
overall and by day (the day the prediction was made, UTC).

The join (docs/adr/0015). Feedback names a record by ``(request_id, record_index)``, where
``request_id`` is what the client knows of its request:

- the server's own id (the log's key; the ``X-Request-ID`` answered when the client sent none):
  exact, one row at most, and it wins when an id matches both ways;
- otherwise the client's own ``X-Request-ID`` (``client_request_id``): used when it names exactly
  one logged record of this model in the window. Clients may reuse an id (retries, a constant
  header); feedback for an id that names several records is *ambiguous*, counted and left out
  rather than guessed.

Feedback is read from ``LOOKBACK`` before the window's start on (labels come after their
predictions; the margin covers clocks of several replicas), so a years-long feedback table is
not read whole for a day's report. Feedback that matches no prediction of this model in the
window (another model's, an older window's, a typo) is counted as unmatched.

Scores: classifiers get accuracy, F1 and ROC AUC where the log has probabilities; F1 is that of
the positive class for two classes (the spec's second class, whose probability is the score)
and the macro average over the labels present for more (as scikit-learn's defaults); ROC AUC is
one-vs-rest, macro-averaged, for more than two classes, and undefined (None, with a note) unless
every class occurs among the labels. Regression models get RMSE and MAE. They are computed here
with numpy and scipy (the tests check them against scikit-learn on the same pairs), so a report
needs no scikit-learn.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from scipy.stats import rankdata

from tabserve.spec import Target

LOOKBACK = timedelta(days=1)

Key = tuple[str, int]


@dataclass
class Pair:
    """One prediction with its ground truth."""

    ts: datetime
    prediction: Any
    probabilities: dict[str, float] | None
    truth: Any


class FeedbackJoin:
    """Feedback keyed as sent, offered every logged row of the window once (sources.py)."""

    def __init__(self, feedback: Mapping[Key, Any]) -> None:
        self.feedback = feedback
        self._by_server: dict[Key, tuple[datetime, Any, Any]] = {}
        self._by_client: dict[Key, list[tuple[datetime, Any, Any]]] = {}
        self.predictions_by_day: Counter[date] = Counter()

    def offer(
        self,
        ts: datetime,
        request_id: str,
        record_index: int,
        client_request_id: str | None,
        prediction_text: Any,
        probabilities_text: Any,
    ) -> None:
        self.predictions_by_day[ts.date()] += 1
        key = (request_id, record_index)
        if key in self.feedback:
            self._by_server[key] = (ts, prediction_text, probabilities_text)
        if client_request_id is not None:
            key = (client_request_id, record_index)
            if key in self.feedback:
                self._by_client.setdefault(key, []).append(
                    (ts, prediction_text, probabilities_text)
                )

    def result(self) -> tuple[list[Pair], dict[str, int]]:
        """The pairs, and how each feedback item fared."""
        pairs: list[Pair] = []
        counts = {"read": len(self.feedback), "by_request_id": 0, "by_client_request_id": 0,
                  "ambiguous": 0, "unmatched": 0}  # fmt: skip
        for key, truth in self.feedback.items():
            found = self._by_server.get(key)
            if found is not None:
                counts["by_request_id"] += 1
            else:
                matches = self._by_client.get(key, [])
                if len(matches) > 1:
                    counts["ambiguous"] += 1
                    continue
                if not matches:
                    counts["unmatched"] += 1
                    continue
                counts["by_client_request_id"] += 1
                found = matches[0]
            ts, prediction_text, probabilities_text = found
            pairs.append(Pair(ts, _json(prediction_text), _json(probabilities_text), truth))
        pairs.sort(key=lambda p: p.ts)
        return pairs, counts


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


# ---- scores ------------------------------------------------------------------------------------


def label_key(value: Any) -> str:
    """One spelling per label, its JSON type kept: the class 1 (logged 1, fed back 1 or 1.0)
    is "n:1", the class "1" is "s:1", true is "b:true" — never equal to each other."""
    if isinstance(value, bool):
        return f"b:{str(value).lower()}"
    if isinstance(value, int | float):
        number = float(value)
        return f"n:{int(number)}" if number.is_integer() else f"n:{number!r}"
    return f"s:{value}"


def _f1_for(y_true: np.ndarray, y_pred: np.ndarray, label: str) -> float:
    tp = float(np.sum((y_true == label) & (y_pred == label)))
    fp = float(np.sum((y_true != label) & (y_pred == label)))
    fn = float(np.sum((y_true == label) & (y_pred != label)))
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def _auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count half); None without both classes."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_scores(pairs: Sequence[Pair], classes: Sequence[Any]) -> dict[str, Any]:
    keys = [label_key(c) for c in classes]
    y_true = np.asarray([label_key(p.truth) for p in pairs], dtype=object)
    y_pred = np.asarray([label_key(p.prediction) for p in pairs], dtype=object)
    out: dict[str, Any] = {"n": len(pairs), "accuracy": float(np.mean(y_true == y_pred))}
    if len(keys) == 2:
        out["f1"] = _f1_for(y_true, y_pred, keys[1])
    else:
        present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
        out["f1"] = float(np.mean([_f1_for(y_true, y_pred, k) for k in present]))
    out["roc_auc"] = _roc_auc(pairs, classes, keys, y_true)
    return out


def _roc_auc(
    pairs: Sequence[Pair], classes: Sequence[Any], keys: list[str], y_true: np.ndarray
) -> float | None:
    names = [str(c) for c in classes]  # the log's probability keys are str(class)
    if len(names) < 2 or any(
        p.probabilities is None or any(n not in p.probabilities for n in names) for p in pairs
    ):
        return None
    scores = np.asarray([[p.probabilities[n] for n in names] for p in pairs], dtype=np.float64)  # type: ignore[index]
    if len(names) == 2:
        return _auc(y_true == keys[1], scores[:, 1])
    per_class = [_auc(y_true == k, scores[:, i]) for i, k in enumerate(keys)]
    known = [a for a in per_class if a is not None]
    if len(known) < len(per_class):
        return None
    return float(np.mean(known))


def regression_scores(pairs: Sequence[Pair]) -> dict[str, Any]:
    y_true = np.asarray([float(p.truth) for p in pairs])
    y_pred = np.asarray([_number(p.prediction) for p in pairs])
    errors = y_pred - y_true
    return {
        "n": len(pairs),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
    }


def _number(value: Any) -> float:
    if isinstance(value, list) and len(value) == 1:  # a [n, 1] output logged per row
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---- the report's block --------------------------------------------------------------------------


@dataclass
class Quality:
    task: str
    n_predictions: int
    n_with_feedback: int
    overall: dict[str, Any] | None
    by_day: list[dict[str, Any]]
    feedback: dict[str, int]
    metrics: list[str]
    f1_average: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.n_with_feedback / self.n_predictions if self.n_predictions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "predictions": self.n_predictions,
            "with_feedback": self.n_with_feedback,
            "coverage": self.coverage,
            "metrics": self.metrics,
            "f1_average": self.f1_average,
            "overall": self.overall,
            "by_day": self.by_day,
            "feedback": self.feedback,
            "notes": self.notes,
        }


def score(target: Target, join: FeedbackJoin, n_predictions: int) -> Quality:
    """Quality over the window from a join every logged row was offered to."""
    pairs, counts = join.result()
    classifier = target.task == "classification"
    classes = list(target.classes or [])

    def scores(subset: Sequence[Pair]) -> dict[str, Any]:
        return classification_scores(subset, classes) if classifier else regression_scores(subset)

    notes: list[str] = []
    overall = scores(pairs) if pairs else None
    by_day = []
    days: dict[date, list[Pair]] = {}
    for pair in pairs:
        days.setdefault(pair.ts.date(), []).append(pair)
    for day in sorted(set(days) | set(join.predictions_by_day)):
        subset = days.get(day, [])
        row: dict[str, Any] = {"date": day.isoformat(),
                               "predictions": join.predictions_by_day.get(day, 0)}  # fmt: skip
        row |= scores(subset) if subset else {"n": 0}
        by_day.append(row)
    if classifier and overall is not None and overall["roc_auc"] is None:
        notes.append(
            "ROC AUC not computed: the log has no class probabilities for these predictions, "
            "or not every class occurs among the labels"
        )
    if counts["ambiguous"]:
        notes.append(
            f"{counts['ambiguous']} feedback item(s) name a client X-Request-ID that several "
            "logged requests used: not joined (send the server's X-Request-ID instead)"
        )
    if counts["read"] and not pairs:
        notes.append(
            "no feedback matches a prediction of this model in the window: check the "
            "request ids (the X-Request-ID the server answered with) and the window"
        )
    metrics = ["accuracy", "f1", "roc_auc"] if classifier else ["rmse", "mae"]
    f1_average = None
    if classifier:
        f1_average = f"binary (positive class {classes[1]!r})" if len(classes) == 2 else "macro"
    return Quality(
        task=target.task,
        n_predictions=n_predictions,
        n_with_feedback=len(pairs),
        overall=overall,
        by_day=by_day,
        feedback=counts,
        metrics=metrics,
        f1_average=f1_average,
        notes=notes,
    )
