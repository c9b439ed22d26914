"""Lifecycle decisions and safety profiles: pure functions of metrics (no database)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from python_steps.lifecycle import policy as lc
from python_steps.lifecycle.profiles import (
    ProfileError,
    SafetyProfile,
    TierThresholds,
    load_profiles,
    tier_for,
)
from python_steps.metrics import compute_metrics

CONFIG = load_profiles()
BALANCED = CONFIG.get("balanced")
AGGRESSIVE = CONFIG.get("aggressive")
# Most tests below exercise the per-rule decisions on evaluation-window metrics only (no cross-fitted
# evidence): the design's per-rule Wilson variant of the conservative profile, without set choice.
CONSERVATIVE = SafetyProfile("conservative", 0.95, 5, 0.05, use_wilson=True, wilson_scope="rule")


def m(
    spam: int,
    ham: int,
    unlabelled: int = 0,
    *,
    total: int = 10_000,
    all_spam: int = 2_000,
    all_ham: int = 7_000,
):
    return compute_metrics(
        spam_hits=spam,
        ham_hits=ham,
        unlabelled_hits=unlabelled,
        window_messages=total,
        window_spam=all_spam,
        window_ham=all_ham,
    ).to_dict() | {"unique_spam_hit_count": 0}


def test_default_profiles() -> None:
    """Per rule: the posterior lower bound of precision (cross-fitted evidence, kind prior), SAFE_AUTO
    on top; per set: greedy under an fp budget, each rule adding enough new spam; stricter profiles
    ask more of every rule (python_steps/lifecycle/safety_profiles.toml)."""
    assert CONFIG.default_profile == "conservative"
    table = {
        p.name: (
            p.min_precision,
            p.max_ham_hits,
            p.max_coverage,
            p.min_hits,
            p.use_wilson,
            p.fp_budget,
            p.min_new_spam,
        )
        for p in (CONFIG.get("conservative"), BALANCED, AGGRESSIVE)
    }
    assert table == {
        "conservative": (0.90, 5, 0.05, 5, True, 5, 3),
        "balanced": (0.85, 10, 0.10, 5, True, 10, 2),
        "aggressive": (0.80, 20, 0.20, 3, True, 20, 1),
    }
    assert all(p.selects_as_set for p in CONFIG.profiles.values())


def test_ruleset_scope_cuts_the_set_to_the_longest_prefix_that_clears_the_bound() -> None:
    eligible = {
        "r_a": {"precision_lower_bound": 0.9, "spam_hit_count": 60, "ham_hit_count": 0},
        "r_b": {"precision_lower_bound": 0.8, "spam_hit_count": 30, "ham_hit_count": 0},
        "r_c": {"precision_lower_bound": 0.1, "spam_hit_count": 1, "ham_hit_count": 2},
    }
    hits = {
        "r_a": lc.HitSets(spam=frozenset(range(60)), ham=frozenset()),
        "r_b": lc.HitSets(spam=frozenset(range(100, 130)), ham=frozenset()),
        "r_c": lc.HitSets(spam=frozenset({500}), ham=frozenset({900, 901})),
    }
    # 60 clean hits alone: lower bound 0.940 < 0.95; with r_b, 90 clean hits: 0.959; r_c's ham pulls it under.
    chosen, skipped = lc.greedy_select(eligible, hits, 5, min_lower_bound=0.95)
    assert chosen == ["r_a", "r_b"]
    assert skipped["r_c"].startswith("ruleset_lower_bound")
    chosen, skipped = lc.greedy_select({"r_a": eligible["r_a"]}, hits, 5, min_lower_bound=0.95)
    assert chosen == [] and skipped["r_a"].startswith("ruleset_lower_bound")


def test_custom_profile_file_adds_and_overrides(tmp_path: Path) -> None:
    user = tmp_path / "safety_profiles.toml"
    user.write_text(
        'default_profile = "strict"\n'
        "[profiles.strict]\nmin_precision = 0.99\nmax_ham_hits = 0\nmax_coverage = 0.01\nuse_wilson = true\n"
        "fp_budget = 3\n"
        "[profiles.balanced]\nmin_hits = 80\n"
        "[tiers]\nsafe_auto_min_precision = 0.99\n"
    )
    cfg = load_profiles(user)
    assert cfg.get().name == "strict" and cfg.get().fp_budget == 3
    assert cfg.get("balanced").min_hits == 80 and cfg.get("balanced").min_precision == 0.85
    assert cfg.tiers.safe_auto_min_precision == 0.99
    assert load_profiles(tmp_path / "missing.toml").default_profile == "conservative"


@pytest.mark.parametrize(
    "body",
    [
        "[profiles.x]\nmin_precision = 0.9\n",  # missing keys
        "[profiles.x]\nmin_precision = 1.5\nmax_ham_hits = 1\nmax_coverage = 0.1\n",
        "[profiles.x]\nmin_precision = 0.9\nmax_ham_hits = 1\nmax_coverage = 0.9\n",  # match everything
        "[profiles.x]\nmin_precision = 0.9\nmax_ham_hits = 1\nmax_coverage = 0.1\ncolour = 1\n",
        "[unknown]\n",
        "not toml [",
        'default_profile = "nope"\n',
    ],
)
def test_bad_profile_files_are_refused(tmp_path: Path, body: str) -> None:
    user = tmp_path / "p.toml"
    user.write_text(body)
    with pytest.raises(ProfileError):
        load_profiles(user)


def test_unknown_profile_name() -> None:
    with pytest.raises(ProfileError, match="unknown safety profile"):
        CONFIG.get("reckless")


def test_tiers_on_evidence() -> None:
    assert tier_for(evidence_m(50, 0, lower=0.9, mean=0.99)) == "SAFE_AUTO"
    assert tier_for(evidence_m(50, 30, lower=0.9, mean=0.99)) == "REVIEW_ONLY"  # 30 / 4000 ham > 0.5%
    assert tier_for(evidence_m(50, 0, lower=0.9, mean=0.99, kind="word_common")) == "REVIEW_ONLY"
    assert tier_for(evidence_m(50, 0, lower=0.9, mean=0.99, kind="phrase_common")) == "SAFE_AUTO"
    assert tier_for(evidence_m(20, 3, lower=0.7, mean=0.91)) == "REVIEW_ONLY"
    assert tier_for(evidence_m(20, 10, lower=0.4, mean=0.7)) == "FEATURE_ONLY"
    assert tier_for(evidence_m(0, 0, lower=0.1, mean=0.99)) == "FEATURE_ONLY"  # no evidence of its own


def test_tiers() -> None:
    assert tier_for(m(500, 0)) == "SAFE_AUTO"  # fpr upper bound 3/7000
    assert tier_for(m(99, 1, all_ham=100)) == "REVIEW_ONLY"  # precise, but the FPR bound is high
    assert tier_for(m(95, 5)) == "REVIEW_ONLY"
    assert tier_for(m(80, 20)) == "FEATURE_ONLY"
    assert tier_for(m(0, 0, 5)) == "FEATURE_ONLY"
    assert tier_for(None) == "FEATURE_ONLY"
    assert tier_for(m(95, 5), TierThresholds(review_only_min_precision=0.96)) == "FEATURE_ONLY"


def test_conservative_needs_the_wilson_bound_to_clear_the_bar() -> None:
    assert lc.promotion_failures(m(73, 0), CONSERVATIVE) == []
    fails = lc.promotion_failures(m(72, 0), CONSERVATIVE)
    assert len(fails) == 1 and fails[0].startswith("precision_lower_bound_below_profile")
    # A point-precision profile looks at min_hits instead.
    point = SafetyProfile("point", 0.90, 10, 0.10, min_hits=5)
    assert lc.promotion_failures(m(5, 0), point) == []
    assert lc.promotion_failures(m(4, 0), point)[0].startswith("too_few_hits")


def test_promotion_failures_name_every_reason() -> None:
    codes = {f.split(":")[0] for f in lc.promotion_failures(m(900, 100), CONSERVATIVE)}
    assert codes == {
        "precision_lower_bound_below_profile",
        "ham_hits_above_profile",
        "coverage_above_profile",
    }
    assert lc.promotion_failures(m(0, 0, 40), AGGRESSIVE)[0].startswith("no_labelled_hits")
    assert lc.promotion_failures(None, AGGRESSIVE)[0].startswith("not_evaluated")


def test_deprecation_reasons() -> None:
    promoted = m(200, 0)
    assert lc.deprecation_reason(m(200, 2), promoted, CONSERVATIVE) is None
    assert lc.deprecation_reason(m(9, 1), promoted, CONSERVATIVE).startswith("precision_below_profile")
    assert lc.deprecation_reason(m(180, 6), promoted, CONSERVATIVE).startswith("ham_hits_above_profile")
    # Aggressive keeps 0.80, but precision fell more than 10% relative to promotion (1.0 -> 0.88).
    assert lc.deprecation_reason(m(88, 12), promoted, AGGRESSIVE).startswith("precision_dropped")
    # Coverage more than twice the profile's maximum (5% -> 10.5%); precision still fine.
    assert lc.deprecation_reason(m(1050, 0), promoted, CONSERVATIVE).startswith(
        "coverage_above_twice_profile"
    )
    assert lc.deprecation_reason(m(0, 0), promoted, CONSERVATIVE) is None  # a quiet window is no evidence
    idle = SafetyProfile("idle", 0.9, 5, 0.05, max_idle_runs=2)
    assert lc.deprecation_reason(m(0, 0), promoted, idle, idle_runs=1) is None
    assert lc.deprecation_reason(m(0, 0), promoted, idle, idle_runs=2).startswith("idle")


def test_feedback_reversals_deprecate_with_reason_feedback() -> None:
    promoted = m(200, 0)
    # 3 of 40 hits reversed (7.5%) stays under the default 10%; 5 of 40 (12.5%) does not, and
    # "feedback" is the reason even though precision on effective labels fell too.
    assert lc.deprecation_reason(m(37, 3) | {"reversed_hit_count": 3}, promoted, BALANCED) is None
    why = lc.deprecation_reason(m(35, 5) | {"reversed_hit_count": 5}, promoted, CONSERVATIVE)
    assert why.startswith("feedback: 5 of 40 hits (12%) were reversed"), why
    # One reversal is not a pattern, whatever the share.
    strict = replace(AGGRESSIVE, max_reversed_share=0.0)
    assert lc.deprecation_reason(m(9, 1) | {"reversed_hit_count": 1}, m(9, 0), strict) is None
    assert lc.deprecation_reason(m(8, 2) | {"reversed_hit_count": 2}, m(8, 0), strict).startswith("feedback")
    with pytest.raises(ProfileError, match="max_reversed_share"):
        replace(AGGRESSIVE, max_reversed_share=1.5)


def _states(**statuses: str) -> dict[str, lc.RuleState]:
    return {rid: lc.RuleState(rid, 1, st) for rid, st in statuses.items()}


def test_plan_moves_candidates_to_shadow_and_promotes_in_one_run() -> None:
    states = _states(r_a="candidate", r_b="candidate", r_c="shadow")
    evals = {"r_a": m(100, 0), "r_b": m(30, 0), "r_c": m(300, 1)}
    plan = lc.plan_transitions(states, evals, CONSERVATIVE)
    moves = [(d.rule_id, d.from_status, d.to_status) for d in plan.decisions]
    assert moves == [
        ("r_a", "candidate", "shadow"),
        ("r_b", "candidate", "shadow"),
        ("r_a", "shadow", "active"),
        ("r_c", "shadow", "active"),
    ]
    assert plan.held["r_b"].startswith("precision_lower_bound_below_profile")
    assert all(d.reason.startswith(("evaluated", "meets_profile")) for d in plan.decisions)
    assert plan.tiers == {"r_a": "SAFE_AUTO", "r_b": "SAFE_AUTO", "r_c": "SAFE_AUTO"}


def test_plan_deprecates_decayed_active_rules_and_leaves_pinned_ones() -> None:
    promoted = m(200, 0)
    states = {
        "r_bad": lc.RuleState("r_bad", 1, "active", False, promoted),
        "r_pinned": lc.RuleState("r_pinned", 1, "active", True, promoted),
        "r_ok": lc.RuleState("r_ok", 1, "active", False, promoted),
        "r_gone": lc.RuleState("r_gone", 1, "deprecated"),
    }
    evals = {"r_bad": m(10, 9), "r_pinned": m(10, 9), "r_ok": m(150, 0), "r_gone": m(500, 0)}
    plan = lc.plan_transitions(states, evals, CONSERVATIVE)
    assert [(d.rule_id, d.to_status) for d in plan.decisions] == [("r_bad", "deprecated")]
    assert plan.decisions[0].reason.startswith("precision_below_profile")


def test_a_returning_rule_goes_back_to_shadow_and_is_promoted_only_if_it_meets_the_profile() -> None:
    states = {
        rid: lc.RuleState(rid, 1, "deprecated") for rid in ("r_back", "r_weak", "r_gone", "r_pinned")
    } | {"r_pinned": lc.RuleState("r_pinned", 1, "deprecated", True)}
    evals = {"r_back": m(200, 0), "r_weak": m(10, 9), "r_gone": m(500, 0), "r_pinned": m(500, 0)}
    why = "returning: its campaign is back"
    plan = lc.plan_transitions(
        states, evals, CONSERVATIVE, returning={"r_back": why, "r_weak": why, "r_pinned": why}
    )
    assert [(d.rule_id, d.from_status, d.to_status) for d in plan.decisions] == [
        ("r_back", "deprecated", "shadow"),
        ("r_weak", "deprecated", "shadow"),
        ("r_back", "shadow", "active"),
    ]
    assert plan.decisions[0].reason == why and plan.held["r_weak"].startswith("precision")


def test_plan_without_evaluation_changes_nothing() -> None:
    plan = lc.plan_transitions(_states(r_a="candidate", r_b="active"), {}, CONSERVATIVE)
    assert plan.decisions == []


def test_greedy_selection_skips_redundant_rules_and_respects_the_budget() -> None:
    hits = {
        "r_big": lc.HitSets(frozenset(range(100)), frozenset({1000})),
        "r_inside": lc.HitSets(frozenset(range(50)), frozenset()),  # adds no new spam
        "r_new": lc.HitSets(frozenset(range(100, 180)), frozenset({1001, 1002})),
        "r_more": lc.HitSets(frozenset(range(200, 290)), frozenset({1003})),
    }
    evals = {
        "r_big": m(100, 1),
        "r_inside": m(50, 0),
        "r_new": m(80, 2),
        "r_more": m(90, 1),
    }
    chosen, skipped = lc.greedy_select(evals, hits, fp_budget=2)
    assert chosen == ["r_big", "r_more"]
    assert skipped["r_inside"].startswith("redundant")
    assert skipped["r_new"].startswith("fp_budget")
    # Rules already active count first.
    chosen, skipped = lc.greedy_select(evals, hits, fp_budget=10, already_active=["r_big"])
    assert "r_big" not in chosen and "r_inside" in skipped


def _greedy_by_sets(eligible, hits, fp_budget, *, already_active=(), min_new_spam=1):
    """The greedy choice with Python sets, as it was written before the flag arrays (the reference)."""
    covered_spam, covered_ham = set(), set()
    for rid in sorted(already_active):
        covered_spam |= hits.get(rid, lc.HitSets()).spam
        covered_ham |= hits.get(rid, lc.HitSets()).ham
    chosen, skipped = [], {}
    for rid in sorted(eligible, key=lambda r: lc._rank_key(r, eligible[r])):
        h = hits.get(rid, lc.HitSets())
        new_spam, new_ham = len(h.spam - covered_spam), len(h.ham - covered_ham)
        if new_spam < max(min_new_spam, 1) or len(covered_ham) + new_ham > fp_budget:
            skipped[rid] = new_spam
            continue
        chosen.append(rid)
        covered_spam |= h.spam
        covered_ham |= h.ham
    return chosen, skipped


@pytest.mark.parametrize("ids", ["dense", "sparse", "negative"])
def test_greedy_selection_counts_as_with_sets(ids: str) -> None:
    """The flag arrays give the choices of the set differences, with ids used as positions (dense)
    or ranked first (sparse or negative ids), rules already active and rules without hits."""
    import random

    rnd = random.Random(ids)
    scale = {"dense": lambda i: i, "sparse": lambda i: i * 10_000_019, "negative": lambda i: i - 500}[ids]
    hits = {
        f"r{k:02d}": lc.HitSets(
            frozenset(scale(rnd.randrange(400)) for _ in range(rnd.randrange(60))),
            frozenset(scale(400 + rnd.randrange(200)) for _ in range(rnd.randrange(4))),
        )
        for k in range(40)
    }
    evals = {rid: m(len(h.spam) + 1, len(h.ham)) for rid, h in hits.items()} | {"r_none": m(3, 0)}
    for budget, active, min_new in [(0, (), 1), (5, (), 3), (12, ("r03", "r07", "r_none"), 2), (1000, (), 1)]:
        chosen, skipped = lc.greedy_select(evals, hits, budget, already_active=active, min_new_spam=min_new)
        want_chosen, want_skipped = _greedy_by_sets(
            evals, hits, budget, already_active=active, min_new_spam=min_new
        )
        assert chosen == want_chosen
        assert skipped.keys() == want_skipped.keys()
        assert 0 < len(chosen) < len(evals)


def evidence_m(
    spam: int, ham: int, *, lower: float, mean: float, kind: str = "phrase_rare", ham_total: int = 4000
):
    """Evaluation metrics plus the cross-fitted evidence fields the store adds."""
    return m(spam, ham) | {
        "rule_kind": kind,
        "evidence_spam_hits": spam,
        "evidence_ham_hits": ham,
        "evidence_ham_total": ham_total,
        "evidence_false_positive_rate": ham / ham_total,
        "prior_mean": 0.99,
        "prior_strength": 20.0,
        "posterior_mean": mean,
        "posterior_lower_bound": lower,
    }


def test_would_be_active_sets_per_profile() -> None:
    states = {
        "r_a": lc.RuleState("r_a", 1, "shadow"),
        "r_b": lc.RuleState("r_b", 1, "shadow"),
        "r_pin": lc.RuleState("r_pin", 1, "active", True),
        "r_dep": lc.RuleState("r_dep", 1, "deprecated"),
    }
    evals = {
        "r_a": evidence_m(100, 0, lower=0.97, mean=0.995),
        "r_b": evidence_m(40, 0, lower=0.87, mean=0.985),  # SAFE_AUTO, under conservative's 0.90 bound
        "r_pin": evidence_m(1, 5, lower=0.05, mean=0.3),
        "r_dep": evidence_m(500, 0, lower=0.99, mean=0.999),
    }
    hits = {
        "r_a": lc.HitSets(frozenset(range(100)), frozenset()),
        "r_b": lc.HitSets(frozenset(range(500, 540)), frozenset()),
        "r_pin": lc.HitSets(frozenset({900}), frozenset(range(1000, 1005))),
        "r_dep": lc.HitSets(frozenset(range(2000, 2500)), frozenset()),
    }
    assert lc.would_be_active(states, evals, CONFIG.get("conservative"), hits=hits) == ["r_a", "r_pin"]
    assert lc.would_be_active(states, evals, AGGRESSIVE, hits=hits) == ["r_a", "r_b", "r_pin"]


def test_only_safe_auto_rules_activate_automatically() -> None:
    states = _states(r_safe="shadow", r_review="shadow", r_word="shadow", r_feature="shadow")
    evals = {
        "r_safe": evidence_m(60, 0, lower=0.95, mean=0.99),
        "r_review": evidence_m(60, 3, lower=0.91, mean=0.94),
        "r_word": evidence_m(200, 0, lower=0.98, mean=0.995, kind="word_common"),
        "r_feature": evidence_m(30, 20, lower=0.45, mean=0.6),
    }
    hits = {
        rid: lc.HitSets(frozenset(range(k * 1000, k * 1000 + e["evidence_spam_hits"])), frozenset())
        for k, (rid, e) in enumerate(sorted(evals.items()))
    }
    plan = lc.plan_transitions(states, evals, AGGRESSIVE, hits=hits)
    assert [d.rule_id for d in plan.decisions if d.to_status == "active"] == ["r_safe"]
    assert plan.tiers == {
        "r_safe": "SAFE_AUTO",
        "r_review": "REVIEW_ONLY",
        "r_word": "REVIEW_ONLY",  # a single common word is never SAFE_AUTO, however clean
        "r_feature": "FEATURE_ONLY",
    }
    assert "review_only" in plan.held["r_review"] and "review_only" in plan.held["r_word"]
    assert "feature_only" in plan.held["r_feature"]
    promoted = next(d for d in plan.decisions if d.to_status == "active")
    assert promoted.reason.startswith("meets_profile: aggressive: SAFE_AUTO, posterior precision")


def test_stricter_profiles_ask_each_rule_to_add_more_new_spam() -> None:
    evals = {
        "r_big": evidence_m(100, 0, lower=0.97, mean=0.995),
        "r_two": evidence_m(40, 0, lower=0.96, mean=0.99),
    }
    hits = {
        "r_big": lc.HitSets(frozenset(range(100)), frozenset()),
        "r_two": lc.HitSets(frozenset([*range(62), 500, 501]), frozenset()),  # 2 new spam
    }
    chosen, skipped = lc.greedy_select(evals, hits, 5, min_new_spam=3)
    assert chosen == ["r_big"] and skipped["r_two"].startswith("adds_too_little")
    chosen, _ = lc.greedy_select(evals, hits, 5, min_new_spam=2)
    assert chosen == ["r_big", "r_two"]


def test_budget_profile_needs_hits() -> None:
    prof = SafetyProfile("b", 0.9, 5, 0.05, fp_budget=1)
    with pytest.raises(lc.LifecycleError):
        lc.plan_transitions(_states(r_a="shadow"), {"r_a": m(100, 0)}, prof)
