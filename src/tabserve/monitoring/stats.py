"""Drift statistics with Evidently's default choice of test and thresholds, on numpy arrays.

Users already trust Evidently's numbers, so the rules are its defaults (legacy
``get_stattest`` / ``DataDriftPreset``), re-implemented here on plain arrays with scipy:

- reference ≤ 1000 values: numeric with > 5 distinct values → two-sample Kolmogorov-Smirnov
  (drift when p ≤ 0.05); categorical (or numeric with ≤ 5 values) → chi-square (p < 0.05),
  or a two-proportion z-test (p < 0.05) when there are only two values;
- reference > 1000 values: numeric with > 5 values → Wasserstein distance normed by the
  reference std (drift when ≥ 0.1); otherwise Jensen-Shannon distance (≥ 0.1);
- PSI (30 Sturges/value bins, zero shares floored as Evidently does) is reported beside, with
  its default threshold 0.1, but does not decide the verdict;
- the dataset drifts when the share of drifted features is ≥ 0.5.

Missing values are dropped before testing, as Evidently does. Inputs here are already cleaned:
float arrays without NaN for numeric features, arrays of category strings otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.spatial import distance

SMALL_REFERENCE = 1000
FEW_VALUES = 5
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
PSI_THRESHOLD = 0.1
DRIFT_SHARE = 0.5
PSI_BINS = 30
MANY_VALUES_FOR_BINS = 20

TEST_LABELS = {
    "ks": "K-S p-value",
    "chisquare": "chi-square p-value",
    "z": "Z-test p-value",
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
}


@dataclass(frozen=True)
class TestResult:
    test: str  # key of TEST_LABELS
    value: float  # a p-value or a distance, compared with `threshold`
    threshold: float
    drifted: bool

    @property
    def is_p_value(self) -> bool:
        return self.test in ("ks", "chisquare", "z")

    @property
    def severity(self) -> float:
        """How far past the threshold: 1.0 at the threshold, larger is worse (for sorting)."""
        if self.is_p_value:
            p = min(max(self.value, 1e-300), 1.0)
            return math.log(p) / math.log(self.threshold)
        return self.value / self.threshold


def choose_test(reference: np.ndarray, current: np.ndarray, numeric: bool) -> str:
    """Evidently's default test for one column (by reference size and distinct values)."""
    n_values = len(np.unique(np.concatenate([reference, current])))
    if len(reference) <= SMALL_REFERENCE:
        if numeric and n_values > FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if numeric and n_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def run_test(reference: np.ndarray, current: np.ndarray, numeric: bool) -> TestResult:
    """Pick and run the default test; both arrays must be non-empty and without missing."""
    test = choose_test(reference, current, numeric)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        if test == "ks":
            p = float(sps.ks_2samp(reference, current)[1])
            return TestResult(test, p, P_VALUE_THRESHOLD, p <= P_VALUE_THRESHOLD)
        if test == "chisquare":
            p = chisquare_p_value(reference, current)
            return TestResult(test, p, P_VALUE_THRESHOLD, p < P_VALUE_THRESHOLD)
        if test == "z":
            p = z_test_p_value(reference, current)
            return TestResult(test, p, P_VALUE_THRESHOLD, p < P_VALUE_THRESHOLD)
        if test == "wasserstein":
            value = wasserstein_normed(reference, current)
            return TestResult(test, value, DISTANCE_THRESHOLD, value >= DISTANCE_THRESHOLD)
        value = jensen_shannon(reference, current, numeric)
        return TestResult(test, value, DISTANCE_THRESHOLD, value >= DISTANCE_THRESHOLD)


def _counts(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    uniq, counts = np.unique(values, return_counts=True)
    lookup = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    return np.array([lookup.get(k, 0) for k in keys.tolist()], dtype=np.float64)


def _keys(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([reference, current]))


def chisquare_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Current counts against reference counts rescaled to the current size."""
    keys = _keys(reference, current)
    expected = _counts(reference, keys) * (len(current) / len(reference))
    observed = _counts(current, keys)
    return float(sps.chisquare(observed, expected)[1])


def z_test_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided test of the difference of two proportions (a two-valued column)."""
    keys = _keys(reference, current)
    if len(keys) == 1:
        return 1.0
    p1 = float(np.mean(reference != keys[0]))
    p2 = float(np.mean(current != keys[0]))
    n1, n2 = len(reference), len(current)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - sps.norm.cdf(abs(z))))


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    norm = max(float(np.std(reference)), 0.001)
    return float(sps.wasserstein_distance(reference, current)) / norm


def binned_shares(
    reference: np.ndarray, current: np.ndarray, numeric: bool, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin (numeric with > 20 reference values) or per value, Evidently's way."""
    if numeric and len(np.unique(reference)) > MANY_VALUES_FOR_BINS:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref = np.histogram(reference, edges)[0] / len(reference)
        cur = np.histogram(current, edges)[0] / len(current)
    else:
        keys = _keys(reference, current)
        ref = _counts(reference, keys) / len(reference)
        cur = _counts(current, keys) / len(current)
    if fill_zeroes:
        ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return ref, cur


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    if len(nonzero) == 0:
        return shares
    smallest = float(nonzero.min())
    floor = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, floor, shares)


def jensen_shannon(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    ref, cur = binned_shares(reference, current, numeric, fill_zeroes=False)
    return float(distance.jensenshannon(ref, cur))


def psi(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    ref, cur = binned_shares(reference, current, numeric, fill_zeroes=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum((ref - cur) * np.log(ref / cur)))


def as_jsonable(value: Any) -> Any:
    """inf/NaN are not JSON: report them as None (the verdict field still tells)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
