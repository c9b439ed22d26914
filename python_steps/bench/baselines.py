"""The two baselines PATAS is measured against, on the same mining / evaluation split.

- **TF-IDF + logistic regression** (the black-box ceiling): trained on the labelled mining side;
  on the evaluation side we report the best recall any score threshold reaches at a given
  precision. The threshold is chosen *on the evaluation side*, so that figure is an **oracle
  ceiling** no deployable classifier is guaranteed to reach. Next to it, an honest variant: the
  threshold is chosen on out-of-fold scores of the mining side (5-fold cross-validation) and then
  applied to the evaluation side.
- **Naive entity miner** (the seed project's approach): every exact URL and phone-like string seen
  in a spam message of the mining side becomes a rule; an evaluation message is flagged when it
  carries one of those exact strings.

Deterministic: fixed ``random_state`` everywhere, sorted outputs, no wall clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

RANDOM_STATE = 0

# The seed's style of extraction: raw strings as they appear in the text, no canonicalization.
NAIVE_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
# Five or more digits, single separators allowed between them: phone numbers and short codes.
NAIVE_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s\-.]?\d){4,}(?!\w)")
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class BinaryMetrics:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        hits = self.true_positives + self.false_positives
        return self.true_positives / hits if hits else 0.0

    @property
    def recall(self) -> float:
        spam = self.true_positives + self.false_negatives
        return self.true_positives / spam if spam else 0.0

    @property
    def false_positive_rate(self) -> float:
        ham = self.false_positives + self.true_negatives
        return self.false_positives / ham if ham else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "fpr": round(self.false_positive_rate, 6),
            "f1": round(self.f1, 6),
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
            "tn": self.true_negatives,
        }


def binary_metrics(predicted: Sequence[bool], labels: Sequence[bool]) -> BinaryMetrics:
    if len(predicted) != len(labels):
        raise ValueError("predictions and labels differ in length")
    tp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and y)
    fp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and not y)
    fn = sum(1 for p, y in zip(predicted, labels, strict=True) if not p and y)
    return BinaryMetrics(tp, fp, fn, len(labels) - tp - fp - fn)


# ---- naive entity miner ------------------------------------------------------------------------


def naive_entity_strings(text: str) -> set[str]:
    """Exact URL and phone-like strings of ``text``, as the seed's miner would take them."""
    found = {m.group(0).rstrip(_TRAILING) for m in NAIVE_URL.finditer(text)}
    found.update(m.group(0) for m in NAIVE_PHONE.finditer(text))
    return {s for s in found if s}


@dataclass(frozen=True)
class NaiveEntityMiner:
    """One rule per exact string; a message is flagged when it carries any of them."""

    rules: frozenset[str]

    @classmethod
    def fit(cls, texts: Iterable[str], labels: Iterable[bool]) -> NaiveEntityMiner:
        rules: set[str] = set()
        for text, is_spam in zip(texts, labels, strict=True):
            if is_spam:
                rules.update(naive_entity_strings(text))
        return cls(frozenset(rules))

    def predict(self, texts: Iterable[str]) -> list[bool]:
        return [not self.rules.isdisjoint(naive_entity_strings(t)) for t in texts]


# ---- TF-IDF + logistic regression --------------------------------------------------------------


def _pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=200_000),
        TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, max_features=200_000
        ),
    )
    model = LogisticRegression(C=4.0, solver="liblinear", max_iter=1000, random_state=RANDOM_STATE)
    return make_pipeline(features, model)


def lr_scores(
    train_texts: Sequence[str], train_labels: Sequence[bool], test_texts: Sequence[str]
) -> np.ndarray:
    """Decision scores of a TF-IDF (word 1-2 grams + char 3-5 grams) logistic regression."""
    if len(set(train_labels)) < 2:
        raise ValueError("the training side needs both spam and ham")
    pipe = _pipeline().fit(list(train_texts), np.asarray(train_labels, dtype=bool))
    return pipe.decision_function(list(test_texts))


