"""Config mistakes exit 2 with `file:line: key: what is wrong` — through the real CLI entry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tabserve.cli import main

GOOD = """\
data: builtin:iris
target: species
model: logistic
metric: accuracy
registered_model: iris
"""


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["tabserve", *args]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (GOOD.replace("model: logistic", "modle: logistic"), 3, "modle", "unknown key"),
        (GOOD.replace("target: species\n", ""), 1, "target", "required key is missing"),
        (GOOD.replace("model: logistic", "model: catboost"), 3, "model", "should be"),
        (GOOD + "split:\n  test_size: 1.5\n", 7, "split.test_size", "less than 1"),
        (GOOD + "cv_folds: many\n", 6, "cv_folds", "integer"),
        (GOOD + "params:\n  C: 1\n  depht: 3\n", 8, "params.depht", "not a parameter of logistic"),
        (
            GOOD.replace("metric: accuracy", "metric: rmse") + "task: classification\n",
            4,
            "metric",
            "does not fit task classification",
        ),
        (
            GOOD.replace("registered_model: iris", "registered_model: my model"),
            5,
            "registered_model",
            "letters, digits",
        ),
        (GOOD + "target: again\n", 6, "target", "duplicate key"),
        (GOOD + "kinds: {sepal: colour}\n", 6, "kinds.sepal", "should be"),
        ("data: [unclosed\n", 2, "(document)", "invalid YAML"),
        ("- just\n- a list\n", 1, "(document)", "mapping"),
    ],
)
def test_experiment_mistakes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    key: str,
    words: str,
) -> None:
    config = write(tmp_path, "exp.yaml", text)
    code, err = run_cli(["train", str(config)], capsys)
    assert code == 2, err
    assert f"{config}:{line}: {key}: " in err, err
    assert words in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            "models:\n  - family: random_forest\n    params:\n      max_dpth: [4]\n",
            4,
            "models.0.params.max_dpth",
            "did you mean max_depth",
        ),
        ("models:\n  - family: catboost\n", 2, "models.0.family", "should be"),
        ("models: []\n", 1, "models", "at least 1"),
        (
            "models:\n  - family: logistic\n    params: {C: []}\n",
            3,
            "models.0.params",
            "needs at least one value",
        ),
        ("models:\n  - family: logistic\n    grid: {C: [1]}\n", 3, "models.0.grid", "unknown key"),
    ],
)
def test_grid_mistakes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    key: str,
    words: str,
) -> None:
    config = write(tmp_path, "exp.yaml", GOOD)
    grid = write(tmp_path, "grid.yaml", text)
    code, err = run_cli(["train", str(config), "--grid", str(grid)], capsys)
    assert code == 2, err
    assert f"{grid}:{line}: {key}: " in err, err
    assert words in err


def test_missing_files_and_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["train", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "no such file" in err
    config = write(tmp_path, "exp.yaml", GOOD.replace("builtin:iris", "missing.csv"))
    code, err = run_cli(["train", str(config)], capsys)
    assert code == 2 and "missing.csv: no such file" in err
    config = write(tmp_path, "exp2.yaml", GOOD.replace("target: species", "target: colour"))
    code, err = run_cli(["train", str(config)], capsys)
    assert code == 2 and "colour" in err and "Traceback" not in err
