"""The one compiler from a typed rule to SQL, a Python regex and signal clauses.

SQL is emitted over the message relation of ``docs/contracts.md`` aliased ``m``. Every value
reaches SQL through :func:`quote_literal`, and nothing else in PATAS builds SQL text from rule
values. Output assumes ``standard_conforming_strings = on`` (the Postgres default since 9.1):
backslashes inside literals are plain characters, which the regex patterns rely on.

Leaves never yield SQL NULL for rows that honour the contract (entity arrays and
``normalized_text`` are never null; meta goes through ``coalesce``), so ``not`` means the same in
SQL and in the Python evaluator.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Collection
from functools import lru_cache

from python_steps.rules import regex_subset
from python_steps.rules.ir import AllOf, AnyOf, Leaf, Not, Rule, leaves
from python_steps.settings import PROJECT_ROOT

MESSAGE_RELATION = "intermediate.int_messages_enriched"
ALIAS = "m"

# rule kind -> the array column of the message relation holding that entity
ENTITY_COLUMNS = {
    "domain": "domains",
    "host": "hosts",
    "url": "urls",
    "phone": "phones",
    "short_code": "short_codes",
    "handle": "handles",
    "email": "emails",
}
SIGNAL_KINDS = (*ENTITY_COLUMNS, "signature")
MAX_SIGNAL_CLAUSES = 32
MAX_NGRAM_WORDS = 3
STOP_WORDS_SEED = PROJECT_ROOT / "seeds" / "stop_words.csv"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def quote_literal(value: str) -> str:
    """The one SQL quoting function: a standard-conforming string literal (``'it''s'``).

    Rejects NUL (Postgres text cannot hold it) and lone surrogates (not encodable as UTF-8).
    Backslashes are ordinary characters under ``standard_conforming_strings = on``.
    """
    if not isinstance(value, str):
        raise TypeError(f"quote_literal takes a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("SQL literal must not contain NUL")
    if _LONE_SURROGATE.search(value):
        raise ValueError("SQL literal must not contain lone surrogates")
    return "'" + value.replace("'", "''") + "'"


# ---- SQL ---------------------------------------------------------------------------------------


def leaf_regex(leaf: Leaf, dialect: str) -> str | None:
    """The regex a text leaf is matched with (``None`` for text_contains, matched by strpos)."""
    if leaf.kind == "text_phrase":
        return regex_subset.phrase_pattern(tuple(leaf.value.split(" ")))
    if leaf.kind == "text_regex":
        return regex_subset.render_engine(regex_subset.parse_regex(leaf.value), dialect)
    return None


def _leaf_sql(leaf: Leaf) -> str:
    col = f"{ALIAS}.normalized_text"
    if leaf.kind in ENTITY_COLUMNS:
        arr = f"{ALIAS}.{ENTITY_COLUMNS[leaf.kind]}"
        if leaf.op == "present":
            return f"cardinality({arr}) > 0"
        v = quote_literal(leaf.value)
        if leaf.op == "prefix":
            return f"exists (select 1 from unnest({arr}) as d(v) where starts_with(d.v, {v}))"
        if leaf.op == "suffix":
            # No LIKE: '_' in a domain would be a wildcard. right() compares the dotted suffix.
            dotted = quote_literal("." + leaf.value)
            return f"exists (select 1 from unnest({arr}) as d(v) where d.v = {v} or right(d.v, {len(leaf.value) + 1}) = {dotted})"
        return f"{v} = any({arr})"
    if leaf.kind == "signature":
        return f"{ALIAS}.signature = {quote_literal(leaf.value)}"
    if leaf.kind == "meta":
        assert leaf.key is not None
        return f"coalesce({ALIAS}.meta ->> {quote_literal(leaf.key)} = {quote_literal(leaf.value)}, false)"
    if leaf.kind == "text_contains":
        return f"strpos({col}, {quote_literal(leaf.value)}) > 0"
    if leaf.kind == "text_phrase":
        # strpos on the longest word first: a cheap filter before the regex.
        longest = max(leaf.value.split(" "), key=lambda w: (len(w), w))
        pattern = leaf_regex(leaf, "postgres")
        assert pattern is not None
        return f"(strpos({col}, {quote_literal(longest)}) > 0 and {col} ~ {quote_literal(pattern)})"
    if leaf.kind == "text_regex":
        pattern = leaf_regex(leaf, "postgres")
        assert pattern is not None
        return f"{col} ~ {quote_literal(pattern)}"
    raise AssertionError(leaf.kind)


def compile_sql_predicate(rule: Rule) -> str:
    """The Postgres boolean expression over ``m`` (one row of the message relation)."""
    if isinstance(rule, Leaf):
        return _leaf_sql(rule)
    if isinstance(rule, Not):
        return f"not ({compile_sql_predicate(rule.child)})"
    sep = " and " if isinstance(rule, AllOf) else " or "
    return "(" + sep.join(compile_sql_predicate(c) for c in rule.children) + ")"


def compile_select(rule: Rule) -> str:
    """A stand-alone query returning the ids of the messages the rule hits."""
    return f"select {ALIAS}.message_id from {MESSAGE_RELATION} as {ALIAS} where {compile_sql_predicate(rule)}"


# ---- Python regex ------------------------------------------------------------------------------


def to_python_regex(rule: Rule) -> str | None:
    """A Python ``re`` pattern (for ``re.search`` over normalized text) equivalent to the rule,
    or ``None`` when the rule has entity, signature or meta leaves.

    Entity leaves are not approximated by a regex on purpose: ``domain = x`` means "x is one of
    the registrable domains the extractor found" (after de-obfuscation, IDNA, eTLD+1), which no
    regex over the text reproduces faithfully; an approximate pattern would silently change what
    the rule selects. Regex engines get the text rules; the rest stays in the warehouse.
    """
    if any(x.kind not in ("text_contains", "text_phrase", "text_regex") for x in leaves(rule)):
        return None
    return _py(rule)


def _py(rule: Rule) -> str:
    """Leaves and ``any`` are searched anywhere; ``all`` and ``not`` become lookaheads anchored
    at the start (``\\A``), so they are placed without a ``[\\s\\S]*`` prefix."""
    if isinstance(rule, Leaf):
        if rule.kind == "text_contains":
            return regex_subset.literal_pattern(rule.value)
        pattern = leaf_regex(rule, "python")
        assert pattern is not None
        return pattern
    if isinstance(rule, Not):
        return rf"\A(?!{_anywhere(rule.child)})"
    if isinstance(rule, AllOf):
        return r"\A" + "".join(f"(?={_anywhere(c)})" for c in rule.children)
    return "|".join(f"(?:{_py(c)})" for c in rule.children)


def _anywhere(rule: Rule) -> str:
    """A pattern that, tried at the start of the text, finds ``rule`` anywhere in it."""
    if isinstance(rule, Not | AllOf):
        return _py(rule)
    return rf"[\s\S]*?(?:{_py(rule)})"


# ---- signal clauses ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def seed_stop_words() -> frozenset[str] | None:
    """The stop words of the n-gram extractor (``seeds/stop_words.csv``), None if absent."""
    try:
        with STOP_WORDS_SEED.open(newline="", encoding="utf-8") as fh:
            return frozenset(row["word"] for row in csv.DictReader(fh))
    except FileNotFoundError:
        return None


def is_ngram_phrase(words: list[str], stop_words: Collection[str]) -> bool:
    """True when ``int_message_signals_extracted`` has an ``ngram`` signal for exactly the
    messages holding these words in sequence: 1-3 words, edge words neither stop words nor numbers
    (``python_steps.text.normalize.ngrams``)."""
    if not 1 <= len(words) <= MAX_NGRAM_WORDS:
        return False
    return all(w not in stop_words and not w.isdigit() for w in (words[0], words[-1]))


def _signal_of(leaf: Leaf, stop_words: Collection[str] | None) -> tuple[str, str] | None:
    if leaf.kind in SIGNAL_KINDS and leaf.op == "eq":
        return (leaf.kind, leaf.value)
    if (
        stop_words is not None
        and leaf.kind == "text_phrase"
        and is_ngram_phrase(leaf.value.split(" "), stop_words)
    ):
        return ("ngram", leaf.value)
    return None


def _dnf(rule: Rule, stop_words: Collection[str] | None) -> list[frozenset[tuple[str, str]]] | None:
    if isinstance(rule, Leaf):
        s = _signal_of(rule, stop_words)
        return None if s is None else [frozenset([s])]
    if isinstance(rule, Not):
        return None
    parts = [_dnf(c, stop_words) for c in rule.children]
    if any(p is None for p in parts):
        return None
    if isinstance(rule, AnyOf):
        return [c for p in parts for c in p]  # type: ignore[union-attr]
    clauses: list[frozenset[tuple[str, str]]] = []
    for combo in itertools.product(*parts):  # type: ignore[arg-type]
        clauses.append(frozenset().union(*combo))
        if len(clauses) > MAX_SIGNAL_CLAUSES:
            return None
    return clauses


def signal_clauses(
    rule: Rule, *, ngram_phrases: bool = True, stop_words: Collection[str] | None = None
) -> list[tuple[int, str, str]] | None:
    """The rule in disjunctive normal form over extracted signals, or ``None`` when it is not
    signal-evaluable (a ``not``, a suffix, a text_contains/regex or meta leaf, or too many
    clauses). A message hits the rule when it carries every signal of some clause.

    Rows are ``(clause_no, signal_kind, signal_value)``, clauses numbered from 1 in a stable
    order, subsumed clauses (supersets of another clause) dropped.

    ``ngram_phrases``: a ``text_phrase`` that the n-gram extractor keeps (see
    :func:`is_ngram_phrase`) is the ``ngram`` signal with the same space-joined words. Exact,
    because phrase rules tokenize with the extractor's word characters (``regex_subset``).
    ``stop_words`` defaults to the extractor's seed; when it is unavailable, phrases stay
    predicate-evaluated.
    """
    if ngram_phrases and stop_words is None:
        stop_words = seed_stop_words()
    clauses = _dnf(rule, stop_words if ngram_phrases else None)
    if clauses is None:
        return None
    unique = sorted(set(clauses), key=lambda c: (len(c), sorted(c)))
    kept: list[frozenset[tuple[str, str]]] = []
    for c in unique:
        if not any(k <= c for k in kept):
            kept.append(c)
    rows: list[tuple[int, str, str]] = []
    for no, clause in enumerate(sorted(kept, key=lambda c: sorted(c)), start=1):
        rows.extend((no, kind, value) for kind, value in sorted(clause))
    return rows


def is_signal_evaluable(rule: Rule, *, ngram_phrases: bool = True) -> bool:
    return signal_clauses(rule, ngram_phrases=ngram_phrases) is not None