def lr_out_of_fold_scores(texts: Sequence[str], labels: Sequence[bool], folds: int = 5) -> np.ndarray:
    """Out-of-fold decision scores on the training side (for choosing a threshold honestly)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(labels, dtype=bool)
    n_splits = max(2, min(folds, int(y.sum()), int((~y).sum())))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=RANDOM_STATE)
    return cross_val_predict(_pipeline(), list(texts), y, cv=cv, method="decision_function")


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float  # flag when score >= threshold; +inf when no threshold reaches the precision
    precision: float
    recall: float


def best_recall_at_precision(
    scores: Sequence[float], labels: Sequence[bool], min_precision: float
) -> OperatingPoint:
    """The threshold with the highest recall whose precision is at least ``min_precision``.

    Only cuts between distinct scores are considered (ties are flagged together). When no cut
    reaches the precision the point is (inf, 0, 0).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    total_spam = int(y.sum())
    if not len(s) or not total_spam:
        return OperatingPoint(float("inf"), 0.0, 0.0)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    flagged = np.arange(1, len(s) + 1)
    # A cut after position i is valid when the next score differs (or i is last).
    valid = np.append(s_sorted[1:] != s_sorted[:-1], True)
    precision = tp / flagged
    ok = valid & (precision >= min_precision)
    if not ok.any():
        return OperatingPoint(float("inf"), 0.0, 0.0)
    best = int(np.flatnonzero(ok)[np.argmax(tp[ok])])
    return OperatingPoint(float(s_sorted[best]), float(precision[best]), float(tp[best] / total_spam))


@dataclass(frozen=True)
class LogisticBaseline:
    """A fitted logistic-regression baseline: scores on the test side and out-of-fold scores on the
    training side, so figures at any precision cost no refit."""

    test_scores: np.ndarray
    test_labels: np.ndarray
    train_oof_scores: np.ndarray
    train_labels: np.ndarray

    @classmethod
    def fit(
        cls,
        train_texts: Sequence[str],
        train_labels: Sequence[bool],
        test_texts: Sequence[str],
        test_labels: Sequence[bool],
    ) -> LogisticBaseline:
        return cls(
            test_scores=lr_scores(train_texts, train_labels, test_texts),
            test_labels=np.asarray(test_labels, dtype=bool),
            train_oof_scores=lr_out_of_fold_scores(train_texts, train_labels),
            train_labels=np.asarray(train_labels, dtype=bool),
        )

    def at_precision(self, min_precision: float) -> dict[str, float]:
        """Oracle ceiling (threshold chosen on the test side) and the honest variant (threshold
        chosen on the training side's out-of-fold scores, applied to the test side)."""
        oracle = best_recall_at_precision(self.test_scores, self.test_labels, min_precision)
        chosen = best_recall_at_precision(self.train_oof_scores, self.train_labels, min_precision)
        honest = binary_metrics(
            [bool(v >= chosen.threshold) for v in self.test_scores], list(self.test_labels)
        )
        return {
            "target_precision": round(min_precision, 6),
            "oracle_recall": round(oracle.recall, 6),
            "oracle_precision": round(oracle.precision, 6),
            "cv_threshold_precision": round(honest.precision, 6),
            "cv_threshold_recall": round(honest.recall, 6),
            "cv_threshold_fpr": round(honest.false_positive_rate, 6),
        }

    def pr_curve(self, points: int = 200) -> list[tuple[float, float]]:
        """(recall, precision) pairs along the test-side ranking, at most ``points`` of them."""
        order = np.argsort(-self.test_scores, kind="stable")
        y = self.test_labels[order]
        total = int(y.sum())
        if not total:
            return []
        tp = np.cumsum(y)
        precision = tp / np.arange(1, len(y) + 1)
        recall = tp / total
        step = max(1, len(y) // points)
        idx = sorted({*range(0, len(y), step), len(y) - 1})
        return [(round(float(recall[i]), 5), round(float(precision[i]), 5)) for i in idx]


def lr_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[bool],
    test_texts: Sequence[str],
    test_labels: Sequence[bool],
    min_precision: float,
) -> dict[str, float]:
    """The logistic-regression figures at ``min_precision``: oracle ceiling and honest variant."""
    return LogisticBaseline.fit(train_texts, train_labels, test_texts, test_labels).at_precision(
        min_precision
    )
