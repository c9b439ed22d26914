"""The benchmark baselines on tiny data: metrics, operating points, naive miner, logistic regression."""

from __future__ import annotations

import math

import pytest

from python_steps.bench.baselines import (
    NaiveEntityMiner,
    best_recall_at_precision,
    binary_metrics,
    lr_baseline,
    lr_scores,
    naive_entity_strings,
)


def test_binary_metrics_known_values():
    m = binary_metrics([True, True, True, False, False, False], [True, True, False, True, False, False])
    assert (m.true_positives, m.false_positives, m.false_negatives, m.true_negatives) == (2, 1, 1, 2)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.false_positive_rate == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert set(m.as_dict()) >= {"precision", "recall", "fpr", "f1", "tp", "fp", "fn", "tn"}


def test_binary_metrics_empty_sides_are_zero_not_errors():
    m = binary_metrics([False, False], [False, False])
    assert (m.precision, m.recall, m.false_positive_rate, m.f1) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        binary_metrics([True], [True, False])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call 09061701461 now!", {"09061701461"}),
        ("win at http://prize.example.com/claim.", {"http://prize.example.com/claim"}),
        ("visit www.free-stuff.biz, text WIN to 87066", {"www.free-stuff.biz", "87066"}),
        ("+44 7700 900123 or 020-7946-0018", {"+44 7700 900123", "020-7946-0018"}),
        ("only 150p and 1234 or abc12345", set()),
    ],
)
def test_naive_entity_strings(text, expected):
    assert naive_entity_strings(text) == expected


def test_naive_miner_learns_exact_strings_from_spam_only():
    miner = NaiveEntityMiner.fit(
        ["Call 09061701461 to claim", "meet at www.pub.com", "txt WIN to 87066"],
        [True, False, True],
    )
    assert miner.rules == frozenset({"09061701461", "87066"})
    assert miner.predict(["ring 09061701461", "www.pub.com tonight", "call 09061709999", "87066!"]) == [
        True,
        False,
        False,
        True,
    ]


def test_best_recall_at_precision_picks_the_deepest_precise_cut():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    labels = [True, True, False, True, True, False]
    # cuts: 1/1, 2/2, 2/3, 3/4, 4/5, 4/6
    point = best_recall_at_precision(scores, labels, 0.8)
    assert point.threshold == 0.5 and point.precision == pytest.approx(0.8) and point.recall == 1.0
    strict = best_recall_at_precision(scores, labels, 1.0)
    assert strict.threshold == 0.8 and strict.recall == 0.5


def test_best_recall_at_precision_respects_ties_and_impossible_targets():
    # A tie between a spam and a ham at the top: no cut can separate them.
    point = best_recall_at_precision([1.0, 1.0, 0.1], [True, False, True], 0.99)
    assert math.isinf(point.threshold) and point.recall == 0.0
    assert best_recall_at_precision([], [], 0.9).recall == 0.0


TRAIN = [
    ("WIN a free prize now, claim at 87066", True),
    ("URGENT you have won cash, call 09061701461", True),
    ("free entry to win a prize, txt WIN", True),
    ("claim your cash prize today", True),
    ("are we still meeting for lunch", False),
    ("see you at home tonight", False),
    ("can you call me when you get this", False),
    ("lunch tomorrow? I will bring the cake", False),
]


def test_lr_scores_are_deterministic_and_rank_spam_first():
    texts, labels = zip(*TRAIN, strict=True)
    test = ["win a free cash prize, claim now", "lunch at home tonight?"]
    a = lr_scores(texts, labels, test)
    b = lr_scores(texts, labels, test)
    assert list(a) == list(b)
    assert a[0] > a[1]


def test_lr_baseline_reports_oracle_and_cv_figures():
    texts, labels = zip(*TRAIN, strict=True)
    figures = lr_baseline(texts, labels, ["win cash prize now", "lunch tonight"], [True, False], 0.9)
    assert figures["oracle_recall"] == 1.0 and figures["oracle_precision"] == 1.0
    for key in ("cv_threshold_precision", "cv_threshold_recall", "cv_threshold_fpr"):
        assert 0.0 <= figures[key] <= 1.0


def test_lr_needs_both_classes():
    with pytest.raises(ValueError):
        lr_scores(["a", "b"], [True, True], ["c"])
