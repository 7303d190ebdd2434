"""Quantile maths and per-level summaries on known latencies."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tabserve.loadtest.stats import quantiles_ms, summarize


def test_quantiles_are_in_milliseconds_with_linear_interpolation() -> None:
    qs = quantiles_ms([v / 1000.0 for v in range(1, 101)])  # 1..100 ms
    assert qs["q25"] == pytest.approx(25.75)
    assert qs["q50"] == pytest.approx(50.5)
    assert qs["q90"] == pytest.approx(90.1)
    assert qs["q99"] == pytest.approx(99.01)


def test_quantiles_of_nothing_are_nan() -> None:
    assert all(math.isnan(v) for v in quantiles_ms([]).values())
    assert quantiles_ms([0.003])["q99"] == pytest.approx(3.0)


def test_summary_reports_milliseconds_over_good_answers_only() -> None:
    # 4 good answers at 1..4 ms; 2 errors that must not make the level look fast.
    result = summarize(
        mode="closed",
        concurrency=2,
        latencies_ok=[0.004, 0.001, 0.003, 0.002],
        errors_by_kind=Counter({"status_500": 1, "wrong_answer": 1}),
        elapsed_s=0.5,
        batch_size=10,
    )
    assert result.requests == 6
    assert result.ok == 4
    assert result.errors == 2
    assert result.errors_by_kind == {"status_500": 1, "wrong_answer": 1}
    assert result.throughput_rps == pytest.approx(8.0)  # 4 good answers / 0.5 s
    assert result.rows_per_s == pytest.approx(80.0)
    assert result.avg_ms == pytest.approx(2.5)
    assert result.q25_ms == pytest.approx(1.75)
    assert result.q50_ms == pytest.approx(2.5)
    assert result.q99_ms == pytest.approx(3.97)
    assert (result.min_ms, result.max_ms) == pytest.approx((1.0, 4.0))
    row = result.as_row()
    assert row["errors_by_kind"] == "status_500=1;wrong_answer=1"


def test_summary_of_a_level_with_no_good_answer_has_no_latency() -> None:
    result = summarize(
        mode="closed",
        concurrency=1,
        latencies_ok=[],
        errors_by_kind={"status_500": 10},
        elapsed_s=0.01,
    )
    assert result.throughput_rps == 0.0
    assert math.isnan(result.q50_ms)
    assert math.isnan(result.avg_ms)


def test_open_loop_summary_carries_schedule_and_send_delay() -> None:
    result = summarize(
        mode="open",
        concurrency=8,
        latencies_ok=[0.01] * 100,
        errors_by_kind={},
        elapsed_s=1.0,
        target_rate=100.0,
        send_delays=[0.0] * 99 + [0.5],
    )
    assert result.target_rate == 100.0
    assert result.send_delay_q99_ms == pytest.approx(5.0)  # 0.01 of the way to 500 ms
