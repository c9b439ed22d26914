"""Rule lifecycle: ``candidate -> shadow -> active -> deprecated``, by safety profile, audited.

Two layers:

- **Decisions** are pure functions of metrics (:func:`promotion_failures`,
  :func:`deprecation_reason`, :func:`greedy_select`, :func:`plan_transitions`): unit-tested
  without a database.
- **Writes** (:func:`apply_lifecycle`, the manual controls, :func:`check_evaluation_consistency`)
  read the shadow evaluation (``marts.rule_evaluations``, ``marts.rule_hits``), apply the
  decisions and append every transition to ``patas.rule_audit`` in one transaction.

Per run, :func:`apply_lifecycle` also snapshots the evaluation metrics into
``patas.rule_metrics_history`` (the ``rule_history`` view reads it) and writes
``patas.ruleset_members``: for each safety profile, the rules it would make active (the
``ruleset_evaluation`` mart measures those sets).

Reasons in the audit table start with a stable code (``meets_profile``,
``precision_below_profile``, ``precision_dropped``, ``ham_hits_above_profile``,
``coverage_above_twice_profile``, ``idle``, ``evaluated``, ``drafted``, ``manual_*``), then
readable details.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from python_steps.drafting import signal_evaluable_clauses
from python_steps.metrics import wilson_lower_bound
from python_steps.profiles import (
    MATCH_EVERYTHING_COVERAGE,
    ProfileConfig,
    SafetyProfile,
    TierThresholds,
    load_profiles,
    tier_for,
)

STATUSES = ("candidate", "shadow", "active", "deprecated")
EVALUATION_WINDOW = "evaluation"
LIFECYCLE_LOCK_KEY = 0x5A7A6  # serializes automatic and manual lifecycle changes

METRIC_COLUMNS = (
    "hit_count",
    "spam_hit_count",
    "ham_hit_count",
    "unlabelled_hit_count",
    "unique_spam_hit_count",
    "window_message_count",
    "window_spam_count",
    "window_ham_count",
    "precision",
    "recall",
    "coverage",
    "false_positive_rate",
    "f1_score",
    "precision_lower_bound",
    "precision_upper_bound",
    "false_positive_rate_upper_bound",
)

DDL = """
create schema if not exists patas;

create table if not exists patas.rule_lifecycle (
    rule_id text primary key,
    version integer not null,
    status text not null check (status in ('candidate', 'shadow', 'active', 'deprecated')),
    is_pinned boolean not null default false,
    tier text not null default 'FEATURE_ONLY'
        check (tier in ('SAFE_AUTO', 'REVIEW_ONLY', 'FEATURE_ONLY')),
    promoted_at timestamptz,
    promoted_run_id text,
    promoted_metrics jsonb,
    status_reason text,
    updated_run_id text,
    updated_at timestamptz not null default now()
);

create table if not exists patas.rule_audit (
    audit_id bigint generated always as identity primary key,
    rule_id text not null,
    version integer not null,
    from_status text,
    to_status text not null,
    reason text not null,
    metrics jsonb,
    run_id text,
    actor text not null,
    at timestamptz not null default now()
);
create index if not exists rule_audit__rule_id on patas.rule_audit (rule_id, audit_id);

create table if not exists patas.rule_metrics_history (
    rule_id text not null,
    rule_version integer not null,
    run_id text not null,
    run_seq bigint not null,
    window_name text not null,
    status text not null,
    tier text not null,
    hit_count bigint not null,
    spam_hit_count bigint not null,
    ham_hit_count bigint not null,
    unlabelled_hit_count bigint not null,
    unique_spam_hit_count bigint not null,
    window_message_count bigint not null,
    window_spam_count bigint not null,
    window_ham_count bigint not null,
    precision double precision,
    recall double precision,
    coverage double precision,
    false_positive_rate double precision,
    f1_score double precision,
    precision_lower_bound double precision not null,
    precision_upper_bound double precision not null,
    false_positive_rate_upper_bound double precision not null,
    recorded_at timestamptz not null default now(),
    primary key (rule_id, run_id, window_name)
);

create table if not exists patas.ruleset_members (
    ruleset_name text not null,
    rule_id text not null,
    run_id text not null,
    primary key (ruleset_name, rule_id)
);
"""


class LifecycleError(RuntimeError):
    pass


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the lifecycle tables (idempotent). Serialized: concurrent DDL on the same names races."""
    conn.execute("select pg_advisory_xact_lock(%s)", (LIFECYCLE_LOCK_KEY,))
    conn.execute(DDL)


