"""The lifecycle's store: reads the shadow evaluation, applies the policy, writes the outcome.

:func:`apply_lifecycle` reads ``marts.rule_evaluations`` and ``marts.rule_hits``, applies the
decisions of :mod:`python_steps.lifecycle.policy` and appends every transition to
``patas.rule_audit``, in one transaction. Per run it also snapshots the evaluation metrics into
``patas.rule_metrics_history`` (the ``rule_history`` view reads it) and writes
``patas.ruleset_members``: for each safety profile, the rules it would make active (the
``ruleset_evaluation`` mart measures those sets). :func:`check_evaluation_consistency` is the
blocking Dagster check before promotion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import chain, pairwise
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from python_steps import tables
from python_steps.lifecycle import evidence as ev
from python_steps.lifecycle.policy import (
    Decision,
    HitSets,
    LifecycleError,
    RuleState,
    plan_transitions,
    would_be_active,
)
from python_steps.lifecycle.profiles import (
    ProfileConfig,
    SafetyProfile,
    TierThresholds,
    load_profiles,
    tier_for,
)
from python_steps.mining.drafting import DraftingConfig
from python_steps.warehouse import planner_settings

EVALUATION_WINDOW = "evaluation"
LABELS_OVERRIDDEN = tables.LABELS_OVERRIDDEN
LIFECYCLE_LOCK_KEY = 0x5A7A6  # serializes automatic and manual lifecycle changes

METRIC_COLUMNS = (
    "hit_count",
    "spam_hit_count",
    "ham_hit_count",
    "unlabelled_hit_count",
    "reversed_hit_count",
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


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the lifecycle tables (idempotent). Serialized: concurrent DDL on the same names races."""
    conn.execute("select pg_advisory_xact_lock(%s)", (LIFECYCLE_LOCK_KEY,))
    tables.ensure_all(conn)


_RELATION_RE = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


def _check_relation_names(*names: str) -> None:
    for name in names:
        if not _RELATION_RE.fullmatch(name):
            raise LifecycleError(f"not a schema-qualified relation name: {name!r}")


