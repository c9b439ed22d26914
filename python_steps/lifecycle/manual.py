"""Manual lifecycle actions (promote, deprecate, pin, add a rule): audited with the actor and a reason.

Serialized with automatic lifecycle changes by the lifecycle lock, so a manual action and a run
cannot lose each other's update.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from python_steps import tables
from python_steps.lifecycle.policy import Decision, LifecycleError
from python_steps.lifecycle.profiles import (
    MATCH_EVERYTHING_COVERAGE,
    tier_for,
)
from python_steps.lifecycle.store import (
    EVALUATION_WINDOW,
    EVIDENCE_COLUMNS,
    METRIC_COLUMNS,
    apply_decision,
    audit_decision,
    ensure_schema,
    latest_drafts,
    refresh_active_rules,
    relation_exists,
)
from python_steps.mining.drafting import signal_evaluable_clauses


def _manual_actor(actor: str) -> str:
    if not actor or actor == "patas":
        raise LifecycleError("manual changes need the actor who made them (e.g. 'cli:alice')")
    return actor


def _need_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise LifecycleError("manual changes need a reason")
    return " ".join(reason.split())


def _latest_metrics(conn: psycopg.Connection, rule_id: str) -> dict[str, Any] | None:
    """The rule's latest evaluation metrics, with the evidence the same run weighed (if any)."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            f"""
            select run_id, {", ".join(METRIC_COLUMNS)} from patas.rule_metrics_history
            where rule_id = %s and window_name = %s order by run_seq desc limit 1
            """,
            (rule_id, EVALUATION_WINDOW),
        ).fetchone()
        if row is not None and relation_exists(conn, "patas.rule_evidence"):
            evidence = cur.execute(
                f"select {', '.join(EVIDENCE_COLUMNS)} from patas.rule_evidence where rule_id = %s and run_id = %s",
                (rule_id, row["run_id"]),
            ).fetchone()
            row = {**row, **(evidence or {})}
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
            drafts = latest_drafts(conn)
            if rule_id not in drafts:
                raise LifecycleError(f"unknown rule {rule_id!r}")
            apply_decision(
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
            apply_decision(conn, d, run_id, actor, tier)
        if pin is not None:
            conn.execute(
                "update patas.rule_lifecycle set is_pinned = %s, updated_at = now() where rule_id = %s",
                (pin, rule_id),
            )
            if to_status is None:
                audit_decision(conn, d, run_id, actor)
        final = conn.execute(
            "select status, is_pinned from patas.rule_lifecycle where rule_id = %s", (rule_id,)
        ).fetchone()
        refresh_active_rules(conn)
    return {
        "rule_id": rule_id,
        "from_status": status,
        "status": final[0],
        "is_pinned": final[1],
        "reason": d.reason,
    }


# Manual actions reach consumers before they return: marts.active_rules is refreshed in the
# action's transaction (readers see old or new, never a mix). The export files are rewritten by
# python_steps.publish.exports.manual_action, which wraps these (publish may import lifecycle, not
# the reverse).


def promote_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Make a rule active by hand (audited, ``manual_promote``); its promotion metrics are the latest
    evaluation's, if any. A rule whose evidence makes it FEATURE_ONLY is refused: it is exported as a
    feature, never as a blocking rule."""
    metrics = _latest_metrics(conn, rule_id) if relation_exists(conn, "patas.rule_metrics_history") else None
    if metrics and metrics.get("posterior_mean") is not None and tier_for(metrics) == "FEATURE_ONLY":
        raise LifecycleError(
            f"rule {rule_id} is FEATURE_ONLY (posterior precision {metrics['posterior_mean']:.3f} on "
            f"{metrics['evidence_spam_hits']} spam / {metrics['evidence_ham_hits']} ham held-out hits): "
            "it is exported as a feature, never as a blocking rule"
        )
    return _manual_transition(conn, rule_id, "active", reason=reason, actor=actor, code="manual_promote")


REVIEW_QUEUE_SQL = f"""
    select l.rule_id, l.version, l.tier, l.status_reason, d.description,
        {", ".join("e." + c for c in EVIDENCE_COLUMNS)}
    from patas.rule_lifecycle as l
    inner join (
        select distinct on (rule_id) rule_id, description from patas.rule_drafts order by rule_id, version desc
    ) as d on d.rule_id = l.rule_id
    left join patas.rule_evidence as e on e.rule_id = l.rule_id
    where l.status = 'shadow' and l.tier = 'REVIEW_ONLY' and not l.is_pinned
    order by e.posterior_mean desc nulls last, e.evidence_spam_hits desc nulls last, l.rule_id
"""