# ---- pure decisions ----------------------------------------------------------------------------


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


def _fmt(x: Any) -> str:
    return "null" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


def promotion_failures(metrics: Mapping[str, Any] | None, profile: SafetyProfile) -> list[str]:
    """Why a rule does not meet ``profile`` on its evaluation metrics (empty: it does)."""
    if not metrics:
        return ["not_evaluated: no evaluation row"]
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

    Point precision (not the Wilson bound) decides here: a rule is deprecated on what it did,
    not on how little evidence a quiet window gave.
    """
    if not metrics:
        return None
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
    return (-metrics["precision_lower_bound"], -metrics["spam_hit_count"], metrics["ham_hit_count"], rule_id)


def greedy_select(
    eligible: Mapping[str, Mapping[str, Any]],
    hits: Mapping[str, HitSets],
    fp_budget: int,
    *,
    already_active: Iterable[str] = (),
    min_lower_bound: float | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Choose among ``eligible`` rules so the whole ruleset hits at most ``fp_budget`` ham messages
    and every chosen rule adds spam the set did not catch yet.

    Rules already active count first. Candidates are tried best first (Wilson lower bound, then spam
    hits, then fewest ham hits, then id). With ``min_lower_bound``, the chosen list is cut to its
    longest prefix (in that order) whose union, with the active rules, has a Wilson 95% lower bound
    of precision at or above it: the evidence of the whole ruleset, not of each rule, clears the bar.
    Returns (chosen ids, {skipped id: reason}).
    """
    covered_spam: set[int] = set()
    covered_ham: set[int] = set()
    for rid in sorted(already_active):
        h = hits.get(rid, HitSets())
        covered_spam |= h.spam
        covered_ham |= h.ham
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for rid in sorted(eligible, key=lambda r: _rank_key(r, eligible[r])):
        h = hits.get(rid, HitSets())
        new_spam = len(h.spam - covered_spam)
        new_ham = len(h.ham - covered_ham)
        if new_spam == 0:
            skipped[rid] = "redundant: every spam message it hits is already caught by the active set"
            continue
        if len(covered_ham) + new_ham > fp_budget:
            skipped[rid] = (
                f"fp_budget: would bring the ruleset to {len(covered_ham) + new_ham} ham hits > {fp_budget}"
            )
            continue
        chosen.append(rid)
        covered_spam |= h.spam
        covered_ham |= h.ham
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
) -> Plan:
    """Every transition of one run, from the rules' states and their evaluation-window metrics.

    candidate -> shadow once evaluated; shadow -> active when the profile is met (greedily under
    ``profile.fp_budget`` when set, which needs ``hits``); active -> deprecated per
    :func:`deprecation_reason`. Pinned rules never move. Deterministic: rules in id order.
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

    eligible: dict[str, Mapping[str, Any]] = {}
    for rid in sorted(states):
        if status[rid] != "shadow" or states[rid].is_pinned or rid not in evaluations:
            continue
        failures = promotion_failures(evaluations[rid], profile)
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
    )


def _meets(m: Mapping[str, Any], profile: SafetyProfile) -> str:
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
) -> list[str]:
    """The set ``profile`` would make active from this evaluation: pinned active rules, plus every
    rule not deprecated that meets the profile (greedy under its fp_budget when set)."""
    pinned = sorted(rid for rid, s in states.items() if s.is_pinned and s.status == "active")
    eligible = {
        rid: evaluations[rid]
        for rid, s in sorted(states.items())
        if not s.is_pinned
        and s.status != "deprecated"
        and rid in evaluations
        and not promotion_failures(evaluations[rid], profile)
    }
    if profile.selects_as_set:
        if hits is None:
            raise LifecycleError(f"profile {profile.name} chooses a set: it needs the rules' hit sets")
        chosen, _ = _select_set(eligible, hits, profile, pinned)
    else:
        chosen = list(eligible)
    return sorted(set(pinned) | set(chosen))


# ---- database ----------------------------------------------------------------------------------


_RELATION_RE = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


def _check_relation_names(*names: str) -> None:
    for name in names:
        if not _RELATION_RE.fullmatch(name):
            raise LifecycleError(f"not a schema-qualified relation name: {name!r}")


def _relation_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def _latest_drafts(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    if not _relation_exists(conn, "patas.rule_drafts"):
        return {}
    rows = conn.execute(
        """
        select distinct on (rule_id) rule_id, version, origin, evaluation_kind
        from patas.rule_drafts
        order by rule_id, version desc
        """
    ).fetchall()
    return {r[0]: {"version": r[1], "origin": r[2], "evaluation_kind": r[3]} for r in rows}


def _states(conn: psycopg.Connection, *, lock: bool = False) -> dict[str, RuleState]:
    rows = conn.execute(
        "select rule_id, version, status, is_pinned, promoted_metrics from patas.rule_lifecycle order by rule_id"
        + (" for update" if lock else "")
    ).fetchall()
    return {r[0]: RuleState(r[0], r[1], r[2], r[3], r[4]) for r in rows}


def _evaluations(
    conn: psycopg.Connection, relation: str, window: str | None = EVALUATION_WINDOW
) -> list[dict]:
    cols = ", ".join(("rule_id", "rule_version", "window_name", *METRIC_COLUMNS, "evaluated_run_id"))
    sql = f"select {cols} from {relation}"  # relation: a fixed name from this module, not user text
    params: tuple = ()
    if window:
        sql += " where window_name = %s"
        params = (window,)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(sql + " order by rule_id, window_name", params).fetchall()


def _metrics_json(row: Mapping[str, Any], run_id: str | None = None) -> dict[str, Any]:
    out = {k: row[k] for k in METRIC_COLUMNS if k in row}
    if run_id is not None:
        out["run_id"] = run_id
    return out


def _hit_sets(conn: psycopg.Connection, rule_ids: Sequence[str], hits_relation: str) -> dict[str, HitSets]:
    if not rule_ids:
        return {}
    rows = conn.execute(
        f"""
        select h.rule_id, h.message_id, m.is_spam
        from {hits_relation} as h
        inner join intermediate.int_messages_enriched as m on m.message_id = h.message_id
        where h.window_name = %s and h.rule_id = any(%s) and m.is_spam is not null
        """,
        (EVALUATION_WINDOW, list(rule_ids)),
    ).fetchall()
    spam: dict[str, set[int]] = {}
    ham: dict[str, set[int]] = {}
    for rid, mid, is_spam in rows:
        (spam if is_spam else ham).setdefault(rid, set()).add(mid)
    return {rid: HitSets(frozenset(spam.get(rid, ())), frozenset(ham.get(rid, ()))) for rid in rule_ids}


def _audit(conn: psycopg.Connection, d: Decision, run_id: str | None, actor: str) -> None:
    conn.execute(
        """
        insert into patas.rule_audit (rule_id, version, from_status, to_status, reason, metrics, run_id, actor)
        values (%s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            d.rule_id,
            d.version,
            d.from_status,
            d.to_status,
            d.reason,
            Jsonb(_metrics_json(d.metrics)) if d.metrics else None,
            run_id,
            actor,
        ),
    )


