"""Typed rules: validation, canonical form, identity, description, compiler outputs (no DB)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from python_steps.rules import (
    Leaf,
    RuleError,
    canonical_json,
    compile_select,
    compile_sql_predicate,
    complexity,
    describe,
    evaluate,
    parse_rule,
    quote_literal,
    rule_id,
    signal_clauses,
    to_json,
    to_python_regex,
)
from python_steps.rules.regex_subset import RegexError, parse_regex

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "python_steps/rules/schema.json").read_text())


def test_equal_rules_have_equal_canonical_form_and_id() -> None:
    a = parse_rule(
        {
            "all": [
                {"kind": "domain", "value": "WIN.Example.COM."},
                {
                    "all": [
                        {"kind": "phone", "value": "+44 7700-900 123"},
                        {"kind": "domain", "value": "win.example.com"},
                    ]
                },
            ]
        }
    )
    b = parse_rule(
        {
            "all": [
                {"kind": "phone", "op": "eq", "value": "447700900123"},
                {"kind": "domain", "value": "win.example.com"},
            ]
        }
    )
    assert a == b
    assert canonical_json(a) == canonical_json(b)
    assert rule_id(a) == rule_id(b)
    assert re.fullmatch(r"r_[0-9a-f]{16}", rule_id(a))


def test_rule_id_is_pinned() -> None:
    # A change here changes every stored rule id: bump the rule version deliberately.
    rule = parse_rule({"kind": "domain", "value": "example.com"})
    assert canonical_json(rule) == '{"kind":"domain","op":"eq","value":"example.com"}'
    assert (
        rule_id(rule) == "r_" + __import__("hashlib").sha256(canonical_json(rule).encode()).hexdigest()[:16]
    )


def test_canonicalization_of_values() -> None:
    assert parse_rule({"kind": "domain", "value": "Пример.РФ"}).value == "xn--e1afmkfd.xn--p1ai"
    assert parse_rule({"kind": "handle", "value": "@Spam_Bot"}).value == "spam_bot"
    assert parse_rule({"kind": "short_code", "value": 87121}).value == "87121"
    assert parse_rule({"kind": "email", "value": "Win@Example.COM"}).value == "win@example.com"
    assert parse_rule({"kind": "url", "value": "HTTPS://A.com/Path)."}).value == "https://a.com/Path"
    assert parse_rule({"kind": "text_phrase", "value": "  Claim, your PRIZE! "}).value == "claim your prize"
    assert parse_rule({"kind": "text_regex", "value": "(a|b)x"}).value == "(?:a|b)x"
    assert parse_rule({"kind": "meta", "key": "is_bot", "value": True}).value == "true"


def test_flatten_dedupe_sort_and_double_negation() -> None:
    leaf = {"kind": "handle", "value": "x"}
    r = parse_rule({"any": [{"any": [leaf, {"kind": "email", "value": "a@b.co"}]}, leaf, {"all": [leaf]}]})
    assert to_json(r) == {
        "any": [
            {"kind": "email", "op": "eq", "value": "a@b.co"},
            {"kind": "handle", "op": "eq", "value": "x"},
        ]
    }
    assert parse_rule({"all": [leaf, {"not": {"not": {"kind": "phone", "value": "1234567"}}}]}) == parse_rule(
        {"all": [{"kind": "phone", "value": "1234567"}, leaf]}
    )


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"kind": "domain"}, "rule.value: missing"),
        ({"kind": "dom", "value": "x"}, "rule.kind"),
        ({"kind": "phone", "value": "12"}, "6 to 15 digits"),
        ({"kind": "phone", "value": "call 1234567"}, "other than digits"),
        ({"kind": "short_code", "value": "1234567"}, "4 to 6 digits"),
        ({"kind": "phone", "op": "suffix", "value": "1234567"}, "rule.op"),
        ({"kind": "domain", "value": "exa mple.com"}, "not a domain"),
        ({"kind": "domain", "value": "a\x00b.com"}, "NUL"),
        ({"kind": "signature", "value": "xyz"}, "hex"),
        ({"kind": "meta", "key": "Bad-Key", "value": "x"}, "rule.key"),
        ({"kind": "meta", "key": "k", "value": "x", "extra": 1}, "unknown field"),
        ({"kind": "text_contains", "value": "   "}, "non-blank"),
        ({"kind": "text_phrase", "value": "!!!"}, "at least one word"),
        ({"kind": "text_regex", "value": "a*"}, "empty string"),
        ({"kind": "text_regex", "value": "(a+)+"}, "nested quantifier"),
        ({"kind": "text_regex", "value": "(a)\\1"}, "backreferences"),
        ({"all": []}, "rule.all: must be a non-empty list"),
        ({"all": [{"kind": "handle", "value": "x"}], "any": []}, "exactly one key"),
        ({"not": {"kind": "handle", "value": "x"}}, "purely negative"),
        (
            {"any": [{"kind": "handle", "value": "x"}, {"not": {"kind": "handle", "value": "y"}}]},
            "purely negative",
        ),
        ({"all": [{"kind": "handle", "value": "x"}, {"any": [{"kind": "x"}]}]}, "rule.all[1].any[0].kind"),
        ("{not json", "not valid JSON"),
    ],
)
def test_invalid_rules_have_clear_errors(rule: object, fragment: str) -> None:
    with pytest.raises(RuleError, match=re.escape(fragment)):
        parse_rule(rule)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pattern",
    [
        "(?=a)b",
        "(?<=a)b",
        "(?<!a)b",
        "(?P<x>a)",
        "(?i)a",
        "a*?",
        "a++",
        "a{1,1000}",
        "a{2,1}",
        "[[:alpha:]]",
        "\\p{L}",
        "\\x41",
        "\\Aa",
        "a**",
        "(a|b)*",
        "(a*)*",
        "a*b*c*d*e",
        "a" * 300,
        "^",
        "(a",
        "a)",
        "[a",
        "\\",
        "a{",
        "\\ba\\b*",
        "a\x01",
        "x|",
    ],
)
def test_regex_subset_rejects(pattern: str) -> None:
    with pytest.raises(RegexError):
        parse_regex(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "txt [0-9]{5}",
        "\\bwin\\b",
        "^free",
        "prize$",
        "(?:win|won) (a )?prize",
        "[^a-z]\\d+",
        "a.b",
        "\\$\\d+",
    ],
)
def test_regex_subset_accepts(pattern: str) -> None:
    assert parse_regex(pattern) is not None  # raises RegexError when refused


def test_describe_is_one_readable_line() -> None:
    r = parse_rule(
        {
            "all": [
                {"kind": "domain", "op": "suffix", "value": "example.com"},
                {
                    "any": [
                        {"kind": "text_phrase", "value": "win"},
                        {"kind": "meta", "key": "ch", "value": "a\nb"},
                    ]
                },
                {"not": {"kind": "short_code", "value": "87121"}},
            ]
        }
    )
    text = describe(r)
    assert "\n" not in text
    assert text == (
        'domain under example.com AND NOT short code = 87121 AND (meta.ch = "a\\nb" OR text has phrase "win")'
    )


def test_complexity() -> None:
    assert complexity(parse_rule({"kind": "handle", "value": "x"})) == {"leaves": 1, "depth": 1, "score": 2}
    r = parse_rule(
        {
            "all": [
                {"kind": "handle", "value": "x"},
                {"any": [{"kind": "phone", "value": "1234567"}, {"kind": "email", "value": "a@b.co"}]},
            ]
        }
    )
    assert complexity(r) == {"leaves": 3, "depth": 3, "score": 6}


def test_quote_literal() -> None:
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("a\\b") == "'a\\b'"
    with pytest.raises(ValueError):
        quote_literal("a\x00b")
    with pytest.raises(ValueError):
        quote_literal("\ud800")


def test_compiled_forms() -> None:
    r = parse_rule(
        {
            "all": [
                {"kind": "domain", "op": "suffix", "value": "x_y.com"},
                {"kind": "meta", "key": "ch", "value": "o'k"},
            ]
        }
    )
    sql = compile_sql_predicate(r)
    assert "like" not in sql.lower()
    assert "'o''k'" in sql
    assert compile_select(r).startswith(
        "select m.message_id from intermediate.int_messages_enriched as m where "
    )
    assert to_python_regex(r) is None
    t = parse_rule(
        {"any": [{"kind": "text_contains", "value": "100%"}, {"kind": "text_phrase", "value": "free entry"}]}
    )
    pattern = to_python_regex(t)
    assert pattern is not None
    assert (
        re.search(pattern, "win 100% now")
        and re.search(pattern, "a free, entry")
        and not re.search(pattern, "freeentry")
    )


def test_signal_clauses() -> None:
    r = parse_rule(
        {
            "all": [
                {"any": [{"kind": "domain", "value": "a.com"}, {"kind": "handle", "value": "bot"}]},
                {"kind": "phone", "value": "1234567"},
            ]
        }
    )
    assert signal_clauses(r) == [
        (1, "domain", "a.com"),
        (1, "phone", "1234567"),
        (2, "handle", "bot"),
        (2, "phone", "1234567"),
    ]
    # A clause that is a superset of another is dropped.
    s = parse_rule(
        {
            "any": [
                {"kind": "handle", "value": "bot"},
                {"all": [{"kind": "handle", "value": "bot"}, {"kind": "phone", "value": "1234567"}]},
            ]
        }
    )
    assert signal_clauses(s) == [(1, "handle", "bot")]
    assert signal_clauses(parse_rule({"kind": "domain", "op": "suffix", "value": "a.com"})) is None
    assert signal_clauses(parse_rule({"kind": "phone", "op": "prefix", "value": "0871"})) is None
    assert signal_clauses(parse_rule({"kind": "phone", "op": "present"})) is None
    assert signal_clauses(parse_rule({"kind": "text_contains", "value": "win"})) is None
    phrase = parse_rule({"kind": "text_phrase", "value": "claim your prize"})
    assert signal_clauses(phrase, ngram_phrases=False) is None
    assert signal_clauses(phrase, stop_words={"your"}) == [(1, "ngram", "claim your prize")]
    assert (
        signal_clauses(parse_rule({"kind": "text_phrase", "value": "your prize"}), stop_words={"your"})
        is None
    )
    assert signal_clauses(parse_rule({"kind": "text_phrase", "value": "call 999"}), stop_words=set()) is None
    assert signal_clauses(parse_rule({"kind": "text_phrase", "value": "a b c d"}), stop_words=set()) is None
    assert (
        signal_clauses(
            parse_rule({"all": [{"kind": "handle", "value": "x"}, {"not": {"kind": "handle", "value": "y"}}]})
        )
        is None
    )


def test_prefix_and_present_leaves() -> None:
    prefix = parse_rule({"kind": "phone", "op": "prefix", "value": "+0871"})
    present = parse_rule({"kind": "short_code", "op": "present", "value": ""})
    assert to_json(prefix) == {"kind": "phone", "op": "prefix", "value": "0871"}
    assert to_json(present) == {"kind": "short_code", "op": "present"}
    assert describe(prefix) == "phone starts with 0871"
    assert describe(present) == "has a short code"
    assert describe(parse_rule({"kind": "email", "op": "present"})) == "has an email"
    assert rule_id(present) != rule_id(parse_rule({"kind": "phone", "op": "present"}))
    assert "starts_with(d.v, '0871')" in compile_sql_predicate(prefix)
    assert compile_sql_predicate(present) == "cardinality(m.short_codes) > 0"
    row = {"phones": ["08712402779"], "short_codes": [], "normalized_text": "call"}
    assert evaluate(prefix, row) and not evaluate(present, row)
    assert not evaluate(prefix, {"phones": ["447871000000"]})
    assert evaluate(present, {"short_codes": ["80488"]})
    with pytest.raises(RuleError, match="digits"):
        parse_rule({"kind": "phone", "op": "prefix", "value": 871})


def test_evaluate_entities_and_meta() -> None:
    row = {"domains": ["b.a.com", "xa.com"], "normalized_text": "hi", "meta": {"n": 1, "b": False}}
    assert evaluate(parse_rule({"kind": "domain", "op": "suffix", "value": "a.com"}), row)
    assert not evaluate(parse_rule({"kind": "domain", "value": "a.com"}), row)
    assert evaluate(parse_rule({"kind": "meta", "key": "n", "value": 1}), row)
    assert evaluate(parse_rule({"kind": "meta", "key": "b", "value": "false"}), row)
    assert not evaluate(parse_rule({"kind": "phone", "value": "1234567"}), row)


VALID_EXAMPLES = [
    {"kind": "domain", "op": "suffix", "value": "example.com"},
    {"kind": "phone", "value": 447700900123},
    {"kind": "meta", "key": "channel", "value": "sms"},
    {"kind": "phone", "op": "prefix", "value": "0871"},
    {"kind": "short_code", "op": "present"},
    {"all": [{"kind": "text_phrase", "value": "win"}, {"not": {"kind": "handle", "value": "x"}}]},
    {"any": [{"kind": "text_regex", "value": "a+b"}, {"kind": "signature", "value": "deadbeef"}]},
]
INVALID_EXAMPLES = [
    {"kind": "phone", "op": "suffix", "value": "123456"},
    {"kind": "phone", "op": "prefix", "value": "0"},
    {"kind": "phone", "op": "prefix", "value": "08a1"},
    {"kind": "signature", "op": "present"},
    {"kind": "short_code", "op": "prefix", "value": "8007"},
    {"kind": "email", "op": "present", "value": "x@y.com"},
    {"kind": "meta", "key": "Bad", "value": "x"},
    {"all": []},
    {"kind": "domain", "value": "a.com", "extra": 1},
    {"kind": "text_contains"},
    {"all": [], "any": []},
]


@pytest.mark.parametrize("example", VALID_EXAMPLES)
def test_schema_accepts_what_parser_accepts(example: dict) -> None:
    jsonschema.validate(example, SCHEMA)  # raises ValidationError when refused
    assert parse_rule(example) is not None


@pytest.mark.parametrize("example", INVALID_EXAMPLES)
def test_schema_rejects_what_parser_rejects(example: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, SCHEMA)
    with pytest.raises(RuleError):
        parse_rule(example)


leaf_dicts = st.one_of(
    st.builds(lambda v: {"kind": "handle", "value": v}, st.sampled_from(["a", "b", "c"])),
    st.builds(lambda v: {"kind": "text_contains", "value": v}, st.sampled_from(["x", "y"])),
)
rule_dicts = st.recursive(
    leaf_dicts,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(kids, min_size=1, max_size=3).map(lambda c: {"any": c}),
    ),
    max_leaves=8,
)


@given(rule_dicts, st.randoms(use_true_random=False))
def test_canonical_form_ignores_child_order(d: dict, rnd) -> None:
    def shuffle(x: dict) -> dict:
        for k in ("all", "any"):
            if k in x:
                kids = [shuffle(c) for c in x[k]]
                rnd.shuffle(kids)
                return {k: kids}
        return x

    a, b = parse_rule(d), parse_rule(shuffle(d))
    assert canonical_json(a) == canonical_json(b) and rule_id(a) == rule_id(b)
    assert parse_rule(to_json(a)) == a  # canonical form is a fixed point


def test_leaf_is_hashable_and_ordered() -> None:
    assert Leaf("handle", "a") < Leaf("handle", "b")
    assert (
        len({parse_rule({"kind": "handle", "value": "A"}), parse_rule({"kind": "handle", "value": "a"})}) == 1
    )


def test_word_class_is_the_ngram_tokenizers() -> None:
    normalize = pytest.importorskip("python_steps.text.normalize")
    from python_steps.rules import regex_subset

    assert regex_subset.WORD_CLASS_BODY == normalize.WORD_CHARS


phrase_texts = st.text(alphabet="ab cж1_.,!'\n-", max_size=30)


@given(phrase_texts, phrase_texts)
def test_phrase_rule_hits_exactly_the_ngram_signal(text: str, phrase: str) -> None:
    """A signal-evaluable phrase rule hits a message iff the extractor emits that n-gram."""
    normalize = pytest.importorskip("python_steps.text.normalize")
    stop = {"b", "a"}
    try:
        rule = parse_rule({"kind": "text_phrase", "value": phrase})
    except RuleError:
        return
    clauses = signal_clauses(rule, stop_words=stop)
    if clauses is None:
        return
    [(_, kind, value)] = clauses
    assert kind == "ngram"
    assert evaluate(rule, {"normalized_text": text}) == (value in normalize.ngrams(text, stop))
