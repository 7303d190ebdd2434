"""Errors that are the user's to fix: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class UserError(Exception):
    """A mistake in input, config or environment that the user can fix; carries an exit code."""

    exit_code = 2


class ServiceUnavailable(UserError):
    """A service (MLflow server, database, model server) that is not reachable.

    The message names the URL and what to start.
    """

    exit_code = 3


class EmptyWindow(UserError):
    """``tabserve drift`` found no logged predictions of the model in the window: nothing to
    report yet, which a scheduler (the server's drift refresher) tells apart from a failure."""

    exit_code = 4


def first_problem(
    details: Sequence[dict[str, Any]], total: int | None = None, offset: int = 0
) -> str:
    """A validation answer's problems (``{record, field, reason, message}`` each, as the server's
    400 lists them) as the CLI's one line: the first, where it is, and how many more. ``offset``
    turns a record's index in one request into its index in the whole file."""
    first = details[0]
    total = len(details) if total is None else total
    more = f" (and {total - 1} more problem(s))" if total > 1 else ""
    return f"record {offset + first.get('record', 0)}: {first['message']} [{first['reason']}]{more}"