def _apply(
    conn: psycopg.Connection, d: Decision, run_id: str | None, actor: str, tier: str | None = None
) -> None:
    if d.from_status is None:
        conn.execute(
            """
            insert into patas.rule_lifecycle (rule_id, version, status, tier, status_reason, updated_run_id)
            values (%s, %s, %s, coalesce(%s, 'FEATURE_ONLY'), %s, %s)
            on conflict (rule_id) do nothing
            """,
            (d.rule_id, d.version, d.to_status, tier, d.reason, run_id),
        )
    elif d.to_status == "active":
        conn.execute(
            """
            update patas.rule_lifecycle
            set status = 'active', version = %s, promoted_at = now(), promoted_run_id = %s,
                promoted_metrics = %s, status_reason = %s, updated_run_id = %s, updated_at = now(),
                tier = coalesce(%s, tier)
            where rule_id = %s
            """,
            (
                d.version,
                run_id,
                Jsonb(_metrics_json(d.metrics, run_id)) if d.metrics else None,
                d.reason,
                run_id,
                tier,
                d.rule_id,
            ),
        )
    else:
        conn.execute(
            """
            update patas.rule_lifecycle
            set status = %s, version = %s, status_reason = %s, updated_run_id = %s, updated_at = now(),
                tier = coalesce(%s, tier)
            where rule_id = %s
            """,
            (d.to_status, d.version, d.reason, run_id, tier, d.rule_id),
        )
    _audit(conn, d, run_id, actor)


