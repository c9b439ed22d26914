"""Metric formulas against known values (no database)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from python_steps import metrics as mt


@pytest.mark.parametrize(
    ("k", "n", "lower", "upper"),
    [
        # Textbook Wilson 95% intervals (Newcombe 1998, Table I; Brown, Cai & DasGupta 2001).
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (1, 29, 0.0061, 0.1718),
        (15, 148, 0.0624, 0.1605),
    ],
)
def test_wilson_known_values(k: int, n: int, lower: float, upper: float) -> None:
    assert mt.wilson_lower_bound(k, n) == pytest.approx(lower, abs=5e-5)
    assert mt.wilson_upper_bound(k, n) == pytest.approx(upper, abs=5e-5)


def test_z_is_the_two_sided_95_quantile() -> None:
    assert pytest.approx(norm.ppf(0.975), abs=1e-12) == mt.Z_95


def test_wilson_without_trials_is_no_evidence() -> None:
    assert mt.wilson_lower_bound(0, 0) == 0.0
    assert mt.wilson_upper_bound(0, 0) == 1.0


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        mt.wilson_lower_bound(11, 10)
    with pytest.raises(ValueError):
        mt.wilson_upper_bound(-1, 10)


def test_conservative_bar_needs_73_clean_hits() -> None:
    # With no ham at all, the Wilson lower bound clears 0.95 from 73 hits on: n / (n + z^2) >= 0.95.
    assert mt.wilson_lower_bound(72, 72) < 0.95 <= mt.wilson_lower_bound(73, 73)


def test_rule_of_three() -> None:
    assert mt.rule_of_three(300) == pytest.approx(0.01)
    assert mt.rule_of_three(2) == 1.0
    assert mt.rule_of_three(0) == 1.0


def test_false_positive_rate_upper_bound() -> None:
    assert mt.false_positive_rate_upper_bound(0, 1000) == pytest.approx(0.003)
    assert mt.false_positive_rate_upper_bound(5, 10) == pytest.approx(0.7634, abs=5e-5)
    assert mt.false_positive_rate_upper_bound(0, 0) == 1.0


def test_compute_metrics_worked_example() -> None:
    m = mt.compute_metrics(
        spam_hits=90, ham_hits=10, unlabelled_hits=5, window_messages=1000, window_spam=200, window_ham=700
    )
    assert m.hit_count == 105
    assert m.precision == pytest.approx(0.9)
    assert m.recall == pytest.approx(0.45)
    assert m.coverage == pytest.approx(0.105)
    assert m.false_positive_rate == pytest.approx(10 / 700)
    assert m.f1_score == pytest.approx(2 * 0.9 * 0.45 / 1.35)
    assert m.precision_lower_bound == pytest.approx(mt.wilson_lower_bound(90, 100))
    assert m.false_positive_rate_upper_bound == pytest.approx(mt.wilson_upper_bound(10, 700))


def test_compute_metrics_without_labelled_hits() -> None:
    m = mt.compute_metrics(
        spam_hits=0, ham_hits=0, unlabelled_hits=3, window_messages=10, window_spam=0, window_ham=0
    )
    assert m.precision is None and m.recall is None and m.f1_score is None
    assert m.false_positive_rate is None
    assert m.precision_lower_bound == 0.0
    assert m.false_positive_rate_upper_bound == 1.0
    assert m.coverage == pytest.approx(0.3)


def test_f1_edge_cases() -> None:
    assert mt.f1_score(0.0, 0.0) == 0.0
    assert mt.f1_score(None, 0.5) is None
    assert mt.f1_score(1.0, 1.0) == 1.0


def test_metrics_for_hits_counts_labels() -> None:
    labels = {1: True, 2: True, 3: False, 4: None, 5: False}
    m = mt.metrics_for_hits({1, 3, 4, 99}, labels)
    assert (m.hit_count, m.spam_hit_count, m.ham_hit_count, m.unlabelled_hit_count) == (3, 1, 1, 1)
    assert (m.window_message_count, m.window_spam_count, m.window_ham_count) == (5, 2, 2)


@given(st.integers(min_value=1, max_value=10_000), st.data())
def test_wilson_interval_brackets_the_estimate(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    lo, hi = mt.wilson_lower_bound(k, n), mt.wilson_upper_bound(k, n)
    assert 0.0 <= lo <= k / n + 1e-12
    assert k / n - 1e-12 <= hi <= 1.0
    # Symmetry: the interval of failures mirrors the interval of successes.
    assert math.isclose(lo, 1 - mt.wilson_upper_bound(n - k, n), abs_tol=1e-12)
