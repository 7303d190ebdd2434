"""Ground truth: what check_items accepts and refuses, and feedback rows through the real writer
process into SQLite (latest wins, replay exactly once, spooled while the database is locked)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import sqlalchemy as sa

from tabserve.predlog import PredictionLog
from tabserve.predlog.feedback import (
    FeedbackInvalid,
    check_items,
    encode_line,
    item_count,
    rows_of,
)
from tabserve.predlog.store import (
    FeedbackInserter,
    count_rows,
    ensure_schema,
    feedback,
    make_engine,
)
from tabserve.spec import Target

BINARY = Target(name="Survived", task="classification", classes=[0, 1])
IRIS = Target(name="species", task="classification", classes=["setosa", "versicolor", "virginica"])
FLAGS = Target(name="churned", task="classification", classes=[False, True])
REGRESSION = Target(name="progression", task="regression")


def problems(target: Target, items: list[Any], **kw: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(FeedbackInvalid) as caught:
        check_items(target, items, **kw)
    return [(d.get("record"), d["field"], d["reason"]) for d in caught.value.details]


def test_good_items_come_back_checked_with_the_class_as_the_spec_has_it() -> None:
    items = [
        {"request_id": "a", "label": 1},
        {"request_id": "b", "record_index": 3, "label": 0},
        {"request_id": "c", "label": 1.0},  # JSON has one number type: 1.0 is the class 1
    ]
    assert check_items(BINARY, items) == [("a", 0, 1), ("b", 3, 0), ("c", 0, 1)]
    assert type(check_items(BINARY, [items[2]])[0][2]) is int
    iris = [{"request_id": "x", "label": "virginica"}, {"request_id": "y", "label": "setosa"}]
    assert [t for *_, t in check_items(IRIS, iris)] == ["virginica", "setosa"]
    assert check_items(FLAGS, [{"request_id": "z", "label": True}]) == [("z", 0, True)]
    assert check_items(REGRESSION, [{"request_id": "r", "value": 151}]) == [("r", 0, 151.0)]


def test_labels_of_another_json_type_are_refused_not_coerced() -> None:
    items = [
        {"request_id": "a", "label": "1"},  # a string is not the class 1
        {"request_id": "b", "label": True},  # nor is true
        {"request_id": "c", "label": 2},  # the right type, not a class
        {"request_id": "d", "label": 0.5},
        {"request_id": "e", "label": None},
    ]
    assert problems(BINARY, items) == [
        (0, "label", "wrong_type"),
        (1, "label", "wrong_type"),
        (2, "label", "unknown_category"),
        (3, "label", "unknown_category"),
        (4, "label", "null"),
    ]
    # A multiclass model's labels: the exact names, case included.
    assert problems(IRIS, [{"request_id": "a", "label": "Setosa"}, {"request_id": "b", "label": 0}])
    assert problems(FLAGS, [{"request_id": "a", "label": 1}]) == [(0, "label", "wrong_type")]


def test_every_bad_field_of_every_bad_item_is_named() -> None:
    items = [
        {"record_index": -1, "label": 1},
        {"request_id": "ok", "label": 1},  # good: not reported
        {"request_id": "x" * 201, "record_index": True, "label": 1, "value": 1.0, "extra": 2},
        "not an object",
        {"request_id": "tab\there", "label": 1},
        {"request_id": "y"},
    ]
    assert problems(BINARY, items) == [
        (0, "request_id", "missing"),
        (0, "record_index", "out_of_range"),
        (2, "request_id", "out_of_range"),
        (2, "record_index", "wrong_type"),
        (2, "value", "extra_field"),
        (2, None, "extra_field"),
        (3, None, "wrong_type"),
        (4, "request_id", "out_of_range"),
        (5, "label", "missing"),
    ]
    # One object (not an array): no record index in the details, as /predict does.
    assert problems(BINARY, [{"request_id": "a"}], indexed=False) == [(None, "label", "missing")]


def test_regression_takes_finite_numbers_as_value() -> None:
    items = [
        {"request_id": "a", "value": "151"},
        {"request_id": "b", "value": False},
        {"request_id": "c", "label": 3.0},
        {"request_id": "d", "value": float("inf")},
    ]
    assert problems(REGRESSION, items) == [
        (0, "value", "wrong_type"),
        (1, "value", "wrong_type"),
        (2, "value", "missing"),
        (2, "label", "extra_field"),
        (3, "value", "not_finite"),
    ]


def test_the_line_carries_its_count_and_turns_into_rows() -> None:
    line = encode_line([("a", 0, 1), ("b", 2, "x")], ts=1000.5)
    assert line.endswith(b"\n") and item_count(line) == 2
    assert rows_of(orjson.loads(line)) == [["a", 0, 1000.5, 1], ["b", 2, 1000.5, "x"]]


def _truths(url: str) -> dict[tuple[str, int], Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                (r.request_id, r.record_index): r.truth
                for r in conn.execute(sa.select(feedback)).all()
            }
    finally:
        engine.dispose()


def test_latest_received_wins_and_an_older_replay_does_not_overwrite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    inserter = FeedbackInserter(engine)
    inserter.insert([["a", 0, 10.0, 0], ["a", 0, 10.0, 1], ["b", 0, 10.0, 1]])  # tie: later wins
    inserter.insert([["b", 0, 20.0, 0]])  # a correction
    inserter.insert([["b", 0, 15.0, 1], ["a", 0, 10.0, 1]])  # an old spool replayed late, twice
    engine.dispose()
    assert _truths(url) == {("a", 0): 1, ("b", 0): 0}


def test_feedback_goes_through_the_writer_process_and_survives_a_locked_database(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    plog = PredictionLog(
        f"sqlite:///{db}", spool_dir=tmp_path / "spool", retry_interval_s=0.1, connect_timeout_s=0
    )
    try:
        assert plog.submit("req", "titanic", "1", [{"Age": 3}], 1, np.array([1]))
        assert plog.submit_feedback([("r1", 0, 1), ("r2", 1, 0)])
        assert plog.flush(15)
        assert _truths(plog.url) == {("r1", 0): 1, ("r2", 1): 0}
        # Lock the database: the writer spools feedback like prediction rows, then replays it.
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            assert plog.submit_feedback([("r3", 0, 1), ("r1", 0, 0)])
            assert plog.submit("req2", "titanic", "1", [{"Age": 3}], 1, np.array([0]))
            deadline = time.monotonic() + 15
            while plog.stats()["spooled"] < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert plog.stats()["spooled"] == 3
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert plog.flush(20), plog.stats()
        stats = plog.stats()
        assert stats["feedback"] == 4 and stats["replayed"] == 3 and stats["pending"] == 0
        assert stats["submitted"] == 6 and stats["written"] == 6
        assert count_rows(plog.engine) == 2
    finally:
        plog.close()
    # r1's correction, received after its first label, replaced it.
    assert _truths(plog.url) == {("r1", 0): 0, ("r2", 1): 0, ("r3", 0): 1}


def test_predictions_stored_before_a_feedback_outage_are_not_spooled_again(
    tmp_path: Path,
) -> None:
    """The database goes away between the batch's prediction rows and its feedback rows: only
    the feedback lines are spooled, so nothing is counted (or replayed) twice."""
    from tabserve.predlog.entries import encode_entry
    from tabserve.predlog.process import LogWriter
    from tabserve.predlog.spool import Spool

    writer = LogWriter(
        f"sqlite:///{tmp_path / 'p.db'}", spool_dir=tmp_path / "spool", server_pid=os.getpid()
    )
    writer._recover_and_replay()  # the schema, and the database up
    entry = encode_entry("req", None, "titanic", "1", 2, [{"Age": 3}, {"Age": 4}], np.array([1, 0]))
    truth = encode_line([("r1", 0, 1)], ts=10.0)

    def gone(rows: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("the database went away"))

    writer._feedback_inserter.insert = gone  # type: ignore[method-assign]
    writer._deliver([(entry.rstrip(b"\n"), 2, False), (truth.rstrip(b"\n"), 1, False)])
    assert writer.counts["written"] == 2 and writer.counts["spooled"] == 1
    assert count_rows(writer.engine) == 2
    spooled = [item for seg in writer.spool.closed_segments() for chunk in Spool.read(seg)
               for item in chunk]  # fmt: skip
    assert spooled == [orjson.loads(truth)]
    writer.engine.dispose()