def _profile(profile: SafetyProfile | str | None, config: ProfileConfig) -> SafetyProfile:
    return profile if isinstance(profile, SafetyProfile) else config.get(profile)


def _idle_runs(
    conn: psycopg.Connection, rule_ids: Sequence[str], this_run: Mapping[str, int], run_id: str
) -> dict[str, int]:
    """Consecutive evaluations without a hit, ending with this run (history + this run)."""
    out: dict[str, int] = {}
    rows = conn.execute(
        """
        select rule_id, hit_count from patas.rule_metrics_history
        where window_name = %s and rule_id = any(%s) and run_id <> %s
        order by rule_id, run_seq desc
        """,
        (EVALUATION_WINDOW, list(rule_ids), run_id),
    ).fetchall()
    past: dict[str, list[int]] = {}
    for rid, hits in rows:
        past.setdefault(rid, []).append(hits)
    for rid in rule_ids:
        seq = [this_run.get(rid, 0), *past.get(rid, [])]
        n = 0
        for h in seq:
            if h:
                break
            n += 1
        out[rid] = n
    return out


def apply_lifecycle(
    conn: psycopg.Connection,
    *,
    run_id: str,
    profile: SafetyProfile | str | None = None,
    config: ProfileConfig | None = None,
    actor: str = "patas",
    evaluations_relation: str = "marts.rule_evaluations",
    hits_relation: str = "marts.rule_hits",
) -> dict[str, Any]:
    """Apply one run's lifecycle after shadow evaluation and return a summary.

    Drafted rules without a lifecycle row become candidates; then :func:`plan_transitions` moves
    them; every transition is audited; the run's metrics are appended to
    ``patas.rule_metrics_history``; ``patas.ruleset_members`` gets each profile's would-be active
    set. One transaction, serialized with the manual controls. Re-running the same run is a no-op
    (the same metrics give the same decisions).
    """
    config = config or load_profiles()
    prof = _profile(profile, config)
    _check_relation_names(evaluations_relation, hits_relation)
    with conn.transaction():
        ensure_schema(conn)
        problems = check_evaluation_consistency(
            conn, run_id, evaluations_relation=evaluations_relation, hits_relation=hits_relation
        )
        if problems:
            raise LifecycleError("shadow evaluation is missing or inconsistent: " + "; ".join(problems[:10]))
        drafts = _latest_drafts(conn)
        all_rows = _evaluations(conn, evaluations_relation, window=None)
        evals = {r["rule_id"]: r for r in all_rows if r["window_name"] == EVALUATION_WINDOW}

        states = _states(conn, lock=True)
        new = [rid for rid in sorted(drafts) if rid not in states]
        for rid in new:
            d = Decision(
                rid, drafts[rid]["version"], None, "candidate", f"drafted: origin {drafts[rid]['origin']}"
            )
            _apply(conn, d, run_id, actor)
        states = _states(conn, lock=True)
        # The latest drafted version is the one evaluated.
        states = {
            rid: RuleState(
                s.rule_id,
                drafts.get(rid, {}).get("version", s.version),
                s.status,
                s.is_pinned,
                s.promoted_metrics,
            )
            for rid, s in states.items()
        }

        needs_hits = prof.selects_as_set or any(p.selects_as_set for p in config.profiles.values())
        hits = _hit_sets(conn, sorted(evals), hits_relation) if needs_hits else None
        active_ids = [rid for rid, s in states.items() if s.status == "active"]
        idle = (
            _idle_runs(conn, active_ids, {rid: evals[rid]["hit_count"] for rid in evals}, run_id)
            if prof.max_idle_runs
            else {}
        )
        plan = plan_transitions(states, evals, prof, hits=hits, idle_runs=idle, tiers=config.tiers)
        for d in plan.decisions:
            _apply(conn, d, run_id, actor, plan.tiers.get(d.rule_id))
        for rid, tier in plan.tiers.items():
            conn.execute(
                "update patas.rule_lifecycle set tier = %s, version = %s where rule_id = %s and (tier <> %s or version <> %s)",
                (tier, states[rid].version, rid, tier, states[rid].version),
            )

        final_states = _states(conn)
        _snapshot_history(conn, run_id, all_rows, final_states, plan.tiers)
        rulesets = {
            "profile:" + name: would_be_active(final_states, evals, p, hits=hits)
            for name, p in sorted(config.profiles.items())
        }
        conn.execute("delete from patas.ruleset_members")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into patas.ruleset_members (ruleset_name, rule_id, run_id) values (%s, %s, %s)",
                [(name, rid, run_id) for name, ids in sorted(rulesets.items()) for rid in ids],
            )

    counts: dict[str, int] = {}
    for s in final_states.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    transitions: dict[str, int] = {}
    for d in plan.decisions:
        key = f"{d.from_status}->{d.to_status}"
        transitions[key] = transitions.get(key, 0) + 1
    return {
        "run_id": run_id,
        "profile": prof.name,
        "new_candidates": len(new),
        "transitions": dict(sorted(transitions.items())),
        "promoted": sorted(d.rule_id for d in plan.decisions if d.to_status == "active"),
        "deprecated": {d.rule_id: d.reason for d in plan.decisions if d.to_status == "deprecated"},
        "transition_count": len(plan.decisions),
        "held": len(plan.held),
        "status_counts": dict(sorted(counts.items())),
        "ruleset_sizes": {k: len(v) for k, v in rulesets.items()},
    }


