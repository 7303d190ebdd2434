"""Experiment and grid configs (YAML), validated with pydantic; mistakes name file, line and key.

Experiment config (one model; a grid file widens the search):

    data: builtin:titanic          # or a CSV/Parquet path, relative to this file
    target: Survived
    exclude: [Cabin]               # optional; `features:` instead lists the exact columns
    kinds: {Pclass: categorical}   # optional per-column kind override
    task: classification           # optional, inferred from the target
    model: logistic                # family for a run without --grid
    params: {C: 1.0}
    metric: roc_auc
    split: {test_size: 0.2}
    seed: 42
    cv_folds: 5
    registered_model: titanic
    tracking_uri: null             # optional; default TABSERVE_TRACKING_URI or embedded sqlite

Grid config:

    models:
      - family: random_forest
        params: {n_estimators: [100, 200], max_depth: [4, 8]}
"""

from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tabserve.datasets import BUILTIN_PREFIX
from tabserve.spec import Kind, Task
from tabserve.training.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS
from tabserve.training.pipeline import FAMILIES
from tabserve.training.yamlfile import Loc, LocatedYaml, load_located, validate

Family = Literal[
    "logistic", "linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"
]
Metric = Literal["accuracy", "f1", "roc_auc", "log_loss", "r2", "rmse", "mae"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def valid_params(family: str) -> set[str]:
    """Constructor parameters a family accepts (classifier and regressor alike)."""
    from tabserve.training.pipeline import make_estimator

    names: set[str] = set()
    for task in ("classification", "regression"):
        names |= set(make_estimator(family, task, {}, 0).get_params(deep=False))
    if family in ("logistic", "linear"):
        from sklearn.linear_model import Ridge

        names |= set(Ridge().get_params(deep=False))
    return names


def _check_params(doc: LocatedYaml, loc: Loc, family: str, params: dict[str, Any]) -> None:
    """Unknown estimator parameters, reported at the parameter's own line."""
    try:
        known = valid_params(family)
    except ValueError as exc:  # an optional family whose library is not installed
        raise doc.error(loc, str(exc)) from None
    for name in params:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else "see the estimator's documentation"
            raise doc.error((*loc, name), f"not a parameter of {family} ({hint})")


class Split(_Strict):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)


class ExperimentConfig(_Strict):
    data: str
    target: str
    features: list[str] | None = None
    exclude: list[str] = []
    kinds: dict[str, Kind] = {}
    task: Task | None = None
    model: Family = "logistic"
    params: dict[str, Any] = {}
    metric: Metric | None = None
    split: Split = Field(default_factory=lambda: Split(test_size=0.2))
    seed: int = 42
    cv_folds: int = Field(5, ge=2, le=20)
    registered_model: str
    experiment: str | None = None
    tracking_uri: str | None = None

    # Where the file was, so relative data paths resolve against it (not part of the YAML).
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("registered_model")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '-' or '.' (it becomes a models:/ URI)")
        return value

    @field_validator("data")
    @classmethod
    def _data(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a CSV/Parquet file or builtin:<name>")
        return value

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and info.data.get("target") in value:
            raise ValueError(f"lists the target {info.data['target']!r}; remove it")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None, info: ValidationInfo) -> str | None:
        task = info.data.get("task")
        if value is not None and task is not None:
            allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
            if value not in allowed:
                raise ValueError(f"{value!r} does not fit task {task}; use {', '.join(allowed)}")
        return value

    def data_source(self) -> str:
        """``data`` as a loadable location: builtin names as is, paths against the file."""
        if self.data.startswith(BUILTIN_PREFIX):
            return self.data
        path = Path(self.data).expanduser()
        return str(path if path.is_absolute() else self.base_dir / path)

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.registered_model


class GridEntry(_Strict):
    family: Family
    params: dict[str, list[Any]] = {}

    @field_validator("params", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        # A single value is a one-point list: `max_depth: 4` means `max_depth: [4]`.
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value

    @field_validator("params")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in value.items():
            if not values:
                raise ValueError(f"{name}: needs at least one value")
        return value

    def points(self) -> list[dict[str, Any]]:
        names = list(self.params)
        combos = itertools.product(*(self.params[n] for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in combos]


class GridConfig(_Strict):
    models: list[GridEntry] = Field(min_length=1)

    def points(self) -> list[tuple[str, dict[str, Any]]]:
        return [(entry.family, p) for entry in self.models for p in entry.points()]


def load_experiment(path: Path) -> ExperimentConfig:
    doc = load_located(path)
    config: ExperimentConfig = validate(doc, ExperimentConfig)
    _check_params(doc, ("params",), config.model, config.params)
    config.base_dir = Path(path).resolve().parent
    return config


def load_grid(path: Path) -> GridConfig:
    doc = load_located(path)
    grid: GridConfig = validate(doc, GridConfig)
    for i, entry in enumerate(grid.models):
        _check_params(doc, ("models", i, "params"), entry.family, entry.params)
    return grid


__all__ = ["FAMILIES", "ExperimentConfig", "GridConfig", "load_experiment", "load_grid"]
