"""Entry lines: what the server encodes is what the writer reads back, row for row."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tabserve.predlog.entries import encode_entry, row_count, rows_of


def test_records_and_columns_round_trip_to_the_same_rows() -> None:
    records = [{"Age": 22.0, "Sex": "male"}, {"Age": None, "Sex": None}]
    columns = {"Age": np.array([22.0, np.nan]), "Sex": np.array(["male", None], dtype=object)}
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    lines = [
        encode_entry("rid", "cid", "titanic", "3", 2, inputs, np.array([0, 1]), probs, [0, 1], 1.5)
        for inputs in (records, columns)
    ]
    for line in lines:
        assert line.endswith(b"\n") and row_count(line) == 2
    by_records, by_columns = (rows_of(orjson.loads(line)) for line in lines)
    assert [r[:2] for r in by_records] == [["rid", 0], ["rid", 1]]
    assert by_records[0][5] == {"Age": 22.0, "Sex": "male"}
    assert by_columns[1][5] == {"Age": None, "Sex": None}  # NaN is written as null
    assert by_records[1][6:8] == [1, {"0": 0.3, "1": 0.7}]
    assert by_records[0][10] == "cid" and by_records[0][8] == 1.5
    assert [r[5:] for r in by_records] == [r[5:] for r in by_columns]


@pytest.mark.parametrize("line", [b"", b"\n", b"{}", b"[0,1]", b"[-3,1]", b"[x,", b"garbage"])
def test_a_line_without_a_row_count_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        row_count(line)


def test_parts_that_disagree_on_the_row_count_are_refused() -> None:
    line = encode_entry("r", None, "m", "1", 3, [{"a": 1}], np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="1 records for 3 rows"):
        rows_of(orjson.loads(line))