def _snapshot_history(
    conn: psycopg.Connection,
    run_id: str,
    rows: Sequence[Mapping[str, Any]],
    states: Mapping[str, RuleState],
    tiers: Mapping[str, str],
) -> None:
    seq = conn.execute(
        "select coalesce(max(run_seq) filter (where run_id = %s), max(run_seq) + 1, 1) from patas.rule_metrics_history",
        (run_id,),
    ).fetchone()[0]
    conn.execute("delete from patas.rule_metrics_history where run_id = %s", (run_id,))
    cols = ("rule_id", "rule_version", "run_id", "run_seq", "window_name", "status", "tier", *METRIC_COLUMNS)
    values = []
    for r in rows:
        st = states.get(r["rule_id"])
        values.append(
            (
                r["rule_id"],
                r["rule_version"],
                run_id,
                seq,
                r["window_name"],
                st.status if st else "candidate",
                tiers.get(r["rule_id"], "FEATURE_ONLY")
                if r["window_name"] == EVALUATION_WINDOW
                else tier_for(r),
                *(r[c] for c in METRIC_COLUMNS),
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into patas.rule_metrics_history ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})",
            values,
        )


# ---- consistency check (the blocking Dagster check before promotion) ---------------------------


def check_evaluation_consistency(
    conn: psycopg.Connection,
    run_id: str,
    *,
    evaluations_relation: str = "marts.rule_evaluations",
    hits_relation: str = "marts.rule_hits",
) -> list[str]:
    """Problems that must stop promotion (empty list: promotion may go ahead)."""
    _check_relation_names(evaluations_relation, hits_relation)
    problems: list[str] = []
    for rel in (evaluations_relation, hits_relation):
        if not _relation_exists(conn, rel):
            return [f"{rel} does not exist: run shadow evaluation first"]
    runs = [
        r[0] for r in conn.execute(f"select distinct evaluated_run_id from {evaluations_relation}").fetchall()
    ]
    if runs and runs != [run_id]:
        problems.append(f"{evaluations_relation} holds run(s) {sorted(runs)}, not {run_id!r}")
    drafts = _latest_drafts(conn)
    evaluated = {
        r[0]: r[1]
        for r in conn.execute(
            f"select rule_id, rule_version from {evaluations_relation} where window_name = %s",
            (EVALUATION_WINDOW,),
        ).fetchall()
    }
    missing = sorted(rid for rid in drafts if rid not in evaluated)
    if missing:
        problems.append(f"{len(missing)} drafted rule(s) have no evaluation row, e.g. {missing[:3]}")
    stale = sorted(rid for rid, v in evaluated.items() if rid in drafts and drafts[rid]["version"] != v)
    if stale:
        problems.append(f"{len(stale)} rule(s) evaluated at an old version, e.g. {stale[:3]}")
    if _relation_exists(conn, "patas.rule_lifecycle"):
        live = [
            r[0]
            for r in conn.execute(
                "select rule_id from patas.rule_lifecycle where status in ('shadow', 'active') order by rule_id"
            ).fetchall()
        ]
        unevaluated = [rid for rid in live if rid not in evaluated]
        if unevaluated:
            problems.append(
                f"{len(unevaluated)} shadow/active rule(s) were not evaluated, e.g. {unevaluated[:3]}"
            )
    bad = conn.execute(
        f"""
        select rule_id, window_name from {evaluations_relation}
        where hit_count <> spam_hit_count + ham_hit_count + unlabelled_hit_count
           or least(hit_count, spam_hit_count, ham_hit_count, unlabelled_hit_count, unique_spam_hit_count) < 0
           or hit_count > window_message_count
           or spam_hit_count > window_spam_count
           or ham_hit_count > window_ham_count
           or unique_spam_hit_count > spam_hit_count
           or window_spam_count + window_ham_count > window_message_count
           or not (coalesce(precision, 0) between 0 and 1 and coalesce(recall, 0) between 0 and 1
                   and coalesce(coverage, 0) between 0 and 1 and coalesce(false_positive_rate, 0) between 0 and 1
                   and coalesce(f1_score, 0) between 0 and 1)
           or not (precision_lower_bound between 0 and 1 and precision_upper_bound between 0 and 1
                   and false_positive_rate_upper_bound between 0 and 1)
           or precision_lower_bound > coalesce(precision, 0) + 1e-12
           or precision_upper_bound < coalesce(precision, 1) - 1e-12
        order by rule_id, window_name
        limit 5
        """
    ).fetchall()
    if bad:
        problems.append(f"metrics out of range or inconsistent for {[f'{r[0]}/{r[1]}' for r in bad]}")
    mismatched = conn.execute(
        f"""
        with counted as (
            select rule_id, window_name, count(*) as n from {hits_relation} group by rule_id, window_name
        )
        select e.rule_id, e.window_name, e.hit_count, coalesce(c.n, 0)
        from {evaluations_relation} as e
        left join counted as c on c.rule_id = e.rule_id and c.window_name = e.window_name
        where e.hit_count <> coalesce(c.n, 0)
        order by e.rule_id
        limit 5
        """
    ).fetchall()
    if mismatched:
        problems.append(f"hit counts disagree with {hits_relation} for {[r[0] for r in mismatched]}")
    orphans = conn.execute(
        f"""
        select count(*) from (select distinct rule_id, window_name from {hits_relation}) as h
        where not exists (
            select 1 from {evaluations_relation} as e where e.rule_id = h.rule_id and e.window_name = h.window_name
        )
        """
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} rule/window pair(s) in {hits_relation} have no evaluation row")
    return problems


