"""Raw SQL rules at evaluation: read-only, time-limited, coverage-guarded, and the compiled
SELECT of a typed rule selects what the Python evaluator selects when run through the raw path."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from python_steps.rules import compile_select, compile_sql_predicate, evaluate, parse_rule
from python_steps.rules.sql_safety import coverage_guard, evaluate_raw_sql_readonly
from python_steps.settings import url_parts

pytestmark = pytest.mark.integration

ROWS = [
    (1, "win a free prize now", ["a.com"]),
    (2, "call 87121 to claim", []),
    (3, "see you at lunch", []),
    (4, "free entry, it's true", ["b.a.com"]),
    (5, "lunch at noon?", []),
]


@pytest.fixture(scope="module")
def conn(server_url: str) -> Iterator[psycopg.Connection]:
    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    name = f"patas_raw_sql_{os.getpid()}"
    with psycopg.connect(f"postgresql://{auth}@{p.host}:{p.port}/postgres", autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
        try:
            with psycopg.connect(f"postgresql://{auth}@{p.host}:{p.port}/{name}", autocommit=True) as c:
                c.execute("create schema intermediate")
                c.execute(
                    "create table intermediate.int_messages_enriched (message_id bigint primary key, "
                    "text text not null, normalized_text text not null, signature text not null default '', "
                    "domains text[] not null default '{}', meta jsonb not null default '{}')"
                )
                for mid, text, domains in ROWS:
                    c.execute(
                        "insert into intermediate.int_messages_enriched (message_id, text, normalized_text, domains) "
                        "values (%s, %s, %s, %s)",
                        (mid, text, text, domains),
                    )
                yield c
        finally:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "text_phrase", "value": "free"},
        {"kind": "domain", "op": "suffix", "value": "a.com"},
        {
            "all": [
                {"kind": "text_contains", "value": "it's"},
                {"not": {"kind": "text_contains", "value": "win"}},
            ]
        },
    ],
)
def test_compiled_rules_through_the_raw_path(conn: psycopg.Connection, rule: dict) -> None:
    r = parse_rule(rule)
    want = [mid for mid, text, domains in ROWS if evaluate(r, {"normalized_text": text, "domains": domains})]
    assert evaluate_raw_sql_readonly(conn, compile_select(r), 5_000) == want
    assert evaluate_raw_sql_readonly(conn, compile_sql_predicate(r), 5_000, mode="predicate") == want


def test_portable_messages_form(conn: psycopg.Connection) -> None:
    assert evaluate_raw_sql_readonly(conn, "select id from messages where text like '%lunch%';") == [3, 5]


def test_unsafe_sql_never_runs(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        evaluate_raw_sql_readonly(
            conn, "select m.message_id from intermediate.int_messages_enriched as m where true"
        )


def test_runs_read_only_with_a_timeout(conn: psycopg.Connection) -> None:
    # The validator would refuse these; the transaction settings are checked directly.
    evaluate_raw_sql_readonly(conn, "select id from messages where text = 'x'", 1234)
    with conn.transaction():
        conn.execute("set transaction read only")
        conn.execute(f"set local statement_timeout = {1234}")
        assert conn.execute("show transaction_read_only").fetchone()[0] == "on"
        assert conn.execute("show statement_timeout").fetchone()[0] == "1234ms"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("create table intermediate.x (a int)")
    # and the settings do not leak out of the evaluation
    assert conn.execute("show transaction_read_only").fetchone()[0] == "off"


def test_coverage_guard(conn: psycopg.Connection) -> None:
    narrow = "select id from messages where text like '%lunch%'"
    broad = "select id from messages where text like '%a%' or text like '%e%'"
    assert coverage_guard(conn, narrow).ok
    verdict = coverage_guard(conn, broad)
    assert not verdict.ok and "above 80%" in verdict.reasons[0]
    assert not coverage_guard(conn, "select id from messages where true").ok
