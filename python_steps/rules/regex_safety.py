"""One static check against catastrophic backtracking, for every regex PATAS accepts.

Every entry point that takes a regex runs :func:`check_regex`: typed ``text_regex`` leaves
(``ir.parse_rule``, hence manual rules, the LLM's output and stored drafts), and every pattern of a
raw SQL rule (``sql_safety.validate_sql``: the right side of ``~ ~* !~ !~*``, the pattern of
``regexp_replace``). The check is static: the pattern is parsed into the ``regex_subset`` AST
(:func:`regex_subset.parse_permissive`, which reads the engine syntax too) and judged by its shape;
nothing is timed and nothing is run. A refusal says, in plain words, which part is dangerous and why.

What is refused (``n`` = the length of a message; a backtracking engine such as Python ``re``
tries every way to split the text before it gives up, at every start position):

- **Nested quantifiers** (exponential): a group repeated more than once (``+ * {m,n}`` with n > 1)
  whose rounds can trade characters with each other, so a text splits between rounds in
  exponentially many ways: ``(a+)+``, ``(a*)*``, ``(a+)*``, ``((ab)*)+``, ``(\\w+\\s?)+``,
  ``(.*a){12}``, ``(a{1,100}){1,100}``. Also a repeated group that can match the empty string
  (``(a?)+``). Rounds trade characters when, in the body written twice, a repetition of the first
  copy and one of the second can match a common character with only characters they both match
  in between (see "can trade characters" below).
- **Overlapping alternatives in a repeated group** (exponential): ``(a|a)*``, ``(a|ab)+``,
  ``(\\w|\\d)+``, ``(.|\\s)*``: two alternatives can start with the same character. (Some such
  groups are merely slow rather than exponential; the rule is deliberately simple: start the
  alternatives differently or use one class.)
- **Repetitions that can trade characters** (polynomial, about ``n**(k+1)`` for ``k`` of them):
  two repetitions *X* and *Y*, in this order, trade characters when they share characters, each
  can match a text made only of shared characters, and everything *mandatory* between them can
  match a shared character too (optional parts and zero-width assertions are skipped), so *X* can
  run over the part between and give it back. ``\\d+\\d+``, ``.*.*``, ``\\w*\\w*``, ``a+a+``,
  ``[a-z]+\\w+``, ``.*x.*y.*z``, ``\\S+@\\S+``, ``\\s*\\w*\\s*`` trade; ``\\d+-\\d+``,
  ``\\w+ \\w+``, ``[^@]+@[^@]+``, ``\\w+a\\d+`` and the phrase patterns PATAS generates
  (``claim[^w]+your[^w]+prize``) do not, because a mandatory character between them belongs to
  only one side. A chain is a run of repetitions that trade characters pairwise. Threshold:
  :data:`MAX_UNBOUNDED_PER_CHAIN` = 1 unbounded repetition per chain (one alone costs a plain
  ``O(n**2)`` search, like ``.*x``; two cost ``O(n**3)``).
- **Too many ways to split** (polynomial or exponential in the pattern length): in such a chain,
  bounded repetitions multiply the ways to split a text: ``{m,n}`` counts n-m+1, ``?`` counts 2,
  an unbounded one counts :data:`UNBOUNDED_WEIGHT` (100). Threshold: the product may be at most
  :data:`MAX_CHAIN_CHOICES` = 10 000, e.g. ``a?`` fourteen times in a row is refused,
  ``.*x.{0,99}`` and ``a.{0,50}b.{0,50}c`` are accepted.
- **Large bounded repetition**: any bound above :data:`MAX_REPEAT` = 100 (``(ab){1000}``), and
  repetitions nested in repetitions whose upper bounds multiply above
  :data:`MAX_REPEAT_PRODUCT` = 1 000 (``(a{1,100}){1,100}`` = 10 000). Engines expand bounded
  repetition into copies; Postgres refuses bounds above 255 anyway.
- **Backreferences** (``(a)\\1``): matching them is NP-hard in general and no engine-independent
  bound exists.
- Anything :func:`regex_subset.parse_permissive` cannot read (Python-only or Postgres-only
  syntax such as ``(?P<n>..)``, ``(?>..)``, ``\\x41``, ``a{,3}``, embedded ``(?x)``; more than
  200 000 characters or 50 nested groups), since the check cannot vouch for it. Typed rules are
  further restricted by the subset itself (no nested quantifiers at all, bounds up to 100, ...).
- Patterns the check cannot finish judging: a repeated group with more than
  :data:`MAX_ALTERNATIVES` = 64 alternatives, or needing more than :data:`MAX_ANALYSIS_STEPS` =
  100 000 steps (every pattern PATAS generates or the tests call legit needs under 100), so a
  long raw pattern cannot slow the validator itself.

Postgres's own engine is largely automaton-based and survives some of these shapes, but typed
rules also run in Python ``re`` (the reference evaluator, the ``regex`` column) and exported rules
run in other engines, so one rule holds everywhere.

Character classes are compared as sets of code points: ``syntax='subset'`` gives ``\\w \\d \\s .``
their typed-rule meaning (``regex_subset``), ``syntax='engine'`` their broadest Postgres/Python
meaning (Unicode letters, digits and spaces), and ``case_insensitive`` (``~*``, ``(?i)``, flag
``i``) closes every set under case. Where the analysis must approximate (a multi-branch group
is summarized by the union of its characters), it errs towards refusing.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from python_steps.rules import regex_subset as rs
from python_steps.rules.regex_subset import (
    Alt,
    Anchor,
    BackRef,
    Char,
    CharClass,
    ClassItem,
    Dot,
    Group,
    Look,
    Node,
    RegexError,
    Repeat,
    Shorthand,
)

Syntax = Literal["subset", "engine"]

MAX_REPEAT = rs.MAX_REPEAT  # 100: the largest bound of one repetition
MAX_REPEAT_PRODUCT = 1_000  # nested bounded repetitions: product of the upper bounds
MAX_UNBOUNDED_PER_CHAIN = 1  # unbounded repetitions that may trade characters with each other
UNBOUNDED_WEIGHT = 100  # what an unbounded repetition counts for in a chain's product
MAX_CHAIN_CHOICES = 10_000  # ways a chain of repetitions may split a text at one position
MAX_ALTERNATIVES = 64  # alternatives in one repeated group
MAX_ANALYSIS_STEPS = 100_000  # work the check itself may do (a pattern needing more is refused)
MAX_REPORTED = 10  # reasons collected before the check stops looking
# Embedded options a raw (Postgres) pattern may start with: case (i, c) and newline handling.
ENGINE_OPTIONS = frozenset("icnmpswt")

__all__ = [
    "MAX_ALTERNATIVES",
    "MAX_ANALYSIS_STEPS",
    "MAX_CHAIN_CHOICES",
    "MAX_REPEAT",
    "MAX_REPEAT_PRODUCT",
    "MAX_UNBOUNDED_PER_CHAIN",
    "UNBOUNDED_WEIGHT",
    "RegexError",
    "backtracking_risks",
    "can_match_empty",
    "check_regex",
]

# ---- character sets: sorted, disjoint, inclusive code-point ranges ------------------------------

Ranges = tuple[tuple[int, int], ...]
_TOP = 0x10FFFF
ALL: Ranges = ((0, _TOP),)
_CAP = 10**12


def _norm(pairs: Sequence[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _union(*sets: Ranges) -> Ranges:
    return _norm([p for s in sets for p in s])


def _complement(s: Ranges) -> Ranges:
    out, nxt = [], 0
    for lo, hi in s:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _TOP:
        out.append((nxt, _TOP))
    return tuple(out)


@lru_cache(maxsize=4096)
def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _contains(s: Ranges, c: int) -> bool:
    k = bisect.bisect_right(s, (c, _TOP)) - 1
    return k >= 0 and s[k][0] <= c <= s[k][1]


_PLANES = 0x20000  # code points read from the Unicode database; the rest count as letters


def _runs(pattern: str) -> Ranges:
    """The code points below ``_PLANES`` that Python's Unicode-aware ``pattern`` matches."""
    return _norm([(m.start(), m.end() - 1) for m in re.finditer(pattern, _all_chars())])