# ---- manual control ----------------------------------------------------------------------------


def _manual_actor(actor: str) -> str:
    if not actor or actor == "patas":
        raise LifecycleError("manual changes need the actor who made them (e.g. 'cli:alice')")
    return actor


def _need_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise LifecycleError("manual changes need a reason")
    return " ".join(reason.split())


def _latest_metrics(conn: psycopg.Connection, rule_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            f"""
            select run_id, {", ".join(METRIC_COLUMNS)} from patas.rule_metrics_history
            where rule_id = %s and window_name = %s order by run_seq desc limit 1
            """,
            (rule_id, EVALUATION_WINDOW),
        ).fetchone()
    return row


def _manual_transition(
    conn: psycopg.Connection,
    rule_id: str,
    to_status: str | None,
    *,
    reason: str,
    actor: str,
    code: str,
    pin: bool | None = None,
) -> dict[str, Any]:
    actor = _manual_actor(actor)
    reason = _need_reason(reason)
    with conn.transaction():
        ensure_schema(conn)
        row = conn.execute(
            "select version, status, is_pinned from patas.rule_lifecycle where rule_id = %s for update",
            (rule_id,),
        ).fetchone()
        if row is None:
            drafts = _latest_drafts(conn)
            if rule_id not in drafts:
                raise LifecycleError(f"unknown rule {rule_id!r}")
            _apply(
                conn,
                Decision(
                    rule_id,
                    drafts[rule_id]["version"],
                    None,
                    "candidate",
                    "drafted: registered on manual change",
                ),
                None,
                actor,
            )
            row = (drafts[rule_id]["version"], "candidate", False)
        version, status, _ = row
        metrics = _latest_metrics(conn, rule_id)
        run_id = metrics.pop("run_id") if metrics else None
        target = to_status or status
        d = Decision(rule_id, version, status, target, f"{code}: {reason}", metrics)
        if to_status is not None:
            if to_status == status:
                raise LifecycleError(f"rule {rule_id} is already {status}")
            tier = tier_for(metrics)
            _apply(conn, d, run_id, actor, tier)
        if pin is not None:
            conn.execute(
                "update patas.rule_lifecycle set is_pinned = %s, updated_at = now() where rule_id = %s",
                (pin, rule_id),
            )
            if to_status is None:
                _audit(conn, d, run_id, actor)
        final = conn.execute(
            "select status, is_pinned from patas.rule_lifecycle where rule_id = %s", (rule_id,)
        ).fetchone()
    return {
        "rule_id": rule_id,
        "from_status": status,
        "status": final[0],
        "is_pinned": final[1],
        "reason": d.reason,
    }


