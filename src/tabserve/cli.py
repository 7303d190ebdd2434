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


# ---- serving ---------------------------------------------------------------------------------


@app.command()
def serve(
    model_uri: str = typer.Argument(..., help="models:/name@alias, models:/name/3 or a model dir"),
    host: str | None = typer.Option(None, help="Bind address [127.0.0.1]"),
    port: int | None = typer.Option(None, help="Port [8000]"),
    workers: int | None = typer.Option(None, help="Worker processes [1]"),
    runtime: str | None = typer.Option(None, help="onnx (default) or sklearn"),
    max_batch_size: int | None = typer.Option(None, help="Dynamic batching: rows per call [64]"),
    max_queue_delay_us: int | None = typer.Option(None, help="Dynamic batching: wait, µs [500]"),
    no_batching: bool = typer.Option(False, "--no-batching", help="Run each request on its own"),
    max_rows: int | None = typer.Option(None, help="Records per /predict request [10000]"),
    max_body_bytes: int | None = typer.Option(None, help="Larger bodies get 413 [8 MiB]"),
    coerce: bool = typer.Option(False, "--coerce", help='Accept "22" for 22 and 1/0 for booleans'),
    ood: str | None = typer.Option(None, help="Training-range guard: off|warn|reject [warn]"),
    watch: bool = typer.Option(False, "--watch", help="Follow the alias and hot-swap new versions"),
    watch_interval: float | None = typer.Option(None, help="Seconds between alias polls [10]"),
    log_db: str | None = typer.Option(None, help="Prediction log database URL, or 'off'"),
) -> None:
    """Serve a model over HTTP: /predict, /v2, /metrics, /health, /ready, /docs."""
    from tabserve.serving.server import serve as run_server
    from tabserve.settings import get_settings

    if runtime is not None and runtime not in ("onnx", "sklearn"):
        fail(f"--runtime must be onnx or sklearn, not {runtime!r}")
    if ood is not None and ood not in ("off", "warn", "reject"):
        fail(f"--ood must be off, warn or reject, not {ood!r}")
    flags = {
        "host": host,
        "port": port,
        "workers": workers,
        "runtime": runtime,
        "max_batch_size": max_batch_size,
        "max_queue_delay_us": max_queue_delay_us,
        "batching": False if no_batching else None,
        "max_rows": max_rows,
        "max_body_bytes": max_body_bytes,
        "coerce": True if coerce else None,
        "ood": ood,
        "watch": True if watch else None,
        "watch_interval_s": watch_interval,
        "log_db": log_db,
    }
    settings = get_settings().model_copy(update={k: v for k, v in flags.items() if v is not None})
    run_server(model_uri, settings)


@app.command()
def predict(
    target: str = typer.Argument(..., help="Server URL (http://...) or a model URI / directory"),
    data: str = typer.Option(..., "--data", help="CSV, JSON, JSON Lines or Parquet file, or JSON"),
    out: str | None = typer.Option(None, "--out", help="Write predictions (.csv, .json, .jsonl)"),
    batch_size: int = typer.Option(1000, help="Records per request"),
    runtime: str | None = typer.Option(None, help="Local model only: onnx or sklearn"),
    coerce: bool = typer.Option(False, "--coerce", help="Local model only: lenient types"),
) -> None:
    """Predict a file of records with a running server or a local model (no server)."""
    from tabserve.serving.batch_predict import run_batch_predict
    from tabserve.settings import get_settings

    settings = get_settings()
    if runtime is not None:
        if runtime not in ("onnx", "sklearn"):
            fail(f"--runtime must be onnx or sklearn, not {runtime!r}")
        settings = settings.model_copy(update={"runtime": runtime})
    if coerce:
        settings = settings.model_copy(update={"coerce": True})
    run_batch_predict(target, data, out, batch_size, settings)


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
