"""What a fitted model knows about its inputs and outputs, read from the model itself.

- the task and class labels: a classifier's ``classes_``, in the order of its probabilities;
- the categories of each column an encoder saw (``OneHotEncoder`` / ``OrdinalEncoder``
  ``categories_``), wherever the encoder sits: a Pipeline step, inside a ColumnTransformer,
  nested; whether a missing value was one of them (sklearn's encoders learn NaN as a category);
- the column names it was fitted on (``feature_names_in_``), for models logged without a
  signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabserve.spec import Scalar, Task


@dataclass
class EncodedColumn:
    categories: list[Scalar]  # as fitted, missing values removed
    had_missing: bool  # NaN/None was one of the encoder's categories
    encoder: str  # the encoder's class name, for the spec's sources


@dataclass
class ModelFacts:
    task: Task
    classes: list[Scalar] | None
    estimator: str  # the final estimator's class name
    encoded: dict[str, EncodedColumn] = field(default_factory=dict)
    feature_names: list[str] | None = None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Scalar:
    return value.item() if hasattr(value, "item") else value


def final_estimator(model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _walk(node: Any, columns: list[str] | None, out: dict[str, EncodedColumn]) -> None:
    """Find fitted encoders under ``node``; ``columns`` are the names it was given, if known."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if isinstance(node, Pipeline):
        # Steps up to the first that reshapes the columns (an imputer keeps them) see the
        # pipeline's own columns.
        for _, step in node.steps:
            _walk(step, columns, out)
            if isinstance(step, ColumnTransformer | FeatureUnion | OneHotEncoder | OrdinalEncoder):
                break
        return
    if isinstance(node, ColumnTransformer):
        names_in = list(getattr(node, "feature_names_in_", columns or []))
        for _, transformer, selection in getattr(node, "transformers_", []):
            if isinstance(transformer, str):  # "drop" / "passthrough"
                continue
            _walk(transformer, _selected(selection, names_in), out)
        return
    if isinstance(node, FeatureUnion):
        for _, transformer in node.transformer_list:
            _walk(transformer, columns, out)
        return
    if isinstance(node, OneHotEncoder | OrdinalEncoder) and hasattr(node, "categories_"):
        names = list(getattr(node, "feature_names_in_", columns or []))
        for name, categories in zip(names, node.categories_, strict=False):
            values = list(categories.tolist())
            out[str(name)] = EncodedColumn(
                [_plain(v) for v in values if not _is_missing(v)],
                any(_is_missing(v) for v in values),
                type(node).__name__,
            )


def _selected(selection: Any, names: list[str]) -> list[str] | None:
    """A ColumnTransformer's column selection as names (strings, indices, masks or a slice)."""
    import numpy as np

    if isinstance(selection, str):
        return [selection]
    if isinstance(selection, slice):
        return names[selection]
    if callable(selection):
        return None
    items = list(selection)
    if items and all(isinstance(i, str) for i in items):
        return [str(i) for i in items]
    if items and all(isinstance(i, bool | np.bool_) for i in items):
        return [n for n, keep in zip(names, items, strict=False) if keep]
    if items and all(isinstance(i, int | np.integer) for i in items) and names:
        return [names[int(i)] for i in items]
    return None


def inspect(model: Any) -> ModelFacts:
    from sklearn.base import is_classifier

    final = final_estimator(model)
    classifier = bool(is_classifier(final)) or (
        hasattr(model, "predict_proba") and hasattr(model, "classes_")
    )
    classes = (
        [_plain(c) for c in model.classes_] if classifier and hasattr(model, "classes_") else None
    )
    encoded: dict[str, EncodedColumn] = {}
    _walk(model, None, encoded)
    names = getattr(model, "feature_names_in_", None)
    return ModelFacts(
        task="classification" if classifier else "regression",
        classes=classes,
        estimator=type(final).__name__,
        encoded=encoded,
        feature_names=[str(n) for n in names] if names is not None else None,
    )
