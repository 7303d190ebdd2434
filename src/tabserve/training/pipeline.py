"""The sklearn pipeline a FeatureSpec implies, and the frame it expects.

``prepare_frame`` is the single place raw records become pipeline input; training and the
sklearn runtime both call it, and it mirrors the ONNX input contract exactly:

    numeric   → float64, missing → NaN (imputed with the training median inside the pipeline)
    boolean   → float64 0.0/1.0, missing → NaN (imputed with the most frequent value)
    categorical → str(value), missing → "" (a category of its own; unknown ones are ignored)

So the pickled pipeline, the ONNX graph and every caller agree on one encoding, and no dtype
object ends up inside the pipeline (skops refuses to load ``numpy.dtype``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from tabserve.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

Family = Literal[
    "logistic", "linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"
]
FAMILIES: tuple[str, ...] = (
    "logistic", "linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"
)  # fmt: skip
# Families whose library is an optional extra (pip install 'tabserve[xgboost]' / '[lightgbm]').
OPTIONAL_FAMILIES = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
# Linear models need scaled inputs to converge; trees do not care.
SCALED_FAMILIES = {"logistic", "linear"}
MODEL_STEP = "model"
MISSING_CATEGORY = ""


def _as_category(value: Any) -> str:
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, float) and value != value:  # NaN
        return MISSING_CATEGORY
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        # A category column read as float because of a NaN (3.0) must match the int seen as "3".
        return str(int(value))
    return str(value)


def prepare_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Raw records (a DataFrame keyed by feature name) → the pipeline's input frame."""
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    for feature in spec.features:
        series = frame[feature.name]
        if feature.kind == "categorical":
            values = [_as_category(v) for v in series.tolist()]
            columns[feature.name] = np.asarray(values, dtype=object)
        elif feature.kind == "boolean":
            columns[feature.name] = np.asarray(
                [np.nan if _is_missing(v) else float(bool(v)) for v in series.tolist()],
                dtype="float64",
            )
        else:
            columns[feature.name] = pd.to_numeric(series, errors="raise").to_numpy(
                dtype="float64", na_value=np.nan
            )
    return pd.DataFrame(columns, index=frame.index)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def make_estimator(family: str, task: str, params: dict[str, Any], seed: int) -> Any:
    """The final estimator of a family for a task, with the grid point's parameters."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    classification = task == "classification"
    if family in ("logistic", "linear"):
        if classification:
            return LogisticRegression(**{"max_iter": 2000, **params})
        # "alpha" turns the plain least squares into ridge regression.
        return Ridge(**params) if "alpha" in params else LinearRegression(**params)
    if family == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(**{"random_state": seed, "n_jobs": 1, **params})
    if family == "hist_gradient_boosting":
        cls2 = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls2(**{"random_state": seed, **params})
    if family == "xgboost":
        xgboost = _optional("xgboost")
        if classification:
            from tabserve.training.xgboost_labels import LabelledXGBClassifier

            cls3 = LabelledXGBClassifier
        else:
            cls3 = xgboost.XGBRegressor
        # One thread per fit: the grid runs fits in parallel already.
        return cls3(**{"random_state": seed, "n_jobs": 1, "n_estimators": 200, **params})
    if family == "lightgbm":
        lightgbm = _optional("lightgbm")
        cls4 = lightgbm.LGBMClassifier if classification else lightgbm.LGBMRegressor
        return cls4(**{"random_state": seed, "n_jobs": 1, "verbose": -1, **params})
    raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")


def family_available(family: str) -> bool:
    """False for an optional family whose library is not installed."""
    module = OPTIONAL_FAMILIES.get(family)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _optional(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(
            f"the {module} family needs its library: pip install 'tabserve[{module}]'"
        ) from None


def build_pipeline(
    spec: FeatureSpec, family: str, params: dict[str, Any] | None = None, seed: int = 0
) -> Pipeline:
    """Preprocessing for the spec's feature kinds followed by the family's estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    scaled = family in SCALED_FAMILIES
    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    boolean = [f.name for f in spec.features if f.kind == "boolean"]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]

    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if scaled:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if boolean:
        imputer = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        transformers.append(("boolean", imputer, boolean))
    if categorical:
        # dtype is the float class, not a numpy dtype instance: skops will not load the latter.
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)
        transformers.append(("categorical", encoder, categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    estimator = make_estimator(family, spec.target.task, dict(params or {}), seed)
    return Pipeline([("preprocess", preprocess), (MODEL_STEP, estimator)])
