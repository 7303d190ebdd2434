"""Drift statistics: the same numbers as scipy on the same data, and as Evidently itself.

The Evidently comparison runs Evidently in its own interpreter (a separate venv, never the
project's): TABSERVE_EVIDENTLY_PYTHON, or /tmp/evidently-venv/bin/python when present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance

from tabserve.monitoring import stats
from tabserve.monitoring.drift import compare_column

RNG_SEED = 7


def _cats(rng: np.random.Generator, n: int, p: list[float], keys: str = "abcd") -> np.ndarray:
    return np.asarray(rng.choice(list(keys[: len(p)]), size=n, p=p), dtype=object)


def test_default_test_follows_evidently_rules() -> None:
    rng = np.random.default_rng(RNG_SEED)
    small, large = rng.normal(size=500), rng.normal(size=1500)
    assert stats.choose_test(small, small, numeric=True) == "ks"
    assert stats.choose_test(large, large, numeric=True) == "wasserstein"
    few = rng.integers(0, 4, size=500).astype(float)
    assert stats.choose_test(few, few, numeric=True) == "chisquare"  # ≤ 5 values: categorical
    assert stats.choose_test(_cats(rng, 500, [0.5, 0.5]), _cats(rng, 9, [1.0]), False) == "z"
    assert stats.choose_test(_cats(rng, 500, [0.3, 0.3, 0.4]), _cats(rng, 9, [1]), False) == (
        "chisquare"
    )
    assert stats.choose_test(_cats(rng, 1001, [0.5, 0.5]), _cats(rng, 9, [1]), False) == (
        "jensenshannon"
    )


def test_numeric_tests_equal_scipy() -> None:
    rng = np.random.default_rng(RNG_SEED)
    ref, cur = rng.normal(0, 2, 800), rng.normal(0.3, 2, 300)
    ks = stats.run_test(ref, cur, numeric=True)
    assert ks.test == "ks" and ks.value == pytest.approx(sps.ks_2samp(ref, cur).pvalue)
    big_ref = rng.normal(0, 2, 3000)
    wd = stats.run_test(big_ref, cur, numeric=True)
    expected = sps.wasserstein_distance(big_ref, cur) / np.std(big_ref)
    assert wd.test == "wasserstein" and wd.value == pytest.approx(expected)
    assert wd.drifted == (expected >= 0.1)


def test_categorical_tests_equal_scipy() -> None:
    rng = np.random.default_rng(RNG_SEED)
    ref, cur = _cats(rng, 900, [0.4, 0.3, 0.2, 0.1]), _cats(rng, 250, [0.3, 0.3, 0.2, 0.2])
    keys = ["a", "b", "c", "d"]
    ref_counts = np.array([(ref == k).sum() for k in keys], dtype=float)
    cur_counts = np.array([(cur == k).sum() for k in keys], dtype=float)
    chi = stats.run_test(ref, cur, numeric=False)
    expected = sps.chisquare(cur_counts, ref_counts * len(cur) / len(ref)).pvalue
    assert chi.test == "chisquare" and chi.value == pytest.approx(expected)

    big_ref = _cats(rng, 4000, [0.4, 0.3, 0.2, 0.1])
    big_counts = np.array([(big_ref == k).sum() for k in keys], dtype=float)
    js = stats.run_test(big_ref, cur, numeric=False)
    expected_js = distance.jensenshannon(big_counts / len(big_ref), cur_counts / len(cur))
    assert js.test == "jensenshannon" and js.value == pytest.approx(expected_js)


def test_two_valued_z_test_equals_pearson_chi2_on_the_2x2_table() -> None:
    rng = np.random.default_rng(RNG_SEED)
    ref, cur = _cats(rng, 700, [0.65, 0.35]), _cats(rng, 400, [0.55, 0.45])
    table = [[(ref == "a").sum(), (ref == "b").sum()], [(cur == "a").sum(), (cur == "b").sum()]]
    expected = sps.chi2_contingency(table, correction=False).pvalue  # z² is Pearson's chi²
    z = stats.run_test(ref, cur, numeric=False)
    assert z.test == "z" and z.value == pytest.approx(expected) and z.drifted


def test_psi_is_zero_for_identical_and_large_for_shifted() -> None:
    rng = np.random.default_rng(RNG_SEED)
    ref = rng.normal(size=1000)
    assert stats.psi(ref, ref.copy(), numeric=True) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi(ref, ref + 1.0, numeric=True) > 0.25


def test_severity_orders_by_distance_past_the_threshold() -> None:
    mild = stats.TestResult("ks", 0.04, 0.05, True)
    strong = stats.TestResult("ks", 1e-30, 0.05, True)
    calm = stats.TestResult("wasserstein", 0.02, 0.1, False)
    assert strong.severity > mild.severity > 1.0 > calm.severity


# ---- the same data through Evidently --------------------------------------------------------


EVIDENTLY_VENV = Path(__file__).resolve().parents[3] / ".venv-evidently"
# Evidently 0.7.23 imports pandas internals that pandas 3 removed.
EVIDENTLY_PINS = ["evidently==0.7.23", "pandas<3"]


def _evidently_python() -> str | None:
    """Evidently in its own venv (it pins its own pandas): TABSERVE_EVIDENTLY_PYTHON, or
    .venv-evidently/ in the repo, created here once (about a minute) when pip can reach PyPI."""
    configured = os.environ.get("TABSERVE_EVIDENTLY_PYTHON")
    if configured:
        return configured if Path(configured).is_file() else None
    python = EVIDENTLY_VENV / "bin" / "python"
    stamp = EVIDENTLY_VENV / ".installed"
    if not stamp.is_file():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_PINS],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip
        except (subprocess.SubprocessError, OSError):
            return None
        stamp.touch()
    return str(python)


def _scenarios(ref_n: int, cur_n: int) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(RNG_SEED + ref_n)
    few = lambda n, p: rng.choice([0.0, 1.0, 2.0, 3.0], size=n, p=p).tolist()  # noqa: E731
    return {
        "num_same": {"kind": "num", "reference": rng.normal(5, 2, ref_n).tolist(),
                     "current": rng.normal(5, 2, cur_n).tolist()},
        "num_shift": {"kind": "num", "reference": rng.normal(5, 2, ref_n).tolist(),
                      "current": rng.normal(5.5, 2, cur_n).tolist()},
        "few_values": {"kind": "num", "reference": few(ref_n, [0.4, 0.3, 0.2, 0.1]),
                       "current": few(cur_n, [0.3, 0.3, 0.2, 0.2])},
        "cat_same": {"kind": "cat", "reference": _cats(rng, ref_n, [0.5, 0.3, 0.2]).tolist(),
                     "current": _cats(rng, cur_n, [0.5, 0.3, 0.2]).tolist()},
        "cat_shift": {"kind": "cat", "reference": _cats(rng, ref_n, [0.5, 0.3, 0.2]).tolist(),
                      "current": _cats(rng, cur_n, [0.3, 0.3, 0.4]).tolist()},
        "binary": {"kind": "cat", "reference": _cats(rng, ref_n, [0.6, 0.4]).tolist(),
                   "current": _cats(rng, cur_n, [0.5, 0.5]).tolist()},
    }  # fmt: skip


EVIDENTLY_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}


SIZES = [(600, 400), (3000, 2000)]  # Evidently's small-reference and large-reference rules


@pytest.fixture(scope="module")
def evidently_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    python = _evidently_python()
    if python is None:
        pytest.skip(
            f"Evidently could not be installed into {EVIDENTLY_VENV} (no PyPI?); "
            "the scipy equivalence tests above cover the same formulas"
        )
    spec_file = tmp_path_factory.mktemp("evidently") / "frames.json"
    spec_file.write_text(json.dumps({"frames": [_scenarios(r, c) for r, c in SIZES]}))
    probe = Path(__file__).parents[2] / "helpers" / "evidently_probe.py"
    proc = subprocess.run(
        [python, str(probe), str(spec_file)], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("frame", range(len(SIZES)), ids=["small-reference", "large-reference"])
def test_verdicts_and_scores_match_evidently(
    frame: int, evidently_results: list[dict[str, Any]]
) -> None:
    columns = _scenarios(*SIZES[frame])
    theirs = evidently_results[frame]
    drifted = 0
    for name, col in columns.items():
        kind = "numeric" if col["kind"] == "num" else "categorical"
        ours = compare_column(name, kind, col["reference"], col["current"])  # type: ignore[arg-type]
        assert ours.result is not None
        assert ours.result.test == EVIDENTLY_NAMES[theirs[name]["stattest"]], name
        assert ours.result.value == pytest.approx(theirs[name]["score"], rel=1e-6, abs=1e-12)
        assert ours.drifted == theirs[name]["drifted"], name
        drifted += ours.drifted
    assert drifted / len(columns) == pytest.approx(theirs["__dataset__"]["share"])
