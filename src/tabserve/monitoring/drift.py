"""Drift of logged inputs (and predictions) against a model's training reference.

The reference is the columnar sample training stores with the model (``reference_sample.json``)
plus the FeatureSpec profile (missing rates, known categories). The current data is what the
prediction log holds for the model in a time window. Tests and thresholds: see stats.py.

Values are normalised so the log's shapes (the server's ONNX convention: booleans as 0.0/1.0,
a missing category as "") and the reference's raw training values compare as the same thing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from tabserve.monitoring import stats
from tabserve.spec import Feature, FeatureSpec

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tabserve.modeldir import ModelDir
    from tabserve.monitoring.quality import Quality

MISSING_RATE_CHANGE = 0.05  # absolute change in the share of missing values worth flagging
CHART_BINS = 30
CHART_TAIL_QUANTILE = 0.995
CHART_TOP_CATEGORIES = 12


@dataclass
class Distribution:
    """What the report draws: shares per bin (numeric) or per category, reference vs current."""

    labels: list[str]
    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    tail_clipped: bool = False  # the last bin also holds values beyond the chart's range


@dataclass
class ColumnDrift:
    name: str
    kind: str  # numeric | categorical | boolean
    n_reference: int
    n_current: int
    result: stats.TestResult | None
    psi: float | None
    missing_reference: float
    missing_current: float
    new_categories: dict[str, int] = field(default_factory=dict)
    distribution: Distribution | None = None
    note: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.result and self.result.drifted)

    @property
    def missing_changed(self) -> bool:
        return abs(self.missing_current - self.missing_reference) >= MISSING_RATE_CHANGE

    @property
    def severity(self) -> float:
        return self.result.severity if self.result else -1.0


@dataclass
class DriftResult:
    model_name: str
    model_version: str
    since: datetime | None
    until: datetime | None
    n_current: int
    n_reference: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    versions_seen: dict[str, int]
    notes: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # Ground truth joined to the window (quality.py); None only for results made without it.
    quality: Quality | None = None

    @property
    def tested(self) -> list[ColumnDrift]:
        return [f for f in self.features if f.result is not None]

    @property
    def n_drifted(self) -> int:
        return sum(f.drifted for f in self.tested)

    @property
    def share_drifted(self) -> float:
        return self.n_drifted / len(self.tested) if self.tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.tested) and self.share_drifted >= stats.DRIFT_SHARE


# ---- normalising values ---------------------------------------------------------------------


def category_text(v: Any, numeric_codes: bool = False) -> str:
    """One spelling per category: 3 and 3.0 are "3" (and "3.0" too for int-coded categories)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if numeric_codes and isinstance(v, str):
        try:
            number = float(v)
        except ValueError:
            return v
        return str(int(number)) if number.is_integer() else v
    return str(v)


def _boolean_text(v: Any) -> str:
    if isinstance(v, str):
        return "true" if v.strip().lower() in ("true", "1", "1.0", "yes") else "false"
    return "true" if bool(v) else "false"


