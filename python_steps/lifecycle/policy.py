"""Promotion policy: pure functions of metrics, unit-tested without a database.

:func:`promotion_failures` and :func:`deprecation_reason` judge one rule against a safety profile;
:func:`greedy_select` picks a ruleset whose union meets the profile; :func:`plan_transitions`
turns states and metrics into the run's decisions. :mod:`python_steps.lifecycle.store` reads the
evaluation, calls these and writes the outcome.

Reasons start with a stable code (``meets_profile``, ``precision_below_profile``,
``precision_dropped``, ``feedback``, ``ham_hits_above_profile``, ``coverage_above_twice_profile``, ``idle``,
``returning``, ``evaluated``, ``drafted``, ``manual_*``), then readable details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from python_steps.lifecycle.profiles import (
    MATCH_EVERYTHING_COVERAGE,
    SafetyProfile,
    TierThresholds,
    tier_for,
)
from python_steps.metrics import wilson_lower_bound

STATUSES = ("candidate", "shadow", "active", "deprecated")


class LifecycleError(RuntimeError):
    pass


@dataclass(frozen=True)
class RuleState:
    rule_id: str
    version: int
    status: str
    is_pinned: bool = False
    promoted_metrics: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    rule_id: str
    version: int
    from_status: str | None
    to_status: str
    reason: str
    metrics: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HitSets:
    """The spam and ham message ids a rule hits on the evaluation window (for greedy selection)."""

    spam: frozenset[int] = frozenset()
    ham: frozenset[int] = frozenset()

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The spam and ham ids as int64 arrays (made once per instance; the set choice counts with them)."""
        return (
            np.fromiter(self.spam, dtype=np.int64, count=len(self.spam)),
            np.fromiter(self.ham, dtype=np.int64, count=len(self.ham)),
        )


