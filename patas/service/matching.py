"""Real-time matching: raw texts through the one normalizer and the active rules' Python evaluator.

A message becomes the row shadow evaluation sees (``intermediate.int_messages_enriched``): the
normalized text, signature and entity arrays from ``python_steps.text.normalize.message_entities``,
registrable domains from the same Public Suffix List seed as ``int_hosts_resolved``, and the
message's meta. Each active rule is then applied with ``python_steps.rules.evaluate``.

The active set is loaded once and reloaded when it changes: a fingerprint (md5 over the active
rules' id, version and tier in ``patas.rule_lifecycle``) is compared at most every
``check_interval`` seconds, and at once after a change made through this process.
Raw-SQL rules have no Python form: they are reported under ``skipped``, never silently matched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from python_steps import rules as rl
from python_steps.text import normalize as nz

FINGERPRINT_SQL = """
select count(*), coalesce(md5(string_agg(rule_id || ':' || version || ':' || tier, ',' order by rule_id)), '')
from patas.rule_lifecycle where status = 'active'
"""

ACTIVE_SQL = """
select l.rule_id, l.version, l.tier, d.description, d.rule_json
from patas.rule_lifecycle as l
inner join patas.rule_drafts as d on d.rule_id = l.rule_id and d.version = l.version
where l.status = 'active'
order by l.rule_id
"""


@dataclass(frozen=True)
class ActiveRule:
    rule_id: str
    version: int
    tier: str
    description: str
    rule: rl.Rule


@dataclass(frozen=True)
class RuleSet:
    fingerprint: str
    rules: tuple[ActiveRule, ...]
    skipped: tuple[dict[str, str], ...]
    loaded_at: float = field(default_factory=time.time)


def load_ruleset(conn: psycopg.Connection) -> RuleSet:
    """The active rules as Python rules (reads the fingerprint and the rules in one snapshot)."""
    if conn.execute("select to_regclass('patas.rule_lifecycle') is null").fetchone()[0]:
        return RuleSet("", (), ())
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        _, fingerprint = conn.execute(FINGERPRINT_SQL).fetchone()
        rows = conn.execute(ACTIVE_SQL).fetchall()
    rules, skipped = [], []
    for rule_id, version, tier, description, rule_json in rows:
        if "raw_sql" in rule_json:
            skipped.append({"rule_id": rule_id, "reason": "raw SQL rule: no Python evaluator form"})
            continue
        try:
            parsed = rl.parse_rule(rule_json)
        except rl.RuleError as exc:  # pragma: no cover - drafts are validated when written
            skipped.append({"rule_id": rule_id, "reason": f"unparseable typed rule: {exc}"})
            continue
        rules.append(ActiveRule(rule_id, version, tier, description, parsed))
    return RuleSet(fingerprint, tuple(rules), tuple(skipped))


_SUFFIXES: dict[str, set[str]] | None = None
_SUFFIX_LOCK = threading.Lock()


def _public_suffixes() -> dict[str, set[str]]:
    global _SUFFIXES
    with _SUFFIX_LOCK:
        if _SUFFIXES is None:
            _SUFFIXES = nz.load_public_suffixes()
        return _SUFFIXES


def message_row(text: str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The evaluator's row for one raw message text (what staging and stage 1 compute for it)."""
    row = nz.message_entities(text)
    suffixes = _public_suffixes()
    row["domains"] = sorted(
        {d for h in row["hosts"] if (d := nz.registrable_domain(h, suffixes)) is not None}  # type: ignore[union-attr]
    )
    row["meta"] = dict(meta or {})
    return row


def match_rows(ruleset: RuleSet, rows: Iterable[Mapping[str, Any]]) -> list[list[ActiveRule]]:
    return [[r for r in ruleset.rules if rl.evaluate(r.rule, row)] for row in rows]


class Matcher:
    """The active rule set of one warehouse, reloaded when it changes; safe to share across threads."""

    def __init__(self, connection_factory: Any, *, check_interval: float = 1.0) -> None:
        self._connection = connection_factory  # a context manager factory giving a connection
        self._check_interval = check_interval
        self._ruleset: RuleSet | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._checked_at = 0.0

    def ruleset(self) -> RuleSet:
        now = time.monotonic()
        current = self._ruleset
        if current is not None and now - self._checked_at < self._check_interval:
            return current
        with self._lock:
            if self._ruleset is not None and time.monotonic() - self._checked_at < self._check_interval:
                return self._ruleset
            with self._connection() as conn:
                fingerprint = ""
                if not conn.execute("select to_regclass('patas.rule_lifecycle') is null").fetchone()[0]:
                    fingerprint = conn.execute(FINGERPRINT_SQL).fetchone()[1]
                if self._ruleset is None or fingerprint != self._ruleset.fingerprint:
                    self._ruleset = load_ruleset(conn)
            self._checked_at = time.monotonic()
            return self._ruleset

    def match(self, messages: Sequence[tuple[str, Mapping[str, Any] | None]]) -> tuple[RuleSet, list]:
        ruleset = self.ruleset()
        return ruleset, match_rows(ruleset, (message_row(t, m) for t, m in messages))
