"""Terminal output of `tabserve train` and `tabserve models`: Rich tables, plain words."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from tabserve.training.train import TrainResult


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


def print_training(result: TrainResult, console: Console) -> None:
    table = Table(title=f"grid results ({result.metric}: CV on train, then test)")
    for column in (
        "#",
        "family",
        "params",
        f"cv {result.metric}",
        f"test {result.metric}",
        "fit s",
    ):
        table.add_column(column, justify="right" if column not in ("family", "params") else "left")
    for p in result.points:
        best = p.index == result.best.index
        cv = f"{p.cv_mean:.4f} ±{p.cv_std:.3f}" if p.cv_mean is not None else f"failed: {p.error}"
        test = p.test_metrics.get(result.metric)
        table.add_row(
            str(p.index),
            p.family,
            _params(p.params),
            cv,
            f"{test:.4f}" if test is not None else "-",
            f"{p.fit_time_s:.2f}",
            style="bold green" if best else None,
        )
    console.print(table)
    if result.cluster:
        processes = sorted({p.ran_on for p in result.points})
        console.print(
            f"fitted on the Dask cluster at {result.cluster}: {len(processes)} worker "
            f"process(es) ({', '.join(processes)}; tag tabserve.fitted_on on each run)"
        )
    b = result.best
    console.print(f"best: {b.family} {_params(b.params)}")
    console.print(
        "test: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.test_metrics.items()))
    )
    e = result.export
    if e.onnx_bytes is not None:
        console.print(
            f"ONNX: exported; parity holds on {e.rows_checked} test rows "
            f"(max deviation {e.max_deviation:.1e})"
        )
    else:
        console.print(
            f"[bold yellow]ONNX: NOT exported[/] — {e.reason}. The model is registered with the "
            "sklearn flavour only; serve it with --runtime sklearn."
        )
    console.print(
        f"registered [bold]{result.name}[/] version {result.version} (run {result.run_id})"
    )
    style = "green" if result.decision.moved else "yellow"
    console.print(f"[{style}]champion:[/] {result.decision.message}")
    console.print(f"wall time {result.wall_time_s:.1f} s")


def print_models(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no registered models (train one: tabserve train CONFIG)")
        return
    table = Table("name", "latest version", "aliases")
    for r in rows:
        aliases = ", ".join(f"@{a} → v{v}" for a, v in r["aliases"].items()) or "-"
        table.add_row(r["name"], str(r["latest_version"] or "-"), aliases)
    console.print(table)


def print_model(model: dict[str, Any], console: Console) -> None:
    table = Table("version", "aliases", "metric", "value", "onnx", "run", title=model["name"])
    for v in model["versions"]:
        value = v["metric_value"]
        try:
            shown = f"{float(value):.4f}"
        except (TypeError, ValueError):
            shown = "-"
        table.add_row(
            v["version"],
            ", ".join(f"@{a}" for a in v["aliases"]) or "-",
            v["metric"] or "-",
            shown,
            v["onnx"] or "-",
            (v["run_id"] or "-")[:12],
        )
    console.print(table)