def _positions(
    arrays: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """Each rule's spam and ham ids as positions in one range, and its size: the ids themselves when
    they are not much sparser than the hits (as message ids are), else their ranks among all ids."""
    every = [a for pair in arrays.values() for a in pair if len(a)]
    if not every:
        return dict(arrays), 0
    low, top = min(int(a.min()) for a in every), max(int(a.max()) for a in every)
    if low >= 0 and top < 4 * sum(len(a) for a in every) + 1_000_000:
        return dict(arrays), top + 1
    universe = np.unique(np.concatenate(every))
    ranks = {
        rid: (np.searchsorted(universe, s), np.searchsorted(universe, h)) for rid, (s, h) in arrays.items()
    }
    return ranks, len(universe)


def _fmt(x: Any) -> str:
    return "null" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


def _has_evidence(metrics: Mapping[str, Any]) -> bool:
    return metrics.get("posterior_mean") is not None


def _evidence_failures(metrics: Mapping[str, Any], profile: SafetyProfile) -> list[str]:
    """``promotion_failures`` on cross-fitted evidence (python_steps.lifecycle.evidence)."""
    spam, ham = metrics["evidence_spam_hits"], metrics["evidence_ham_hits"]
    labelled = spam + ham
    if labelled == 0:
        return ["no_labelled_hits: the rule hit no labelled message its evidence may use"]
    out: list[str] = []
    mean, lower = metrics["posterior_mean"], metrics["posterior_lower_bound"]
    detail = f"({spam} spam / {ham} ham held-out hits, {metrics.get('rule_kind')} prior {_fmt(metrics.get('prior_mean'))})"
    if profile.use_wilson and lower < profile.min_precision:
        out.append(
            f"posterior_lower_bound_below_profile: lower bound {_fmt(lower)} < {profile.min_precision} {detail}"
        )
    elif not profile.use_wilson and mean < profile.min_precision:
        out.append(f"precision_below_profile: posterior mean {_fmt(mean)} < {profile.min_precision} {detail}")
    if ham > profile.max_ham_hits:
        out.append(f"ham_hits_above_profile: {ham} held-out ham hits > {profile.max_ham_hits}")
    coverage = metrics.get("coverage") or 0.0
    if coverage > min(profile.max_coverage, MATCH_EVERYTHING_COVERAGE):
        out.append(f"coverage_above_profile: coverage {_fmt(coverage)} > {profile.max_coverage}")
    if labelled < profile.min_hits:
        out.append(f"too_few_hits: {labelled} labelled held-out hits < {profile.min_hits}")
    return out


def promotion_failures(metrics: Mapping[str, Any] | None, profile: SafetyProfile) -> list[str]:
    """Why a rule does not meet ``profile`` (empty: it does): on its cross-fitted evidence when the
    metrics carry it, else on its evaluation-window metrics."""
    if not metrics:
        return ["not_evaluated: no evaluation row"]
    if _has_evidence(metrics):
        return _evidence_failures(metrics, profile)
    out: list[str] = []
    labelled = metrics["spam_hit_count"] + metrics["ham_hit_count"]
    precision = metrics.get("precision")
    if labelled == 0 or precision is None:
        return ["no_labelled_hits: the rule hit no labelled message of the evaluation window"]
    if profile.use_wilson and profile.wilson_scope == "rule":
        lower = metrics["precision_lower_bound"]
        if lower < profile.min_precision:
            out.append(
                f"precision_lower_bound_below_profile: Wilson lower bound {_fmt(lower)} < {profile.min_precision}"
                f" (precision {_fmt(precision)} on {labelled} labelled hits)"
            )
    elif precision < profile.min_precision:
        out.append(f"precision_below_profile: precision {_fmt(precision)} < {profile.min_precision}")
    if metrics["ham_hit_count"] > profile.max_ham_hits:
        out.append(f"ham_hits_above_profile: {metrics['ham_hit_count']} ham hits > {profile.max_ham_hits}")
    coverage = metrics.get("coverage") or 0.0
    if coverage > min(profile.max_coverage, MATCH_EVERYTHING_COVERAGE):
        out.append(f"coverage_above_profile: coverage {_fmt(coverage)} > {profile.max_coverage}")
    if labelled < profile.min_hits:
        out.append(f"too_few_hits: {labelled} labelled hits < {profile.min_hits}")
    return out


def deprecation_reason(
    metrics: Mapping[str, Any] | None,
    promoted_metrics: Mapping[str, Any] | None,
    profile: SafetyProfile,
    *,
    idle_runs: int = 0,
) -> str | None:
    """Why an active rule must be deprecated on this run's evaluation (None: it stays active).

    Reversals come first: when moderators or users reversed more than ``max_reversed_share`` of
    its hits, the reason is ``feedback`` (its precision, on effective labels, usually fell too).
    Point precision (not the Wilson bound) decides here: a rule is deprecated on what it did,
    not on how little evidence a quiet window gave.
    """
    if not metrics:
        return None
    reversed_hits = metrics.get("reversed_hit_count") or 0
    hit_count = metrics.get("hit_count") or 0
    if (
        hit_count
        and reversed_hits >= profile.min_reversed_hits
        and reversed_hits / hit_count > profile.max_reversed_share
    ):
        return (
            f"feedback: {reversed_hits} of {hit_count} hits ({reversed_hits / hit_count:.0%}) were reversed to ham"
            f" by label feedback or moderators > {profile.max_reversed_share:.0%} ({profile.name})"
        )
    precision = metrics.get("precision")
    if precision is not None and precision < profile.min_precision:
        return (
            f"precision_below_profile: precision {_fmt(precision)} < {profile.min_precision} ({profile.name})"
        )
    promoted_precision = (promoted_metrics or {}).get("precision")
    if (
        precision is not None
        and promoted_precision
        and precision < promoted_precision * (1 - profile.max_relative_precision_drop)
    ):
        return (
            f"precision_dropped: precision {_fmt(precision)} is more than "
            f"{profile.max_relative_precision_drop:.0%} below {_fmt(promoted_precision)} at promotion"
        )
    if metrics["ham_hit_count"] > profile.max_ham_hits:
        return f"ham_hits_above_profile: {metrics['ham_hit_count']} ham hits > {profile.max_ham_hits} ({profile.name})"
    coverage = metrics.get("coverage") or 0.0
    if coverage > 2 * profile.max_coverage or coverage > MATCH_EVERYTHING_COVERAGE:
        return f"coverage_above_twice_profile: coverage {_fmt(coverage)} > 2 x {profile.max_coverage}"
    if profile.max_idle_runs and idle_runs >= profile.max_idle_runs:
        return f"idle: no hit on the last {idle_runs} evaluations"
    return None


def _rank_key(rule_id: str, metrics: Mapping[str, Any]) -> tuple:
    if _has_evidence(metrics):
        return (
            -metrics["posterior_lower_bound"],
            -metrics["evidence_spam_hits"],
            metrics["evidence_ham_hits"],
            rule_id,
        )
    return (-metrics["precision_lower_bound"], -metrics["spam_hit_count"], metrics["ham_hit_count"], rule_id)


def greedy_select(
    eligible: Mapping[str, Mapping[str, Any]],
    hits: Mapping[str, HitSets],
    fp_budget: int,
    *,
    already_active: Iterable[str] = (),
    min_lower_bound: float | None = None,
    min_new_spam: int = 1,
) -> tuple[list[str], dict[str, str]]:
    """Choose among ``eligible`` rules so the whole ruleset hits at most ``fp_budget`` ham messages
    and every chosen rule adds at least ``min_new_spam`` spam messages the set did not catch yet.

    Rules already active count first. Candidates are tried best first (the lower bound of precision:
    the posterior's with cross-fitted evidence, else Wilson's; then spam hits, then fewest ham hits,
    then id). With ``min_lower_bound``, the chosen list is cut to its
    longest prefix (in that order) whose union, with the active rules, has a Wilson 95% lower bound
    of precision at or above it: the evidence of the whole ruleset, not of each rule, clears the bar.
    Returns (chosen ids, {skipped id: reason}).
    """
    # The messages caught so far as flags over the ids' positions: a rule's new spam and ham are
    # counted over its own ids, without a set difference against everything caught.
    positions, size = _positions(
        {rid: hits.get(rid, HitSets()).arrays for rid in {*already_active, *eligible}}
    )
    covered_spam = np.zeros(size, dtype=bool)
    covered_ham = np.zeros(size, dtype=bool)
    for rid in sorted(already_active):
        covered_spam[positions[rid][0]] = True
        covered_ham[positions[rid][1]] = True
    ham_count = int(np.count_nonzero(covered_ham))
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for rid in sorted(eligible, key=lambda r: _rank_key(r, eligible[r])):
        spam_at, ham_at = positions[rid]
        new_spam = int(np.count_nonzero(~covered_spam[spam_at]))
        new_ham = int(np.count_nonzero(~covered_ham[ham_at]))
        if new_spam == 0:
            skipped[rid] = "redundant: every spam message it hits is already caught by the active set"
            continue
        if new_spam < min_new_spam:
            skipped[rid] = (
                f"adds_too_little: {new_spam} held-out spam the set does not catch yet < {min_new_spam}"
            )
            continue
        if ham_count + new_ham > fp_budget:
            skipped[rid] = (
                f"fp_budget: would bring the ruleset to {ham_count + new_ham} ham hits > {fp_budget}"
            )
            continue
        chosen.append(rid)
        covered_spam[spam_at] = True
        covered_ham[ham_at] = True
        ham_count += new_ham
    if min_lower_bound is not None:
        spam: set[int] = set()
        ham: set[int] = set()
        for rid in sorted(already_active):
            spam |= hits.get(rid, HitSets()).spam
            ham |= hits.get(rid, HitSets()).ham
        keep, best_bound = 0, None
        for i, rid in enumerate(chosen, start=1):
            spam |= hits.get(rid, HitSets()).spam
            ham |= hits.get(rid, HitSets()).ham
            bound = wilson_lower_bound(len(spam), len(spam) + len(ham))
            if bound >= min_lower_bound:
                keep, best_bound = i, bound
        for rid in chosen[keep:]:
            skipped[rid] = (
                f"ruleset_lower_bound: the ruleset with this rule does not reach a Wilson lower bound of "
                f"{min_lower_bound} on its held-out hits"
                + (f" (best {best_bound:.4f} with {keep} rules)" if best_bound is not None else "")
            )
        chosen = chosen[:keep]
    return chosen, skipped


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)
    tiers: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)  # shadow rules not promoted, and why


