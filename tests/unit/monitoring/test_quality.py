"""Quality from ground truth: the join (both id kinds, ambiguous and missing feedback) over a
real SQLite log, and the scores against scikit-learn's on the same pairs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from tabserve.monitoring.quality import FeedbackJoin, Pair, classification_scores, score
from tabserve.monitoring.sources import load_window
from tabserve.predlog.store import (
    FeedbackInserter,
    RowInserter,
    ensure_schema,
    make_engine,
    read_feedback,
)
from tabserve.spec import Target

IRIS = Target(name="species", task="classification", classes=["setosa", "versicolor", "virginica"])
BINARY = Target(name="Survived", task="classification", classes=[0, 1])
DAY1 = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc).timestamp()
DAY2 = DAY1 + 2 * 3600  # past midnight UTC: another day


def _row(rid: str, idx: int, ts: float, pred: Any, probs: dict[str, float] | None,
         client: str | None = None, model: str = "iris") -> list[Any]:  # fmt: skip
    return [rid, idx, ts, model, "1", {"x": 1.0}, pred, probs, 1.0, "ok", client]


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    ensure_schema(engine)
    yield engine
    engine.dispose()


def test_join_by_server_id_and_by_client_id_and_what_is_left_out(engine: Any) -> None:
    p = {"setosa": 0.8, "versicolor": 0.15, "virginica": 0.05}
    RowInserter(engine).insert([
        _row("srv-1", 0, DAY1, "setosa", p),
        _row("srv-1", 1, DAY1, "virginica", p),
        _row("srv-2", 0, DAY2, "versicolor", p, client="my-order-17"),
        _row("srv-3", 0, DAY2, "setosa", p, client="reused"),
        _row("srv-4", 0, DAY2, "setosa", p, client="reused"),
        _row("srv-5", 0, DAY2, "setosa", p),  # no feedback for this one
        _row("srv-9", 0, DAY2, "setosa", p, model="other"),  # another model's prediction
    ])  # fmt: skip
    FeedbackInserter(engine).insert([
        ["srv-1", 0, DAY2, "setosa"],  # the server's id
        ["srv-1", 1, DAY2, "versicolor"],  # record 1 of the same request (a miss)
        ["my-order-17", 0, DAY2, "versicolor"],  # the client's X-Request-ID
        ["reused", 0, DAY2, "setosa"],  # a client id two requests used: ambiguous
        ["srv-9", 0, DAY2, "setosa"],  # not a prediction of this model
        ["nobody", 0, DAY2, "setosa"],  # a typo
    ])  # fmt: skip
    join = FeedbackJoin(read_feedback(engine))
    window = load_window(engine, "iris", ["x"], join=join)
    quality = score(IRIS, join, window.n_rows)
    assert window.n_rows == 6 and quality.n_predictions == 6
    assert quality.feedback == {"read": 6, "by_request_id": 2, "by_client_request_id": 1,
                                "ambiguous": 1, "unmatched": 2}  # fmt: skip
    assert quality.n_with_feedback == 3 and quality.coverage == pytest.approx(0.5)
    assert quality.overall is not None and quality.overall["accuracy"] == pytest.approx(2 / 3)
    # By the day the prediction was made: srv-1's two records on day 1, the rest on day 2.
    assert [(d["date"], d["predictions"], d["n"]) for d in quality.by_day] == [
        ("2026-11-30", 2, 2),
        ("2026-12-01", 4, 1),
    ]
    assert any("several" in n for n in quality.notes)


def test_the_servers_id_wins_when_an_id_matches_both_ways(engine: Any) -> None:
    RowInserter(engine).insert([
        _row("abc", 0, DAY1, 1, {"0": 0.2, "1": 0.8}, model="t"),
        _row("other", 0, DAY1, 0, {"0": 0.9, "1": 0.1}, client="abc", model="t"),
    ])  # fmt: skip
    FeedbackInserter(engine).insert([["abc", 0, DAY2, 1]])
    join = FeedbackJoin(read_feedback(engine))
    quality = score(BINARY, join, load_window(engine, "t", ["x"], join=join).n_rows)
    assert quality.feedback["by_request_id"] == 1 and quality.feedback["ambiguous"] == 0
    assert quality.overall is not None and quality.overall["accuracy"] == 1.0


def test_no_feedback_says_so(engine: Any) -> None:
    RowInserter(engine).insert([_row("a", 0, DAY1, "setosa", None)])
    join = FeedbackJoin(read_feedback(engine))
    quality = score(IRIS, join, load_window(engine, "iris", ["x"], join=join).n_rows)
    assert quality.n_with_feedback == 0 and quality.overall is None
    assert quality.to_dict()["predictions"] == 1


def test_feedback_long_before_the_window_is_not_read(engine: Any) -> None:
    FeedbackInserter(engine).insert([["old", 0, DAY1 - 10 * 86400, "setosa"], ["new", 0, DAY1, 1]])
    since = datetime.fromtimestamp(DAY1, tz=timezone.utc) - timedelta(hours=1)
    assert set(read_feedback(engine, since - timedelta(days=1))) == {("new", 0)}


def _pairs(rng: np.random.Generator, classes: list[Any], n: int) -> list[Pair]:
    """A model right more often than not, its scores from a few rows so ranks tie often."""
    k = len(classes)
    shapes = (
        [np.array([0.7, 0.3]), np.array([0.55, 0.45])]
        if k == 2
        else [np.array([0.6, 0.3, 0.1]), np.array([0.5, 0.25, 0.25]), np.array([0.4, 0.4, 0.2])]
    )
    pairs = []
    for _ in range(n):
        truth_i = int(rng.integers(k))
        shape = shapes[int(rng.integers(len(shapes)))]
        order = rng.permutation(k)
        if rng.random() < 0.7:  # put the largest score on the truth
            order = np.roll(order, -int(np.where(order == truth_i)[0][0]))
        probs = np.empty(k)
        probs[order] = shape
        prediction = classes[int(np.argmax(probs))] if shape[0] != shape[1] else classes[order[0]]
        pairs.append(Pair(datetime(2026, 12, 1), prediction,
                          {str(c): float(v) for c, v in zip(classes, probs, strict=True)},
                          classes[truth_i]))  # fmt: skip
    return pairs


@pytest.mark.parametrize("classes", [[0, 1], ["no", "yes"], ["setosa", "versicolor", "virginica"]])
def test_scores_equal_scikit_learns_on_the_same_pairs(classes: list[Any]) -> None:
    pairs = _pairs(np.random.default_rng(7), classes, 400)
    got = classification_scores(pairs, classes)
    y = [p.truth for p in pairs]
    pred = [p.prediction for p in pairs]
    scores = np.asarray([[p.probabilities[str(c)] for c in classes] for p in pairs])  # type: ignore[index]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    if len(classes) == 2:
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label=classes[1]))
        positive = [t == classes[1] for t in y]
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(positive, scores[:, 1]))
    else:
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
        expected = skm.roc_auc_score(y, scores, multi_class="ovr", labels=classes)
        assert got["roc_auc"] == pytest.approx(expected)


def test_roc_auc_is_undefined_without_every_class_or_probabilities() -> None:
    pairs = [Pair(datetime(2026, 12, 1), "setosa", {"setosa": 1.0, "versicolor": 0.0,
                  "virginica": 0.0}, "setosa")] * 3  # fmt: skip
    assert classification_scores(pairs, IRIS.classes or [])["roc_auc"] is None
    bare = [Pair(datetime(2026, 12, 1), 1, None, 1), Pair(datetime(2026, 12, 1), 0, None, 1)]
    got = classification_scores(bare, [0, 1])
    assert got["roc_auc"] is None and got["accuracy"] == 0.5


def test_regression_scores_equal_scikit_learns() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(150, 50, 300)
    pred = truth + rng.normal(0, 20, 300)
    pairs = [Pair(datetime(2026, 12, 1), float(p), None, float(t))
             for p, t in zip(pred, truth, strict=True)]  # fmt: skip
    join = FeedbackJoin({})
    quality = score(Target(name="y", task="regression"), join, 300)
    assert quality.overall is None  # nothing joined
    from tabserve.monitoring.quality import regression_scores

    got = regression_scores(pairs)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, pred)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred))
