"""Promotion with nothing new: the decisions of an earlier run replayed instead of recomputed.

Promotion (:func:`python_steps.lifecycle.store.apply_lifecycle`) is a function of the shadow
evaluation (``marts.rule_evaluations`` and ``marts.rule_hits``), the stage-1 tables it reads (the
windows, the messages, the effective labels), the drafts, the lifecycle as it finds it, the run's
split, the profile and its configuration, the folds, the languages, the evaluation gates' verdict,
the returning campaigns of this run's stage 2 and, for the active rules without a hit, the metrics
history (idle runs). Its *input state* is an md5 over all of these (the hits and stage-1 tables by
their catalog identity, python_steps.mining.reuse), recorded in ``patas.run_step_states`` as step
``promotion`` with the state of the tables it leaves (the lifecycle, the evidence and the would-be
rulesets, without run ids) as its output state.

A run may replay the latest run that computed promotion when the input state is that run's and the
tables still hold what it left. Since that run found the lifecycle as it left it, it made no
decision: the replay writes what a recompute would, which is this run's rows of the metrics history
(that run's rows under this run's id and sequence number), the evidence and the would-be rulesets
stamped with this run's id, and ``marts.active_rules`` refreshed. Never replayed: a run whose
evaluation gates withheld promotion, or whose active set holds a rule without a hit on the
evaluation window while the profile deprecates idle rules (the count of idle runs grows each run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import psycopg

from python_steps import tables
from python_steps.lifecycle import store
from python_steps.lifecycle.profiles import ProfileConfig, SafetyProfile, load_profiles
from python_steps.mining import library, reuse

STEP = "promotion"
# The stage-1 and shadow-evaluation tables promotion reads (by catalog identity; their rows are a
# function of the dbt steps' recorded inputs).
READS = (
    "marts.rule_hits",
    "marts.rule_evaluations",
    tables.MESSAGES_WINDOWED,
    tables.MESSAGES_ENRICHED,
    tables.LABELS_OVERRIDDEN,
)
RUN_COLUMNS = ("run_id", "run_seq", "recorded_at")  # what a run stamps on its rows of the history


def _digest(conn: psycopg.Connection, relation: str, row_expression: str) -> str:
    return reuse.table_digest(conn, relation, row_expression)


def output_state(conn: psycopg.Connection) -> str:
    """What promotion leaves: the lifecycle, the evidence and the would-be rulesets, without run ids."""
    parts = (
        _digest(conn, tables.RULE_LIFECYCLE, "to_jsonb(t)"),
        _digest(conn, "patas.rule_evidence", "to_jsonb(t) - 'run_id' - 'recorded_at'"),
        _digest(conn, tables.RULESET_MEMBERS, "to_jsonb(t) - 'run_id'"),
    )
    return hashlib.md5("|".join(parts).encode()).hexdigest()


def active_rules_without_a_hit(conn: psycopg.Connection) -> int:
    """The active rules without a hit on the evaluation window: while the profile deprecates idle
    rules, each run counts one more idle run for them, so a run with nothing new still changes the
    lifecycle (never replayed, never skipped)."""
    if not store.relation_exists(conn, "marts.rule_evaluations"):
        return 0
    return conn.execute(
        """
        select count(*) from patas.rule_lifecycle as l
        left join marts.rule_evaluations as e on e.rule_id = l.rule_id and e.window_name = 'evaluation'
        where l.status = 'active' and coalesce(e.hit_count, 0) = 0
        """
    ).fetchone()[0]


def input_state(
    conn: psycopg.Connection,
    run_id: str,
    profile: SafetyProfile,
    config: ProfileConfig,
    *,
    folds: int,
    languages: Sequence[str],
    actor: str,
) -> str | None:
    """The input state of promotion in run ``run_id``; None when it must compute whatever the state
    (an active rule without a hit while the profile deprecates idle rules)."""
    if profile.max_idle_runs and active_rules_without_a_hit(conn):
        return None
    split = conn.execute("select split_mode from patas.runs where run_id = %s", (run_id,)).fetchone()
    payload = {
        "warehouse": reuse.warehouse_state(conn),
        "reads": reuse.relations_state(conn, list(READS)),
        "evaluations": _digest(conn, "marts.rule_evaluations", "to_jsonb(t) - 'evaluated_run_id'"),
        "drafts": _digest(conn, tables.RULE_DRAFTS, "to_jsonb(t)"),
        "lifecycle": _digest(conn, tables.RULE_LIFECYCLE, "to_jsonb(t)"),
        "split": split[0] if split else None,
        "returning": library.returning_rules(conn, run_id),
        "profile": repr(profile),
        "config": repr(config),
        "folds": folds,
        "languages": list(languages),
        "actor": actor,
        "code": reuse.code_version(),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _replay(
    conn: psycopg.Connection, run_id: str, previous_run_id: str, profile: SafetyProfile
) -> dict[str, Any]:
    """Write what promotion in ``previous_run_id`` wrote, for ``run_id``; return its summary."""
    columns = [
        r[0]
        for r in conn.execute(
            """
            select attname from pg_attribute
            where attrelid = 'patas.rule_metrics_history'::regclass and attnum > 0 and not attisdropped
            order by attnum
            """
        )
        if r[0] not in RUN_COLUMNS
    ]
    cols = ", ".join(columns)
    conn.execute("delete from patas.rule_metrics_history where run_id = %s", (run_id,))
    conn.execute(
        f"""
        insert into patas.rule_metrics_history ({cols}, run_id, run_seq)
        select {cols}, %(run)s, (select coalesce(max(run_seq), 0) + 1 from patas.rule_metrics_history)
        from patas.rule_metrics_history where run_id = %(previous)s
        order by rule_id, window_name
        """,
        {"run": run_id, "previous": previous_run_id},
    )
    conn.execute("update patas.rule_evidence set run_id = %s, recorded_at = now()", (run_id,))
    conn.execute("update patas.ruleset_members set run_id = %s", (run_id,))
    store.refresh_active_rules(conn)
    counts = dict(
        conn.execute("select status, count(*) from patas.rule_lifecycle group by 1 order by 1").fetchall()
    )
    sizes = dict(
        conn.execute(
            "select ruleset_name, count(*) from patas.ruleset_members group by 1 order by 1"
        ).fetchall()
    )
    return {
        "run_id": run_id,
        "profile": profile.name,
        "new_candidates": 0,
        "transitions": {},
        "promoted": [],
        "deprecated": {},
        "transition_count": 0,
        "blocked_by": [],
        "withheld": 0,
        "status_counts": counts,
        "ruleset_sizes": sizes,
    }


def apply_lifecycle(
    conn: psycopg.Connection,
    *,
    run_id: str,
    profile: SafetyProfile | str | None = None,
    config: ProfileConfig | None = None,
    actor: str = "patas",
    folds: int = store.ev.DEFAULT_FOLDS,
    languages: Sequence[str] = ("en",),
    blocked_by: Sequence[str] = (),
) -> dict[str, Any]:
    """:func:`python_steps.lifecycle.store.apply_lifecycle` on the pipeline's tables, or the replay
    of the earlier run that computed it from the same input state. The summary's ``skipped`` and
    ``skip_reason`` say which."""
    config = config or load_profiles()
    prof = store._profile(profile, config)
    if blocked_by:  # withheld decisions: computed, and never the base of a replay
        summary = store.apply_lifecycle(conn, run_id=run_id, profile=prof, config=config, actor=actor,
                                        folds=folds, languages=languages, blocked_by=blocked_by)  # fmt: skip
        return {**summary, "skipped": False, "skip_reason": "the evaluation gates withheld promotion"}
    state, reason = None, "marts.rule_evaluations is not this run's evaluation"
    with conn.transaction():
        store.ensure_schema(conn)  # and the lifecycle lock, as apply_lifecycle takes it
        if store.relation_exists(conn, "marts.rule_evaluations") and conn.execute(
            "select distinct evaluated_run_id from marts.rule_evaluations"
        ).fetchall() == [(run_id,)]:
            state = input_state(conn, run_id, prof, config, folds=folds, languages=languages, actor=actor)
            reason = "an active rule has no hit: its idle runs grow" if state is None else reason
        previous = reuse.check(conn, STEP, state, output_state(conn)) if state is not None else None
        if previous is not None:
            reason = previous.reason
        if previous is not None and previous.reusable:
            summary = _replay(conn, run_id, previous.previous_run_id, prof)
            reuse.record(conn, run_id, STEP, state, skipped=True, reason=previous.reason,
                         output_state=output_state(conn))  # fmt: skip
            return {**summary, "skipped": True, "skip_reason": previous.reason}
    summary = store.apply_lifecycle(conn, run_id=run_id, profile=prof, config=config, actor=actor,
                                    folds=folds, languages=languages)  # fmt: skip
    if state is not None:
        with conn.transaction():
            reuse.record(
                conn, run_id, STEP, state, skipped=False, reason=reason, output_state=output_state(conn)
            )
    return {**summary, "skipped": False, "skip_reason": reason}
