"""Errors that are the user's to fix: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations


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