def clean(
    values: Sequence[Any], kind: str, numeric_codes: bool = False
) -> tuple[np.ndarray, float]:
    """Non-missing values as a test-ready array, and the share of missing values.

    Numeric: float64 without NaN/inf. Otherwise: an object array of category strings."""
    total = len(values)
    if total == 0:
        return np.asarray([], dtype=np.float64 if kind == "numeric" else object), 0.0
    if kind == "numeric":
        try:
            arr = np.asarray(values, dtype=np.float64)  # None becomes NaN
        except (TypeError, ValueError):
            arr = np.asarray([_as_float(v) for v in values], dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        return finite, (total - len(finite)) / total
    # v != v is the NaN test, without a function call per value.
    present = [v for v in values if v is not None and v != "" and v == v]
    missing = (total - len(present)) / total
    if kind == "boolean":
        return np.asarray([_boolean_text(v) for v in present], dtype=object), missing
    return np.asarray([category_text(v, numeric_codes) for v in present], dtype=object), missing


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def encode(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Category strings → integer codes (hashing, not sorting strings: 100k rows in ms).

    Every test on categories depends only on the counts per category, so codes give the same
    numbers as the strings."""
    vocab: dict[Any, int] = {}

    def codes(values: np.ndarray) -> np.ndarray:
        return np.fromiter((vocab.setdefault(v, len(vocab)) for v in values), np.int64, len(values))

    ref = codes(reference)
    return ref, codes(current), list(vocab)


# ---- one column -----------------------------------------------------------------------------


def _value_counts(values: np.ndarray) -> dict[Any, int]:
    keys, counts = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _shares(values: np.ndarray) -> dict[Any, float]:
    total = max(len(values), 1)
    return {k: c / total for k, c in _value_counts(values).items()}


def _distribution(
    reference: np.ndarray, current: np.ndarray, numeric: bool, names: list[Any] | None = None
) -> Distribution:
    """Chart data; ``names`` maps integer codes back to category names (categorical)."""
    both = np.concatenate([reference, current])
    distinct = len(np.unique(both))
    if numeric and distinct > CHART_TOP_CATEGORIES:
        # A long right tail (fares, incomes) would squeeze everything into one bar: the chart
        # spans up to the 99.5th percentile and the last bar holds the tail.
        low, high = float(both.min()), float(np.quantile(both, CHART_TAIL_QUANTILE))
        if high <= low:
            high = float(both.max())
        edges = np.histogram_bin_edges(both, bins=CHART_BINS, range=(low, high))
        ref = np.histogram(np.clip(reference, low, high), edges)[0] / max(len(reference), 1)
        cur = np.histogram(np.clip(current, low, high), edges)[0] / max(len(current), 1)
        labels = [f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(edges.tolist())]
        clipped = bool(both.max() > high)
        return Distribution(labels, ref.tolist(), cur.tolist(), edges.tolist(), clipped)
    ref_share = _shares(reference)
    cur_share = _shares(current)
    # Small counts (SibSp) read best in value order; categories, most frequent first.
    keys = list(set(ref_share) | set(cur_share))
    if numeric:
        keys.sort()
    else:
        keys.sort(key=lambda k: -max(ref_share.get(k, 0.0), cur_share.get(k, 0.0)))
    shown, rest = keys[:CHART_TOP_CATEGORIES], keys[CHART_TOP_CATEGORIES:]
    ref_vals = [float(ref_share.get(k, 0.0)) for k in shown]
    cur_vals = [float(cur_share.get(k, 0.0)) for k in shown]
    labels = [category_text(names[k] if names is not None else k) for k in shown]
    if rest:
        labels.append(f"{len(rest)} others")
        ref_vals.append(float(sum(ref_share.get(k, 0.0) for k in rest)))
        cur_vals.append(float(sum(cur_share.get(k, 0.0) for k in rest)))
    return Distribution(labels, ref_vals, cur_vals)


def compare_column(
    name: str,
    kind: str,
    reference_values: Sequence[Any],
    current_values: Sequence[Any],
    *,
    missing_reference: float | None = None,
    known_categories: Iterable[str] | None = None,
    numeric_codes: bool = False,
) -> ColumnDrift:
    """Test one column; a column with no values on either side is reported, not tested.

    ``kind``: numeric | categorical | boolean. ``numeric_codes``: a categorical feature whose
    categories are numbers (so "3.0" and 3 are the same category)."""
    reference, ref_missing = clean(reference_values, kind, numeric_codes)
    current, cur_missing = clean(current_values, kind, numeric_codes)
    numeric = kind == "numeric"
    out = ColumnDrift(
        name=name,
        kind=kind,
        n_reference=len(reference),
        n_current=len(current),
        result=None,
        psi=None,
        missing_reference=ref_missing if missing_reference is None else missing_reference,
        missing_current=cur_missing,
    )
    names: list[Any] | None = None
    if not numeric:
        reference, current, names = encode(reference, current)
        known = (
            {category_text(c, numeric_codes) for c in known_categories}
            if known_categories is not None
            else {names[code] for code in np.unique(reference).tolist()}
        )
        out.new_categories = {
            str(names[code]): n
            for code, n in _value_counts(current).items()
            if names[code] not in known
        }
    if len(reference) == 0 or len(current) == 0:
        side = "reference" if len(reference) == 0 else "current window"
        out.note = f"no non-missing values in the {side}: not tested"
        return out
    out.result = stats.run_test(reference, current, numeric)
    out.psi = stats.psi(reference, current, numeric)
    out.distribution = _distribution(reference, current, numeric, names)
    return out


def _reference_missing(feature: Feature) -> float:
    p = feature.profile
    if p is None:
        return 0.0
    total = p.count + p.missing
    return p.missing / total if total else 0.0


def compare_features(
    spec: FeatureSpec,
    reference: Mapping[str, Sequence[Any]],
    current: Mapping[str, Sequence[Any]],
) -> list[ColumnDrift]:
    """Every feature of the spec, sorted by severity (drifted first, worst first)."""
    results = []
    for feature in spec.features:
        known = feature.categories if feature.kind == "categorical" else None
        results.append(
            compare_column(
                feature.name,
                feature.kind,
                reference.get(feature.name, []),
                current.get(feature.name, []),
                missing_reference=_reference_missing(feature),
                known_categories=known,
                numeric_codes=feature.dtype in ("int64", "float64"),
            )
        )
    return sorted(results, key=lambda c: (not c.drifted, -c.severity, c.name))


def compare_predictions(
    spec: FeatureSpec, reference: Sequence[Any] | None, current: Sequence[Any]
) -> ColumnDrift | None:
    """Prediction drift: labels as a categorical column, regression values as numeric."""
    if reference is None or not current:
        return None
    kind = "categorical" if spec.target.task == "classification" else "numeric"
    result = compare_column("prediction", kind, reference, current)
    result.kind = f"prediction ({'label' if kind == 'categorical' else 'value'})"
    return result


def analyze(
    model_dir: ModelDir,
    engine: Engine,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
) -> DriftResult:
    """Drift of the log's window for this model against its training reference, and its
    quality where ground truth was fed back."""
    from tabserve.monitoring import quality
    from tabserve.monitoring.sources import load_window, reference_predictions
    from tabserve.predlog.store import read_feedback

    spec = model_dir.spec()
    name = model_name or model_dir.name
    reference = model_dir.reference_sample()
    feedback = read_feedback(engine, since - quality.LOOKBACK if since is not None else None)
    join = quality.FeedbackJoin(feedback) if feedback else None
    window = load_window(engine, name, spec.names, since, until, join)
    notes: list[str] = []
    if not reference:
        notes.append(
            "the model has no reference_sample.json: retrain it with this tabserve to test drift"
        )
    n_reference = len(next(iter(reference.values()))) if reference else 0
    features = compare_features(spec, reference, window.columns) if window.n_rows else []
    prediction = None
    if window.n_rows and reference:
        ref_preds, why_not = reference_predictions(model_dir, spec, reference)
        prediction = compare_predictions(spec, ref_preds, window.predictions)
        if why_not:
            notes.append(f"prediction drift not computed: {why_not}")
    if len(window.versions) > 1:
        notes.append(
            "the window mixes model versions "
            + ", ".join(f"{v} ({n} rows)" for v, n in window.versions.most_common())
        )
    return DriftResult(
        model_name=name,
        model_version=model_dir.version,
        since=since or window.first,
        until=until or window.last,
        n_current=window.n_rows,
        n_reference=n_reference,
        features=features,
        prediction=prediction,
        versions_seen=dict(window.versions),
        notes=notes,
        quality=quality.score(spec.target, join or quality.FeedbackJoin({}), window.n_rows),
    )