def plan_transitions(
    states: Mapping[str, RuleState],
    evaluations: Mapping[str, Mapping[str, Any]],
    profile: SafetyProfile,
    *,
    hits: Mapping[str, HitSets] | None = None,
    idle_runs: Mapping[str, int] | None = None,
    tiers: TierThresholds | None = None,
    returning: Mapping[str, str] | None = None,
) -> Plan:
    """Every transition of one run, from the rules' states and their evaluation-window metrics.

    candidate -> shadow once evaluated; shadow -> active when the profile is met (greedily under
    ``profile.fp_budget`` when set, which needs ``hits``); active -> deprecated per
    :func:`deprecation_reason`; deprecated -> shadow for the rules in ``returning`` (rule id ->
    reason: a returning campaign re-used them), which may then be promoted again on this run's
    evaluation like any shadow rule. Pinned rules never move. Deterministic: rules in id order.
    """
    plan = Plan()
    status = {rid: s.status for rid, s in states.items()}
    for rid in sorted(states):
        s = states[rid]
        m = evaluations.get(rid)
        plan.tiers[rid] = tier_for(m, tiers)
        if s.is_pinned or m is None:
            continue
        if s.status == "candidate":
            plan.decisions.append(
                Decision(rid, s.version, "candidate", "shadow", "evaluated: shadow evaluation ran", m)
            )
            status[rid] = "shadow"
        elif s.status == "active":
            why = deprecation_reason(m, s.promoted_metrics, profile, idle_runs=(idle_runs or {}).get(rid, 0))
            if why:
                plan.decisions.append(Decision(rid, s.version, "active", "deprecated", why, m))
                status[rid] = "deprecated"
        elif s.status == "deprecated" and returning and rid in returning:
            plan.decisions.append(Decision(rid, s.version, "deprecated", "shadow", returning[rid], m))
            status[rid] = "shadow"

    eligible: dict[str, Mapping[str, Any]] = {}
    for rid in sorted(states):
        if status[rid] != "shadow" or states[rid].is_pinned or rid not in evaluations:
            continue
        failures = promotion_failures(evaluations[rid], profile) + tier_failures(plan.tiers[rid])
        if failures:
            plan.held[rid] = "; ".join(failures)
        else:
            eligible[rid] = evaluations[rid]
    if profile.selects_as_set:
        if hits is None:
            raise LifecycleError(f"profile {profile.name} chooses a set: it needs the rules' hit sets")
        active_now = [rid for rid, st in status.items() if st == "active"]
        chosen, skipped = _select_set(eligible, hits, profile, active_now)
        plan.held.update(skipped)
    else:
        chosen = sorted(eligible)
    for rid in sorted(chosen):
        m = evaluations[rid]
        plan.decisions.append(Decision(rid, states[rid].version, "shadow", "active", _meets(m, profile), m))
    return plan


