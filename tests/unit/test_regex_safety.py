"""Hostile regexes are refused statically through every entry point; legit ones, and every regex
PATAS generates, pass. No timing: each verdict comes from the shape of the pattern."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from python_steps.mining.llm import parse_response
from python_steps.rules import (
    RuleError,
    compile_select,
    compile_sql_predicate,
    leaves,
    parse_rule,
    quote_literal,
    raw_text,
)
from python_steps.rules.compiler import leaf_regex
from python_steps.rules.regex_safety import (
    MAX_CHAIN_CHOICES,
    MAX_REPEAT,
    MAX_REPEAT_PRODUCT,
    backtracking_risks,
    can_match_empty,
    check_regex,
)
from python_steps.rules.regex_subset import RegexError, parse_regex, phrase_pattern, render_engine
from python_steps.rules.sql_safety import validate_sql

BASE = "select m.message_id from intermediate.int_messages_enriched as m where "
MARK = "catastrophic backtracking"

# (pattern, what the reason must mention). Every shape parses in the typed-rule syntax and in the
# engine syntax, so each one is fed unchanged to every entry point.
HOSTILE: list[tuple[str, str]] = [
    # nested unbounded quantifiers (exponential)
    (r"(a+)+", "nested quantifier"),
    (r"(a*)*", "nested quantifier"),
    (r"(a+)*", "nested quantifier"),
    (r"((ab)*)+", "nested quantifier"),
    (r"^(\d+)*$", "nested quantifier"),
    (r"(\w+\s?)+$", "nested quantifier"),
    (r"(x\w*)+y", "nested quantifier"),
    (r"(\s*,\s*)+;", "nested quantifier"),
    (r"(?:[a-z0-9]+)*@", "nested quantifier"),
    (r"(.*a){12}", "nested quantifier"),
    (r"(a?){25}a{25}", "nested quantifier"),
    (r"(a+?)+b", "nested quantifier"),  # lazy does not help
    (r"x(?=(a+)+y)", "nested quantifier"),  # nor hiding it in a lookahead
    # repeated groups whose alternatives overlap (exponential)
    (r"(a|a)*", "alternatives"),
    (r"(a|ab)+", "alternatives"),
    (r"(\w|\d)+", "alternatives"),
    (r"(.|\s)*", "alternatives"),
    (r"(a|b|ab)*c", "alternatives"),
    # repetitions that trade characters (polynomial, n^3 and worse with a search)
    (r"\d+\d+", "can both match"),
    (r".*.*", "can both match"),
    (r"\w*\w*", "can both match"),
    (r"a+a+", "can both match"),
    (r"[a-z]+\w+", "can both match"),
    (r".*x.*y.*z", "can both match"),
    (r"\S+@\S+\.com", "can both match"),
    (r"[\s\S]*x[\s\S]*y", "can both match"),
    (r"\d*\s*\d*x", "can both match"),
    (r"win\s*\w*\s*prize", "can both match"),
    (r"(x+x+)+y", "can both match"),
    # too many ways to split one text
    ("a?" * 14 + "a" * 14, "ways"),
    # large bounded repetition, nested bounded products
    (r"(ab){1000}", f"larger than {MAX_REPEAT}"),
    (r"a{101}", f"larger than {MAX_REPEAT}"),
    (r"(a{1,100}){1,100}", "nested repetition"),
    (r"(?:a{20}){100}", "nested repetition"),
    # backreferences
    (r"(a)\1", "backreferences"),
    (r"(\w+) \1", "backreferences"),
]

# Pass the check in both syntaxes, the typed rule path and the raw SQL path.
LEGIT_TYPED: list[str] = [
    r"txt [0-9]{5}",
    r"\bwin\b",
    r"^free",
    r"prize$",
    r"(?:win|won) (a )?prize",
    r"^txt \d{5}\b|(?:win|won)\.?$",
    r"[^a-z]\d+",
    r"a.b",
    r"\$\d+",
    r"\d+-\d+",  # the separator belongs to neither side
    r"\d{3}-\d{4}",
    r"call \d{4,6}",
    r"\w+@\w+\.com",
    r"[a-z0-9._]+@[a-z0-9-]+\.[a-z]+",
    r"[^@]+@[^@]+",
    r"\w+ \w+",
    r"\w+a\d+",  # 'a' cannot be matched by \d+: the split is unique
    r"win.*prize",  # one unbounded repetition: a plain search
    r"free.{0,30}entry",
    r"a.{0,50}b.{0,50}c",
    r".*x.{0,99}",
    r"https?://\S+",
    r"\b(?:free|win)\b",
    r"(?:txt|text) \d{5}",
    r"^\s*stop\s*$",
    r"\d+\d?",
    "a?" * 13 + "a" * 13,  # 8192 ways: under the limit
    r"(?:ab){100}",
    r"[^']+'",
]
# Safe repeated groups holding repetitions: the check passes them (each round ends with a character
# its repetitions cannot match); the typed subset refuses nested quantifiers for its own reasons.
LEGIT_NESTED: list[str] = [
    r"(?:\d{1,3}\.){3}\d{1,3}",
    r"(?:[a-z]+\.)+(?:com|net)",
    r"(?:\w+[-.])+\w+",
    r"(?:[a-z]+ )+now",
    r"(?:ab+)+c",
]
# Engine-only syntax a raw SQL rule may use (Postgres reads these).
LEGIT_RAW: list[str] = [
    r"[[:alpha:]]+ [[:digit:]]{5}",
    r"(?i)claim your prize",
    r"(?<![a-z])win(?![a-z])",
    r"\mwin\M",
    r"\u00e9t\u00e9 gratuit",
    r"win.*?prize",
    r"[\d\s]+x",
    r"(?:(?:ab){10}){100}",  # 1000 copies: at the product limit
]


# ---- (a) the check itself -----------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "why"), HOSTILE)
@pytest.mark.parametrize("syntax", ["subset", "engine"])
def test_check_refuses_hostile_shapes(pattern: str, why: str, syntax: str) -> None:
    risks = backtracking_risks(pattern, syntax=syntax)  # type: ignore[arg-type]
    assert risks, pattern
    assert why in risks[0], risks
    with pytest.raises(RegexError, match=MARK):
        check_regex(pattern, syntax=syntax)  # type: ignore[arg-type]


def test_there_are_at_least_twenty_distinct_shapes() -> None:
    assert len({p for p, _ in HOSTILE}) >= 20


@pytest.mark.parametrize("pattern", LEGIT_TYPED + LEGIT_NESTED + LEGIT_RAW)
def test_check_accepts_legit_patterns(pattern: str) -> None:
    assert backtracking_risks(pattern, syntax="engine") == []
    if pattern not in LEGIT_RAW:
        assert backtracking_risks(pattern, syntax="subset") == []


# ---- (b) typed rules: parse_rule ------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "why"), HOSTILE)
def test_typed_text_regex_refuses_hostile_shapes(pattern: str, why: str) -> None:
    with pytest.raises(RuleError, match=MARK) as e:
        parse_rule({"kind": "text_regex", "value": pattern})
    assert why in str(e.value) and str(e.value).startswith("rule.value: ")
    nested = {
        "all": [{"kind": "domain", "value": "x.com"}, {"not": {"kind": "text_regex", "value": pattern}}]
    }
    with pytest.raises(RuleError, match=r"rule\.all\[1\]\.not\.value: .*" + MARK):
        parse_rule(nested)


@pytest.mark.parametrize("pattern", LEGIT_TYPED)
def test_typed_text_regex_accepts_legit_patterns(pattern: str) -> None:
    rule = parse_rule({"kind": "text_regex", "value": pattern})
    assert validate_sql(compile_select(rule)).ok


# ---- (c) raw SQL: validate_sql ---------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "why"), HOSTILE)
def test_raw_sql_refuses_hostile_shapes(pattern: str, why: str) -> None:
    lit = quote_literal(pattern)
    for sql, mode in [
        (BASE + f"m.normalized_text ~ {lit}", "select"),
        (f"m.normalized_text ~ {lit}", "predicate"),
        (f"select id from messages where text ~* {lit}", "select"),
        (f"m.text = 'a' and m.normalized_text !~ {lit}", "predicate"),
        (f"m.text = 'a' and not (m.normalized_text !~* {lit}::text)", "predicate"),
        (f"m.text = 'a' and regexp_replace(m.normalized_text, {lit}, '', 'g') = ''", "predicate"),
    ]:
        verdict = validate_sql(sql, mode=mode)  # type: ignore[arg-type]
        assert not verdict.ok, sql
        assert MARK in verdict.reasons[0] and why in verdict.reasons[0], verdict.reasons


@pytest.mark.parametrize("pattern", LEGIT_TYPED + LEGIT_NESTED + LEGIT_RAW)
def test_raw_sql_accepts_legit_patterns(pattern: str) -> None:
    lit = quote_literal(pattern)
    assert validate_sql(BASE + f"m.normalized_text ~ {lit}").ok
    assert validate_sql(f"m.normalized_text ~ {lit} and m.text !~ {lit}", mode="predicate").ok


def test_raw_sql_checks_case_insensitive_matches_as_such() -> None:
    pattern = quote_literal("[a-z]+[A-Z]+")  # disjoint, unless case is ignored
    assert validate_sql(BASE + f"m.text ~ {pattern}").ok
    for sql in (
        BASE + f"m.text ~* {pattern}",
        BASE + f"m.text !~* {pattern}",
        BASE + "m.text ~ '(?i)[a-z]+[A-Z]+'",
        BASE + f"regexp_replace(m.text, {pattern}, '', 'gi') = 'x'",
    ):
        assert MARK in " ".join(validate_sql(sql).reasons), sql
    assert validate_sql(BASE + f"regexp_replace(m.text, {pattern}, '', 'gic') = 'x'").ok  # c wins


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("m.text ~ m.normalized_text", "must be a string literal"),
        ("'free' ~ m.text", "must be a string literal"),
        ("m.text ~ lower('A+')", "must be a string literal"),
        ("m.text ~ ('a' || '+')", "must be a string literal"),
        ("'free' ~ any(m.domains)", "as regex patterns"),
        ("m.text ~* all(m.handles)", "as regex patterns"),
        ("regexp_replace(m.text, m.normalized_text, '') = 'x'", "must be a string literal"),
        ("regexp_replace(m.text, 'a', '', m.text) = 'x'", "options must be"),
        ("regexp_replace(m.text, 'a', '', 'gx') = 'x'", "flag(s) x"),
        ("regexp_replace(m.text, 'a') = 'x'", "takes a source"),
        ("m.text similar to '(a+)+'", "similar"),
        ("m.text ~ '(?x)a b'", "embedded option"),
        ("m.text ~ '***=a'", "director"),
        ("m.text ~ '(?P<n>a)'", "no flags or names"),
        ("m.text ~ '\\x41+'", "escape"),
        ("m.text ~ '[[:alpha:]]*'", "empty string"),
    ],
)
def test_raw_sql_regex_positions_that_cannot_be_checked(sql: str, fragment: str) -> None:
    verdict = validate_sql("m.normalized_text = 'a' and " + sql, mode="predicate")
    assert not verdict.ok
    assert fragment in " ".join(verdict.reasons), verdict.reasons


# ---- (d) LLM output: parse_response --------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "why"), HOSTILE)
def test_llm_output_drops_hostile_shapes(pattern: str, why: str) -> None:
    text = json.dumps(
        {
            "rules": [
                {"rule": {"kind": "text_regex", "value": pattern}, "rationale": "campaign regex"},
                {
                    "rule": {
                        "all": [
                            {"kind": "domain", "value": "win.example"},
                            {"kind": "text_regex", "value": pattern},
                        ]
                    },
                    "rationale": "combined",
                },
                {"rule": {"kind": "domain", "value": "win.example"}, "rationale": "campaign domain"},
            ]
        }
    )
    proposals, proposed, errors = parse_response(text, "c1", max_rules=3)
    assert proposed == 3
    assert [p.rule_json for p in proposals] == [{"kind": "domain", "op": "eq", "value": "win.example"}]
    assert len(errors) == 2 and all(MARK in e and why in e for e in errors), errors


# ---- what PATAS generates passes --------------------------------------------------------------

PHRASES = [
    "claim your prize",
    "Бесплатно выиграй приз",
    "免费中奖 领取",
    "اربح الآن",
    "मुफ्त इनाम जीतें",
    "δωρεάν δώρο",
    "รับรางวัล ฟรี",
    "무료 상품권",
    "ưu đãi miễn phí",
    "Café crème",
    "txt 87121 now",
    "win",
    "1 2 3 4 5 6 7 8",
    "ok-go_now",
    "զեղչ",
    "בחינם",
]
GENERATED_RULES: list[dict] = [
    *({"kind": "text_phrase", "value": p} for p in PHRASES),
    *(
        {"kind": "text_regex", "value": v}
        for v in [
            r"\bwin\b",
            r"a.c$",
            r"^txt [0-9]{5}$",
            r"\w+ \W+\s\S",
            r"x\b\w",
            r"\d+-\d+",
            r"[^']+'",
            r"(?:win|won) (a )?prize",
            r"[\w%]+@\d",
            r"\$\d+\.\d\d",
        ]
    ),
    {"kind": "text_contains", "value": "free entry"},
    {"kind": "phone", "op": "prefix", "value": "0871"},
    {"kind": "phone", "op": "prefix", "value": "+44"},
    {"kind": "phone", "value": "+44 7700 900123"},
    {"kind": "short_code", "value": "87121"},
    {"kind": "domain", "op": "suffix", "value": "win-prize.example"},
    {"kind": "domain", "value": "bücher.example"},
    {"kind": "host", "op": "suffix", "value": "x_y.example.com"},
    {"kind": "url", "value": "https://bit.ly/abc?x=1"},
    {"kind": "handle", "value": "@promo_bot"},
    {"kind": "email", "value": "Win@Prize.example"},
    {"kind": "signature", "value": "deadbeef00"},
    {"kind": "meta", "key": "channel", "value": "sms"},
    {"kind": "url", "op": "present"},
    {
        "all": [
            {"kind": "text_phrase", "value": "claim your prize"},
            {"any": [{"kind": "domain", "value": "a.example"}, {"kind": "text_regex", "value": r"\bwin\b"}]},
            {"not": {"kind": "text_phrase", "value": "bus times"}},
        ]
    },
]


@pytest.mark.parametrize("rule_json", GENERATED_RULES, ids=lambda r: json.dumps(r, ensure_ascii=False)[:60])
def test_every_generated_regex_and_sql_passes(rule_json: dict) -> None:
    rule = parse_rule(rule_json)
    for leaf in leaves(rule):
        for dialect in ("python", "postgres"):
            pattern = leaf_regex(leaf, dialect)
            if pattern is not None:
                assert backtracking_risks(pattern, syntax="engine") == [], (leaf, dialect, pattern)
                assert not can_match_empty(pattern)
        if leaf.kind == "text_phrase":
            assert backtracking_risks(phrase_pattern(tuple(leaf.value.split(" "))), syntax="engine") == []
    verdict = validate_sql(compile_sql_predicate(rule), mode="predicate")
    assert verdict.ok, verdict.reasons
    assert validate_sql(compile_select(rule)).ok


@pytest.mark.parametrize("phrase", PHRASES)
def test_raw_text_export_regexes_pass(phrase: str) -> None:
    """The ROL export's raw-text regexes (``rules.raw_text``, run with IGNORECASE) pass too."""
    rule = parse_rule({"kind": "text_phrase", "value": phrase})
    pattern = raw_text.raw_regex(rule)
    if pattern is None:  # no raw form for this script; the export keeps the normalized pattern
        pattern = raw_text.normalized_regex(leaf_regex(rule, "python"))  # type: ignore[arg-type, union-attr]
    assert backtracking_risks(pattern, syntax="engine", case_insensitive=True) == [], phrase


