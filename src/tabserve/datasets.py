"""Bundled example data and loading the user's own tables.

titanic and heart ship as CSV inside the package (heart.csv starts with a UTF-8 byte order
mark, so it is read as utf-8-sig); iris and diabetes come from scikit-learn's bundled files, so
nothing is downloaded at run time. A config's ``data:`` is a path or ``builtin:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tabserve.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    task: str
    description: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("titanic", "Survived", "classification", "Titanic passengers: who survived"),
        Dataset("heart", "target", "classification", "UCI heart disease (Cleveland)"),
        Dataset("iris", "species", "classification", "Fisher's iris flowers, 3 species"),
        Dataset("diabetes", "target", "regression", "Diabetes progression after one year"),
    )
}


def list_datasets() -> list[Dataset]:
    return list(DATASETS.values())


def _packaged_csv(filename: str, encoding: str) -> pd.DataFrame:
    import pandas as pd

    with resources.files("tabserve.data").joinpath(filename).open("rb") as fh:
        return pd.read_csv(fh, encoding=encoding)


def load_builtin(name: str) -> pd.DataFrame:
    """One bundled dataset as a DataFrame (the target column included)."""
    if name == "titanic":
        return _packaged_csv("titanic.csv", "utf-8")
    if name == "heart":
        return _packaged_csv("heart.csv", "utf-8-sig")
    if name == "iris":
        from sklearn.datasets import load_iris

        bunch = load_iris(as_frame=True)
        frame = bunch.frame.drop(columns=["target"])
        frame["species"] = [str(bunch.target_names[i]) for i in bunch.target]
        return frame
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True).frame
    known = ", ".join(DATASETS)
    raise UserError(f"unknown bundled dataset {name!r}; bundled: {known}")


def load_table(path: str | Path) -> pd.DataFrame:
    """The user's CSV or Parquet file (or ``builtin:<name>``), with one-line errors."""
    import pandas as pd

    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        return load_builtin(text[len(BUILTIN_PREFIX) :])
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a .csv or .parquet file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(p, encoding="utf-8-sig")
        else:
            raise UserError(f"{p}: unsupported file type {suffix!r}; use .csv or .parquet")
    except UserError:
        raise
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: cannot read table: {first}") from None
    if frame.empty or len(frame.columns) < 2:
        raise UserError(f"{p}: needs at least two columns and one row (got {frame.shape})")
    return frame


def materialize(name: str, directory: Path) -> Path:
    """Write a bundled dataset as ``<directory>/<name>.csv`` so configs can point at a file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    load_builtin(name).to_csv(path, index=False)
    return path