def promote_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Make a rule active by hand (audited, ``manual_promote``); its promotion metrics are the latest
    evaluation's, if any."""
    return _manual_transition(conn, rule_id, "active", reason=reason, actor=actor, code="manual_promote")


def deprecate_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Deprecate a rule by hand (audited, ``manual_deprecate``)."""
    return _manual_transition(
        conn, rule_id, "deprecated", reason=reason, actor=actor, code="manual_deprecate"
    )


def pin_rule(
    conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str, pinned: bool = True
) -> dict[str, Any]:
    """Pin (or unpin) a rule: a pinned rule's status is never changed automatically."""
    code = "manual_pin" if pinned else "manual_unpin"
    return _manual_transition(conn, rule_id, None, reason=reason, actor=actor, code=code, pin=pinned)


def add_manual_rule(
    conn: psycopg.Connection,
    rule: Mapping[str, Any] | str | None = None,
    *,
    raw_sql: str | None = None,
    reason: str,
    actor: str,
    description: str | None = None,
) -> dict[str, Any]:
    """Add a hand-written rule as a candidate: a typed rule (dict or JSON text), or raw SQL that
    must pass ``python_steps.sql_safety.validate_sql``. Written to ``patas.rule_drafts`` (origin
    'manual') and, when signal-evaluable, ``patas.rule_signal_clauses``; audited. The next shadow
    evaluation measures it like any other rule. Adding a rule that exists already only audits."""
    from python_steps import rules as rl

    actor = _manual_actor(actor)
    reason = _need_reason(reason)
    if (rule is None) == (raw_sql is None):
        raise LifecycleError("give either a typed rule or raw_sql")
    if raw_sql is not None and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise LifecycleError("adding a raw SQL rule needs a connection without an open transaction")
    if rule is not None:
        parsed = rl.parse_rule(json.loads(rule) if isinstance(rule, str) else rule)
        draft = {
            "rule_id": rl.rule_id(parsed),
            "rule_json": rl.to_json(parsed),
            "rule_canonical": rl.canonical_json(parsed),
            "description": description or rl.describe(parsed),
            "sql_expression": rl.compile_sql_predicate(parsed),
            "regex": rl.to_python_regex(parsed),
            "complexity": rl.complexity(parsed),
        }
        clauses = signal_evaluable_clauses(conn, rl.signal_clauses(parsed))
    else:
        draft, clauses = _raw_sql_draft(conn, raw_sql or "", description), None
    draft["evaluation_kind"] = "signal" if clauses else "predicate"
    with conn.transaction():
        ensure_schema(conn)
        _ensure_drafts_table(conn)
        existing = conn.execute(
            "select max(version) from patas.rule_drafts where rule_id = %s", (draft["rule_id"],)
        ).fetchone()[0]
        created = existing is None
        if created:
            conn.execute(
                """
                insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description,
                    sql_expression, regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)
                values (%s, 1, %s, %s, %s, %s, %s, 'manual', null, %s, %s, null)
                """,
                (
                    draft["rule_id"],
                    Jsonb(draft["rule_json"]),
                    draft["rule_canonical"],
                    draft["description"],
                    draft["sql_expression"],
                    draft["regex"],
                    draft["evaluation_kind"],
                    _complexity_value(conn, draft["complexity"]),
                ),
            )
            if clauses:
                with conn.cursor() as cur:
                    cur.executemany(
                        "insert into patas.rule_signal_clauses (rule_id, clause_no, signal_kind, signal_value) "
                        "values (%s, %s, %s, %s) on conflict do nothing",
                        [(draft["rule_id"], no, kind, value) for no, kind, value in clauses],
                    )
        version = existing or 1
        state = conn.execute(
            "select status from patas.rule_lifecycle where rule_id = %s", (draft["rule_id"],)
        ).fetchone()
        if state is None:
            _apply(
                conn,
                Decision(draft["rule_id"], version, None, "candidate", f"manual_add: {reason}"),
                None,
                actor,
            )
        else:
            _audit(
                conn,
                Decision(
                    draft["rule_id"], version, state[0], state[0], f"manual_add: already known; {reason}"
                ),
                None,
                actor,
            )
    return {"rule_id": draft["rule_id"], "created": created, "evaluation_kind": draft["evaluation_kind"]}


