"""The CLI's one line for a validation answer (`tabserve predict`, `tabserve feedback`)."""

from __future__ import annotations

from tabserve.errors import first_problem

DETAILS = [
    {"record": 2, "field": "Sex", "reason": "unknown_category", "message": "Sex: 'x' is unknown"},
    {"record": 5, "field": "Age", "reason": "not_a_number", "message": "Age: expects a number"},
]


def test_the_first_problem_where_it_is_in_the_file_and_how_many_more() -> None:
    assert first_problem(DETAILS[:1]) == "record 2: Sex: 'x' is unknown [unknown_category]"
    assert first_problem(DETAILS, offset=300) == (
        "record 302: Sex: 'x' is unknown [unknown_category] (and 1 more problem(s))"
    )
    # The server lists at most so many details; the total it counted is what is said.
    assert first_problem(DETAILS, total=40).endswith("(and 39 more problem(s))")
