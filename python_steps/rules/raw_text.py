"""Raw-text regexes: what a regex rule engine that sees RAW message text must match.

PATAS matches text rules against normalized text (``python_steps.text.normalize.normalize_text``).
A consumer such as the ROL regex engine applies ``pattern`` to the raw message with Python ``re``
(flag IGNORECASE). :func:`raw_regex` gives, for a typed rule, a pattern that searched in the RAW
text finds what the rule finds in the normalized text, or ``None`` when this module has no such
form for the rule (it then stays a ``normalized_text`` rule).

Every class is derived from the normalizer's own tables, never typed by hand: a raw character
``x`` stands for the prepared character ``f(x)`` = the normalizer's case table applied to
``NFKC(x)`` (whitespace as a space); zero-width and bidi characters (``INVISIBLE_PATTERN``) are
allowed anywhere between letters; the homoglyph tables ``TO_LATIN`` / ``TO_CYRILLIC`` give the
look-alike letters of a word's script; ``DIGIT_LOOKALIKES`` the digits read as letters between
Latin letters; a doubled letter also matches a longer run (squeezing). The pattern holds its own
upper and lower case, so it is wrapped in ``(?-i:...)``: Python's Unicode case table folds more
than PATAS does (``İ`` and ``ı`` to ``i``), and IGNORECASE must not widen it.

Supported: ``text_phrase`` leaves (whole words in sequence: the n-gram tokenizer's words, which is
what mined rules are), combined with ``all`` / ``any`` / ``not``. A phrase word gets a raw form
when each of its maximal runs of script letters is all Latin, all Cyrillic, all Greek, or a mix
the homoglyph step leaves alone, with no run of three equal characters and no character outside
the supported classes (combining marks and composition partners, whose NFKC depends on the
neighbours, are not). ``text_contains`` and ``text_regex`` leaves and entity, signature and meta
leaves have none.

Exactness. The pattern never matches a raw text whose normalized text the rule does not hit
(sound: every way it can match is one the normalizer folds to the rule's words), and it matches
every raw text the rule hits except texts that, inside the matched words, use

- code points unassigned in Unicode 14 (PATAS drops them; the pattern does not skip them),
- characters whose NFKC form is several characters (ligatures such as ``ﬁ``) or decomposed
  accents (``и`` + U+0306 for ``й``),
- leetspeak digits and homoglyphs in the same run of letters,
- more look-alike letters than the word has letters of its own script before squeezing (the
  homoglyph step counts after repeated letters are squeezed; the pattern counts them all).

Those texts are missed (a false negative), never matched by mistake. ``tests/unit/test_raw_text.py``
checks both directions on generated obfuscations, and the export parity test on whole corpora.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache

from python_steps.rules.ir import AllOf, AnyOf, Leaf, Not, Rule
from python_steps.text import normalize as nz

_WORD = re.compile("[" + nz.WORD_CHARS + "]")
_SPACE = re.compile(nz.SPACE_PATTERN)
_INVISIBLE = re.compile(nz.INVISIBLE_PATTERN)
_LATIN = re.compile("[" + nz.LATIN_LETTERS + "]")
_CYRILLIC = re.compile("[" + nz.CYRILLIC_LETTERS + "]")
_GREEK = re.compile("[" + nz.GREEK_LETTERS + "]")
_CASE = str.maketrans(nz.CASE_TABLE)
_DIGIT_OF = {letter: digit for digit, letter in nz.DIGIT_LOOKALIKES.items()}
_ASCII_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_NO_SQUEEZE = frozenset("0123456789.")

MAX_PATTERN_LENGTH = 200_000


# ---- character tables --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _decomposable() -> tuple[frozenset[str], frozenset[str]]:
    """``(decomposable, partners)``: the characters with a decomposition mapping (the only ones
    NFKC changes), and the characters NFKC may compose with the character before them: second
    characters of canonical decompositions, and Hangul medial vowels and final consonants."""
    chars = "".join(map(chr, range(0x110000)))
    decomposable = [x for x, d in zip(chars, map(unicodedata.decomposition, chars), strict=True) if d]
    partners = {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}
    for x in decomposable:
        d = unicodedata.decomposition(x)
        if not d.startswith("<"):
            parts = d.split()
            if len(parts) == 2:
                partners.add(chr(int(parts[1], 16)))
    return frozenset(decomposable), frozenset(partners)


def _prepared(x: str) -> str | None:
    """The prepared form of raw character ``x`` (the normalizer's case table applied to its NFKC,
    whitespace as a space), or None when ``x`` is left out of the tables: unassigned, removed by the
    normalizer, or with an NFKC that may interact with a neighbour (see :func:`_tables`)."""
    if unicodedata.category(x) in ("Cn", "Cs") or _INVISIBLE.match(x):
        return None
    n = unicodedata.normalize("NFKC", x)
    partners = _decomposable()[1]
    if not n or unicodedata.combining(n[0]) or n[0] in partners or unicodedata.combining(x):
        return None
    return _SPACE.sub(" ", n.translate(_CASE))


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """``(units, separators)``: for each prepared character y, the raw characters x with
    ``f(x) == y``; and the raw characters whose prepared form is non-empty and holds no word
    character. Only characters whose NFKC cannot interact with a neighbour are kept (assigned,
    not removed by the normalizer, NFKC starting with a starter that composes with nothing before
    it). Every code point, for tests: patterns read :func:`_units` and :func:`_separator`."""
    units: dict[str, set[str]] = {}
    separators: set[str] = set()
    for cp in range(1, 0x110000):
        x = chr(cp)
        y = _prepared(x)
        if y is None:
            continue
        if len(y) == 1:
            units.setdefault(y, set()).add(x)
        if y and not _WORD.search(y):
            separators.add(x)
    return {k: frozenset(v) for k, v in units.items()}, frozenset(separators)


@lru_cache(maxsize=1)
def _folded() -> dict[str, frozenset[str]]:
    """The raw characters that may prepare to another character (a decomposition mapping, a case
    table entry, whitespace), by their one-character prepared form. Any other raw character is its
    own prepared form or left out, so these and y itself are all the candidates for ``f(x) == y``."""
    chars = "".join(map(chr, range(0x110000)))
    candidates = _decomposable()[0] | set(map(chr, _CASE)) | set("".join(_SPACE.findall(chars)))
    out: dict[str, set[str]] = {}
    for x in sorted(candidates):
        y = _prepared(x)
        if y is not None and len(y) == 1:
            out.setdefault(y, set()).add(x)
    return {k: frozenset(v) for k, v in out.items()}


@cache
def _units(y: str) -> frozenset[str]:
    """The raw characters x with ``f(x) == y`` (``_tables()[0][y]``, without the whole table)."""
    return _folded().get(y, frozenset()) | ({y} if _prepared(y) == y else frozenset())


def _esc(cp: int) -> str:
    ch = chr(cp)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def char_class(chars: Iterable[str]) -> str:
    """A Python class matching exactly ``chars`` (ranges of code points, non-alphanumerics escaped)."""
    cps = sorted({ord(c) for c in chars})
    if not cps:
        raise ValueError("empty class")
    parts, start, prev = [], cps[0], cps[0]
    for cp in [*cps[1:], None]:
        if cp is not None and cp == prev + 1:
            prev = cp
            continue
        if prev == start:
            parts.append(_esc(start))
        elif prev == start + 1:
            parts.append(_esc(start) + _esc(prev))
        else:
            parts.append(f"{_esc(start)}-{_esc(prev)}")
        if cp is not None:
            start = prev = cp
    return "[" + "".join(parts) + "]"


INV = nz.INVISIBLE_PATTERN + "*"


def _raw(prepared: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for y in prepared:
        out |= _units(y)
    return frozenset(out)


# Separators are recognised in the common blocks only (ASCII to spacing modifiers, punctuation,
# symbols, CJK punctuation, compatibility and full-width forms, emoji): the whole class is 13k
# characters of regex; these blocks give 1.5k. A word next to a non-word character of another block
# (say a Georgian letter, which is not a word character for PATAS) is missed, never matched wrongly.
SEPARATOR_BLOCKS = (
    (0x0000, 0x02FF), (0x2000, 0x2BFF), (0x3000, 0x303F), (0xFE30, 0xFE6F), (0xFF00, 0xFFEF),
    (0x1F000, 0x1FAFF),
)  # fmt: skip


@lru_cache(maxsize=1)
def _separator() -> str:
    chars = (chr(cp) for lo, hi in SEPARATOR_BLOCKS for cp in range(max(lo, 1), hi + 1))
    return char_class(x for x in chars if (y := _prepared(x)) and not _WORD.search(y))


# ---- words -------------------------------------------------------------------------------------


def _script(ch: str) -> str:
    if _LATIN.match(ch):
        return "L"
    if _CYRILLIC.match(ch):
        return "C"
    if _GREEK.match(ch):
        return "G"
    return "O"


def _forms(ch: str, script: str) -> tuple[str, ...]:
    """The prepared characters that the homoglyph step turns into ``ch`` in a run of its script."""
    if script == "L":
        return (ch, *sorted(y for y, t in nz.TO_LATIN.items() if t == ch))
    if script == "C":
        return (ch, *sorted(y for y, t in nz.TO_CYRILLIC.items() if t == ch))
    return (ch,)


def _unit(prepared: Iterable[str]) -> str | None:
    raw = _raw(prepared)
    return None if not raw else char_class(raw) + INV


def _runs(seg: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for ch in seg:
        if out and out[-1][0] == ch:
            out[-1] = (ch, out[-1][1] + 1)
        else:
            out.append((ch, 1))
    return out


def _run_pattern(ch: str, count: int, forms: list[tuple[str, ...]]) -> str | None:
    """``count`` (1 or 2) positions of target ``ch``; ``forms[i]`` the prepared characters allowed
    at position i. Two positions are any two allowed characters, or a longer run of one prepared
    character (squeezing keeps two; digits are never squeezed)."""
    if count == 1:
        return _unit(forms[0])
    first, second = _unit(forms[0]), _unit(forms[1])
    if first is None or second is None:
        return None
    alts = [first + second]
    for a in sorted(set(forms[0]) & set(forms[1]) - _NO_SQUEEZE):
        ua = _unit([a])
        if ua is not None:
            alts.append(f"(?:{ua}){{3,}}")
    return "(?:" + "|".join(alts) + ")"


def _segment_pattern(seg: str, script: str, allow: str) -> str | None:
    """A run of script letters of one word. ``allow``: 'exact', 'homoglyphs' or 'digits'."""
    n = len(seg)
    runs = _runs(seg)
    if any(c > 2 for _, c in runs):
        return None
    eligible: set[int] = set()
    if allow == "digits":
        # Digit look-alikes are folded inside a run of digits between two a-z letters: the
        # positions of o/l/e/s strictly inside the segment whose stretch of such positions is
        # flanked by a-z letters of the segment.
        i = 1
        while i < n - 1:
            if seg[i] in _DIGIT_OF:
                j = i
                while j < n - 1 and seg[j] in _DIGIT_OF:
                    j += 1
                if seg[i - 1] in _ASCII_LOWER and seg[j] in _ASCII_LOWER:
                    eligible.update(range(i, j))
                i = j
            else:
                i += 1
        if not eligible:
            return None
    parts, pos = [], 0
    for ch, count in runs:
        forms = []
        for k in range(count):
            if allow == "homoglyphs":
                f = _forms(ch, script)
            elif allow == "digits" and pos + k in eligible:
                f = (ch, _DIGIT_OF[ch])
            else:
                f = (ch,)
            forms.append(f)
        p = _run_pattern(ch, count, forms)
        if p is None:
            return None
        parts.append(p)
        pos += count
    body = "".join(parts)
    if allow != "homoglyphs":
        return body
    # The homoglyph step folds look-alikes into the word's script only when that script has the
    # majority (Latin: at least half; Cyrillic: more than half). Count the look-alikes in the raw
    # run (never fewer than after squeezing): at most n // 2 for Latin, (n - 1) // 2 for Cyrillic.
    own = {ch for ch in seg}
    others = {y for ch in own for y in _forms(ch, script)[1:]}
    if not others:
        return body
    limit = n // 2 if script == "L" else (n - 1) // 2
    if limit == 0:
        return _segment_pattern(seg, script, "exact")
    region = char_class(_raw(own) | set(_expand_class(nz.INVISIBLE_PATTERN)))
    look = char_class(_raw(others))
    return f"(?!(?:{region}*{look}){{{limit + 1}}})" + body


@lru_cache(maxsize=8)
def _expand_class(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [chr(c) for c in range(0x10000) if rx.fullmatch(chr(c))]


def word_pattern(word: str) -> str | None:
    """The raw pattern of one normalized word (a maximal run of word characters), or None."""
    if not word or any(not _WORD.match(c) for c in word) or nz.normalize_text(word) != word:
        return None
    parts: list[str] = []
    i = 0
    while i < len(word):
        script = _script(word[i])
        j = i + 1
        if script == "O":
            # not a script letter: the character itself (digits, other scripts); runs of two may be
            # squeezed runs too
            ch = word[i]
            while j < len(word) and word[j] == ch:
                j += 1
            if j - i > 2:
                return None
            p = _run_pattern(ch, j - i, [(ch,)] * (j - i))
        else:
            while j < len(word) and _script(word[j]) != "O":
                j += 1
            seg = word[i:j]
            kinds = {_script(c) for c in seg}
            if len(kinds) > 1:
                p = _segment_pattern(seg, "mixed", "exact") if nz.fold_homoglyphs(seg) == seg else None
            else:
                (kind,) = kinds
                if kind == "G":
                    p = _segment_pattern(seg, kind, "exact")
                else:
                    alts = [_segment_pattern(seg, kind, "homoglyphs")]
                    if kind == "L":
                        alts.append(_segment_pattern(seg, kind, "digits"))
                    alts = [a for a in alts if a is not None]
                    p = None if not alts else alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if p is None:
            return None
        parts.append(p)
        i = j
    return "".join(parts)


def phrase_pattern(words: tuple[str, ...]) -> str | None:
    """Words in sequence, as whole words of the normalized text, over raw text."""
    sep = _separator()
    pats = [word_pattern(w) for w in words]
    if any(p is None for p in pats):
        return None
    between = f"(?:{sep}{INV})+"
    return f"(?:\\A|{sep}){INV}" + between.join(pats) + f"(?={sep}|\\Z)"  # type: ignore[arg-type]


# ---- rules -------------------------------------------------------------------------------------


def _leaf(leaf: Leaf) -> str | None:
    if leaf.kind == "text_phrase":
        return phrase_pattern(tuple(leaf.value.split(" ")))
    return None


def _py(rule: Rule) -> str | None:
    if isinstance(rule, Leaf):
        return _leaf(rule)
    if isinstance(rule, Not):
        inner = _anywhere(rule.child)
        return None if inner is None else rf"\A(?!{inner})"
    kids = [_anywhere(c) if isinstance(rule, AllOf) else _py(c) for c in rule.children]
    if any(k is None for k in kids):
        return None
    if isinstance(rule, AllOf):
        return r"\A" + "".join(f"(?={k})" for k in kids)
    assert isinstance(rule, AnyOf)
    return "|".join(f"(?:{k})" for k in kids)


def _anywhere(rule: Rule) -> str | None:
    p = _py(rule)
    if p is None or isinstance(rule, Not | AllOf):
        return p
    return rf"[\s\S]*?(?:{p})"


def raw_regex(rule: Rule) -> str | None:
    """A Python pattern that ``re.search`` (with or without IGNORECASE) finds in a RAW text exactly
    when the rule hits the text's normalization (within the limits in the module docstring), or
    ``None`` when the rule has no raw-text form."""
    p = _py(rule)
    if p is None:
        return None
    p = f"(?-i:{p})"
    return p if len(p) <= MAX_PATTERN_LENGTH else None


def normalized_regex(pattern: str) -> str:
    """A pattern over normalized text, made immune to the consumer's IGNORECASE flag."""
    return f"(?-i:{pattern})"
