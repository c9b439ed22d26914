"""The blocking check behind `rule_drafts_are_safe_sql`: stored drafts must recompile and be safe."""

import psycopg
import pytest
from psycopg.types.json import Jsonb

from python_steps.mining import drafting

pytestmark = pytest.mark.integration


def _insert(conn, rule_id, rule_json, sql):
    conn.execute(
        """
        insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description, sql_expression,
            regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)
        values (%s, 1, %s, '', 'd', %s, null, 'manual', null, 'predicate', 2, 'r')
        """,
        (rule_id, Jsonb(rule_json), sql),
    )


def _store_compiled_draft(conn):
    """The schema and one draft exactly as the compiler emits it."""
    good = drafting.make_draft(
        {"kind": "domain", "op": "eq", "value": "win.example"}, origin="manual", pattern_id="t"
    )
    drafting.ensure_schema(conn)
    _insert(conn, good.rule_id, good.rule_json, good.sql_expression)
    return good


def test_compiled_drafts_pass_and_tampering_is_caught(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        good = _store_compiled_draft(conn)
        assert drafting.audit_stored_drafts(conn) == []
        # A tampered predicate (no longer what the compiler emits, and unsafe).
        _insert(conn, "r_tampered", good.rule_json, "pg_sleep(10) is not null")
        # A raw SQL rule that is safe passes; one that reads another table does not.
        _insert(
            conn,
            "r_rawok",
            {"raw_sql": "m.normalized_text like '%free prize%'"},
            "m.normalized_text like '%free prize%'",
        )
        _insert(conn, "r_rawbad", {"raw_sql": "x"}, "exists (select 1 from raw.messages)")
        problems = drafting.audit_stored_drafts(conn)
    assert any(p.startswith("r_tampered v1: rule id does not match") for p in problems)
    assert any(p.startswith("r_tampered v1: stored SQL differs") for p in problems)
    assert any(p.startswith("r_tampered v1: unsafe SQL") for p in problems)
    assert any(p.startswith("r_rawbad v1: unsafe SQL") for p in problems)
    assert not any(p.startswith("r_rawok") for p in problems)


def test_a_passed_audit_is_reused_for_the_same_drafts_and_a_failed_one_never(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        good = _store_compiled_draft(conn)
        assert drafting.audit_stored_drafts_once(conn, "run-1") == ([], None)  # audited
        problems, reused = drafting.audit_stored_drafts_once(conn, "run-2")
        assert problems == [] and reused == "inputs unchanged since run run-1"
        # A draft changed after the audit that passed: audited again, and the problem is found.
        conn.execute(
            "update patas.rule_drafts set sql_expression = 'pg_sleep(10) is not null' where rule_id = %s",
            (good.rule_id,),
        )
        problems, reused = drafting.audit_stored_drafts_once(conn, "run-3")
        assert reused is None and any("unsafe SQL" in p for p in problems)
        # The same unsafe drafts again: a failed audit is never re-used, the problems stay visible.
        problems, reused = drafting.audit_stored_drafts_once(conn, "run-4")
        assert reused is None and any("unsafe SQL" in p for p in problems)
        steps = conn.execute(
            "select run_id, skipped from patas.run_step_states where step = 'drafts_audit' order by run_id"
        ).fetchall()
    assert steps == [("run-1", False), ("run-2", True), ("run-3", False), ("run-4", False)]
