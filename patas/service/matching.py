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

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from python_steps import rules as rl
from python_steps.rules.compiler import ENTITY_COLUMNS
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


def required_substrings(rule: rl.Rule) -> tuple[str, ...]:
    """Strings the normalized text must contain for ``rule`` to hit (a cheap filter before the
    evaluator; the compiler's SQL filters phrase leaves with the same ``strpos`` on the longest word)."""
    if isinstance(rule, rl.Leaf):
        if rule.kind == "text_contains":
            return (rule.value,)
        if rule.kind == "text_phrase":
            return (max(rule.value.split(" "), key=lambda w: (len(w), w)),)
        return ()
    if isinstance(rule, rl.AllOf):
        return tuple(n for c in rule.children for n in required_substrings(c))
    return ()


_WORD = re.compile(f"[{nz.WORD_CHARS}]+")


class RuleIndex:
    """Which rules hit a row, without trying every rule.

    Rules that are one leaf are looked up: an equality on the signature or an entity by value, a
    phrase by the row's word n-grams (a phrase leaf's regex matches exactly when its words are
    consecutive tokens of the normalized text: both use the tokenizer's word class). Every other
    rule goes through the evaluator when its required substrings are all in the text."""

    def __init__(self, rules: Sequence[ActiveRule]) -> None:
        self.by_signature: dict[str, list[int]] = {}
        self.by_entity: dict[tuple[str, str], list[int]] = {}
        self.by_phrase: dict[tuple[str, ...], list[int]] = {}
        self.generic: list[tuple[int, tuple[str, ...], rl.Rule]] = []
        for pos, r in enumerate(rules):
            leaf = r.rule
            words = tuple(leaf.value.split(" ")) if isinstance(leaf, rl.Leaf) else ()
            if (
                isinstance(leaf, rl.Leaf)
                and leaf.kind == "text_phrase"
                and all(_WORD.fullmatch(w) for w in words)
            ):
                self.by_phrase.setdefault(words, []).append(pos)
            elif isinstance(leaf, rl.Leaf) and leaf.op == "eq" and leaf.kind == "signature":
                self.by_signature.setdefault(leaf.value, []).append(pos)
            elif isinstance(leaf, rl.Leaf) and leaf.op == "eq" and leaf.kind in ENTITY_COLUMNS:
                self.by_entity.setdefault((ENTITY_COLUMNS[leaf.kind], leaf.value), []).append(pos)
            else:
                self.generic.append((pos, required_substrings(leaf), leaf))
        self.entity_columns = sorted({column for column, _ in self.by_entity})
        self.max_phrase = max((len(w) for w in self.by_phrase), default=0)

    def hits(self, row: Mapping[str, Any]) -> list[int]:
        found: set[int] = set(self.by_signature.get(row.get("signature"), ()))  # type: ignore[arg-type]
        for column in self.entity_columns:
            for value in row.get(column) or ():
                found.update(self.by_entity.get((column, value), ()))
        text = row.get("normalized_text") or ""
        if self.by_phrase:
            toks = nz.tokens(text)
            for n in range(1, min(self.max_phrase, len(toks)) + 1):
                for i in range(len(toks) - n + 1):
                    found.update(self.by_phrase.get(tuple(toks[i : i + n]), ()))
        for pos, needles, rule in self.generic:
            if all(n in text for n in needles) and rl.evaluate(rule, row):
                found.add(pos)
        return sorted(found)


@dataclass(frozen=True)
class RuleSet:
    fingerprint: str
    rules: tuple[ActiveRule, ...]
    skipped: tuple[dict[str, str], ...]
    loaded_at: float = field(default_factory=time.time)
    index: RuleIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RuleIndex(self.rules))


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
    """Per row, the active rules that hit it (in rule id order)."""
    rules = ruleset.rules
    return [[rules[i] for i in ruleset.index.hits(row)] for row in rows]


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
