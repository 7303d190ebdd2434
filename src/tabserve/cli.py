"""The `tabserve` command line: each command parses its arguments and calls the library.

Library modules are imported inside the commands so `tabserve --help` stays instant and the
serving install does not need the training dependencies.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tabserve.errors import UserError

app = typer.Typer(
    name="tabserve",
    help="From a tabular CSV to a fast, validated, monitored HTTP model service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _progress_lines(log_format: str = "text") -> None:
    """One plain line per step of long library work (adopting a model) on stderr (JSON lines
    when the server's log is JSON: they land in the same log)."""
    import logging

    if log_format == "json":
        from tabserve.logs import handler as log_handler

        handler = log_handler("json")
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tabserve.adoption")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _print_version(value: bool) -> None:
    if value:
        from tabserve import __version__

        typer.echo(f"tabserve {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version"
    ),
) -> None:
    """From a tabular CSV to a fast, validated, monitored HTTP model service."""


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error (no traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


# ---- commands are added below, one block per area (datasets/training, serving, monitoring,
# ---- load test). Keep each command thin.


# ---- datasets and training -------------------------------------------------------------------


@app.command()
def datasets(
    export: Path | None = typer.Option(None, "--export", help="Also write each one as CSV here"),
) -> None:
    """List the bundled datasets (use them as `data: builtin:NAME` in a config)."""
    from tabserve.datasets import list_datasets, materialize

    for d in list_datasets():
        line = f"{d.name:<10} target={d.target:<10} {d.task:<15} {d.description}"
        if export is not None:
            line += f"  → {materialize(d.name, export)}"
        typer.echo(line)


@app.command()
def init(
    data: str = typer.Argument(..., help="CSV or Parquet file (or builtin:NAME)"),
    target: str = typer.Option(..., "--target", help="Column to predict"),
    out_dir: Path = typer.Option(Path("configs"), "--out-dir", help="Where to write the pair"),
    name: str | None = typer.Option(None, "--name", help="Registered model name [file stem]"),
    force: bool = typer.Option(False, "--force", help="Overwrite existing config files"),
) -> None:
    """Write a working experiment + grid config pair for DATA."""
    from tabserve.training.init_config import init_configs

    result = init_configs(data, target, out_dir, name=name, force=force)
    typer.echo(f"{result.task} of {target!r}, metric {result.metric}")
    if result.excluded:
        typer.echo(f"excluded as ID-like or empty: {', '.join(result.excluded)}")
    typer.echo(f"wrote {result.experiment} and {result.grid}")
    typer.echo(f"next: tabserve train {result.experiment} --grid {result.grid}")


@app.command()
def train(
    config: Path = typer.Argument(..., help="Experiment YAML"),
    grid: Path | None = typer.Option(None, "--grid", help="Grid YAML (one run per point)"),
    jobs: int = typer.Option(
        -1, "--jobs", "-j", help="Grid points fitted in parallel (-1: all cores or cluster threads)"
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Fit the grid on this Dask scheduler, tcp://HOST:8786 [TABSERVE_DASK_SCHEDULER]",
    ),
) -> None:
    """Train (grid search), log to MLflow, export ONNX, register; move @champion if better."""
    from rich.console import Console

    from tabserve.settings import get_settings
    from tabserve.training.config import load_experiment, load_grid
    from tabserve.training.report import print_training
    from tabserve.training.train import train as run_training

    experiment = load_experiment(config)
    grid_config = load_grid(grid) if grid is not None else None
    console = Console()
    settings = get_settings()
    if cluster:
        settings = settings.model_copy(update={"dask_scheduler": cluster})
    result = run_training(experiment, grid_config, settings, console, jobs=jobs)
    print_training(result, console)


@app.command("import")
def import_command(
    model: str = typer.Argument(
        ..., help="A .skops/.joblib/.pkl file, an MLflow model dir or runs:/ URI"
    ),
    data: Path = typer.Option(..., "--data", help="Data with the features and the target"),
    target: str = typer.Option(..., "--target", help="The target column in --data"),
    name: str = typer.Option(..., "--name", help="Registered model name"),
    alias: str = typer.Option(
        "champion", "--alias", help="Alias to give it (champion: by the rule)"
    ),
    metric: str | None = typer.Option(None, help="Metric for the champion rule [accuracy|r2]"),
    trust: list[str] = typer.Option([], "--trust", help="A type a .skops file may hold (repeat)"),
) -> None:
    """Register a pipeline trained elsewhere, as `tabserve train` registers its own.

    Derives its FeatureSpec from the model and --data, exports ONNX with a parity check,
    stores a reference sample, scores it on --data and applies the champion rule. Unpickling a
    .pkl/.joblib file runs code: import only files you trust (.skops files are type-checked).
    """
    from tabserve.adoption.importer import import_model
    from tabserve.settings import get_settings

    _progress_lines()
    result = import_model(model, data, target, name, get_settings(), alias=alias, metric=metric,
                          trusted=trust)  # fmt: skip
    score = f"{result.score:.4f}" if result.score is not None else "n/a"
    typer.echo(f"registered {result.name} version {result.version}; {result.metric} on "
               f"{data.name}: {score}")  # fmt: skip
    if result.onnx:
        typer.echo(f"ONNX: exported, parity on {result.rows_checked} rows")
    else:
        typer.echo(f"ONNX: not exported ({result.onnx_reason}); served by its native runtime")
    typer.echo(result.decision.message)


models_app = typer.Typer(help="Registry views and alias changes.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Registered models with their latest version and aliases."""
    from rich.console import Console

    from tabserve.registry import list_models
    from tabserve.settings import get_settings
    from tabserve.training.report import print_models

    print_models(list_models(get_settings()), Console())


@models_app.command("show")
def models_show(name: str = typer.Argument(..., help="Registered model name")) -> None:
    """Every version of NAME: aliases, metric, ONNX status, run."""
    from rich.console import Console

    from tabserve.registry import show_model
    from tabserve.settings import get_settings
    from tabserve.training.report import print_model

    print_model(show_model(name, get_settings()), Console())


@models_app.command("promote")
def models_promote(
    name: str = typer.Argument(..., help="Registered model name"),
    version: str = typer.Argument(..., help="Version to point the alias at"),
    alias: str = typer.Option("champion", "--alias", help="Alias to move"),
) -> None:
    """Point an alias (default champion) at VERSION; servers with --watch pick it up."""
    from tabserve.registry import promote
    from tabserve.settings import get_settings

    previous = promote(name, version, alias, get_settings())
    was = f" (was version {previous})" if previous else ""
    typer.echo(f"{name}@{alias} → version {version}{was}")


# ---- serving ---------------------------------------------------------------------------------


@app.command()
def serve(
    model_uri: str = typer.Argument(..., help="models:/name@alias, models:/name/3 or a model dir"),
    host: str | None = typer.Option(None, help="Bind address [127.0.0.1]"),
    port: int | None = typer.Option(None, help="Port [8000]"),
    grpc_port: int | None = typer.Option(None, help="Also serve OIP v2 over gRPC on this port"),
    workers: int | None = typer.Option(None, help="Worker processes [1]"),
    runtime: str | None = typer.Option(
        None, help="auto (ONNX if the model has it, else native), onnx or native [auto]"
    ),
    max_batch_size: int | None = typer.Option(None, help="Dynamic batching: rows per call [64]"),
    max_queue_delay_us: int | None = typer.Option(None, help="Batching: extra wait, µs [0]"),
    no_batching: bool = typer.Option(False, "--no-batching", help="Run each request on its own"),
    max_rows: int | None = typer.Option(None, help="Records per /predict request [10000]"),
    max_body_bytes: int | None = typer.Option(None, help="Larger bodies get 413 [8 MiB]"),
    max_in_flight: int | None = typer.Option(
        None, help="Model requests in flight per worker before 503 + Retry-After; 0: no bound [256]"
    ),
    request_timeout: float | None = typer.Option(
        None, help="Seconds a request may wait for the model before 503 [10]"
    ),
    coerce: bool = typer.Option(False, "--coerce", help='Accept "22" for 22 and 1/0 for booleans'),
    ood: str | None = typer.Option(None, help="Training-range guard: off|warn|reject [warn]"),
    watch: bool = typer.Option(False, "--watch", help="Follow the alias and hot-swap new versions"),
    watch_interval: float | None = typer.Option(None, help="Seconds between alias polls [10]"),
    log_db: str | None = typer.Option(None, help="Prediction log database URL, or 'off'"),
    log_sample: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of requests to log, 0..1 [1.0]"
    ),
    reference: Path | None = typer.Option(
        None,
        help="Training data (CSV/Parquet) for a model tabserve did not train: "
        "categories, ranges, drift reference",
    ),
    target: str | None = typer.Option(None, help="Name of such a model's target [from MLflow]"),
    drift_interval: str | None = typer.Option(
        None, help="Refresh drift and quality from the log this often (10m): gauges + report"
    ),
    drift_window: str | None = typer.Option(None, help="Over this much recent traffic [24h]"),
    log_format: str | None = typer.Option(None, help="The server's log lines: text or json [text]"),
    access_log: bool = typer.Option(False, "--access-log", help="One log line per request"),
    tracing: bool = typer.Option(
        False,
        "--tracing",
        help="OpenTelemetry traces over OTLP/HTTP (tabserve[otel]; configured by OTEL_* variables)",
    ),
) -> None:
    """Serve a model over HTTP: /predict, /v2, /invocations, /v1 (KServe), /metrics, /docs.

    MODEL_URI is a model tabserve trained or any MLflow sklearn / xgboost / lightgbm model
    (models:/name@alias, models:/name/3, runs:/<run>/model, or a local directory). A plain
    MLflow model gets its FeatureSpec and ONNX form derived once, cached beside it.
    """
    from tabserve.adoption import resolve
    from tabserve.serving.server import serve as run_server
    from tabserve.settings import get_settings, parse_duration

    if runtime is not None and runtime not in ("auto", "onnx", "native", "sklearn"):
        fail(f"--runtime must be auto, onnx or native, not {runtime!r}")
    if ood is not None and ood not in ("off", "warn", "reject"):
        fail(f"--ood must be off, warn or reject, not {ood!r}")
    if log_format is not None and log_format not in ("text", "json"):
        fail(f"--log-format must be text or json, not {log_format!r}")
    flags = {
        "host": host,
        "port": port,
        "grpc_port": grpc_port,
        "workers": workers,
        "runtime": runtime,
        "max_batch_size": max_batch_size,
        "max_queue_delay_us": max_queue_delay_us,
        "batching": False if no_batching else None,
        "max_rows": max_rows,
        "max_body_bytes": max_body_bytes,
        "max_in_flight": max_in_flight,
        "request_timeout_s": request_timeout,
        "coerce": True if coerce else None,
        "ood": ood,
        "watch": True if watch else None,
        "watch_interval_s": watch_interval,
        "log_db": log_db,
        "log_sample": log_sample,
        "reference": reference,
        "target": target,
        "log_format": log_format,
        "access_log": True if access_log else None,
        "tracing": True if tracing else None,
    }
    settings = get_settings().model_copy(update={k: v for k, v in flags.items() if v is not None})
    try:  # the forms TABSERVE_DRIFT_INTERVAL / _WINDOW take
        if drift_interval is not None:
            settings = settings.model_copy(
                update={"drift_interval": parse_duration(drift_interval)}
            )
        if drift_window is not None:
            parse_duration(drift_window)
            if not drift_window.strip()[-1:].isalpha():
                raise ValueError(f"{drift_window!r} needs a unit: 30m, 24h, 7d")
            settings = settings.model_copy(update={"drift_window": drift_window.strip()})
    except ValueError as exc:
        fail(f"--drift-interval / --drift-window: {exc}")
    if settings.drift_interval and settings.resolved_log_db() is None:
        fail("--drift-interval reads the prediction log, which is off: drop --log-db off")
    if settings.reference is not None and not settings.reference.is_file():
        fail(f"--reference {settings.reference}: no such file")
    _progress_lines(settings.log_format)
    model_dir = resolve(model_uri, settings, reference=settings.reference, target=settings.target)
    run_server(model_dir, settings, model_uri if model_uri.startswith("models:/") else None)


@app.command()
def fetch(
    model_uri: str = typer.Argument(
        ..., help="models:/name@alias, models:/name/3, runs:/… or a dir"
    ),
    out: Path | None = typer.Option(None, "--out", help="Also copy the model directory here"),
    reference: Path | None = typer.Option(None, help="Training data for a plain MLflow model"),
    target: str | None = typer.Option(None, help="Name of such a model's target"),
) -> None:
    """Resolve (and, for a plain MLflow model, adopt) a model; print its local directory.

    As an init container: `tabserve fetch models:/churn@prod --out /models/churn`, then
    `tabserve serve /models/churn` in a serving image without MLflow.
    """
    import shutil

    from tabserve.adoption import resolve
    from tabserve.settings import get_settings, require_writable

    if reference is not None and not reference.is_file():
        fail(f"--reference {reference}: no such file")
    _progress_lines()
    model_dir = resolve(model_uri, get_settings(), reference=reference, target=target)
    if out is not None:
        require_writable(out, "--out")
        shutil.copytree(model_dir.path, out, dirs_exist_ok=True)
        typer.echo(str(out.resolve()))
        return
    typer.echo(str(model_dir.path))


@app.command()
def predict(
    target: str = typer.Argument(..., help="Server URL (http://...) or a model URI / directory"),
    data: str = typer.Option(..., "--data", help="CSV, JSON, JSON Lines or Parquet file, or JSON"),
    out: str | None = typer.Option(None, "--out", help="Write predictions (.csv, .json, .jsonl)"),
    batch_size: int = typer.Option(1000, help="Records per request"),
    runtime: str | None = typer.Option(None, help="Local model only: auto, onnx or native"),
    coerce: bool = typer.Option(False, "--coerce", help="Local model only: lenient types"),
) -> None:
    """Predict a file of records with a running server or a local model (no server)."""
    from tabserve.batch_predict import run_batch_predict
    from tabserve.settings import get_settings

    settings = get_settings()
    if runtime is not None:
        if runtime not in ("auto", "onnx", "native", "sklearn"):
            fail(f"--runtime must be auto, onnx or native, not {runtime!r}")
        settings = settings.model_copy(update={"runtime": runtime})
    if coerce:
        settings = settings.model_copy(update={"coerce": True})
    run_batch_predict(target, data, out, batch_size, settings)


# ---- monitoring ------------------------------------------------------------------------------


@app.command()
def drift(
    model_uri: str = typer.Argument(..., help="models:/name@alias, models:/name/3 or a model dir"),
    since: str | None = typer.Option(None, help="Window start: 2026-11-01[T08:00] (UTC) or 24h/7d"),
    until: str | None = typer.Option(None, help="Window end (exclusive), same forms [now]"),
    log_db: str | None = typer.Option(None, help="Prediction log URL [TABSERVE_LOG_DB]"),
    out: Path = typer.Option(Path("drift.html"), "--out", help="HTML report to write"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the JSON report here"),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="Exit 1 on dataset drift"),
) -> None:
    """Compare logged inputs and predictions with the training reference, and score the model
    on the ground truth fed back (POST /feedback, tabserve feedback): HTML + JSON report."""
    from tabserve.monitoring.command import run_drift
    from tabserve.settings import get_settings

    outcome = run_drift(
        model_uri,
        get_settings(),
        since=since,
        until=until,
        log_db=log_db,
        out=out,
        json_out=json_out,
        fail_on_drift=fail_on_drift,
    )
    typer.echo(outcome.summary)
    raise typer.Exit(outcome.exit_code)


@app.command()
def feedback(
    file: Path = typer.Argument(
        ...,
        help="CSV, JSON or JSON Lines: request_id, record_index?, "
        "label (classifier) or value (regression)",
    ),
    url: str | None = typer.Option(None, "--url", help="A running server: POST /feedback"),
    log_db: str | None = typer.Option(None, help="Or straight to the prediction log's database"),
    model: str | None = typer.Option(None, help="With --log-db: the model whose labels these are"),
    api_key: str | None = typer.Option(
        None, envvar="TABSERVE_API_KEY", help="With --url: the server's API key"
    ),
    batch_size: int = typer.Option(1000, help="Items per request or transaction"),
) -> None:
    """Send ground truth for logged predictions; `tabserve drift` then reports the model's
    quality (accuracy, F1, ROC AUC or RMSE, MAE) beside the drift."""
    from tabserve.feedback_file import run_feedback
    from tabserve.settings import get_settings

    typer.echo(
        run_feedback(
            file,
            get_settings(),
            url=url,
            log_db=log_db,
            model=model,
            api_key=api_key,
            batch_size=batch_size,
        )
    )


# ---- first run -------------------------------------------------------------------------------


@app.command()
def doctor(
    model_uri: str | None = typer.Argument(None, help="Also check that this model resolves"),
    host: str | None = typer.Option(None, help="Address `serve` will bind [127.0.0.1]"),
    port: int | None = typer.Option(None, help="Port `serve` will listen on [8000]"),
    log_db: str | None = typer.Option(None, help="Prediction log URL [TABSERVE_LOG_DB]"),
) -> None:
    """Check what a first run needs (libraries, home, tracking URI, model, prediction log,
    port) and say what to fix; exit 1 when something fails. Passwords are never printed."""
    from tabserve.doctor import run_checks
    from tabserve.settings import get_settings

    flags = {"host": host, "port": port, "log_db": log_db}
    settings = get_settings().model_copy(update={k: v for k, v in flags.items() if v is not None})
    failed = 0
    for check in run_checks(settings, model_uri):
        failed += check.status == "fail"
        typer.echo(check.line())
    if failed:
        typer.echo(f"{failed} check{'s' * (failed > 1)} failed")
        raise typer.Exit(1)
    typer.echo("all checks passed")


# ---- load test -------------------------------------------------------------------------------


@app.command()
def loadtest(
    url: str = typer.Argument(..., help="Server base URL, e.g. http://127.0.0.1:8000"),
    concurrency: str = typer.Option("1,2,5,10,20,50", help="Closed-loop levels (connections)"),
    requests: int = typer.Option(500, help="Checked requests per level"),
    warmup: int | None = typer.Option(None, help="Unrecorded per level (default: max(20, 2N))"),
    protocol: str = typer.Option("v1", help="v1 (/predict) or v2 (/v2/models/{m}/infer)"),
    batch_size: int = typer.Option(1, help="Records per request"),
    data: Path | None = typer.Option(None, help="CSV to sample records from (default: spec)"),
    out: Path | None = typer.Option(None, help="Write results.csv, results.json, latency.png here"),
    rate: float | None = typer.Option(None, help="Open loop: requests per second"),
    duration: str | None = typer.Option(None, help="Open loop: how long, e.g. 30s (default: 10s)"),
    connections: int = typer.Option(64, help="Open loop: connection pool size"),
    model: str | None = typer.Option(None, help="Model name for v2 (default: asked)"),
    spec: Path | None = typer.Option(None, help="feature_spec.json for servers without GET /spec"),
    timeout: float = typer.Option(10.0, help="Seconds before a request counts as timed out"),
) -> None:
    """Concurrency sweep (or open loop with --rate): quantile table, CSV/JSON, plot."""
    from tabserve.loadtest.command import loadtest as run_loadtest

    run_loadtest(
        url,
        concurrency=concurrency,
        requests=requests,
        warmup=warmup,
        protocol=protocol,
        batch_size=batch_size,
        data=data,
        out=out,
        rate=rate,
        duration=duration,
        connections=connections,
        model=model,
        spec=spec,
        timeout=timeout,
    )


@app.command()
def locustfile(
    url: str = typer.Argument(..., help="Server base URL, e.g. http://127.0.0.1:8000"),
    protocol: str = typer.Option("v1", help="v1 (/predict) or v2 (/v2/models/{m}/infer)"),
    batch_size: int = typer.Option(1, help="Records per request"),
    records: int = typer.Option(200, help="Distinct request bodies to embed"),
    spec: Path | None = typer.Option(None, help="feature_spec.json for servers without GET /spec"),
) -> None:
    """Print a locustfile whose payloads come from the server's FeatureSpec."""
    from tabserve.loadtest.command import locustfile as render

    typer.echo(
        render(url, protocol=protocol, batch_size=batch_size, records=records, spec=spec), nl=False
    )


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
