"""Raw-text regexes (python_steps.rules.raw_text) against the normalizer itself.

For phrase rules, the raw pattern searched in a raw text (with the consumer's IGNORECASE) must
agree with the phrase searched in the text's normalization: never a match the normalizer does not
give (soundness, on every generated text), and every match for the obfuscations the module
supports (case, compatibility forms, homoglyphs within the majority rule, digit look-alikes,
zero-width characters, squeezed runs, any separators).
"""

from __future__ import annotations

import random
import re

import pytest

from python_steps import rules as rl
from python_steps.rules import raw_text as rt
from python_steps.rules.compiler import to_python_regex
from python_steps.text import normalize as nz

WORDS = [
    "free", "cool", "win", "copy", "reply", "hello", "bonus", "deposit", "spin200", "1v3", "рх",
    "продам", "деньги", "звони", "банка", "casino", "usps", "parcel", "redelivery", "odds",
    "seeds", "loose", "passwords", "ёлка", "café", "größe", "αβγ",
]  # fmt: skip
PHRASES = [(w,) for w in WORDS] + [("chat", "now"), ("bonus", "deposit"), ("claim", "your", "prize")]
ZW = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
SEPARATORS = [" ", "  ", ", ", "!", "\n", " - ", "\u00a0", "\u3000", "...", " (", ") ", "🎉"]
CONTEXT = ["", "hey ", "HI! ", "x", "un", "7", "ok. ", "кто ", "…", "@"]


def _variants(ch: str, prepared_forms: tuple[str, ...], r: random.Random) -> str:
    units, _ = rt._tables()
    form = r.choice([f for f in prepared_forms if f in units])  # NFKC never yields some forms
    return r.choice(sorted(units[form]))


def _obfuscate(words: tuple[str, ...], r: random.Random, family: str) -> str:
    out = []
    for w in words:
        chars = list(w)
        n = len(chars)
        script = {rt._script(c) for c in chars}
        look = set()
        if family == "homoglyphs" and script in ({"L"}, {"C"}):
            limit = n // 2 if script == {"L"} else (n - 1) // 2
            kind = next(iter(script))
            units = rt._tables()[0]
            cand = [i for i, c in enumerate(chars) if any(f in units for f in rt._forms(c, kind)[1:])]
            look = set(r.sample(cand, min(len(cand), r.randint(0, limit))))
        digits = set()
        if family == "digits":
            for i in range(1, n - 1):
                if (
                    chars[i] in "oles"
                    and all(c in "abcdefghijklmnopqrstuvwxyz" for c in chars)
                    and r.random() < 0.6
                ):
                    digits.add(i)
        raw = []
        for i, c in enumerate(chars):
            if i in digits:
                raw.append(r.choice(sorted(rt._tables()[0][{"o": "0", "l": "1", "e": "3", "s": "5"}[c]])))
            elif i in look:
                raw.append(_variants(c, rt._forms(c, rt._script(c))[1:], r))
            else:
                raw.append(_variants(c, (c,), r))
            if r.random() < 0.2:
                raw.append(r.choice(ZW))
        # squeezable runs: repeat a doubled plain letter
        text = "".join(raw)
        out.append(text)
    body = r.choice(SEPARATORS).join(out)
    if family == "squeeze":
        body = re.sub(r"([a-z])\1", lambda m: m.group(1) * r.randint(2, 6), body)
    return r.choice(CONTEXT) + body + r.choice(["", " ", "!", " ok", "s", "\u200b", "x", ".", "🎉"])


def _noise(words: tuple[str, ...], r: random.Random) -> str:
    """Anything goes: homoglyphs and digits together, ligatures, marks, unassigned code points."""
    s = " ".join(words)
    extra = ["\u0301", "\u0378", "ﬁ", "0", "3", "а", "е", "о", "\u200b", "ı", "İ", "K", "ſ", "Ⓐ", "ee", "еее"]
    chars = list(s)
    for _ in range(r.randint(1, 4)):
        chars.insert(r.randint(0, len(chars)), r.choice(extra))
    for i, c in enumerate(chars):
        if r.random() < 0.3 and c in nz.TO_CYRILLIC:
            chars[i] = nz.TO_CYRILLIC[c]
        elif r.random() < 0.2:
            chars[i] = c.upper()
    return "".join(chars)


