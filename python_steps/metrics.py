"""Rule metrics: the Python twin of the shadow-evaluation SQL (``models/marts/rule_evaluations.sql``).

The formulas are the ones in DESIGN.md, and the dbt macros ``wilson_lower_bound``,
``wilson_upper_bound`` and ``false_positive_rate_upper_bound`` compute exactly the same numbers
(a test compares the two on a fixture):

- precision = spam hits / (spam hits + ham hits); null when the rule hit no labelled message
- recall = spam hits / all spam in the window; coverage = hits / all messages in the window
- false positive rate = ham hits / all ham in the window
- F1 = 2 p r / (p + r); null when either is null, 0 when both are 0
- Wilson score interval at 95% (z = 1.959963984540054, two-sided) for precision; with no labelled
  hits the lower bound is 0 and the upper bound 1 (no evidence either way)
- upper bound of the false positive rate: the rule of three (3 / all ham, capped at 1) when the
  rule hit no ham, else the Wilson upper bound of ham hits / all ham; 1 when the window has no ham

Pure functions, no I/O, no wall clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z_95 = 1.959963984540054


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def wilson_lower_bound(successes: int, trials: int, z: float = Z_95) -> float:
    """Lower end of the Wilson score interval for ``successes / trials`` (0 when trials is 0)."""
    if trials <= 0:
        return 0.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..trials, got {successes}/{trials}")
    n = float(trials)
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z2 / n))


def wilson_upper_bound(successes: int, trials: int, z: float = Z_95) -> float:
    """Upper end of the Wilson score interval for ``successes / trials`` (1 when trials is 0)."""
    if trials <= 0:
        return 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..trials, got {successes}/{trials}")
    n = float(trials)
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z2 / n))


def rule_of_three(trials: int) -> float:
    """95% upper bound of a rate whose event was never seen in ``trials`` trials (3/n, capped at 1)."""
    return 1.0 if trials <= 0 else min(1.0, 3.0 / trials)


def false_positive_rate_upper_bound(ham_hits: int, ham_total: int) -> float:
    if ham_total <= 0:
        return 1.0
    if ham_hits == 0:
        return rule_of_three(ham_total)
    return wilson_upper_bound(ham_hits, ham_total)


def f1_score(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class RuleMetrics:
    """One rule (or ruleset) on one window. Field names are the columns of ``rule_evaluations``."""

    hit_count: int
    spam_hit_count: int
    ham_hit_count: int
    unlabelled_hit_count: int
    window_message_count: int
    window_spam_count: int
    window_ham_count: int
    precision: float | None
    recall: float | None
    coverage: float | None
    false_positive_rate: float | None
    f1_score: float | None
    precision_lower_bound: float
    precision_upper_bound: float
    false_positive_rate_upper_bound: float

    def to_dict(self) -> dict:
        return asdict(self)


def compute_metrics(
    *,
    spam_hits: int,
    ham_hits: int,
    unlabelled_hits: int,
    window_messages: int,
    window_spam: int,
    window_ham: int,
) -> RuleMetrics:
    """All the metrics of one rule on one window, from six counts."""
    hits = spam_hits + ham_hits + unlabelled_hits
    precision = _ratio(spam_hits, spam_hits + ham_hits)
    recall = _ratio(spam_hits, window_spam)
    return RuleMetrics(
        hit_count=hits,
        spam_hit_count=spam_hits,
        ham_hit_count=ham_hits,
        unlabelled_hit_count=unlabelled_hits,
        window_message_count=window_messages,
        window_spam_count=window_spam,
        window_ham_count=window_ham,
        precision=precision,
        recall=recall,
        coverage=_ratio(hits, window_messages),
        false_positive_rate=_ratio(ham_hits, window_ham),
        f1_score=f1_score(precision, recall),
        precision_lower_bound=wilson_lower_bound(spam_hits, spam_hits + ham_hits),
        precision_upper_bound=wilson_upper_bound(spam_hits, spam_hits + ham_hits),
        false_positive_rate_upper_bound=false_positive_rate_upper_bound(ham_hits, window_ham),
    )


def metrics_for_hits(
    hit_ids: set[int] | frozenset[int],
    labels: dict[int, bool | None],
) -> RuleMetrics:
    """Metrics of a set of hit message ids against ``labels`` (message id -> is_spam) of a window."""
    spam = sum(1 for v in labels.values() if v is True)
    ham = sum(1 for v in labels.values() if v is False)
    hits = [labels[i] for i in hit_ids if i in labels]
    return compute_metrics(
        spam_hits=sum(1 for v in hits if v is True),
        ham_hits=sum(1 for v in hits if v is False),
        unlabelled_hits=sum(1 for v in hits if v is None),
        window_messages=len(labels),
        window_spam=spam,
        window_ham=ham,
    )