_atoms = st.sampled_from(
    [
        "a",
        "b",
        "x",
        "ж",
        "\\.",
        "'",
        " ",
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
    ]
)
_items = st.tuples(
    st.one_of(_atoms, _atoms.map(lambda a: f"({a}b)"), st.just("(a|b)")),
    st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{0,2}"]),
).map("".join)
_sources = st.tuples(
    st.sampled_from(["", "^", "\\b"]),
    st.lists(_items, min_size=1, max_size=5).map("".join),
    st.sampled_from(["", "$", "\\b", "|free"]),
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_sources)
def test_a_typed_regex_that_passes_renders_to_engine_patterns_that_pass(source: str) -> None:
    """The typed source and what the compiler renders from it get the same verdict."""
    try:
        alt = parse_regex(source)
        risks = backtracking_risks(source, syntax="subset")
    except RegexError:
        assume(False)
        return
    for dialect in ("python", "postgres"):
        assert (backtracking_risks(render_engine(alt, dialect), syntax="engine") == []) == (risks == []), (
            source,
            dialect,
            risks,
        )


# ---- thresholds and reasons ------------------------------------------------------------------


def test_thresholds_are_where_the_docstring_says() -> None:
    assert MAX_REPEAT == 100 and MAX_REPEAT_PRODUCT == 1_000 and MAX_CHAIN_CHOICES == 10_000
    assert backtracking_risks("a{100}") == [] and backtracking_risks("a{101}")
    assert backtracking_risks("(?:(?:ab){10}){100}") == [] and backtracking_risks("(?:(?:ab){11}){100}")
    assert backtracking_risks("a?" * 13 + "a") == [] and backtracking_risks("a?" * 14 + "a")
    assert backtracking_risks(".*x.{0,99}") == [] and backtracking_risks(".*x.{0,100}")
    # one unbounded repetition per chain; a separator only one side can match breaks the chain
    assert backtracking_risks(r"\d+x\d+") == [] and backtracking_risks(r"\w+x\w+")
    assert backtracking_risks(r"\d+\d?") == [] and backtracking_risks(r"\d+\d*")