def _rule(words: tuple[str, ...]) -> rl.Rule:
    return rl.parse_rule({"kind": "text_phrase", "value": " ".join(words)})


def _normalized_hit(rule: rl.Rule, text: str) -> bool:
    return re.search(to_python_regex(rule), nz.normalize_text(text)) is not None


@pytest.mark.parametrize("words", PHRASES, ids=lambda w: "_".join(w))
def test_raw_pattern_agrees_with_the_normalizer(words: tuple[str, ...]) -> None:
    rule = _rule(words)
    pattern = rt.raw_regex(rule)
    if " ".join(words) == "αβγ":
        assert pattern is not None
    if pattern is None:
        pytest.skip(f"no raw form for {words}")
    rx = re.compile(pattern, re.IGNORECASE)
    r = random.Random(" ".join(words))
    for family in ("plain", "homoglyphs", "digits", "squeeze"):
        for _ in range(60):
            text = _obfuscate(words, r, family)
            assert bool(rx.search(text)) == _normalized_hit(rule, text), (
                family,
                text,
                nz.normalize_text(text),
            )
    for _ in range(300):
        text = _noise(words, r)
        if rx.search(text):
            assert _normalized_hit(rule, text), ("unsound", text, nz.normalize_text(text))


def test_known_cases() -> None:
    rx = re.compile(rt.raw_regex(_rule(("free",))), re.IGNORECASE)
    hits = ["FREE", "frее", "fr\u200bee", "ｆｒｅｅ", "(free)", "free.", "FREEEEE now", "get 𝐟𝐫𝐞𝐞!"]
    misses = ["fr33", "freedom", "un\u200bfree", "frееe", "сору", "free\u0301", "wİn free\u0378"]
    assert all(rx.search(t) for t in hits), [t for t in hits if not rx.search(t)]
    assert not any(rx.search(t) for t in misses), [t for t in misses if rx.search(t)]
    win = re.compile(rt.raw_regex(_rule(("win",))), re.IGNORECASE)
    assert win.search("WіN now") and not win.search("w1n") and not win.search("wİn")
    assert re.compile(rt.raw_regex(_rule(("cool",))), re.IGNORECASE).search("so c00l")


def test_rules_without_a_raw_form() -> None:
    for obj in (
        {"kind": "text_contains", "value": "free"},
        {"kind": "text_regex", "value": "fr+ee"},
        {"kind": "domain", "value": "example.com"},
        {"all": [{"kind": "text_phrase", "value": "win"}, {"kind": "domain", "value": "example.com"}]},
    ):
        assert rt.raw_regex(rl.parse_rule(obj)) is None, obj


def test_combinators() -> None:
    rule = rl.parse_rule(
        {
            "all": [
                {"kind": "text_phrase", "value": "win"},
                {"not": {"kind": "text_phrase", "value": "bingo"}},
                {
                    "any": [
                        {"kind": "text_phrase", "value": "cash"},
                        {"kind": "text_phrase", "value": "prize"},
                    ]
                },
            ]
        }
    )
    rx = re.compile(rt.raw_regex(rule), re.IGNORECASE)
    for text, hit in [
        ("WIN a PRIZE", True),
        ("wіn саsh", True),
        ("win cash at BINGO", False),
        ("win nothing", False),
        ("prize: w\u200bin", True),
    ]:
        assert bool(rx.search(text)) == hit == _normalized_hit(rule, text), text


def test_ignorecase_cannot_widen_a_pattern() -> None:
    # Python folds 'İ' and 'ı' to 'i' under IGNORECASE; PATAS keeps them, so the word differs.
    rx = re.compile(rt.raw_regex(_rule(("win",))), re.IGNORECASE)
    assert not rx.search("wın") and not rx.search("wİn")
    assert nz.normalize_text("wın") != "win"


def test_patterns_read_the_same_classes_as_the_whole_tables() -> None:
    """Patterns read one prepared character's raw characters (``_units``: the characters NFKC, the
    case table or whitespace fold, plus the character itself) and the separators of the common
    blocks, instead of a pass over every code point: the same sets as the whole tables."""
    units, separators = rt._tables()
    assert {y: rt._units(y) for y in units} == units
    assert rt._units("A") == frozenset() and "A" not in units  # every raw A prepares to a
    assert rt._separator() == rt.char_class(
        c for c in separators if any(lo <= ord(c) <= hi for lo, hi in rt.SEPARATOR_BLOCKS)
    )
