"""`tabserve init DATA --target COL`: a working experiment + grid config pair for any table.

The data is profiled once (the same FeatureSpec training builds) so the files state the task,
a metric that fits it and which columns were excluded as ID-like, with comments saying why.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tabserve.datasets import BUILTIN_PREFIX, load_table
from tabserve.errors import UserError
from tabserve.training.profile import build_spec

DEFAULT_GRID: list[dict[str, object]] = [
    {"family": "logistic", "params": {"C": [0.1, 1.0, 10.0]}},
    {"family": "random_forest", "params": {"n_estimators": [100], "max_depth": [4, 8]}},
    {
        "family": "hist_gradient_boosting",
        "params": {"max_iter": [100], "learning_rate": [0.05, 0.1]},
    },
]
REGRESSION_GRID: list[dict[str, object]] = [
    {"family": "linear", "params": {"alpha": [0.1, 1.0, 10.0]}},
    *DEFAULT_GRID[1:],
]
# Added to either grid when their library is installed (tabserve[xgboost], tabserve[lightgbm]).
BOOSTING_GRID: list[dict[str, object]] = [
    {"family": "xgboost", "params": {"max_depth": [3, 6], "learning_rate": [0.1]}},
    {"family": "lightgbm", "params": {"num_leaves": [15, 31], "learning_rate": [0.05]}},
]


@dataclass
class InitResult:
    experiment: Path
    grid: Path
    task: str
    metric: str
    excluded: list[str]


def model_name(data: str) -> str:
    """A registry-safe name from the data file's stem (or the builtin name)."""
    stem = data[len(BUILTIN_PREFIX) :] if data.startswith(BUILTIN_PREFIX) else Path(data).stem
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", stem).strip("-.") or "model"
    return name if name[0].isalnum() else f"m{name}"


def _data_reference(data: str, out_dir: Path) -> str:
    if data.startswith(BUILTIN_PREFIX):
        return data
    return os.path.relpath(Path(data).resolve(), out_dir.resolve())


def init_configs(
    data: str, target: str, out_dir: Path, *, name: str | None = None, force: bool = False
) -> InitResult:
    """Write ``<name>.yaml`` and ``<name>-grid.yaml`` into ``out_dir``."""
    frame = load_table(data)
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise UserError(f"{data}: no column {target!r} (columns: {columns})")
    spec = build_spec(frame, target)
    task = spec.target.task
    n_classes = len(spec.target.classes or [])
    metric = "r2" if task == "regression" else ("roc_auc" if n_classes == 2 else "accuracy")
    name = name or model_name(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    experiment_path = out_dir / f"{name}.yaml"
    grid_path = out_dir / f"{name}-grid.yaml"
    for path in (experiment_path, grid_path):
        if path.exists() and not force:
            raise UserError(f"{path} exists; pass --force to overwrite")
    excluded = [e.name for e in spec.excluded]
    experiment = {
        "data": _data_reference(data, out_dir),
        "target": target,
        "exclude": excluded,
        "task": task,
        "model": "logistic" if task == "classification" else "linear",
        "params": {},
        "metric": metric,
        "split": {"test_size": 0.2},
        "seed": 42,
        "cv_folds": 5,
        "registered_model": name,
    }
    header = [
        f"# tabserve experiment for {data} (written by `tabserve init`).",
        f"# Train: tabserve train {experiment_path} --grid {grid_path}",
    ]
    for e in spec.excluded:
        header.append(f"# excluded {e.name!r}: {e.reason}")
    if spec.excluded:
        header.append(
            "# To use an excluded column anyway, list the exact columns under `features:`."
        )
    experiment_path.write_text(
        "\n".join(header)
        + "\n"
        + yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True, default_flow_style=None),
        encoding="utf-8",
    )
    from tabserve.training.pipeline import family_available

    boosting = [e for e in BOOSTING_GRID if family_available(str(e["family"]))]
    grid = {"models": [*(DEFAULT_GRID if task == "classification" else REGRESSION_GRID), *boosting]}
    grid_path.write_text(
        "# One grid point per combination; each is cross-validated (cv_folds) on the train split.\n"
        + yaml.safe_dump(grid, sort_keys=False, default_flow_style=None),
        encoding="utf-8",
    )
    return InitResult(experiment_path, grid_path, task, metric, excluded)
