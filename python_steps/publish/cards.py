"""Rule cards: the data behind ``patas rules list`` and ``patas rules show ID``, as plain dicts.

A card holds the rule (typed JSON and its readable description), status, pin and tier, the
metrics at promotion, at the latest evaluation and over runs, a few example hits, the nearest ham
it does not match and the ham it does (``patas.rule_counterexamples``, written by drafting; the ham
it hit on the evaluation window from ``marts.rule_hits``), its lineage (origin, pattern, the
signals it is made of) and its audit history. Rendering is the CLI's job.

Every query takes the rule id as a bound parameter; missing tables (a warehouse that has not run
every step yet) give empty sections, not errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

LIST_METRICS = ("hit_count", "precision", "recall", "false_positive_rate", "precision_lower_bound")


class RuleNotFound(LookupError):
    pass


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _rows(conn: psycopg.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [_plain(r) for r in cur.execute(sql, params).fetchall()]


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def list_rules(
    conn: psycopg.Connection, status: str | None = None, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """One dict per rule (latest draft version), optionally of one status, in id order (at most ``limit``)."""
    if not _exists(conn, "patas.rule_drafts"):
        return []
    has_lifecycle = _exists(conn, "patas.rule_lifecycle")
    has_history = _exists(conn, "patas.rule_metrics_history")
    lifecycle = (
        "left join patas.rule_lifecycle as l on l.rule_id = d.rule_id"
        if has_lifecycle
        else "left join (select null::text as rule_id, null::text as status, false as is_pinned, "
        "null::text as tier, null::timestamptz as promoted_at) as l on false"
    )
    metrics = ", ".join(f"h.{c}" for c in LIST_METRICS)
    history = (
        f"""left join lateral (
            select h.run_id as evaluated_run_id, {metrics}
            from patas.rule_metrics_history as h
            where h.rule_id = d.rule_id and h.window_name = 'evaluation'
            order by h.run_seq desc limit 1
        ) as h on true"""
        if has_history
        else "left join lateral (select null::text as evaluated_run_id, "
        + ", ".join(f"null::double precision as {c}" for c in LIST_METRICS)
        + ") as h on true"
    )
    rows = _rows(
        conn,
        f"""
        with latest as (
            select distinct on (rule_id) * from patas.rule_drafts order by rule_id, version desc
        )
        select d.rule_id, d.version, coalesce(l.status, 'candidate') as status,
               coalesce(l.is_pinned, false) as is_pinned, coalesce(l.tier, 'FEATURE_ONLY') as tier,
               d.origin, d.description, l.promoted_at, h.evaluated_run_id, {", ".join(f"h.{c}" for c in LIST_METRICS)}
        from latest as d
        {lifecycle}
        {history}
        where %s::text is null or coalesce(l.status, 'candidate') = %s::text
        order by d.rule_id
        limit %s
        """,
        (status, status, limit),
    )
    return rows


def resolve_rule_id(conn: psycopg.Connection, ref: str) -> str:
    """A full rule id from an id or a unique prefix of one."""
    if not _exists(conn, "patas.rule_drafts"):
        raise RuleNotFound(f"no rule {ref!r}: no rules drafted yet")
    like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ids = [
        r[0]
        for r in conn.execute(
            "select distinct rule_id from patas.rule_drafts where rule_id like %s order by rule_id limit 6",
            (like,),
        ).fetchall()
    ]
    if ref in ids:
        return ref
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise RuleNotFound(f"no rule {ref!r}")
    raise RuleNotFound(f"{ref!r} is ambiguous: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")


def rule_card(conn: psycopg.Connection, ref: str, *, examples: int = 5) -> dict[str, Any]:
    """Everything ``patas rules show`` displays about one rule."""
    rule_id = resolve_rule_id(conn, ref)
    draft = _rows(
        conn,
        """
        select rule_id, version, rule_json, description, sql_expression, regex, origin, pattern_id,
               evaluation_kind, complexity, drafted_run_id, created_at
        from patas.rule_drafts where rule_id = %s order by version desc limit 1
        """,
        (rule_id,),
    )[0]
    card: dict[str, Any] = {
        "rule_id": rule_id,
        "version": draft["version"],
        "description": draft["description"],
        "rule": draft["rule_json"],
        "sql_expression": draft["sql_expression"],
        "regex": draft["regex"],
        "evaluation_kind": draft["evaluation_kind"],
        "status": "candidate",
        "is_pinned": False,
        "tier": "FEATURE_ONLY",
        "promoted_at": None,
        "promoted_metrics": None,
        "latest_metrics": None,
        "metrics_over_time": [],
        "example_hits": [],
        "ham_matched": [],
        "nearest_ham_not_matched": [],
        "lineage": {
            "origin": draft["origin"],
            "pattern_id": draft["pattern_id"],
            "drafted_run_id": draft["drafted_run_id"],
            "complexity": draft["complexity"],
            "signals": [],
        },
        "overlaps": [],
        "audit": [],
        "evidence": None,
    }
    if _exists(conn, "patas.rule_evidence"):
        evidence = _rows(conn, "select * from patas.rule_evidence where rule_id = %s", (rule_id,))
        card["evidence"] = {k: v for k, v in evidence[0].items() if k != "rule_id"} if evidence else None
    if _exists(conn, "patas.rule_lifecycle"):
        life = _rows(
            conn,
            "select status, is_pinned, tier, promoted_at, promoted_run_id, promoted_metrics, status_reason "
            "from patas.rule_lifecycle where rule_id = %s",
            (rule_id,),
        )
        if life:
            card.update(life[0])
    if _exists(conn, "patas.rule_metrics_history"):
        card["metrics_over_time"] = _rows(
            conn,
            """
            select run_id, run_seq, window_name, status, tier, hit_count, spam_hit_count, ham_hit_count,
                   unlabelled_hit_count, unique_spam_hit_count, precision, recall, coverage,
                   false_positive_rate, f1_score, precision_lower_bound, false_positive_rate_upper_bound
            from patas.rule_metrics_history where rule_id = %s order by run_seq, window_name
            """,
            (rule_id,),
        )
        evaluation = [m for m in card["metrics_over_time"] if m["window_name"] == "evaluation"]
        card["latest_metrics"] = evaluation[-1] if evaluation else None
    if _exists(conn, "marts.rule_hits") and _exists(conn, "intermediate.int_messages_enriched"):
        # The evaluation window's hits first, then the mining window's (cross-fitted evidence).
        hits = """
            select m.message_id, m.external_id, m.text, m.is_spam, h.window_name
            from marts.rule_hits as h
            inner join intermediate.int_messages_enriched as m on m.message_id = h.message_id
            where h.rule_id = %s and {cond}
            order by h.window_name = 'evaluation' desc, m.message_id limit %s
        """
        card["example_hits"] = _rows(conn, hits.format(cond="m.is_spam is not false"), (rule_id, examples))
        card["ham_matched"] = _rows(conn, hits.format(cond="m.is_spam = false"), (rule_id, examples))
    if _exists(conn, "patas.rule_counterexamples"):
        # drafting's table: example_kind 'matched_ham' | 'nearest_unmatched_ham', rank, message_id.
        join_text = _exists(conn, "intermediate.int_messages_enriched")
        counter = _rows(
            conn,
            "select c.*"
            + (", m.text" if join_text else "")
            + " from patas.rule_counterexamples as c"
            + (
                " left join intermediate.int_messages_enriched as m on m.message_id = c.message_id"
                if join_text
                else ""
            )
            + " where c.rule_id = %s order by c.example_kind, c.rank",
            (rule_id,),
        )
        seen = {h["message_id"] for h in card["ham_matched"]}
        for r in counter[: 4 * examples]:
            if r.get("example_kind") == "matched_ham":
                if r.get("message_id") not in seen:
                    card["ham_matched"].append(r)
            else:
                card["nearest_ham_not_matched"].append(r)
    if _exists(conn, "patas.rule_signal_clauses"):
        card["lineage"]["signals"] = _rows(
            conn,
            "select clause_no, signal_kind, signal_value from patas.rule_signal_clauses "
            "where rule_id = %s order by clause_no, signal_kind, signal_value",
            (rule_id,),
        )
    if _exists(conn, "marts.rule_overlaps"):
        card["overlaps"] = _rows(
            conn,
            """
            select case when rule_a_id = %s then rule_b_id else rule_a_id end as other_rule_id,
                   shared_hit_count, jaccard, containment
            from marts.rule_overlaps where rule_a_id = %s or rule_b_id = %s
            order by shared_hit_count desc, other_rule_id limit 5
            """,
            (rule_id, rule_id, rule_id),
        )
    if _exists(conn, "patas.rule_audit"):
        card["audit"] = _rows(
            conn,
            "select version, from_status, to_status, reason, metrics, run_id, actor, at "
            "from patas.rule_audit where rule_id = %s order by audit_id",
            (rule_id,),
        )
    return card