@lru_cache(maxsize=1)
def _all_chars() -> str:
    return "".join(map(chr, range(_PLANES)))


@lru_cache(maxsize=1)
def _posix() -> dict[str, Ranges]:
    """Broad Unicode classes for the engine syntax (Postgres reads ``\\w [[:alpha:]]`` etc. by
    the locale's Unicode properties; the union of what an engine may mean keeps the check
    conservative). Built once, on first use, from Python's Unicode classes."""
    beyond = ((_PLANES, _TOP),)
    cntrl = ((0x00, 0x1F), (0x7F, 0x9F))
    space = _runs(r"\s+")
    word = _union(_runs(r"\w+"), beyond)
    return {
        "alpha": _union(_runs(r"[^\W\d_]+"), beyond),
        "upper": _union(_runs(r"[^\W\d_]+"), beyond),
        "lower": _union(_runs(r"[^\W\d_]+"), beyond),
        "digit": _runs(r"\d+"),
        "alnum": word,
        "word": word,
        "space": space,
        "blank": space,
        "punct": _runs(r"[^\w\s]+"),
        "cntrl": cntrl,
        "print": _complement(cntrl),
        "graph": _complement(_union(cntrl, space)),
        "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
    }


@lru_cache(maxsize=1)
def _case_pairs() -> tuple[tuple[int, int], ...]:
    pairs = set()
    for c in range(0x20000):
        ch = chr(c)
        for v in (ch.lower(), ch.upper(), ch.casefold()):
            if len(v) == 1 and ord(v) != c:
                pairs.add((c, ord(v)))
                pairs.add((ord(v), c))
    return tuple(sorted(pairs))


