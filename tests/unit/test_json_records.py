"""The JSON shapes of a records file: `tabserve predict` and `tabserve feedback` read the same."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tabserve.errors import UserError
from tabserve.feedback_file import read_items
from tabserve.json_records import records_from_json
from tabserve.spec import Target


def test_one_object_an_array_and_columns_are_records() -> None:
    assert records_from_json({"a": 1}) == [{"a": 1}]
    assert records_from_json([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    assert records_from_json({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
    ]


@pytest.mark.parametrize("value", [{"a": [1, 2], "b": [3]}, 7, "text", None])
def test_shapes_that_hold_no_records_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        records_from_json(value)


def test_feedback_reads_columnar_json_and_says_what_is_wrong(tmp_path: Path) -> None:
    target = Target(name="Survived", task="classification", classes=[0, 1])
    good = tmp_path / "labels.json"
    good.write_bytes(orjson.dumps({"request_id": ["r1", "r2"], "label": [0, 1], "note": ["", ""]}))
    items, others = read_items(good, target)
    assert items == [{"request_id": "r1", "label": 0}, {"request_id": "r2", "label": 1}]
    assert others == ["note"]
    ragged = tmp_path / "ragged.json"
    ragged.write_bytes(orjson.dumps({"request_id": ["r1", "r2"], "label": [0]}))
    with pytest.raises(UserError, match=r"ragged\.json: columnar JSON needs lists of one length"):
        read_items(ragged, target)
