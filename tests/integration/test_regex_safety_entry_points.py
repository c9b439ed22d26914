"""Manual rules (the CLI's `rules add`) refuse hostile regexes before anything is written, typed or
raw; the engine syntax the check reads is Postgres syntax (every accepted raw pattern compiles)."""

from __future__ import annotations

import psycopg
import pytest

from python_steps.lifecycle import manual
from python_steps.lifecycle.policy import LifecycleError
from python_steps.rules import RuleError, quote_literal
from python_steps.rules.regex_safety import check_regex

pytestmark = pytest.mark.integration

MARK = "catastrophic backtracking"
# One shape per kind of refusal (the full list is in tests/unit/test_regex_safety.py).
HOSTILE = [
    r"(a+)+",
    r"(\w+\s?)+$",
    r"(a|ab)+",
    r"\d+\d+",
    r".*x.*y.*z",
    r"\S+@\S+\.com",
    "a?" * 14 + "a" * 14,
    r"(ab){1000}",
    r"(a{1,100}){1,100}",
    r"(a)\1",
]
ACCEPTED_RAW = [
    r"txt [0-9]{5}",
    r"\d+-\d+",
    r"win.*prize",
    r"(?:\d{1,3}\.){3}\d{1,3}",
    r"[[:alpha:]]+ [[:digit:]]{5}",
    r"(?i)claim your prize",
    r"(?<![a-z])win(?![a-z])",
    r"\mwin\M",
    r"\u00e9t\u00e9 gratuit",
    r"win.*?prize",
    r"[\d\s]+x",
    r"(?:(?:ab){10}){100}",
]


def test_manual_rules_refuse_hostile_regexes(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        for pattern in HOSTILE:
            with pytest.raises(RuleError, match=MARK):
                manual.add_manual_rule(
                    conn, {"kind": "text_regex", "value": pattern}, reason="campaign", actor="cli:alice"
                )
            for raw in (
                f"m.normalized_text ~ {quote_literal(pattern)}",
                f"select id from messages where text ~* {quote_literal(pattern)}",
            ):
                with pytest.raises(LifecycleError, match=MARK):
                    manual.add_manual_rule(conn, raw_sql=raw, reason="campaign", actor="cli:alice")
        assert conn.execute("select to_regclass('patas.rule_drafts')").fetchone()[0] is None


def test_manual_rules_accept_safe_regexes(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        typed = manual.add_manual_rule(
            conn, {"kind": "text_regex", "value": r"txt \d{5}"}, reason="campaign", actor="cli:alice"
        )
        raw = manual.add_manual_rule(
            conn, raw_sql=r"m.normalized_text ~ '(?:\d{1,3}\.){3}\d{1,3}'", reason="ips", actor="cli:alice"
        )
        assert typed["created"] and raw["created"]
        assert conn.execute("select count(*) from patas.rule_drafts").fetchone()[0] == 2


def test_every_accepted_raw_pattern_is_a_postgres_regex(server_url: str) -> None:
    with psycopg.connect(server_url) as conn:
        for pattern in ACCEPTED_RAW:
            check_regex(pattern)  # accepted by the check ...
            conn.execute("select 'win a prize' ~ %s", (pattern,)).fetchone()  # ... and read by Postgres
            conn.execute("select regexp_replace('win a prize', %s, '', 'g')", (pattern,)).fetchone()