def tier_failures(tier: str) -> list[str]:
    """Tiers gate promotion: only SAFE_AUTO rules activate automatically."""
    if tier == "SAFE_AUTO":
        return []
    if tier == "REVIEW_ONLY":
        return ["review_only: waits for a person (patas rules review)"]
    return ["feature_only: exported as a feature, never as a blocking rule"]


def _select_set(
    eligible: Mapping[str, Mapping[str, Any]],
    hits: Mapping[str, HitSets],
    profile: SafetyProfile,
    already_active: Iterable[str],
) -> tuple[list[str], dict[str, str]]:
    ruleset_scope = profile.use_wilson and profile.wilson_scope == "ruleset"
    budget = profile.fp_budget if profile.fp_budget is not None else profile.max_ham_hits
    return greedy_select(
        eligible,
        hits,
        budget,
        already_active=already_active,
        min_lower_bound=profile.min_precision if ruleset_scope else None,
        min_new_spam=profile.min_new_spam,
    )


def _meets(m: Mapping[str, Any], profile: SafetyProfile) -> str:
    if _has_evidence(m):
        return (
            f"meets_profile: {profile.name}: SAFE_AUTO, posterior precision {_fmt(m['posterior_mean'])} "
            f"(95% lower bound {_fmt(m['posterior_lower_bound'])}) on {m['evidence_spam_hits']} spam / "
            f"{m['evidence_ham_hits']} ham held-out hits with the {m.get('rule_kind')} prior "
            f"{_fmt(m.get('prior_mean'))}, coverage {_fmt(m.get('coverage'))} <= {profile.max_coverage}"
        )
    per_rule_wilson = profile.use_wilson and profile.wilson_scope == "rule"
    bar = "Wilson lower bound" if per_rule_wilson else "precision"
    value = m["precision_lower_bound"] if per_rule_wilson else m["precision"]
    return (
        f"meets_profile: {profile.name}: {bar} {_fmt(value)} >= {profile.min_precision}, "
        f"ham hits {m['ham_hit_count']} <= {profile.max_ham_hits}, coverage {_fmt(m['coverage'])} "
        f"<= {profile.max_coverage}, labelled hits {m['spam_hit_count'] + m['ham_hit_count']}"
    )


def would_be_active(
    states: Mapping[str, RuleState],
    evaluations: Mapping[str, Mapping[str, Any]],
    profile: SafetyProfile,
    *,
    hits: Mapping[str, HitSets] | None = None,
    tiers: TierThresholds | None = None,
) -> list[str]:
    """The set ``profile`` would make active from this evaluation: pinned active rules, plus every
    SAFE_AUTO rule not deprecated that meets the profile (greedy under its fp_budget when set)."""
    pinned = sorted(rid for rid, s in states.items() if s.is_pinned and s.status == "active")
    eligible = {
        rid: evaluations[rid]
        for rid, s in sorted(states.items())
        if not s.is_pinned
        and s.status != "deprecated"
        and rid in evaluations
        and not promotion_failures(evaluations[rid], profile)
        and tier_for(evaluations[rid], tiers) == "SAFE_AUTO"
    }
    if profile.selects_as_set:
        if hits is None:
            raise LifecycleError(f"profile {profile.name} chooses a set: it needs the rules' hit sets")
        chosen, _ = _select_set(eligible, hits, profile, pinned)
    else:
        chosen = list(eligible)
    return sorted(set(pinned) | set(chosen))