@lru_cache(maxsize=4096)
def _fold(s: Ranges) -> Ranges:
    """``s`` closed under simple case mapping (case-insensitive matching)."""
    pairs, extra = _case_pairs(), []
    for lo, hi in s:
        for k in range(bisect.bisect_left(pairs, (lo, 0)), bisect.bisect_right(pairs, (hi, _TOP))):
            extra.append((pairs[k][1], pairs[k][1]))
    return _union(s, tuple(extra)) if extra else s


@dataclass(frozen=True)
class _Sets:
    dot: Ranges
    d: Ranges
    s: Ranges
    w: Ranges


def _ranges_of_class(body: str) -> Ranges:
    node = rs.parse_permissive("[" + body + "]").branches[0][0]
    assert isinstance(node, CharClass)
    return _norm([(ord(it.lo), ord(it.hi)) for it in node.items if isinstance(it, ClassItem)])


@lru_cache(maxsize=2)
def _sets(syntax: Syntax) -> _Sets:
    if syntax == "subset":  # the typed-rule meaning, as regex_subset renders it
        return _Sets(
            dot=_complement(((0x0A, 0x0A),)),
            d=rs.DIGIT_RANGES,
            s=rs.SPACE_RANGES,
            w=_ranges_of_class(rs.WORD_CLASS_BODY),
        )
    p = _posix()
    return _Sets(dot=ALL, d=p["digit"], s=p["space"], w=p["word"])


# ---- showing parts of a pattern ----------------------------------------------------------------


def _show_char(ch: str, in_class: bool) -> str:
    if not ch.isprintable() or (ch.isspace() and ch != " "):
        o = ord(ch)
        return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"
    return rs._src_char(ch, in_class)


def _src(n: Node | Alt, budget: int = 48) -> str:
    if isinstance(n, Alt):
        return "|".join("".join(_src(x, budget) for x in b) for b in n.branches)
    if isinstance(n, Char):
        return _show_char(n.ch, False)
    if isinstance(n, Dot):
        return "."
    if isinstance(n, Shorthand):
        return "\\" + n.letter
    if isinstance(n, Anchor):
        return n.kind if n.kind in "^$" else "\\" + n.kind
    if isinstance(n, BackRef):
        return f"\\{n.n}"
    if isinstance(n, CharClass):
        body = "".join(
            (f"[{it}]" if it.startswith(":") else "\\" + it)
            if isinstance(it, str)
            else _show_char(it.lo, True) + ("" if it.lo == it.hi else "-" + _show_char(it.hi, True))
            for it in n.items
        )
        if len(body) > 16:
            body = body[:15] + "…"
        return "[" + ("^" if n.negated else "") + body + "]"
    if isinstance(n, Group):
        return "(" + _src(n.body, budget) + ")"
    if isinstance(n, Look):
        return "(?" + n.kind + _src(n.body, budget) + ")"
    return _src(n.atom, budget) + rs._quant(n.lo, n.hi) + ("?" if n.lazy else "")