def relation_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def latest_drafts(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    if not relation_exists(conn, "patas.rule_drafts"):
        return {}
    rows = conn.execute(
        """
        select distinct on (rule_id) rule_id, version, origin, evaluation_kind, rule_json, pattern_id
        from patas.rule_drafts
        order by rule_id, version desc
        """
    ).fetchall()
    return {
        r[0]: {
            "version": r[1],
            "origin": r[2],
            "evaluation_kind": r[3],
            "rule_json": r[4],
            "pattern_id": r[5],
        }
        for r in rows
    }


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


EVIDENCE_COLUMNS = (
    "rule_kind",
    "evidence_folds",
    "evidence_folds_used",
    "evidence_spam_hits",
    "evidence_ham_hits",
    "evidence_ham_total",
    "evidence_precision",
    "evidence_false_positive_rate",
    "prior_mean",
    "prior_strength",
    "posterior_mean",
    "posterior_lower_bound",
)


def _metrics_json(row: Mapping[str, Any], run_id: str | None = None) -> dict[str, Any]:
    out = {k: row[k] for k in (*METRIC_COLUMNS, *EVIDENCE_COLUMNS) if k in row}
    if run_id is not None:
        out["run_id"] = run_id
    return out


def evaluation_hit_sets(
    conn: psycopg.Connection, rule_ids: Sequence[str], hits_relation: str
) -> dict[str, HitSets]:
    """The labelled evaluation-window messages each rule hits (the set choice without evidence)."""
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


# Columns read as bytea of their values in binary (big-endian): int8, int4, bool.
_INT8, _INT4, _BOOL = np.dtype(">i8"), np.dtype(">i4"), np.dtype("?")


def _labelled_windows(
    conn: psycopg.Connection, run_id: str, folds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled messages of both windows, as arrays sorted by message id: the ids, their folds
    and their effective labels. The mining window is cut into ``folds`` folds (time-ordered blocks
    when the run's split is by time, else template-hash buckets, so copies of one template share a
    fold); the evaluation window is fold -1."""
    row = (
        conn.execute("select split_mode from patas.runs where run_id = %s", (run_id,)).fetchone()
        if relation_exists(conn, "patas.runs")
        else None
    )
    by_time = row is not None and row[0] == "time"
    # Effective labels, as shadow evaluation counts them: label feedback and moderator reversals
    # (int_message_labels_overridden) override the ingested label.
    overridden = relation_exists(conn, LABELS_OVERRIDDEN)
    label = "coalesce(o.is_spam, m.is_spam)" if overridden else "m.is_spam"
    join = f"left join {LABELS_OVERRIDDEN} as o on o.message_id = m.message_id" if overridden else ""
    # Time folds: blocks in (event time, message id) order, numbered below (the time as its binary
    # form, microseconds since 2000; a missing time sorts last, as in SQL); hash folds: the bucket.
    key = (
        f"coalesce(timestamptz_send(m.event_at), int8send({np.iinfo(np.int64).max}))"
        if by_time
        else f"int8send((coalesce(m.split_bucket, m.message_id % 100) % {int(folds)})::bigint)"
    )
    # The window view carries the messages' columns (no join back to them); its CASE hides the
    # windows' sizes (1% of the messages expected), so the overrides are hashed, not probed once per
    # message, and no JIT. Each column comes as one bytea of its values in binary (big-endian),
    # read by numpy as is.
    with planner_settings(conn, enable_nestloop="off", jit="off"), conn.cursor(binary=True) as cur:
        columns = cur.execute(
            f"""
            select string_agg(int8send(m.message_id), ''), string_agg(boolsend(m.window_name = 'mining'), ''),
                string_agg({key}, ''), string_agg(boolsend({label}), '')
            from intermediate.int_messages_windowed as m
            {join}
            where {label} is not null and m.window_name in ('mining', 'evaluation')
            """
        ).fetchone()
    ids, mining, keys, labels = (
        np.frombuffer(bytes(c or b""), dtype=t).astype(t.newbyteorder("="))
        for c, t in zip(columns, (_INT8, _BOOL, _INT8, _BOOL), strict=True)
    )
    fold = np.full(len(ids), -1, dtype=np.int64)
    if by_time:
        # ntile(folds) over the mining window in (event time, id) order: the first n % folds
        # blocks hold one message more.
        at = np.flatnonzero(mining)
        order = at[np.lexsort((ids[at], keys[at]))]
        pos = np.arange(len(at), dtype=np.int64)
        size, extra = divmod(len(at), folds)
        big = extra * (size + 1)
        fold[order] = np.where(pos < big, pos // (size + 1), extra + (pos - big) // max(size, 1))
    else:
        fold[mining] = keys[mining]
    by_id = np.argsort(ids, kind="stable")
    return ids[by_id], fold[by_id], labels[by_id]


def _held_out_hits(
    conn: psycopg.Connection, hits_relation: str, rule_ids: list[str], ids: np.ndarray, fold: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rules' hits on labelled messages of their window's folds (evaluation-window hits in fold
    -1, mining-window hits in the mining folds), as (index into ``rule_ids``, index into ``ids``).
    Each column comes as one bytea of its values in binary."""
    with conn.cursor(binary=True) as cur:
        columns = cur.execute(
            f"""
            select string_agg(int4send(r.k::int4), ''), string_agg(boolsend(h.window_name = 'mining'), ''),
                string_agg(int8send(h.message_id), '')
            from {hits_relation} as h
            inner join unnest(%s::text[]) with ordinality as r (rule_id, k) on r.rule_id = h.rule_id
            where h.window_name in ('mining', 'evaluation') and h.message_id is not null
            """,
            (rule_ids,),
        ).fetchone()
    rule_k, mining, mids = (
        np.frombuffer(bytes(c or b""), dtype=t).astype(t.newbyteorder("="))
        for c, t in zip(columns, (_INT4, _BOOL, _INT8), strict=True)
    )
    if len(ids) and ids[0] >= 0 and ids[-1] < 4 * len(ids) + 1_000_000:
        # Ids not much sparser than the messages: a position per id (a table of up to 4 entries
        # per message) instead of a binary search per hit.
        where = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
        where[ids] = np.arange(len(ids))
        at = where[np.clip(mids, 0, len(where) - 1)]
        found = (at >= 0) & (mids >= 0) & (mids < len(where))
        at = np.maximum(at, 0)
    else:
        at = np.minimum(np.searchsorted(ids, mids), max(len(ids) - 1, 0))
        found = (ids[at] == mids) if len(ids) else np.zeros(len(mids), dtype=bool)
    held_out = found & np.where(mining, fold[at] >= 0, fold[at] == -1)
    return rule_k[held_out].astype(np.int64) - 1, at[held_out]


def rule_evidence(
    conn: psycopg.Connection,
    run_id: str,
    drafts: Mapping[str, Mapping[str, Any]],
    rule_ids: Sequence[str],
    *,
    folds: int,
    languages: Sequence[str],
    hits_relation: str,
    drafting: DraftingConfig | None = None,
    tiers: TierThresholds | None = None,
    with_hit_sets: Sequence[str] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, HitSets]]:
    """Per rule: the evidence fields (python_steps.lifecycle.evidence); and the held-out hit sets of
    the SAFE_AUTO rules (the only ones promotion may choose) and of ``with_hit_sets`` (the active
    rules, whose hits count first in the set choice)."""
    cfg = drafting or DraftingConfig()
    folds = folds if folds >= 2 else 0
    kinds = {
        rid: ev.rule_kind(
            drafts.get(rid, {}).get("rule_json") or {},
            drafts.get(rid, {}).get("origin", ""),
            languages,
            drafts.get(rid, {}).get("pattern_id") or "",
        )
        for rid in rule_ids
    }
    origins = {rid: drafts.get(rid, {}).get("origin", "") for rid in rule_ids}
    # The labelled messages with their folds, and each rule's hits among them, matched by message
    # id here: per rule, fold and label, the count of hits (the evidence of every rule) and the
    # message ids (kept only for the rules the set choice may read, below). A hit is one row of
    # rule_hits (unique per rule, message and window) and a message has one fold.
    ids, fold, labels = _labelled_windows(conn, run_id, max(folds, 1))
    rule_list = list(rule_ids)
    rule_at, msg_at = _held_out_hits(conn, hits_relation, rule_list, ids, fold)
    order = np.lexsort((labels[msg_at], fold[msg_at], rule_at))
    rule_at, msg_at = rule_at[order], msg_at[order]
    hit_fold, hit_spam, hit_ids = fold[msg_at], labels[msg_at], ids[msg_at]
    cuts = np.flatnonzero((np.diff(rule_at) != 0) | (np.diff(hit_fold) != 0) | (np.diff(hit_spam) != 0)) + 1
    counts: dict[str, dict[int, tuple[int, int]]] = {}
    fold_ids: dict[tuple[str, int, bool], np.ndarray] = {}
    bounds = [0, *cuts.tolist(), len(rule_at)] if len(rule_at) else []
    for first, last in pairwise(bounds):
        rid, f, is_spam = rule_list[int(rule_at[first])], int(hit_fold[first]), bool(hit_spam[first])
        spam, ham = counts.setdefault(rid, {}).get(f, (0, 0))
        counts[rid][f] = (spam + last - first, ham) if is_spam else (spam, ham + last - first)
        fold_ids[(rid, f, is_spam)] = hit_ids[first:last]
    ham_folds, ham_counts = np.unique(fold[~labels], return_counts=True)
    ham_by_fold = {int(f): int(n) for f, n in zip(ham_folds.tolist(), ham_counts.tolist(), strict=True)}
    if not folds:
        ham_by_fold = {-1: ham_by_fold.get(-1, 0)}

    def bar(kind: str, spam: int, ham: int) -> bool:
        return ev.drafting_bar(
            kind,
            spam,
            ham,
            min_spam=cfg.min_spam_count,
            min_share=cfg.min_spam_share,
            max_phrase_ham=cfg.max_phrase_ham_count,
        )

    evidence = ev.crossfit_evidence(counts, kinds, origins, folds, bar)
    metrics = ev.evidence_metrics(kinds, evidence, ham_by_fold, folds)
    # Only SAFE_AUTO rules can be chosen, so only their held-out message ids are read (the greedy
    # set choice needs them); the other rules' evidence is counted in the query above.
    choosable = sorted(
        {rid for rid, m in metrics.items() if tier_for(m, tiers) == "SAFE_AUTO"}
        | (set(with_hit_sets) & set(metrics))
    )
    # Each rule's id lists of the folds it uses, made into its frozen sets once (no set built and
    # then copied: 1.9M ids at 1M messages).
    spam_ids: dict[str, list[list[int]]] = {}
    ham_ids: dict[str, list[list[int]]] = {}
    chosen = set(choosable)
    for (rid, f, is_spam), mids in fold_ids.items():
        if rid in chosen and (f == -1 or f in evidence[rid].folds_used):
            (spam_ids if is_spam else ham_ids).setdefault(rid, []).append(mids.tolist())
    hit_sets = {
        rid: HitSets(
            frozenset(chain.from_iterable(spam_ids.get(rid, ()))),
            frozenset(chain.from_iterable(ham_ids.get(rid, ()))),
        )
        for rid in choosable
    }
    return metrics, hit_sets


def _write_evidence(
    conn: psycopg.Connection,
    run_id: str,
    metrics: Mapping[str, Mapping[str, Any]],
    tiers: Mapping[str, str],
    held: Mapping[str, str],
) -> None:
    """The run's evidence per rule, its tier, and for a rule left in shadow why (``held``)."""
    conn.execute("delete from patas.rule_evidence")
    cols = ("rule_id", "run_id", *EVIDENCE_COLUMNS, "tier", "held_reason")
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into patas.rule_evidence ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})",
            [
                (
                    rid,
                    run_id,
                    *(m[c] for c in EVIDENCE_COLUMNS),
                    tiers.get(rid, "FEATURE_ONLY"),
                    held.get(rid),
                )
                for rid, m in sorted(metrics.items())
            ],
        )


