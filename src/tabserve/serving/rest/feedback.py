"""``POST /feedback``: ground truth for logged predictions, into the prediction log's database.

A body is one item or an array of items, ``{request_id, record_index?, label | value}``
(predlog/feedback.py checks them against the served model's target: one of its classes with
the class's JSON type, or a finite number). Every bad field of every bad item is a 400 naming
it, as for ``/predict``; more items than ``--max-rows`` is a 413. Accepted items are answered
**202** ``{"accepted": n}``: they are queued for the log's writer process like prediction rows
(same spool, same replay, exactly once), and joined to their predictions only when a report
reads both (``tabserve drift``), so feedback may arrive before its prediction row is written.
When the log is off there is nowhere to keep them: 501. When the log is closing (the server is
draining) the client hears 503 with ``Retry-After``, since it alone has them; a writer that is
behind is not a refusal (past its bound the lines go to the spool's inbox, as predictions do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from tabserve.predlog.feedback import FeedbackInvalid, check_items
from tabserve.serving import metrics
from tabserve.serving.codecs import v1
from tabserve.serving.errors import (
    BadRequest,
    NotConfigured,
    Overloaded,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.rest.v1 import is_json
from tabserve.serving.state import ServerState


class FeedbackSink(Protocol):
    """predlog's PredictionLog has this method beside ``submit``."""

    def submit_feedback(self, items: Sequence[Sequence[Any]]) -> bool: ...


def routes(state: ServerState) -> list[Route]:
    max_items = state.settings.max_rows

    async def feedback(call: Call) -> Reply:
        if not is_json(call.header(b"content-type")):
            raise UnsupportedMediaType("send the body as application/json")
        sink = state.prediction_log
        submit = getattr(sink, "submit_feedback", None)
        if submit is None:
            raise NotConfigured(
                "feedback is stored beside the prediction log, which is off on this server "
                "(--log-db off): serve with --log-db URL, or use `tabserve feedback FILE "
                "--log-db URL --model MODEL`"
            )
        items, single = v1.decode(
            await call.body(), "a feedback item (a JSON object) or an array of them"
        )
        if not items:
            raise BadRequest("the request holds no feedback items")
        if len(items) > max_items:
            raise PayloadTooLarge(
                f"{len(items)} feedback items in one request is over the {max_items}-item limit"
            )
        spec = state.spec  # the served model's (being loaded, or loaded)
        try:
            checked = check_items(spec.target, items, indexed=not single)
        except FeedbackInvalid as exc:
            raise ValidationFailed(exc.details, exc.total) from None
        if not submit(checked):
            raise Overloaded(
                "the prediction log is closing (the server is draining): send the feedback again"
            )
        plane = state.plane
        metrics.FEEDBACK_ITEMS.labels(plane.model_name if plane else "").inc(len(checked))
        return Reply(orjson.dumps({"accepted": len(checked)}), status=202)

    return [Route("/feedback", feedback, ("POST",), "model")]