def _show(n: Node | Alt | Sequence[Node], limit: int = 48) -> str:
    text = "".join(_src(x) for x in n) if isinstance(n, tuple | list) else _src(n)  # type: ignore[arg-type]
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`"


def _sample(c: Ranges) -> str:
    for ch in "ax1 .-_@/:0":
        if _contains(c, ord(ch)):
            return repr(ch)
    o = c[0][0]
    return repr(chr(o)) if chr(o).isprintable() and not chr(o).isspace() else f"U+{o:04X}"


# ---- analysis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One step of a sequence, as the analysis sees it."""

    chars: Ranges  # every character it can consume
    # Per alternative way to match it, the character sets any non-empty match must draw from (one
    # character of each): a text both neighbours can match must meet every set of one alternative.
    required: tuple[tuple[Ranges, ...], ...]
    nullable: bool  # can match the empty string (so it can be skipped)
    zero_width: bool  # anchors and lookaround: transparent
    choices: int | None  # ways to match at one position: None = unbounded, 1 = fixed
    node: Node  # what it was made from (shown in reasons)

    @property
    def text(self) -> str:
        return _show(self.node)

    @property
    def member(self) -> bool:
        return not self.zero_width and self.choices != 1

    @property
    def mandatory(self) -> bool:
        return not self.zero_width and not self.nullable


class _TooComplex(Exception):
    pass


class _Enough(Exception):
    pass


def _meets(required: tuple[tuple[Ranges, ...], ...], c: Ranges) -> bool:
    return any(all(_intersect(s, c) for s in alt) for alt in required)


class _Analyzer:
    def __init__(self, syntax: Syntax, case_insensitive: bool) -> None:
        self.sets = _sets(syntax)
        self.ci = case_insensitive
        self.risks: list[str] = []
        self.steps = 0

    def risk(self, why: str) -> None:
        if why not in self.risks:
            self.risks.append(why)
            if len(self.risks) >= MAX_REPORTED:
                raise _Enough

    # -- characters --
    def chars(self, n: Node) -> Ranges:
        s = self.sets
        if isinstance(n, Char):
            cs: Ranges = ((ord(n.ch), ord(n.ch)),)
        elif isinstance(n, Dot):
            cs = s.dot
        elif isinstance(n, Shorthand):
            base = {"d": s.d, "s": s.s, "w": s.w}[n.letter.lower()]
            cs = _complement(base) if n.letter.isupper() else base
        elif isinstance(n, CharClass):
            parts: list[Ranges] = []
            for it in n.items:
                if isinstance(it, ClassItem):
                    parts.append(((ord(it.lo), ord(it.hi)),))
                elif it.startswith(":"):
                    parts.append(_posix()[it.strip(":")])
                else:
                    base = {"d": s.d, "s": s.s, "w": s.w}[it.lower()]
                    parts.append(_complement(base) if it.isupper() else base)
            cs = _union(*parts)
            if self.ci:
                cs = _fold(cs)
            return _complement(cs) if n.negated else cs
        else:
            raise AssertionError(n)
        return _fold(cs) if self.ci else cs

    # -- structure --
    def alt(self, alt: Alt, outer: tuple[int, Node] | None) -> list[list[_Item]]:
        """Items of each branch; each branch is a sequence whose chains are checked here."""
        branches = [self.seq(b, outer) for b in alt.branches]
        for items in branches:
            self.chains(items)
        return branches

    def seq(self, nodes: Sequence[Node], outer: tuple[int, Node] | None) -> list[_Item]:
        out: list[_Item] = []
        for n in nodes:
            out.extend(self.node(n, outer))
        return out

    def node(self, n: Node, outer: tuple[int, Node] | None) -> list[_Item]:
        if isinstance(n, Char | Dot | Shorthand | CharClass):
            cs = self.chars(n)
            return [_Item(cs, ((cs,),), False, False, 1, n)]
        if isinstance(n, Anchor):
            return [_Item((), ((),), True, True, 1, n)]
        if isinstance(n, Look):
            self.alt(n.body, outer)
            return [_Item((), ((),), True, True, 1, n)]
        if isinstance(n, BackRef):
            self.risk(
                f"backreferences ({_show(n)}) are not allowed: matching one can take exponential time on a "
                "crafted message"
            )
            return [_Item(ALL, ((),), True, False, 1, n)]
        if isinstance(n, Group):
            if len(n.body.branches) == 1:  # a plain group is just its contents
                return self.seq(n.body.branches[0], outer)
            return [self.summary(self.alt(n.body, outer), n)]
        assert isinstance(n, Repeat)
        return [self.repeat(n, outer)]

    def summary(self, branches: list[list[_Item]], node: Node) -> _Item:
        """A group of alternatives seen from outside as one item (union of its characters)."""
        chars = _union(*[it.chars for b in branches for it in b])
        zero_width = all(it.zero_width for b in branches for it in b)
        nullable = any(all(it.nullable for it in b) for b in branches)
        required = tuple(_seq_required(b) for b in branches)
        per_branch = [_product([it.choices for it in b]) for b in branches]
        if any(c is None for c in per_branch):
            choices = None
        elif len(branches) == 1:
            choices = per_branch[0]
        elif all(c == 1 for c in per_branch) and _first_overlap(branches) is None:
            choices = 1  # at most one alternative can match at any position
        else:
            choices = min(_CAP, sum(per_branch))  # type: ignore[arg-type]
        return _Item(chars, required, nullable, zero_width, choices, node)

    def repeat(self, n: Repeat, outer: tuple[int, Node] | None) -> _Item:
        lo, hi = n.lo, n.hi
        if lo > MAX_REPEAT or (hi is not None and hi > MAX_REPEAT):
            self.risk(
                f"repetition {_show(n)} is larger than {MAX_REPEAT}: repeat fewer times (engines expand a "
                "bounded repetition into copies)"
            )
        factor = hi if hi is not None else max(lo, 1)
        product = factor * (outer[0] if outer else 1)
        if outer is not None and factor > 1 and product > MAX_REPEAT_PRODUCT:
            self.risk(
                f"nested repetition {_show(n)} inside {_show(outer[1])} repeats up to {product} times (more than "
                f"{MAX_REPEAT_PRODUCT}): repeat the characters directly, fewer times"
            )
        atom = n.atom
        if isinstance(atom, Group):
            branches = self.alt(atom.body, (product, n))
            body = self.summary(branches, atom)
            if hi is None or hi > 1:
                self.rounds(n, branches)
            bc = body.choices
            if hi is None or bc is None:
                choices: int | None = None
            elif lo == hi:
                choices = _power(bc, hi)
            else:
                choices = min(_CAP, (hi - lo + 1) * _power(bc, hi))
            return _Item(body.chars, body.required, lo == 0 or body.nullable, body.zero_width, choices, n)
        if isinstance(atom, BackRef):
            self.node(atom, outer)
            return _Item(ALL, ((),), True, False, None if hi is None else 1, n)
        cs = self.chars(atom)
        choices = None if hi is None else (1 if lo == hi else hi - lo + 1)
        return _Item(cs, ((cs,),), lo == 0, False, choices, n)

    def rounds(self, n: Repeat, branches: list[list[_Item]]) -> None:
        """A group repeated more than once: can its rounds split one text in many ways?"""
        assert isinstance(n.atom, Group)
        text, alts = _show(n), n.atom.body.branches
        if any(all(it.nullable for it in b) for b in branches):
            self.risk(
                f"nested quantifier: {text} repeats a group that can match an empty string, which takes "
                "exponential time on a crafted message; make every round match at least one character"
            )
            return
        if len(branches) > MAX_ALTERNATIVES:
            self.risk(f"{text} repeats more than {MAX_ALTERNATIVES} alternatives")
            return
        overlap = _first_overlap(branches)
        if overlap is not None:
            i, j, common = overlap
            self.risk(
                f"{text} repeats alternatives that can start with the same character ({_show(alts[i])} "
                f"and {_show(alts[j])} both match {_sample(common)}), which takes exponential time on a "
                "crafted message; make the alternatives start differently or use one character class"
            )
            return
        for bi, bj in itertools.product(branches, repeat=2):
            path = bi + bj
            for q in range(len(bi), len(path)):
                for p, common in self.preds(path, q) if path[q].member else ():
                    if p < len(bi):
                        self.risk(
                            f"nested quantifier: {text} repeats a group whose rounds can split the same text "
                            f"in exponentially many ways ({path[p].text} of one round and {path[q].text} of "
                            f"the next both match {_sample(common)}), which takes exponential time on a "
                            "crafted message; repeat the characters directly (like `a+` rather than "
                            "`(a+)+`) or end each round with a character its repetitions cannot match"
                        )
                        return

    def preds(self, items: list[_Item], q: int) -> list[tuple[int, Ranges]]:
        """The repetitions ``p`` before repetition ``q`` that can trade characters with it, with the
        characters they can trade: ``common`` = chars(p) & chars(q) is not empty, both can match a
        text made of ``common`` only, and every mandatory item between them can match a character
        of ``common``. Scans back from ``q`` until an item ``q``'s characters cannot run over."""
        target, out = items[q].chars, []
        between: set[tuple[tuple[Ranges, ...], ...]] = set()
        for k in range(q - 1, -1, -1):
            self.tick(1 + len(between))
            it = items[k]
            if it.member:
                common = _intersect(it.chars, target)
                if (
                    common
                    and _meets(it.required, common)
                    and _meets(items[q].required, common)
                    and all(_meets(r, common) for r in between)
                ):
                    out.append((k, common))
            if it.mandatory:
                if not _meets(it.required, target):
                    break  # no repetition before this item can trade characters with q
                between.add(it.required)
        return out

    def tick(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_ANALYSIS_STEPS:
            raise _TooComplex

    def chains(self, items: list[_Item]) -> None:
        """Repetitions of one sequence that trade characters pairwise (see the module docstring):
        the longest such chain by unbounded members and by product of choices."""
        unbounded: dict[int, tuple[int, int, Ranges]] = {}  # q -> (count, best predecessor, common)
        weight: dict[int, tuple[int, int]] = {}  # q -> (product of choices, best predecessor)
        for q in (k for k, it in enumerate(items) if it.member):
            own = items[q].choices
            own_unbounded, own_weight = (1, UNBOUNDED_WEIGHT) if own is None else (0, own)
            unbounded[q], weight[q] = (own_unbounded, -1, ()), (own_weight, -1)
            for p, common in self.preds(items, q):
                if unbounded[p][0] + own_unbounded > unbounded[q][0]:
                    unbounded[q] = (unbounded[p][0] + own_unbounded, p, common)
                if min(_CAP, weight[p][0] * own_weight) > weight[q][0]:
                    weight[q] = (min(_CAP, weight[p][0] * own_weight), p)
            count, p, common = unbounded[q]
            if count > MAX_UNBOUNDED_PER_CHAIN:
                self.risk(
                    f"{items[p].text} and {items[q].text} can both match {_sample(common)}"
                    + (" and everything between them" if q > p + 1 else "")
                    + ", so a crafted message splits between them in about n² ways at every position "
                    "(polynomial backtracking); bound one of them (like `{0,50}` instead of `*`) or make "
                    "them match different characters (like `\\d+-\\d+`)"
                )
                return
            if weight[q][0] > MAX_CHAIN_CHOICES:
                chain, k = [], q
                while k >= 0:
                    chain.append(items[k].text)
                    k = weight[k][1]
                names = chain[::-1]
                shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
                self.risk(
                    f"the repetitions {shown} can divide the same text in more than "
                    f"{MAX_CHAIN_CHOICES} ways at every position (an unbounded one counts "
                    f"{UNBOUNDED_WEIGHT}); use fewer optional parts or smaller bounds"
                )
                return


def _power(base: int, exp: int) -> int:
    """``min(base ** exp, _CAP)`` without computing a huge power."""
    out = 1
    for _ in range(exp):
        out *= base
        if out >= _CAP or base == 1:
            return min(out, _CAP)
    return out


def _product(choices: list[int | None]) -> int | None:
    out = 1
    for c in choices:
        if c is None:
            return None
        out = min(_CAP, out * c)
    return out


def _seq_required(items: list[_Item]) -> tuple[Ranges, ...]:
    out: list[Ranges] = []
    for it in items:
        if it.mandatory:
            if len(it.required) == 1:
                out.extend(it.required[0])
            else:
                out.append(it.chars)
    return tuple(out)


def _firsts(items: list[_Item]) -> Ranges:
    out: list[Ranges] = []
    for it in items:
        out.append(it.chars)
        if it.mandatory:
            break
    return _union(*out)


def _first_overlap(branches: list[list[_Item]]) -> tuple[int, int, Ranges] | None:
    """Two alternatives that can start with the same character (``i``, ``j``, those characters):
    one sweep over the first-character ranges of all alternatives, sorted."""
    firsts = [_firsts(b) for b in branches]
    spans = sorted((lo, hi, j) for j, f in enumerate(firsts) for lo, hi in f)
    reach, owner = -1, -1  # the furthest range end so far, and its alternative
    for lo, hi, j in spans:
        if lo <= reach and owner != j:
            i, j = min(owner, j), max(owner, j)
            return i, j, _intersect(firsts[i], firsts[j])
        if hi > reach:
            reach, owner = hi, j
    return None


# ---- entry points ------------------------------------------------------------------------------

_OPTIONS_RE = re.compile(r"\(\?([A-Za-z]+)\)")


def _engine_options(pattern: str, case_insensitive: bool) -> tuple[str, bool]:
    if pattern.startswith("***"):
        raise RegexError(f"regex {rs._short(pattern)!r}: director prefixes (***) are not allowed")
    m = _OPTIONS_RE.match(pattern)
    if m is None:
        return pattern, case_insensitive
    flags = m.group(1)
    bad = sorted(set(flags) - ENGINE_OPTIONS)
    if bad:
        raise RegexError(
            f"regex {rs._short(pattern)!r}: embedded option(s) {''.join(bad)} are not allowed "
            f"(only {''.join(sorted(ENGINE_OPTIONS))})"
        )
    ci = case_insensitive
    for f in flags:  # later options win, as in Postgres
        if f in "ic":
            ci = f == "i"
    rest = pattern[m.end() :]
    if not rest:
        raise RegexError(f"regex {rs._short(pattern)!r} is empty after its options")
    return rest, ci


def backtracking_risks(
    pattern: str, *, syntax: Syntax = "engine", case_insensitive: bool = False
) -> list[str]:
    """Why ``pattern`` can backtrack catastrophically, in plain words; empty when it is safe.

    ``syntax='subset'`` reads a typed rule's source (``regex_subset`` meaning of ``\\w .``);
    ``syntax='engine'`` a pattern handed to Postgres or Python as is (a raw SQL rule, or what the
    compiler renders), which may start with embedded options like ``(?i)``. Raises
    :class:`RegexError` when the pattern is not a regex the check can read."""
    if syntax not in ("subset", "engine"):
        raise ValueError(f"unknown syntax {syntax!r}")
    ci = case_insensitive
    if syntax == "engine" and isinstance(pattern, str):
        pattern, ci = _engine_options(pattern, ci)
    alt = rs.parse_permissive(pattern)
    analyzer = _Analyzer(syntax, ci)
    try:
        analyzer.alt(alt, None)
    except _Enough:
        pass
    except _TooComplex:
        analyzer.risks.append(
            f"the pattern is too long or too branched to check (more than {MAX_ANALYSIS_STEPS} steps); "
            "split it into several rules"
        )
    return analyzer.risks


def can_match_empty(pattern: str, *, syntax: Syntax = "engine") -> bool:
    """True when ``pattern`` matches the empty string, hence at the start of every message.
    Read with the same parser as :func:`backtracking_risks` (which raises :class:`RegexError`
    when it cannot), so Postgres syntax such as ``[[:alpha:]]`` means what Postgres reads."""
    if syntax == "engine":
        pattern, _ = _engine_options(pattern, False)
    return rs._nullable_alt(rs.parse_permissive(pattern))


def check_regex(pattern: str, *, syntax: Syntax = "engine", case_insensitive: bool = False) -> None:
    """Raise :class:`RegexError` (a ``ValueError``) with a plain-language reason when ``pattern``
    can backtrack catastrophically or cannot be read; return None when it is safe."""
    risks = backtracking_risks(pattern, syntax=syntax, case_insensitive=case_insensitive)
    if risks:
        more = (
            f" (and {len(risks) - 1} more problem{'s' if len(risks) > 2 else ''})" if len(risks) > 1 else ""
        )
        raise RegexError(f"regex {rs._short(pattern)!r} risks catastrophic backtracking: {risks[0]}{more}")