def audit_decision(conn: psycopg.Connection, d: Decision, run_id: str | None, actor: str) -> None:
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


def apply_decision(
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
    audit_decision(conn, d, run_id, actor)


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


def _returning(conn: psycopg.Connection, run_id: str, states: Mapping[str, RuleState]) -> dict[str, str]:
    """The deprecated rules a returning campaign re-used in this run's stage 2 that may come back
    (rule id -> reason): only those deprecated for lack of hits (``idle``); a rule deprecated for
    its precision, by feedback or by hand stays deprecated whatever returns."""
    from python_steps.mining import library

    matches = library.returning_rules(conn, run_id)
    wanted = sorted(rid for rid in matches if rid in states and states[rid].status == "deprecated")
    if not wanted:
        return {}
    idle = {
        r[0]
        for r in conn.execute(
            "select rule_id from patas.rule_lifecycle where rule_id = any(%s) and status_reason like 'idle%%'",
            (wanted,),
        )
    }
    return {
        rid: (
            f"returning: its campaign is back (cluster {matches[rid]['cluster_id']} matches pattern"
            f" {matches[rid]['pattern_id']}, similarity {matches[rid]['similarity']:.3f}); re-checked"
        )
        for rid in wanted
        if rid in idle
    }


def refresh_active_rules(conn: psycopg.Connection) -> bool:
    """Rebuild ``marts.active_rules`` in the caller's transaction with the function its dbt model
    leaves behind (macro ``create_refresh_function``: the model's own query). False when the mart
    was never built (nothing to refresh: the next run builds it)."""
    exists = conn.execute("select to_regprocedure('marts.refresh_active_rules()') is not null").fetchone()
    if not exists or not exists[0]:
        return False
    conn.execute("select marts.refresh_active_rules()")
    return True


def apply_lifecycle(
    conn: psycopg.Connection,
    *,
    run_id: str,
    profile: SafetyProfile | str | None = None,
    config: ProfileConfig | None = None,
    actor: str = "patas",
    evaluations_relation: str = "marts.rule_evaluations",
    hits_relation: str = "marts.rule_hits",
    folds: int = ev.DEFAULT_FOLDS,
    languages: Sequence[str] = ("en",),
    blocked_by: Sequence[str] = (),
) -> dict[str, Any]:
    """Apply one run's lifecycle after shadow evaluation and return a summary.

    ``blocked_by``: the critical evaluation gates that failed (python_steps.quality.evaluation, checked
    by the pipeline just before): when any, every promotion and deprecation of the run is withheld
    (the active set keeps its rules, versions and tiers); the summary's ``blocked_by`` says why.

    Drafted rules without a lifecycle row become candidates; then :func:`plan_transitions` moves
    them; every transition is audited; the run's metrics are appended to
    ``patas.rule_metrics_history``; ``patas.ruleset_members`` gets each profile's would-be active
    set. One transaction, serialized with the manual controls. Re-running the same run is a no-op
    (the same metrics give the same decisions).

    Promotion weighs each rule's cross-fitted evidence (``folds`` folds of the mining window plus
    the evaluation window; python_steps.lifecycle.evidence), written to ``patas.rule_evidence``;
    ``folds`` 1: the evaluation window's hits with the kind priors; 0: the evaluation window's own
    metrics, as before cross-fitting. Deprecation weighs the evaluation window (what the rule did
    on the newest data).
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
        drafts = latest_drafts(conn)
        all_rows = _evaluations(conn, evaluations_relation, window=None)
        evals = {r["rule_id"]: r for r in all_rows if r["window_name"] == EVALUATION_WINDOW}

        states = _states(conn, lock=True)
        new = [rid for rid in sorted(drafts) if rid not in states]
        # The per-rule writes below are sent pipelined (one round trip per batch, not per statement).
        with conn.pipeline():
            for rid in new:
                d = Decision(
                    rid, drafts[rid]["version"], None, "candidate", f"drafted: origin {drafts[rid]['origin']}"
                )
                apply_decision(conn, d, run_id, actor)
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

        if folds >= 1:
            evidence, hits = rule_evidence(
                conn,
                run_id,
                drafts,
                sorted(evals),
                folds=folds,
                languages=languages,
                hits_relation=hits_relation,
            )
            for rid, fields in evidence.items():
                evals[rid] = {**evals[rid], **fields}
        else:  # folds 0: the evaluation window's own metrics decide (no evidence, no kind priors)
            evidence, hits = {}, evaluation_hit_sets(conn, sorted(evals), hits_relation)
        active_ids = [rid for rid, s in states.items() if s.status == "active"]
        idle = (
            _idle_runs(conn, active_ids, {rid: evals[rid]["hit_count"] for rid in evals}, run_id)
            if prof.max_idle_runs
            else {}
        )
        returning = _returning(conn, run_id, states)
        plan = plan_transitions(
            states, evals, prof, hits=hits, idle_runs=idle, tiers=config.tiers, returning=returning
        )
        decisions = list(plan.decisions)
        withheld = [d for d in decisions if "active" in (d.from_status, d.to_status)] if blocked_by else []
        decisions = [d for d in decisions if d not in withheld]
        with conn.pipeline():
            for d in decisions:
                apply_decision(conn, d, run_id, actor, plan.tiers.get(d.rule_id))
            for rid, tier in plan.tiers.items():
                if blocked_by and states[rid].status == "active":
                    continue  # blocked: the active set keeps its rules, versions and tiers
                conn.execute(
                    "update patas.rule_lifecycle set tier = %s, version = %s where rule_id = %s and (tier <> %s or version <> %s)",
                    (tier, states[rid].version, rid, tier, states[rid].version),
                )

        final_states = _states(conn)
        _snapshot_history(conn, run_id, all_rows, final_states, plan.tiers)
        held = {
            **plan.held,
            **{
                d.rule_id: "withheld: the evaluation gates failed (" + ", ".join(blocked_by) + ")"
                for d in withheld
                if d.to_status == "active"
            },
        }
        held = {
            rid: why
            for rid, why in held.items()
            if rid in final_states and final_states[rid].status == "shadow"
        }
        _write_evidence(conn, run_id, evidence, plan.tiers, held)
        rulesets = {
            "profile:" + name: would_be_active(final_states, evals, p, hits=hits, tiers=config.tiers)
            for name, p in sorted(config.profiles.items())
        }
        conn.execute("delete from patas.ruleset_members")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into patas.ruleset_members (ruleset_name, rule_id, run_id) values (%s, %s, %s)",
                [(name, rid, run_id) for name, ids in sorted(rulesets.items()) for rid in ids],
            )
        # Consumers of marts.active_rules see this run's decisions when they commit, not after the
        # next dbt step: a run killed between here and that step leaves no stale active set.
        refresh_active_rules(conn)

    counts: dict[str, int] = {}
    for s in final_states.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    transitions: dict[str, int] = {}
    for d in decisions:
        key = f"{d.from_status}->{d.to_status}"
        transitions[key] = transitions.get(key, 0) + 1
    return {
        "run_id": run_id,
        "profile": prof.name,
        "new_candidates": len(new),
        "transitions": dict(sorted(transitions.items())),
        "promoted": sorted(d.rule_id for d in decisions if d.to_status == "active"),
        "deprecated": {d.rule_id: d.reason for d in decisions if d.to_status == "deprecated"},
        "transition_count": len(decisions),
        "blocked_by": list(blocked_by),
        "withheld": len(withheld),
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
        if not relation_exists(conn, rel):
            return [f"{rel} does not exist: run shadow evaluation first"]
    runs = [
        r[0] for r in conn.execute(f"select distinct evaluated_run_id from {evaluations_relation}").fetchall()
    ]
    if runs and runs != [run_id]:
        problems.append(f"{evaluations_relation} holds run(s) {sorted(runs)}, not {run_id!r}")
    drafts = latest_drafts(conn)
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
    if relation_exists(conn, "patas.rule_lifecycle"):
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
    # One pass over the hits for both checks: the counts per rule and window against the
    # evaluation rows (the first five that disagree), and the pairs with no evaluation row.
    mismatched, orphans = conn.execute(
        f"""
        with counted as materialized (
            select rule_id, window_name, count(*) as n from {hits_relation} group by rule_id, window_name
        )
        select
            (
                select coalesce(array_agg(m.rule_id order by m.rule_id), '{{}}') from (
                    select e.rule_id
                    from {evaluations_relation} as e
                    left join counted as c on c.rule_id = e.rule_id and c.window_name = e.window_name
                    where e.hit_count <> coalesce(c.n, 0)
                    order by e.rule_id
                    limit 5
                ) as m
            ),
            (
                select count(*) from counted as h
                where not exists (
                    select 1 from {evaluations_relation} as e
                    where e.rule_id = h.rule_id and e.window_name = h.window_name
                )
            )
        """
    ).fetchone()
    if mismatched:
        problems.append(f"hit counts disagree with {hits_relation} for {list(mismatched)}")
    if orphans:
        problems.append(f"{orphans} rule/window pair(s) in {hits_relation} have no evaluation row")
    return problems
