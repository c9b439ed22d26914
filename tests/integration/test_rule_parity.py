"""The SQL predicate and the Python reference evaluator select exactly the same messages.

Hypothesis generates typed rules and adversarial messages (quotes, backslashes, LIKE wildcards,
regex metacharacters, newlines, non-Latin letters, emoji); the messages go into a real Postgres
table with the contract columns, and every rule's compiled ``SELECT`` must return exactly the ids
the Python evaluator picks. Text-only rules also check the Python regex form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from python_steps.rules import (
    AllOf,
    AnyOf,
    Not,
    Rule,
    RuleError,
    canonicalize,
    compile_select,
    evaluate,
    parse_rule,
    to_python_regex,
)
from python_steps.settings import url_parts

pytestmark = pytest.mark.integration

DDL = """
create schema if not exists intermediate;
create table intermediate.int_messages_enriched (
    message_id bigint primary key,
    external_id text not null,
    text text not null,
    normalized_text text not null,
    signature text not null,
    urls text[] not null default '{}',
    hosts text[] not null default '{}',
    domains text[] not null default '{}',
    phones text[] not null default '{}',
    short_codes text[] not null default '{}',
    handles text[] not null default '{}',
    emails text[] not null default '{}',
    meta jsonb not null default '{}',
    event_at timestamptz,
    is_spam boolean,
    batch_id bigint not null default 1
);
"""

ARRAY_POOLS: dict[str, list[str]] = {
    "domains": ["a.com", "b.a.com", "xa.com", "x_y.org", "y.org", "xn--e1afmkfd.xn--p1ai"],
    "hosts": ["www.a.com", "a.com", "m.x_y.org", "x-y.org"],
    "urls": ["https://a.com/x?q='1'", "http://b.a.com/%_", "https://y.org/\\path"],
    "phones": ["447700900123", "18005550199", "79161234567"],
    "short_codes": ["87121", "8007", "696969"],
    "handles": ["spam_bot", "promo.bot", "x_"],
    "emails": ["win@a.com", "o'neil@y.org"],
}
KIND_COLUMN = {
    "domain": "domains",
    "host": "hosts",
    "url": "urls",
    "phone": "phones",
    "short_code": "short_codes",
    "handle": "handles",
    "email": "emails",
}
SIGNATURES = ["deadbeef00", "0123456789abcdef", "cafebabe"]
META_KEYS = ["channel", "lang", "k_1"]
META_VALUES: list[Any] = ["sms", "it's", "a\\b", "%", "", "ж", 1, 0, True, False, None, "1", "true"]
ALPHABET = "ab xyzé ж ß'\"\\%_.*+?()[]{}|^$-\n\t😀1A"
WORDS = ["free", "entry", "win", "ж", "é", "a1", "_x", "prize", "a.com"]
SEPARATORS = [" ", ", ", "!", "'", "\n", "_", "-", "ж", "", "%"]

texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=24),
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=6).map(
        lambda parts: "".join(w + s for w, s in parts)
    ),
)

# A small grammar for the regex subset, plus raw soup that the parser must accept or reject.
regex_atoms = st.sampled_from(
    [
        "a",
        "b",
        "x",
        "ж",
        "é",
        "\\.",
        "\\\\",
        "'",
        "%",
        "_",
        " ",
        "\\*",
        "\\(",
        "\\$",
        "\\[",
        "-",
        "1",
        ".",
        "\\d",
        "\\D",
        "\\w",
        "\\W",
        "\\s",
        "\\S",
        "[a-c']",
        "[^a ]",
        "[\\w%]",
        "[0-9]",
        "[\\]\\\\]",
    ]
)
regex_items = st.tuples(
    st.one_of(regex_atoms, regex_atoms.map(lambda a: f"({a}b)"), st.just("(a|b)")),
    st.sampled_from(["", "", "", "*", "+", "?", "{2}", "{1,3}", "{0,2}"]),
).map(lambda t: t[0] + t[1])
regex_sources = st.one_of(
    st.tuples(
        st.sampled_from(["", "^", "\\b"]),
        st.lists(regex_items, min_size=1, max_size=4).map("".join),
        st.sampled_from(["", "$", "\\b", "|free", "|\\bwin\\b"]),
    ).map("".join),
    st.text(alphabet="ab.*+?()[]{}|^$\\dws1,-:=<!", min_size=1, max_size=12),
)


def _leaf(d: dict[str, Any]) -> Rule | None:
    try:
        return parse_rule(d)
    except RuleError:
        return None


entity_leaves = st.one_of(
    *[
        st.builds(
            lambda k, v, op: {"kind": k, "op": op, "value": v},
            st.just(kind),
            st.sampled_from(ARRAY_POOLS[col]),
            st.sampled_from(["eq", "suffix"] if kind in ("domain", "host") else ["eq"]),
        )
        for kind, col in KIND_COLUMN.items()
    ],
    st.builds(lambda k: {"kind": k, "op": "present"}, st.sampled_from(sorted(KIND_COLUMN))),
    st.builds(
        lambda v: {"kind": "phone", "op": "prefix", "value": v},
        st.sampled_from(["44", "4477", "447700900123", "1800", "7916", "0871", "+7"]),
    ),
    st.builds(lambda v: {"kind": "signature", "value": v}, st.sampled_from(SIGNATURES)),
    st.builds(
        lambda k, v: {"kind": "meta", "key": k, "value": v},
        st.sampled_from(META_KEYS),
        st.sampled_from([v for v in META_VALUES if v is not None]),
    ),
)
text_leaves = st.one_of(
    st.builds(lambda v: {"kind": "text_contains", "value": v}, st.one_of(texts, st.sampled_from(WORDS))),
    st.builds(lambda v: {"kind": "text_phrase", "value": v}, texts),
    st.builds(lambda v: {"kind": "text_regex", "value": v}, regex_sources),
)
regex_leaves = st.builds(lambda v: {"kind": "text_regex", "value": v}, regex_sources)
# Text leaves are where SQL and Python can drift apart, so they get most of the draws.
leaf_rules = (
    st.one_of(entity_leaves, text_leaves, text_leaves, regex_leaves)
    .map(_leaf)
    .filter(lambda r: r is not None)
)

rules = st.recursive(
    leaf_rules,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda cs: canonicalize(AllOf(tuple(cs)))),
        st.lists(kids, min_size=1, max_size=3).map(lambda cs: canonicalize(AnyOf(tuple(cs)))),
        kids.map(lambda c: canonicalize(Not(c))),
    ),
    max_leaves=6,
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {
        col: sorted(set(draw(st.lists(st.sampled_from(pool), max_size=3))))
        for col, pool in ARRAY_POOLS.items()
    }
    row["normalized_text"] = draw(texts)
    row["signature"] = draw(st.sampled_from(SIGNATURES))
    row["meta"] = draw(st.dictionaries(st.sampled_from(META_KEYS), st.sampled_from(META_VALUES), max_size=2))
    return row


@pytest.fixture(scope="module")
def conn(server_url: str) -> Iterator[psycopg.Connection]:
    # A database of our own: the relation has the contract's name, so the stand-alone SELECT runs
    # unchanged, and nothing the dbt models build in the session database is touched.
    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    name = f"patas_rule_parity_{os.getpid()}"
    with psycopg.connect(f"postgresql://{auth}@{p.host}:{p.port}/postgres", autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
        try:
            with psycopg.connect(f"postgresql://{auth}@{p.host}:{p.port}/{name}", autocommit=True) as c:
                c.execute(DDL)
                yield c
        finally:
            admin.execute(f'drop database if exists "{name}" with (force)')


def _load(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute("truncate intermediate.int_messages_enriched")
    cols = ["message_id", "external_id", "text", "normalized_text", "signature", *ARRAY_POOLS, "meta"]
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into intermediate.int_messages_enriched ({', '.join(cols)}) "
            f"values ({', '.join(['%s'] * len(cols))})",
            [
                (
                    i,
                    f"e{i}",
                    r["normalized_text"],
                    r["normalized_text"],
                    r["signature"],
                    *tuple(r[c] for c in ARRAY_POOLS),
                    Jsonb(r["meta"]),
                )
                for i, r in enumerate(rows)
            ],
        )


def _check(conn: psycopg.Connection, rule: Rule, rows: list[dict[str, Any]]) -> None:
    sql = compile_select(rule)
    got = sorted(r[0] for r in conn.execute(sql).fetchall())
    want = [i for i, r in enumerate(rows) if evaluate(rule, r)]
    assert got == want, f"SQL and Python disagree\nrule: {rule}\nsql: {sql}\nrows: {rows}"
    pattern = to_python_regex(rule)
    if pattern is not None:
        by_regex = [i for i, r in enumerate(rows) if re.search(pattern, r["normalized_text"])]
        assert by_regex == want, f"regex form disagrees\nrule: {rule}\npattern: {pattern}"


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(rule_list=st.lists(rules, min_size=1, max_size=4), rows=st.lists(messages(), min_size=1, max_size=8))
def test_sql_and_python_select_the_same_messages(
    conn: psycopg.Connection, rule_list: list[Rule], rows: list[dict[str, Any]]
) -> None:
    _load(conn, rows)
    for rule in rule_list:
        _check(conn, rule, rows)


TRICKY = [
    ({"kind": "text_contains", "value": "%_"}, ["100%_off", "100% off", "x%y_"]),
    ({"kind": "text_contains", "value": "it's"}, ["it's", "its", "it''s"]),
    ({"kind": "text_contains", "value": "a\\b"}, ["a\\b", "ab", "a\\\\b"]),
    (
        {"kind": "text_phrase", "value": "free entry"},
        ["free entry", "free, entry!", "freeentry", "xfree entry"],
    ),
    ({"kind": "text_phrase", "value": "приз"}, ["ваш приз!", "призы", "приз"]),
    ({"kind": "text_regex", "value": "^txt [0-9]{5}$"}, ["txt 87121", "txt 87121\n", "a txt 87121"]),
    ({"kind": "text_regex", "value": "a.c"}, ["abc", "a\nc", "a.c"]),
    ({"kind": "text_regex", "value": "\\bwin\\b"}, ["win", "winner", "to win!", "жwin"]),
    ({"kind": "text_regex", "value": "\\s+x"}, ["a\u00a0x", "a\tx", "ax"]),
    ({"kind": "domain", "op": "suffix", "value": "y.org"}, ["-"]),
]


@pytest.mark.parametrize(("rule_json", "texts_"), TRICKY)
def test_tricky_cases_agree(conn: psycopg.Connection, rule_json: dict[str, Any], texts_: list[str]) -> None:
    rows = [
        {
            **{c: [] for c in ARRAY_POOLS},
            "domains": ["x_y.org", "y.org", "xy.org"][: i + 1],
            "normalized_text": t,
            "signature": "deadbeef00",
            "meta": {},
        }
        for i, t in enumerate(texts_)
    ]
    _load(conn, rows)
    _check(conn, parse_rule(rule_json), rows)


def test_null_meta_keys_under_not_agree(conn: psycopg.Connection) -> None:
    rows = [
        {**{c: [] for c in ARRAY_POOLS}, "normalized_text": "x", "signature": "deadbeef00", "meta": m}
        for m in ({}, {"channel": None}, {"channel": "sms"}, {"channel": 1}, {"channel": {"a": 1}})
    ]
    _load(conn, rows)
    leaf = parse_rule({"kind": "meta", "key": "channel", "value": "sms"})
    _check(conn, Not(leaf), rows)
    _check(conn, leaf, rows)
    _check(conn, parse_rule({"kind": "meta", "key": "channel", "value": "1"}), rows)
    _check(conn, parse_rule({"kind": "meta", "key": "channel", "value": '{"a": 1}'}), rows)
