"""The run state (python_steps.run_state): what a `patas run` with nothing new compares.

On a real Postgres: every kind of change a person or a process makes between two runs moves the
state, and the latest run is the only one whose state counts.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from python_steps import run_state, tables

pytestmark = pytest.mark.integration

SPEC = {"profile": None, "split": "auto"}


def _state(conn: psycopg.Connection, home: Path, *, spec=SPEC, environ=None) -> str:
    return run_state.run_state(
        conn, spec=spec, settings="settings", home=home, environ=environ or {}, code="c1"
    )


def _run(conn: psycopg.Connection, run_id: str) -> None:
    conn.execute(
        "insert into patas.runs (run_id, split_mode, windows) values (%s, 'hash', '{}'::jsonb)", (run_id,)
    )


def test_every_change_between_runs_moves_the_state(fresh_db: str, tmp_path: Path):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        tables.migrate(conn)
        base, external = _state(conn, tmp_path), run_state.external_state(conn)
        assert _state(conn, tmp_path) == base and run_state.external_state(conn) == external  # deterministic

        # What a run never writes itself: feedback, manual actions (the external state moves too).
        conn.execute(
            "insert into patas.label_feedback (message_id, external_id, verdict, source, actor)"
            " values (1, 'm1', 'ham', 'moderator', 'alice')"
        )
        after_feedback = _state(conn, tmp_path)
        assert after_feedback != base and run_state.external_state(conn) != external
        external = run_state.external_state(conn)
        conn.execute(
            "insert into patas.rule_audit (rule_id, version, from_status, to_status, reason, actor)"
            " values ('r1', 1, 'active', 'deprecated', 'reviewed', 'alice')"
        )
        assert run_state.external_state(conn) != external
        external = run_state.external_state(conn)
        after_manual = _state(conn, tmp_path)

        # What a run writes (new rules in the lifecycle, an audit row with its run id) moves the
        # state, not the external state; pinning a rule (a person's action) moves both.
        conn.execute(
            "insert into patas.rule_lifecycle (rule_id, version, status) values ('r1', 1, 'candidate')"
        )
        assert run_state.external_state(conn) == external
        conn.execute("update patas.rule_lifecycle set is_pinned = true where rule_id = 'r1'")
        assert run_state.external_state(conn) != external
        external = run_state.external_state(conn)
        conn.execute(
            "insert into patas.rule_audit (rule_id, version, from_status, to_status, reason, run_id, actor)"
            " values ('r2', 1, 'shadow', 'active', 'promoted', 'run-a', 'patas')"
        )
        assert run_state.external_state(conn) == external
        after_run_write = _state(conn, tmp_path)
        assert after_run_write not in (after_manual, after_feedback)

        # A rebuilt or dropped relation, the configuration files, the exports, the environment, the
        # run's flags: each moves the state.
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.some_model (x int)")
        with_table = _state(conn, tmp_path)
        assert with_table != after_run_write
        conn.execute("drop table marts.some_model")
        conn.execute("create table marts.some_model (x int)")  # rebuilt: another oid
        assert _state(conn, tmp_path) not in (with_table, after_run_write)
        now = _state(conn, tmp_path)
        (tmp_path / "safety_profiles.toml").write_text("[profiles.custom]\nmin_precision = 0.99\n")
        assert _state(conn, tmp_path) != now
        now = _state(conn, tmp_path)
        (tmp_path / "exports").mkdir()
        (tmp_path / "exports" / "rules.sql").write_text("select 1;\n")
        assert _state(conn, tmp_path) != now
        now = _state(conn, tmp_path)
        (tmp_path / "exports" / "rules.sql").unlink()
        assert _state(conn, tmp_path) != now
        now = _state(conn, tmp_path)
        assert _state(conn, tmp_path, environ={"PATAS_LANGUAGES": "en,th", "HOME": "/x"}) != now
        assert _state(conn, tmp_path, environ={"HOME": "/elsewhere"}) == now  # not PATAS's
        assert _state(conn, tmp_path, spec={**SPEC, "profile": "aggressive"}) != now


def test_only_the_latest_run_state_counts(fresh_db: str, tmp_path: Path):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        tables.migrate(conn)
        assert run_state.unchanged_since(conn, _state(conn, tmp_path)) is None  # no run yet
        _run(conn, "run-a")
        state = _state(conn, tmp_path)
        run_state.record(conn, "run-a", state)
        assert run_state.unchanged_since(conn, state) == "run-a"
        assert run_state.unchanged_since(conn, "another state") is None
        # A later run that recorded nothing (it failed, or an input moved while it ran): its state
        # is unknown, so nothing is skipped, even under the earlier state.
        _run(conn, "run-b")
        assert run_state.unchanged_since(conn, state) is None


def test_active_rules_without_a_hit_are_what_keeps_a_run_from_being_skipped(fresh_db: str):
    """While the profile deprecates idle rules, an active rule without a hit grows its idle runs
    each run: such a run is never skipped (patas.nothing_new) nor promotion replayed."""
    from python_steps.lifecycle.replay import active_rules_without_a_hit

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        tables.migrate(conn)
        assert active_rules_without_a_hit(conn) == 0  # nothing evaluated yet
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.rule_evaluations (rule_id text, window_name text, hit_count int)")
        conn.execute(
            "insert into patas.rule_lifecycle (rule_id, version, status) values ('r1', 1, 'active'),"
            " ('r2', 1, 'active'), ('r3', 1, 'shadow')"
        )
        conn.execute("insert into marts.rule_evaluations values ('r1', 'evaluation', 4), ('r2', 'mining', 3)")
        assert active_rules_without_a_hit(conn) == 1  # r2: no hit on the evaluation window
        conn.execute("insert into marts.rule_evaluations values ('r2', 'evaluation', 1)")
        assert active_rules_without_a_hit(conn) == 0
