"""Ground truth fed back for logged predictions: checked items, the line on the writer's pipe,
and the rows of the ``feedback`` table.

An item names one logged record and what it really was::

    {"request_id": "…", "record_index": 0, "label": "yes"}     a classifier (record_index: 0)
    {"request_id": "…", "value": 151.0}                        a regression model

``request_id`` is either the server's own id (the prediction log's key; the ``X-Request-ID``
the server answers with when the client sent none) or the client's own ``X-Request-ID``
(stored beside it as ``client_request_id``). Feedback is stored as given; which prediction it
belongs to is decided when a report reads both (monitoring/quality.py), because labels arrive
hours or days later and the prediction row may still be in a spool when they do.

``check_items`` is the one validation, used by the server's ``POST /feedback`` and by
``tabserve feedback FILE --log-db`` alike. A label must be one of the FeatureSpec target's
classes *with the class's JSON type*: "1" is not the class 1 and true is not 1 (no silent
coercion); 1.0 is the class 1, since JSON has one number type. What is stored is the class as
the spec has it, so the report compares like with like. A regression value is a finite number.
Problems are reported per item and field (``FeedbackInvalid``), with the reasons the request
validation uses.

On the pipe a batch of items is one JSON object line, told apart from a prediction entry (a
JSON array) by its first byte::

    {"feedback": n_items, "ts": epoch_s, "items": [[request_id, record_index, truth], ...]}

``ts`` is when the server (or the CLI) received it: the table keeps, per (request_id,
record_index), the truth received last (store.FeedbackInserter), so a correction replaces an
earlier label, and a spool replayed late never overwrites a newer one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import orjson

from tabserve.predlog.entries import CLIENT_ID_MAX
from tabserve.spec import Target

# A feedback row: [request_id, record_index, ts (epoch s), truth]
FeedbackRow = list[Any]
PREFIX = b'{"feedback":'
KIND = "feedback"  # the quarantine's mark for a feedback row (prediction rows have none)
MAX_RECORD_INDEX = 2**31 - 1  # the column is a 32-bit integer on both databases
MAX_DETAILS = 100
FIELDS = ("request_id", "record_index", "label", "value")


class FeedbackInvalid(ValueError):
    """Items the model's target cannot take: one detail per problem, as request validation
    writes them (``{"record"?, "field", "reason", "message"}``); ``total`` counts them all."""

    def __init__(self, details: list[dict[str, Any]], total: int) -> None:
        super().__init__(details[0]["message"] if details else "invalid feedback")
        self.details = details
        self.total = total


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a JSON {'array' if isinstance(value, list) else 'object'}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    """The JSON type a value has, for matching a label to the classes (1 and 1.0 are one)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


class TruthRule:
    """The target's classes (or regression), compiled once: item → (request_id, index, truth)."""

    def __init__(self, target: Target) -> None:
        self.classifier = target.task == "classification"
        self.field = "label" if self.classifier else "value"
        self.other = "value" if self.classifier else "label"
        self.classes: list[Any] = list(target.classes or [])
        # (JSON type, value) → the class as the spec has it: one dict lookup per label.
        self._lookup: dict[tuple[str, Any], Any] = {}
        for c in self.classes:
            key = float(c) if _kind(c) == "number" else c
            self._lookup[(_kind(c), key)] = c
        self._kinds = sorted({_kind(c) for c in self.classes})

    def describe_classes(self, limit: int = 6) -> str:
        shown = ", ".join(_shown(c) for c in self.classes[:limit])
        more = f", … ({len(self.classes)} classes)" if len(self.classes) > limit else ""
        return shown + more

    def truth(self, value: Any) -> tuple[Any, str | None, str | None]:
        """(the stored truth, reason, message): reason None when the value is good."""
        name = self.field
        if value is None:
            return None, "null", f"{name} must not be null"
        if not self.classifier:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None, "wrong_type", f"value expects a number, got {_type_name(value)}"
            if not math.isfinite(value):
                return None, "not_finite", "value must be a finite number"
            return float(value), None, None
        kind = _kind(value)
        if kind not in self._kinds:
            expected = " or ".join(f"a {k}" for k in self._kinds) or "a class label"
            return (
                None,
                "wrong_type",
                (
                    f"label expects {expected} (one of {self.describe_classes()}), "
                    f"got {_type_name(value)} {_shown(value)}"
                ),
            )
        key = float(value) if kind == "number" else value
        found = self._lookup.get((kind, key), _MISSING)
        if found is _MISSING:
            return (
                None,
                "unknown_category",
                (
                    f"label {_shown(value)} is not a class of this model "
                    f"(classes: {self.describe_classes()})"
                ),
            )
        return found, None, None