def _complexity_value(conn: psycopg.Connection, complexity: Any) -> Any:
    """rule_drafts.complexity is drafting's column: store a number if it is numeric, else the JSON."""
    row = conn.execute(
        """
        select data_type from information_schema.columns
        where table_schema = 'patas' and table_name = 'rule_drafts' and column_name = 'complexity'
        """
    ).fetchone()
    if row is None:
        return None
    if row[0] == "jsonb":
        return Jsonb(complexity)
    if isinstance(complexity, Mapping):
        return sum(int(v) for v in complexity.values() if isinstance(v, int))
    return complexity


def _ensure_drafts_table(conn: psycopg.Connection) -> None:
    if _relation_exists(conn, "patas.rule_drafts") and _relation_exists(conn, "patas.rule_signal_clauses"):
        return
    try:
        from python_steps import drafting
    except ImportError as e:  # pragma: no cover - drafting lands separately
        raise LifecycleError("patas.rule_drafts does not exist and python_steps.drafting is missing") from e
    drafting.ensure_schema(conn)


_WHERE_RE = re.compile(r"\bwhere\b", re.IGNORECASE)


def _raw_sql_draft(conn: psycopg.Connection, raw_sql: str, description: str | None) -> dict[str, Any]:
    """A predicate rule from raw SQL: a bare predicate over ``m``, or a SELECT whose WHERE clause
    is one. Both must pass ``sql_safety.validate_sql``; the predicate is then dry-run read-only
    with a timeout (it must run over ``m`` and hit at most 80% of the messages)."""
    import hashlib

    from python_steps import sql_safety

    body = raw_sql.strip().rstrip(";").strip()
    verdict = sql_safety.validate_sql(body, mode="predicate")
    predicate = body
    if not verdict.ok:
        as_select = sql_safety.validate_sql(raw_sql, mode="select")
        if not as_select.ok:
            raise LifecycleError(
                "raw SQL rejected by the safety validator: " + "; ".join(as_select.reasons or verdict.reasons)
            )
        found = _WHERE_RE.search(body)  # no string literal can precede the WHERE of a valid SELECT
        predicate = body[found.end() :].strip() if found else ""
        verdict = sql_safety.validate_sql(predicate, mode="predicate")
        if not verdict.ok:
            raise LifecycleError("the WHERE clause is not a valid predicate: " + "; ".join(verdict.reasons))
    predicate = " ".join(predicate.split())
    try:
        with conn.transaction():
            conn.execute("set transaction read only")
            conn.execute("set local statement_timeout = 30000")
            counts = None
            if _relation_exists(conn, "intermediate.int_messages_enriched"):
                counts = conn.execute(
                    f"select count(*) filter (where ({predicate})), count(*) "  # validated above
                    "from intermediate.int_messages_enriched as m"
                ).fetchone()
    except psycopg.Error as e:
        raise LifecycleError(f"the rule does not run over the message relation (alias m): {e}") from None
    if counts and counts[1] and counts[0] / counts[1] > MATCH_EVERYTHING_COVERAGE:
        raise LifecycleError(
            f"the rule hits {counts[0]} of {counts[1]} messages: above the 80% match-everything guard"
        )
    canonical = json.dumps({"raw_sql": predicate}, sort_keys=True, ensure_ascii=False)
    return {
        "rule_id": "r_" + hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "rule_json": {"raw_sql": predicate},
        "rule_canonical": canonical,
        "description": description or f"SQL: {predicate}"[:200],
        "sql_expression": predicate,
        "regex": None,
        "complexity": {"leaves": 1, "depth": 1, "score": 2},
    }
