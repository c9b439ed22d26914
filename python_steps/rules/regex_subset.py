"""A bounded regular-expression subset that means the same in Python ``re`` and Postgres ARE.

Rules of type ``text_regex`` are parsed into a small AST and re-rendered for each engine, so no
user-written pattern text ever reaches either engine as is. Every construct whose meaning differs
between the engines (``\\w``, ``\\d``, ``\\s``, ``\\b``, ``.``, ``$``: Unicode- or
locale-dependent, newline handling) is rendered as an explicit character class or lookaround, and
characters that are not letters or digits are rendered as ``\\uXXXX`` escapes, which both engines
read the same way.

The subset (source syntax):

- literals (any printable character except the metacharacters ``\\ . ^ $ | ? * + ( ) [ ] { }``,
  which must be escaped with a backslash);
- ``.`` (any character except newline), ``\\d \\D \\s \\S \\w \\W`` (ASCII digits, ASCII
  whitespace, :data:`WORD_CLASS_BODY`), ``\\b`` (a word boundary over the same word class);
- classes ``[...]`` / ``[^...]`` with characters, ranges and ``\\d \\s \\w``;
- groups ``(...)`` / ``(?:...)`` (never capturing), alternation ``|``, anchors ``^`` and ``$``;
- greedy quantifiers ``* + ? {n} {n,} {n,m}`` with bounds at most :data:`MAX_REPEAT`.

Rejected: backreferences, lookaround written by hand, named/capturing-only constructs, lazy or
possessive quantifiers, inline flags, POSIX classes, other escapes, control characters, nested
quantifiers (a quantified group may only contain unquantified atoms and no alternation, except for
``?``), more than :data:`MAX_UNBOUNDED` unbounded quantifiers, patterns longer than
:data:`MAX_PATTERN_LENGTH`, and patterns that can match the empty string (they would match every
message). Matching is a search (anywhere in the text), case-sensitive, over normalized text.

:func:`parse_permissive` reads a wider syntax into the same AST for analysis only (never rendered):
the subset plus what PATAS itself generates for the engines and what a raw SQL rule may hand to
Postgres (lookaround, ``\\uXXXX`` escapes, ``\\A \\Z \\m \\M \\y \\Y \\B``, POSIX classes,
lazy and nested quantifiers, any repetition bound, backreferences, Python's ``(?-i:...)``).
``regex_safety`` runs its backtracking check over that AST; constructs outside it are still
refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_PATTERN_LENGTH = 256
MAX_REPEAT = 100
MAX_UNBOUNDED = 3
MAX_NODES = 200
# Limits of the permissive (analysis) parser: raw SQL literals are longer than typed sources, and
# rendered engine patterns spell every class out (see ``parse_permissive``).
MAX_PERMISSIVE_LENGTH = 200_000  # rules/raw_text.py renders up to 200 000 characters
MAX_PERMISSIVE_NODES = 20_000
MAX_GROUP_DEPTH = 50
MAX_BOUND_DIGITS = 9
POSIX_CLASSES = frozenset(
    ["alpha", "digit", "alnum", "upper", "lower", "space", "blank", "punct", "print", "graph", "cntrl",
     "xdigit", "word"]
)  # fmt: skip
_CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}

# The word characters of text rules: the n-gram tokenizer's (``python_steps.text.normalize.WORD_CHARS``,
# a class body of explicit code-point ranges that Python and Postgres read the same way), so that
# a 1-3 word phrase rule hits exactly the messages carrying that ``ngram`` signal. The copy below
# is only used if ``python_steps.text.normalize`` cannot be imported (a unit test keeps them equal).
try:
    from python_steps.text.normalize import WORD_CHARS as WORD_CLASS_BODY
except ImportError:  # pragma: no cover
    WORD_CLASS_BODY = (
        "0-9a-z\\u00aa\\u00b5\\u00ba\\u00df-\\u00f6\\u00f8-\\u02af\\u0300-\\u036f\\u0370-\\u03ff"
        "\\u0400-\\u052f\\u0531-\\u0587\\u05d0-\\u05ea\\u0620-\\u064a\\u0660-\\u0669\\u0900-\\u097f"
        "\\u0e01-\\u0e4e\\u1e00-\\u1eff\\u3041-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7a3"
    )
SPACE_RANGES: tuple[tuple[int, int], ...] = ((0x09, 0x0D), (0x20, 0x20))
DIGIT_RANGES: tuple[tuple[int, int], ...] = ((0x30, 0x39),)

METACHARS = frozenset("\\.^$|?*+()[]{}")
_SHORTHANDS: dict[str, tuple[str, bool]] = {}  # letter -> (class body, negated); filled below


class RegexError(ValueError):
    """The pattern is outside the safe subset; the message says where and why."""


def escape_char(ch: str) -> str:
    """One character as regex text valid in both engines (letters/digits as is, else ``\\u``)."""
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if not ch.isascii() and ch.isalpha() and unicodedata.category(ch) in ("Ll", "Lu"):
        return ch
    o = ord(ch)
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def _ascii_escape(o: int) -> str:
    ch = chr(o)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def ranges_class_body(ranges: tuple[tuple[int, int], ...]) -> str:
    """Class members for code-point ranges; non-ASCII endpoints always as escapes."""
    return "".join(
        _ascii_escape(lo) if lo == hi else f"{_ascii_escape(lo)}-{_ascii_escape(hi)}" for lo, hi in ranges
    )


_DIGITS, _SPACES = ranges_class_body(DIGIT_RANGES), ranges_class_body(SPACE_RANGES)
_SHORTHANDS.update(
    d=(_DIGITS, False), D=(_DIGITS, True), s=(_SPACES, False), S=(_SPACES, True),
    w=(WORD_CLASS_BODY, False), W=(WORD_CLASS_BODY, True),
)  # fmt: skip
WORD_CLASS = "[" + WORD_CLASS_BODY + "]"
NON_WORD_CLASS = "[^" + WORD_CLASS_BODY + "]"


# ---- AST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Char:
    ch: str


@dataclass(frozen=True)
class Dot:
    pass


@dataclass(frozen=True)
class ClassItem:
    lo: str
    hi: str  # equal to lo for a single character


@dataclass(frozen=True)
class CharClass:
    negated: bool
    items: tuple[ClassItem | str, ...]  # str = a shorthand letter among d s w, or ":alpha:" (permissive)


@dataclass(frozen=True)
class Shorthand:
    letter: str  # d D s S w W


@dataclass(frozen=True)
class Anchor:
    kind: str  # "^" | "$" | "b"; permissive parser also "A" "Z" "B" "m" "M" "y" "Y" (escapes)


@dataclass(frozen=True)
class Group:
    body: Alt


@dataclass(frozen=True)
class Look:
    """Lookaround (permissive parser only): kind ``=`` ``!`` ``<=`` ``<!``."""

    kind: str
    body: Alt


@dataclass(frozen=True)
class BackRef:
    """A backreference ``\\1`` .. ``\\9`` (permissive parser only)."""

    n: int


@dataclass(frozen=True)
class Repeat:
    atom: Char | Dot | CharClass | Shorthand | Group | BackRef
    lo: int
    hi: int | None  # None = unbounded
    lazy: bool = False  # ``*?`` and friends (permissive parser only)


Node = Char | Dot | CharClass | Shorthand | Anchor | Group | Look | BackRef | Repeat


@dataclass(frozen=True)
class Alt:
    branches: tuple[tuple[Node, ...], ...]


# ---- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, src: str, *, permissive: bool = False) -> None:
        self.src = src
        self.i = 0
        self.unbounded = 0
        self.nodes = 0
        self.permissive = permissive
        self.depth = 0

    def fail(self, why: str) -> RegexError:
        return RegexError(f"regex {_short(self.src)!r} at offset {self.i}: {why}")

    def peek(self) -> str | None:
        return self.src[self.i] if self.i < len(self.src) else None

    def parse(self) -> Alt:
        alt = self.alt()
        if self.i != len(self.src):
            raise self.fail("unbalanced ')'")
        return alt

    def alt(self) -> Alt:
        branches = [self.seq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.seq())
        return Alt(tuple(branches))

    def seq(self) -> tuple[Node, ...]:
        items: list[Node] = []
        while (c := self.peek()) is not None and c not in "|)":
            items.append(self.item())
        if not items:
            raise self.fail("empty alternative or group")
        return tuple(items)

    def item(self) -> Node:
        atom = self.atom()
        self.nodes += 1
        limit = MAX_PERMISSIVE_NODES if self.permissive else MAX_NODES
        if self.nodes > limit:
            raise self.fail(f"more than {limit} elements")
        quant = self.quantifier()
        if quant is None:
            return atom
        if isinstance(atom, Anchor):
            raise self.fail("an anchor or \\b cannot be repeated")
        if isinstance(atom, Look):
            raise self.fail("a lookaround cannot be repeated")
        lo, hi = quant
        lazy = False
        if self.permissive:
            if self.peek() == "?":  # lazy: the analysis treats it like the greedy form
                self.i += 1
                lazy = True
        else:
            if isinstance(atom, Group) and not (lo == 0 and hi == 1) and not _is_simple_group(atom):
                raise self.fail(
                    "a repeated group may only hold plain characters and classes (nested quantifier)"
                )
            if hi is None:
                self.unbounded += 1
                if self.unbounded > MAX_UNBOUNDED:
                    raise self.fail(f"more than {MAX_UNBOUNDED} unbounded quantifiers")
        if self.peek() in ("?", "+", "*", "{"):
            raise self.fail("lazy, possessive or stacked quantifiers are not allowed")
        return Repeat(atom, lo, hi, lazy)  # type: ignore[arg-type]  # atom is never an Anchor or Look here

    def quantifier(self) -> tuple[int, int | None] | None:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        if c != "{":
            return None
        end = self.src.find("}", self.i)
        if end < 0:
            raise self.fail("unterminated '{' (escape a literal brace as \\{)")
        body = self.src[self.i + 1 : end]
        lo_s, comma, hi_s = body.partition(",")
        digits = 2 * MAX_BOUND_DIGITS + 1 if self.permissive else 9
        if not lo_s.isdigit() or (hi_s and not hi_s.isdigit()) or len(body) > digits:
            raise self.fail(f"bad repetition {{{body}}}")
        lo = int(lo_s)
        hi: int | None = lo if not comma else (int(hi_s) if hi_s else None)
        if hi is not None and hi < lo:
            raise self.fail(f"repetition {{{body}}} has its bounds out of order")
        if not self.permissive and (lo > MAX_REPEAT or (hi is not None and hi > MAX_REPEAT)):
            raise self.fail(f"repetition bounds must satisfy 0 <= n <= m <= {MAX_REPEAT}")
        if hi == 0:
            raise self.fail("repetition {0} matches nothing")
        self.i = end + 1
        return lo, hi

    def atom(self) -> Node:
        c = self.src[self.i]
        if c == "(":
            self.i += 1
            look = None
            if self.src.startswith("?:", self.i):
                self.i += 2
            elif self.permissive and (look := _look_kind(self.src, self.i)) is not None:
                self.i += 1 + len(look)
            elif self.permissive and (m := _SCOPED_FLAGS.match(self.src, self.i)) is not None:
                # Python's (?-i:...) and newline flags: read as a plain group (a case-sensitive
                # part judged case-insensitively is judged conservatively). Turning i on is not.
                self.i = m.end()
            elif self.peek() == "?":
                if self.permissive:
                    raise self.fail(
                        "only (...), (?:...), (?-i:...) and lookaround groups are allowed (no flags or names)"
                    )
                raise self.fail("only (...) and (?:...) groups are allowed (no lookaround, flags or names)")
            self.depth += 1
            if self.permissive and self.depth > MAX_GROUP_DEPTH:
                raise self.fail(f"groups nested deeper than {MAX_GROUP_DEPTH}")
            body = self.alt()
            self.depth -= 1
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.i += 1
            return Group(body) if look is None else Look(look, body)
        if c == "[":
            return self.char_class()
        if c == ".":
            self.i += 1
            return Dot()
        if c in "^$":
            self.i += 1
            return Anchor(c)
        if c == "\\":
            return self.escape(in_class=False)
        if c in METACHARS:
            raise self.fail(f"unexpected {c!r} (escape it with a backslash)")
        self.i += 1
        return Char(_check_char(self, c))

    def escape(self, *, in_class: bool) -> Node:
        if self.i + 1 >= len(self.src):
            raise self.fail("trailing backslash")
        e = self.src[self.i + 1]
        self.i += 2
        if e in _SHORTHANDS:
            if in_class and e.isupper() and not self.permissive:
                raise self.fail(f"\\{e} is not allowed inside a class")
            return Shorthand(e)
        if e == "b" and not in_class:
            return Anchor("b")
        if e in METACHARS or e in "-/":
            return Char(e)
        if self.permissive:
            if e in "AZBmMyY" and not in_class:
                return Anchor(e)
            if e in _CHAR_ESCAPES:
                return Char(_CHAR_ESCAPES[e])
            if e in "uU":
                n = 4 if e == "u" else 8
                hexits = self.src[self.i : self.i + n]
                if len(hexits) != n or any(h not in "0123456789abcdefABCDEF" for h in hexits):
                    raise self.fail(f"\\{e} needs {n} hex digits")
                o = int(hexits, 16)
                if o > 0x10FFFF or 0xD800 <= o <= 0xDFFF:
                    raise self.fail(f"\\{e}{hexits} is not a character")
                self.i += n
                return Char(chr(o))
            if e in "123456789" and not in_class:
                return BackRef(int(e))
            if not e.isalnum():
                return Char(e)
        if e.isdigit():
            raise self.fail("backreferences are not allowed")
        raise self.fail(f"escape \\{e} is not allowed")

    def char_class(self) -> CharClass:
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        items: list[ClassItem | str] = []
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("unterminated '['")
            if c == "]" and not (self.permissive and first):
                self.i += 1
                break
            first = False
            if c == "[":
                if self.permissive and self.src.startswith("[:", self.i):
                    end = self.src.find(":]", self.i + 2)
                    name = self.src[self.i + 2 : end] if end > 0 else ""
                    if name not in POSIX_CLASSES:
                        raise self.fail(f"unknown POSIX class [:{name}:]")
                    self.i = end + 2
                    items.append(f":{name}:")
                    continue
                raise self.fail("'[' inside a class must be escaped (no POSIX classes)")
            if c == "\\":
                node = self.escape(in_class=True)
                if isinstance(node, Shorthand):
                    items.append(node.letter)
                    continue
                assert isinstance(node, Char)
                lo = node.ch
            else:
                self.i += 1
                lo = _check_char(self, c)
            hi = lo
            if self.peek() == "-" and self.i + 1 < len(self.src) and self.src[self.i + 1] != "]":
                self.i += 1
                n = self.peek()
                if n == "\\":
                    node = self.escape(in_class=True)
                    if not isinstance(node, Char):
                        raise self.fail("a range cannot end in a shorthand class")
                    hi = node.ch
                elif n == "[":
                    raise self.fail("a range cannot end in '['")
                else:
                    assert n is not None
                    self.i += 1
                    hi = _check_char(self, n)
                if ord(hi) < ord(lo):
                    raise self.fail(f"range {lo}-{hi} is out of order")
            items.append(ClassItem(lo, hi))
        if not items:
            raise self.fail("empty class")
        return CharClass(negated, tuple(items))


_SCOPED_FLAGS = re.compile(r"\?(?:[ms]*-[ims]+|[ms]+):")


def _look_kind(src: str, i: int) -> str | None:
    """The lookaround kind (``=`` ``!`` ``<=`` ``<!``) of a group opening at ``src[i]`` (after ``(``)."""
    for prefix in ("?<=", "?<!", "?=", "?!"):
        if src.startswith(prefix, i):
            return prefix[1:]
    return None


def _short(src: str, limit: int = 80) -> str:
    return src if len(src) <= limit else src[: limit - 1] + "\u2026"


def _check_char(p: _Parser, c: str) -> str:
    o = ord(c)
    if o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF or (0x80 <= o < 0xA0):
        raise p.fail(f"control character U+{o:04X} is not allowed")
    return c


def _is_simple_group(g: Group) -> bool:
    if len(g.body.branches) != 1:
        return False
    return all(isinstance(n, Char | Dot | CharClass | Shorthand) for n in g.body.branches[0])


def parse_permissive(src: str) -> Alt:
    """Parse for analysis only (``regex_safety``): the subset widened to the engine syntax (see the
    module docstring). No nullable check and no bound or nesting limits of the subset: the safety
    check judges those. The result may hold :class:`Look`, :class:`BackRef`, lazy repeats and POSIX
    class items, which the renderers do not handle."""
    if not isinstance(src, str) or not src:
        raise RegexError("regex must be a non-empty string")
    if len(src) > MAX_PERMISSIVE_LENGTH:
        raise RegexError(f"regex longer than {MAX_PERMISSIVE_LENGTH} characters")
    return _Parser(src, permissive=True).parse()


def parse_regex(src: str) -> Alt:
    if not isinstance(src, str) or not src:
        raise RegexError("regex must be a non-empty string")
    if len(src) > MAX_PATTERN_LENGTH:
        raise RegexError(f"regex longer than {MAX_PATTERN_LENGTH} characters")
    alt = _Parser(src).parse()
    if _nullable_alt(alt):
        raise RegexError(f"regex {src!r} can match the empty string, so it would match every message")
    return alt


def _nullable_alt(alt: Alt) -> bool:
    return any(all(_nullable(n) for n in branch) for branch in alt.branches)


def _nullable(n: Node) -> bool:
    if isinstance(n, Anchor | Look | BackRef):  # zero-width, or (a backreference) possibly empty
        return True
    if isinstance(n, Repeat):
        return n.lo == 0 or _nullable(n.atom)
    if isinstance(n, Group):
        return _nullable_alt(n.body)
    return False


# ---- rendering ---------------------------------------------------------------------------------


def _src_char(ch: str, in_class: bool) -> str:
    special = "\\]^-[" if in_class else METACHARS
    return "\\" + ch if ch in special or (not in_class and ch == "/") else ch


def render_source(alt: Alt) -> str:
    """The canonical source form (what the rule stores)."""

    def node(n: Node) -> str:
        if isinstance(n, Char):
            return _src_char(n.ch, False)
        if isinstance(n, Dot):
            return "."
        if isinstance(n, Shorthand):
            return "\\" + n.letter
        if isinstance(n, Anchor):
            return "\\b" if n.kind == "b" else n.kind
        if isinstance(n, CharClass):
            body = "".join(
                "\\" + it
                if isinstance(it, str)
                else _src_char(it.lo, True) + ("" if it.lo == it.hi else "-" + _src_char(it.hi, True))
                for it in n.items
            )
            return "[" + ("^" if n.negated else "") + body + "]"
        if isinstance(n, Group):
            return "(?:" + alt_(n.body) + ")"
        return node(n.atom) + _quant(n.lo, n.hi)

    def alt_(a: Alt) -> str:
        return "|".join("".join(node(x) for x in b) for b in a.branches)

    return alt_(alt)


def _quant(lo: int, hi: int | None) -> str:
    if (lo, hi) == (0, None):
        return "*"
    if (lo, hi) == (1, None):
        return "+"
    if (lo, hi) == (0, 1):
        return "?"
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def render_engine(alt: Alt, dialect: str) -> str:
    """The pattern for ``dialect`` 'python' (``re.search``) or 'postgres' (ARE, operator ``~``)."""
    if dialect not in ("python", "postgres"):
        raise ValueError(dialect)
    w = WORD_CLASS_BODY
    boundary = f"(?:(?<=[{w}])(?![{w}])|(?<![{w}])(?=[{w}]))"

    def class_item(it: ClassItem | str) -> str:
        if isinstance(it, str):
            return _SHORTHANDS[it][0]
        return escape_char(it.lo) + ("" if it.lo == it.hi else "-" + escape_char(it.hi))

    def node(n: Node) -> str:
        if isinstance(n, Char):
            return escape_char(n.ch)
        if isinstance(n, Dot):
            return "[^\\u000a]"
        if isinstance(n, Shorthand):
            body, neg = _SHORTHANDS[n.letter]
            return "[" + ("^" if neg else "") + body + "]"
        if isinstance(n, Anchor):
            if n.kind == "b":
                return boundary
            if n.kind == "$":
                return "\\Z" if dialect == "python" else "$"
            return "^"
        if isinstance(n, CharClass):
            return "[" + ("^" if n.negated else "") + "".join(class_item(i) for i in n.items) + "]"
        if isinstance(n, Group):
            return "(?:" + alt_(n.body) + ")"
        return node(n.atom) + _quant(n.lo, n.hi)

    def alt_(a: Alt) -> str:
        return "|".join("".join(node(x) for x in b) for b in a.branches)

    return alt_(alt)


def literal_pattern(text: str) -> str:
    """A pattern matching ``text`` literally, valid in both engines."""
    return "".join(escape_char(c) for c in text)


def phrase_pattern(words: tuple[str, ...]) -> str:
    """Words (each made of word characters only) in sequence, separated by non-word characters,
    not preceded or followed by a word character. Valid in both engines."""
    w = WORD_CLASS_BODY
    inner = f"[^{w}]+".join(literal_pattern(x) for x in words)
    return f"(?<![{w}]){inner}(?![{w}])"
