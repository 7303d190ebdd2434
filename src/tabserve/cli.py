"""The `tabserve` command line: each command parses its arguments and calls the library.

Library modules are imported inside the commands so `tabserve --help` stays instant and the
serving install does not need the training dependencies.
"""

from __future__ import annotations

import sys

import typer

from tabserve.errors import UserError

app = typer.Typer(
    name="tabserve",
    help="From a tabular CSV to a fast, validated, monitored HTTP model service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error (no traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


# ---- commands are added below, one block per area (datasets/training, serving, monitoring,
# ---- load test). Keep each command thin.


def main() -> None:
    try:
        app()
    except UserError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