def review_queue(conn: psycopg.Connection, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The REVIEW_ONLY shadow rules, waiting for a person (best evidence first)."""
    if not relation_exists(conn, "patas.rule_lifecycle") or not relation_exists(conn, "patas.rule_evidence"):
        return []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            REVIEW_QUEUE_SQL + (" limit %s" if limit else ""), (limit,) if limit else ()
        ).fetchall()
    return rows


def _waiting_for_review(conn: psycopg.Connection, rule_id: str) -> None:
    row = conn.execute(
        "select status, tier from patas.rule_lifecycle where rule_id = %s", (rule_id,)
    ).fetchone()
    if row is None:
        raise LifecycleError(f"unknown rule {rule_id!r}")
    if tuple(row) != ("shadow", "REVIEW_ONLY"):
        raise LifecycleError(
            f"rule {rule_id} is not waiting for review (status {row[0]}, tier {row[1]}); see `patas rules review`"
        )


def approve_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Approve a REVIEW_ONLY rule from the review queue: it becomes active (audited, ``review_approved``)."""
    _waiting_for_review(conn, rule_id)
    return _manual_transition(conn, rule_id, "active", reason=reason, actor=actor, code="review_approved")


def reject_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Reject a REVIEW_ONLY rule from the review queue: it is deprecated (audited, ``review_rejected``)."""
    _waiting_for_review(conn, rule_id)
    return _manual_transition(conn, rule_id, "deprecated", reason=reason, actor=actor, code="review_rejected")


def deprecate_rule(conn: psycopg.Connection, rule_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Deprecate a rule by hand (audited, ``manual_deprecate``)."""
    return _manual_transition(
        conn,
        rule_id,
        "deprecated",
        reason=reason,
        actor=actor,
        code="manual_deprecate",
    )


def pin_rule(
    conn: psycopg.Connection,
    rule_id: str,
    *,
    reason: str,
    actor: str,
    pinned: bool = True,
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
    must pass ``python_steps.rules.sql_safety.validate_sql``. Written to ``patas.rule_drafts`` (origin
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
            apply_decision(
                conn,
                Decision(draft["rule_id"], version, None, "candidate", f"manual_add: {reason}"),
                None,
                actor,
            )
        else:
            audit_decision(
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
    if relation_exists(conn, "patas.rule_drafts") and relation_exists(conn, "patas.rule_signal_clauses"):
        return
    try:
        from python_steps.mining import drafting
    except ImportError as e:  # pragma: no cover - drafting lands separately
        raise LifecycleError(
            "patas.rule_drafts does not exist and python_steps.mining.drafting is missing"
        ) from e
    drafting.ensure_schema(conn)


_WHERE_RE = re.compile(r"\bwhere\b", re.IGNORECASE)
_SELECT_RE = re.compile(r"select\b", re.IGNORECASE)


def _raw_sql_draft(conn: psycopg.Connection, raw_sql: str, description: str | None) -> dict[str, Any]:
    """A predicate rule from raw SQL: a bare predicate over ``m``, or a SELECT whose WHERE clause
    is one. Both must pass ``sql_safety.validate_sql``; the predicate is then dry-run read-only
    with a timeout (it must run over ``m`` and hit at most 80% of the messages)."""
    import hashlib

    from python_steps.rules import sql_safety

    body = raw_sql.strip().rstrip(";").strip()
    verdict = sql_safety.validate_sql(body, mode="predicate")
    predicate = body
    if not verdict.ok:
        as_select = sql_safety.validate_sql(raw_sql, mode="select")
        if not as_select.ok:
            # Report the reasons of the form the user wrote: a SELECT, or a bare predicate.
            reasons = as_select.reasons if _SELECT_RE.match(body) else verdict.reasons
            raise LifecycleError(
                "raw SQL rejected by the safety validator: " + "; ".join(reasons or as_select.reasons)
            )
        found = _WHERE_RE.search(body)  # no string literal can precede the WHERE of a valid SELECT
        predicate = body[found.end() :].strip() if found else ""
        verdict = sql_safety.validate_sql(predicate, mode="predicate")
        if not verdict.ok:
            raise LifecycleError("the WHERE clause is not a valid predicate: " + "; ".join(verdict.reasons))
    predicate = " ".join(predicate.split())
    with conn.transaction():  # leaves the connection idle: the guard runs in a transaction of its own
        evaluable = relation_exists(conn, tables.MESSAGES_ENRICHED)
    if evaluable:
        try:
            guard = sql_safety.coverage_guard(
                conn, predicate, mode="predicate", max_coverage=MATCH_EVERYTHING_COVERAGE
            )
        except psycopg.Error as e:
            raise LifecycleError(f"the rule does not run over the message relation (alias m): {e}") from None
        if not guard.ok:
            raise LifecycleError(f"{guard.reasons[0]}: the match-everything guard")
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