_MISSING = object()


def _check_request_id(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return "wrong_type", f"request_id expects a string, got {_type_name(value)}"
    if not value or len(value) > CLIENT_ID_MAX or not (value.isascii() and value.isprintable()):
        return "out_of_range", (
            f"request_id must be 1 to {CLIENT_ID_MAX} printable ASCII characters (the "
            "X-Request-ID of the prediction: the server's, or the client's own)"
        )
    return None, None


def _check_index(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int):
        return "wrong_type", f"record_index expects an integer, got {_type_name(value)}"
    if not 0 <= value <= MAX_RECORD_INDEX:
        return "out_of_range", "record_index must be 0 or more (the record's place in its request)"
    return None, None


def check_items(
    target: Target, items: Sequence[Any], *, indexed: bool = True
) -> list[tuple[str, int, Any]]:
    """Checked items as (request_id, record_index, truth); FeedbackInvalid naming every bad
    field of every bad item otherwise (``indexed=False``: one object was sent, no "record")."""
    rule = TruthRule(target)
    good: list[tuple[str, int, Any]] = []
    details: list[dict[str, Any]] = []
    total = 0

    def problem(i: int, field: str | None, reason: str, message: str) -> None:
        nonlocal total
        total += 1
        if len(details) < MAX_DETAILS:
            detail: dict[str, Any] = {"field": field, "reason": reason, "message": message}
            if indexed:
                detail = {"record": i, **detail}
            details.append(detail)

    for i, item in enumerate(items):
        if type(item) is not dict:
            problem(i, None, "wrong_type", f"a feedback item is a JSON object, got "
                                           f"{_type_name(item)}")  # fmt: skip
            continue
        bad = total
        request_id = item.get("request_id")
        if "request_id" not in item:
            problem(i, "request_id", "missing", "request_id is required")
        else:
            reason, message = _check_request_id(request_id)
            if reason and message:
                problem(i, "request_id", reason, message)
        index = item.get("record_index", 0)
        reason, message = _check_index(index)
        if reason and message:
            problem(i, "record_index", reason, message)
        truth = None
        if rule.field not in item:
            task = "a classifier" if rule.classifier else "a regression model"
            problem(i, rule.field, "missing", f"{rule.field} is required (this model is {task})")
        else:
            truth, reason, message = rule.truth(item[rule.field])
            if reason and message:
                problem(i, rule.field, reason, message)
        for key in item:
            if key == rule.other:
                problem(i, key, "extra_field", f"{key} is not for this model: send {rule.field}")
            elif key not in FIELDS:
                fields = f"request_id, record_index, {rule.field}"
                problem(i, None, "extra_field",
                        f"{_shown(key)} is not a field of a feedback item ({fields})")  # fmt: skip
        if total == bad:
            good.append((request_id, index, truth))  # type: ignore[arg-type]  # checked above
    if total:
        raise FeedbackInvalid(details, total)
    return good


# ---- the line on the pipe, and rows ----------------------------------------------------------


def encode_line(items: Sequence[Sequence[Any]], ts: float | None = None) -> bytes:
    """Checked (request_id, record_index, truth) items as one line for the writer."""
    body = {"feedback": len(items), "ts": time.time() if ts is None else ts, "items": items}
    return orjson.dumps(body) + b"\n"


def is_feedback(line: bytes) -> bool:
    return line.startswith(PREFIX)


def item_count(line: bytes) -> int:
    """The item count of a feedback line without parsing the rest; ValueError if it has none."""
    end = line.find(b",", len(PREFIX), len(PREFIX) + 24)
    n = int(line[len(PREFIX) : end]) if end > 0 else -1
    if n < 1:
        raise ValueError("not a feedback line")
    return n


def rows_of(line_object: dict[str, Any]) -> list[FeedbackRow]:
    """The rows of one decoded feedback line; ValueError when it is not one."""
    ts = float(line_object["ts"])
    items = line_object["items"]
    if len(items) != line_object["feedback"]:
        raise ValueError(f"{len(items)} feedback items for {line_object['feedback']}")
    rows = []
    for request_id, index, truth in items:
        if not isinstance(request_id, str) or not isinstance(index, int):
            raise ValueError("a feedback item without a request id and record index")
        rows.append([request_id, index, ts, truth])
    return rows


def to_quarantine(row: FeedbackRow) -> dict[str, Any]:
    """A refused feedback row as a quarantine line's object (marked, unlike prediction rows)."""
    request_id, index, ts, truth = row
    return {"kind": KIND, "request_id": request_id, "record_index": index, "ts": ts,
            "truth": truth}  # fmt: skip