def test_reasons_name_the_parts_and_say_what_to_do() -> None:
    (why,) = backtracking_risks("(a+)+")
    assert "`(a+)+`" in why and "exponential" in why and "crafted message" in why
    (why,) = backtracking_risks(r"[a-z]+\w+")
    assert "`[a-z]+`" in why and "`\\w+`" in why and "polynomial" in why and "bound one of them" in why
    (why,) = backtracking_risks(r"(a|ab)+")
    assert "`a`" in why and "`ab`" in why and "start differently" in why
    with pytest.raises(RegexError, match=r"risks catastrophic backtracking: backreferences \(`\\1`\)"):
        check_regex(r"(a)\1")


def test_unreadable_patterns_are_refused_not_guessed() -> None:
    for pattern in [
        "(?P<n>a)",
        "(?>a+)",
        "a{,3}",
        "\\x41",
        "[[.a.]]",
        "(" * 60 + "a" + ")" * 60,
        "",
        "a" * 200_001,
        "(?i:a)",
    ]:
        with pytest.raises(RegexError):
            check_regex(pattern)
    with pytest.raises(RegexError):
        check_regex("\\p{L}+", syntax="subset")


def test_the_check_itself_does_bounded_work() -> None:
    """A long raw pattern cannot make the validator slow: past a fixed amount of work the check
    refuses instead of guessing (no legit pattern comes close: they need under 100 steps)."""
    many = "".join(chr(0x100 + i) + "?" for i in range(9000))  # 9000 optional, distinct characters
    (why,) = backtracking_risks(many)
    assert "too long or too branched" in why
    assert len(backtracking_risks("".join(f"(?:{c}+)+" for c in "abcdefghijklmnopqrstuvwxyz"))) == 10
    assert backtracking_risks("(?:ab){999999999}")  # huge bounds are judged, not expanded


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="ab.*+?()[]{}|^$\\dwsSDW1,-:=<!uUxmMyYAZB09]ik", min_size=1, max_size=30),
    st.sampled_from(["subset", "engine"]),
    st.booleans(),
)
def test_any_pattern_gets_a_verdict_or_a_regex_error(pattern: str, syntax: str, ci: bool) -> None:
    try:
        risks = backtracking_risks(pattern, syntax=syntax, case_insensitive=ci)  # type: ignore[arg-type]
    except RegexError:
        return
    assert all(isinstance(r, str) and r for r in risks)
    assert validate_sql(f"m.text ~ {quote_literal(pattern)}", mode="predicate").ok in (True, False)


def test_subset_restrictions_still_apply_after_the_check() -> None:
    # safe shapes the typed subset refuses for its own reasons
    for pattern, fragment in [("a*", "empty string"), ("(?=a)b", "lookaround"), ("a*?b", "lazy")]:
        assert backtracking_risks(pattern, syntax="subset") == []
        with pytest.raises(RuleError, match=fragment):
            parse_rule({"kind": "text_regex", "value": pattern})
