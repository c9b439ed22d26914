"""Safety validation of raw SQL rules written by hand or by an LLM.

A raw rule is accepted only in one of two shapes (case-insensitive, any whitespace):

- ``select`` mode: ``SELECT [a.]message_id FROM intermediate.int_messages_enriched [AS] a WHERE
  <predicate> [;]``, or the portable ``SELECT id FROM messages WHERE <predicate>`` (what the SQL
  export writes); the alias defaults to the table name;
- ``predicate`` mode: a bare ``<predicate>`` over ``m`` (the ``sql_expression`` of a rule row).

The check is a whitelist grammar, not a list of bad words. The text is tokenized with sqlparse's
lexer; every token must be a standard string literal, a number, a whitelisted keyword, column,
function, type or operator, and the tokens must parse as the grammar below. So DDL/DML,
``;``-separated statements, comments, other tables or schemas, joins, CTEs, ``UNION``, dollar or
escape strings, quoted identifiers, parameters, set-returning and dangerous functions
(``pg_sleep``, ``pg_read_file``, ``lo_import``, ``dblink``, ``set_config``, ``generate_series``,
...) are all rejected because nothing admits them. Words inside string literals are data.

Predicates may use the contract columns ``text``, ``normalized_text``, ``signature``, ``meta`` and
the entity arrays; the label and bookkeeping columns (``is_spam``, ``event_at``, ``batch_id``,
``message_id``, ...) are refused: a rule that reads the label is leakage, not a rule. The only
subquery is ``EXISTS (SELECT 1 FROM unnest(<array column>) [AS] d[(v)] [WHERE ...])``.

Every regex goes through :func:`python_steps.rules.regex_safety.check_regex`, the check typed
``text_regex`` rules pass too: the pattern of ``~ ~* !~ !~*`` and of ``regexp_replace`` must be a
string literal (a column, an expression or ``ANY(array)`` as a pattern cannot be checked) that
cannot backtrack catastrophically (nested quantifiers, overlapping repetitions, backreferences,
...; ``~*`` and the ``i`` flag are checked case-insensitively). ``SIMILAR TO`` and the other
``regexp_*`` functions are not in the grammar.

"Match everything" is refused where it can be seen: a constant condition in a boolean position
(``true``, ``1=1``, ``'a'='a'``, ``x OR true``), a column compared with itself, a LIKE pattern of
only ``%``, a regex that matches the empty string, and any predicate with an OR branch lacking a
positive anchor (an equality, IN, LIKE, regex match, ``= ANY``, containment, ``strpos(..) > 0``,
``starts_with``, ``cardinality(<entity array>) > 0`` or an anchored EXISTS). At evaluation, :func:`coverage_guard` also fails rules
that hit more than 80% of messages, and :func:`evaluate_raw_sql_readonly` runs raw rules in a
READ ONLY transaction with a statement timeout.

Lexer caveat handled: sqlparse reads ``\\'`` inside a string as an escaped quote, Postgres (with
``standard_conforming_strings``, always set on by the evaluator) does not. String literals are
therefore cut out first, the Postgres way (:func:`_extract_strings`), and sqlparse lexes the rest.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import psycopg
import sqlparse
from sqlparse import tokens as T

from python_steps.rules.regex_safety import RegexError, can_match_empty, check_regex

MAX_SQL_LENGTH = 20_000
MAX_NESTING = 40
MAX_COVERAGE = 0.80

MESSAGE_RELATION = ("intermediate", "int_messages_enriched")
PORTABLE_RELATION = "messages"
PREDICATE_ALIASES = ("m", "messages")

RULE_COLUMNS = frozenset(
    [
        "text",
        "normalized_text",
        "signature",
        "meta",
        "urls",
        "hosts",
        "domains",
        "phones",
        "short_codes",
        "handles",
        "emails",
    ]
)
ARRAY_COLUMNS = frozenset(["urls", "hosts", "domains", "phones", "short_codes", "handles", "emails"])
LEAKY_COLUMNS = frozenset(
    [
        "is_spam",
        "event_at",
        "batch_id",
        "message_id",
        "external_id",
        "tas_action",
        "user_complaint",
        "unbanned",
        "ingested_at",
        "source_line",
        "id",
    ]
)
FUNCTIONS = frozenset(
    [
        "lower",
        "upper",
        "strpos",
        "length",
        "char_length",
        "left",
        "right",
        "substr",
        "replace",
        "btrim",
        "ltrim",
        "rtrim",
        "split_part",
        "starts_with",
        "coalesce",
        "nullif",
        "cardinality",
        "array_length",
        "array_to_string",
        "jsonb_typeof",
        "regexp_replace",
        "reverse",
        "md5",
    ]
)
CAST_TYPES = frozenset(["text", "varchar", "int", "integer", "bigint", "numeric", "boolean", "jsonb"])
COMPARISONS = frozenset(["=", "<>", "!=", "<", "<=", ">", ">=", "~", "~*", "!~", "!~*", "@>", "<@", "&&"])
BINARY_OPS = frozenset(["||", "->>", "->", "#>>", "#>", "+", "-", "*", "/"])
POSITIVE_OPS = frozenset(["=", "~", "~*", "@>", "<@", "&&", "like", "ilike", "in"])
REGEX_OPS = frozenset(["~", "~*", "!~", "!~*"])
# regexp_replace(source, pattern, replacement [, start [, n]] [, flags]): flags that only choose
# case and newline handling (g = every match); x, q, b, e would change how the pattern reads.
REGEXP_FLAGS = frozenset("gicnmpswt")
RESERVED = frozenset(
    [
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "like",
        "ilike",
        "between",
        "exists",
        "as",
        "any",
        "all",
        "escape",
        "distinct",
        "array",
        "some",
    ]
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


class _Reject(Exception):
    pass


@dataclass
class _Tok:
    kind: str  # 'word' | 'str' | 'num' | 'op' | 'punct'
    value: str  # lower-cased for words
    raw: str


@dataclass
class _Expr:
    text: str  # canonical token text, used to spot "x = x"
    refs: bool  # references a column
    anchored: bool = False  # selective: every way to satisfy it needs a positive match
    literal: str | None = None  # the value of a plain string literal
    func: str | None = None


def _extract_strings(sql: str) -> tuple[str, list[str]]:
    """Cut out string literals the way Postgres reads them (standard-conforming: ``''`` is a
    quote, a backslash is a backslash), leaving numbered placeholders for sqlparse.

    sqlparse reads ``\\'`` as an escaped quote, so it would split ``'a\\' or true or '`` differently
    from Postgres; doing strings here removes that ambiguity. Comments, dollar quotes, quoted
    identifiers and ``$n`` parameters are refused on the way (outside string literals only).
    """
    out: list[str] = []
    values: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        # The text up to the next quote, refused at its first comment, quoted identifier or '$'.
        q = sql.find("'", i)
        end = n if q < 0 else q
        m = _OUTSIDE_STRINGS.search(sql, i, end)
        if m:
            raise _Reject(_OUTSIDE_STRINGS_REASONS[m.group()])
        out.append(sql[i:end])
        if q < 0:
            break
        j, buf = q + 1, []
        while True:
            k = sql.find("'", j)
            if k < 0:
                raise _Reject("unterminated string literal")
            buf.append(sql[j:k])
            if sql.startswith("''", k):
                buf.append("'")
                j = k + 2
                continue
            break
        out.append(f"'#{len(values)}'")
        values.append("".join(buf))
        i = k + 1
    return "".join(out), values


_OUTSIDE_STRINGS = re.compile(r"--|/\*|\"|\$")
_OUTSIDE_STRINGS_REASONS = {
    "--": "comments are not allowed",
    "/*": "comments are not allowed",
    '"': "quoted identifiers are not allowed",
    "$": "dollar quotes and $n parameters are not allowed",
}


def _lex(sql: str) -> list[_Tok]:
    body, values = _extract_strings(sql)
    out: list[_Tok] = []
    prev_ws = True
    for ttype, value in sqlparse.lexer.tokenize(body):
        if ttype in T.Whitespace or ttype in T.Newline or ttype is T.Text.Whitespace:
            prev_ws = True
            continue
        if ttype in T.Comment:
            raise _Reject("comments are not allowed")
        if ttype in T.Literal.String.Single:
            m = re.fullmatch(r"'#([0-9]+)'", value)
            if m is None:
                raise _Reject(f"string literal {value!r} is not allowed")
            lit = values[int(m.group(1))]
            out.append(_Tok("str", lit, "'" + lit.replace("'", "''") + "'"))
        elif ttype in T.Literal.String.Symbol:
            raise _Reject("quoted identifiers are not allowed")
        elif ttype in T.Literal.Number:
            if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
                raise _Reject(f"number {value!r} is not allowed (plain decimals only)")
            out.append(_Tok("num", value, value))
        elif ttype in T.Name.Placeholder:
            raise _Reject(f"parameters/placeholders ({value}) are not allowed")
        elif ttype in T.Keyword or ttype in T.Name or " " in value.strip():
            # sqlparse merges some phrases ('not like', 'is not null', 'order by'): split them.
            for word in value.split():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word):
                    raise _Reject(f"token {value!r} is not allowed")
                if ttype in T.Keyword.DDL or (ttype in T.Keyword.DML and word.lower() != "select"):
                    raise _Reject(f"{word.upper()} statements are not allowed (DDL/DML)")
                out.append(_Tok("word", word.lower(), word))
        elif ttype in T.Operator or ttype in T.Wildcard:
            if value == "*" and out and out[-1].kind == "op" and out[-1].value in ("~", "!~") and not prev_ws:
                out[-1] = _Tok("op", out[-1].value + "*", out[-1].raw + "*")
            else:
                out.append(_Tok("op", value.lower(), value))
        elif ttype in T.Punctuation:
            out.append(_Tok("punct", value, value))
        else:
            raise _Reject(f"token {value!r} is not allowed")
        prev_ws = False
    return out


class _Parser:
    def __init__(self, toks: list[_Tok], qualifiers: tuple[str, ...]) -> None:
        self.toks = toks
        self.i = 0
        self.qualifiers = qualifiers
        self.scopes: list[tuple[str, str | None]] = []  # (alias, column alias) of unnest subqueries
        self.depth = 0

    # -- token helpers --
    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *values: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.kind in ("word", "op", "punct") and t.value in values

    def take(self, *values: str) -> _Tok:
        t = self.peek()
        if t is None or t.value not in values or t.kind == "str":
            got = "end of input" if t is None else repr(t.raw)
            raise _Reject(f"expected {' or '.join(repr(v) for v in values)}, got {got}")
        self.i += 1
        return t

    def ident(self) -> str:
        t = self.peek()
        if t is None or t.kind != "word" or t.value in RESERVED:
            raise _Reject(f"expected a name, got {'end of input' if t is None else repr(t.raw)}")
        self.i += 1
        return t.value

    # -- statements --
    def select_statement(self) -> None:
        self.take("select")
        q1 = self.ident()
        col = q1
        if self.at("."):
            self.i += 1
            col = self.ident()
        else:
            q1 = ""
        if col not in ("message_id", "id"):
            raise _Reject(f"the select list must be the message id (message_id or id), got {col!r}")
        self.take("from")
        first = self.ident()
        if self.at("."):
            self.i += 1
            second = self.ident()
            if (first, second) != MESSAGE_RELATION:
                raise _Reject(f"relation {first}.{second} is not allowed (only {'.'.join(MESSAGE_RELATION)})")
            table = second
        elif first == PORTABLE_RELATION:
            table = first
        else:
            raise _Reject(f"relation {first} is not allowed (only {'.'.join(MESSAGE_RELATION)} or messages)")
        alias = table
        if self.at("as"):
            self.i += 1
            alias = self.ident()
        elif self.peek() is not None and self.peek().kind == "word" and not self.at("where"):  # type: ignore[union-attr]
            alias = self.ident()
        if q1 and q1 != alias:
            raise _Reject(f"unknown qualifier {q1!r} in the select list")
        self.qualifiers = (alias,)
        if self.peek() is None or self.at(";"):
            raise _Reject("a rule needs a WHERE clause (without one it matches every message)")
        if not self.at("where"):
            raise _Reject(f"unexpected {self.peek().raw!r} after the relation (no joins or other tables)")  # type: ignore[union-attr]
        self.take("where")
        self.where_clause()
        if self.at(";"):
            self.i += 1
        self.end()

    def where_clause(self) -> None:
        e = self.boolean_operand(self.or_expr())
        if not e.anchored:
            raise _Reject(
                "the predicate has a branch without a positive match (equality, LIKE, regex, IN, = ANY, "
                "strpos > 0, ...): it would match nearly every message"
            )

    def end(self) -> None:
        t = self.peek()
        if t is not None:
            if t.value == ";":
                raise _Reject("multiple statements (';') are not allowed")
            raise _Reject(f"unexpected {t.raw!r} after the rule")

    # -- boolean expressions --
    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Reject("expression nested too deeply")

    def boolean_operand(self, e: _Expr) -> _Expr:
        if not e.refs:
            raise _Reject(f"constant condition {e.text!r} (matches everything or nothing)")
        return e

    def or_expr(self) -> _Expr:
        parts = [self.and_expr()]
        while self.at("or"):
            self.i += 1
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        for p in parts:
            self.boolean_operand(p)
        return _Expr(" or ".join(p.text for p in parts), True, all(p.anchored for p in parts))

    def and_expr(self) -> _Expr:
        parts = [self.not_expr()]
        while self.at("and"):
            self.i += 1
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        for p in parts:
            self.boolean_operand(p)
        return _Expr(" and ".join(p.text for p in parts), True, any(p.anchored for p in parts))

    def not_expr(self) -> _Expr:
        if self.at("not") and not self.at("exists", k=1):
            self.i += 1
            inner = self.boolean_operand(self.not_expr())
            return _Expr("not " + inner.text, True, False)
        return self.predicate()

    def predicate(self) -> _Expr:
        self.nest()
        try:
            if self.at("not") and self.at("exists", k=1):
                self.i += 1
                e = self.exists()
                return _Expr("not " + e.text, True, False)
            if self.at("exists"):
                return self.exists()
            left = self.value()
            return self.comparison_tail(left)
        finally:
            self.depth -= 1

    def comparison_tail(self, left: _Expr) -> _Expr:
        t = self.peek()
        if t is None or t.kind == "str":
            return left
        negated = False
        if t.value == "not" and self.at("like", "ilike", "in", "between", k=1):
            self.i += 1
            negated = True
            t = self.peek()
            assert t is not None
        op = t.value
        if t.kind == "op" and op in COMPARISONS:
            self.i += 1
            if self.at("any", "all", "some"):
                quant = self.take("any", "all", "some").value
                if op in REGEX_OPS:
                    raise _Reject(
                        f"{op} {quant}(...) uses the array's values as regex patterns, which cannot be "
                        "checked: match a string literal pattern instead"
                    )
                self.take("(")
                arr = self.value()
                self.take(")")
                if not arr.refs or arr.text.split(".")[-1] not in ARRAY_COLUMNS:
                    raise _Reject(f"{op} {quant}(...) needs an entity array column")
                pos = op == "=" and quant in ("any", "some") and not left.refs
                return _Expr(f"{left.text} {op} {quant}({arr.text})", True, pos)
            right = self.value()
            return self.compare(left, op, right)
        if op in ("like", "ilike"):
            self.i += 1
            right = self.value()
            if self.at("escape"):
                self.i += 1
                esc = self.value()
                if esc.literal is None:
                    raise _Reject("ESCAPE needs a string literal")
            if right.literal is not None and re.fullmatch(r"%+", right.literal):
                raise _Reject(f"LIKE {right.literal!r} matches everything")
            e = self.compare(left, "like", right)
            return _Expr(("not " if negated else "") + e.text, e.refs, e.anchored and not negated)
        if op == "in":
            self.i += 1
            self.take("(")
            items = [self.value()]
            while self.at(","):
                self.i += 1
                items.append(self.value())
            self.take(")")
            if any(x.refs for x in items):
                raise _Reject("IN lists hold literals only")
            return _Expr(f"{left.text} in (...)", left.refs, left.refs and not negated)
        if op == "between":
            self.i += 1
            lo = self.value()
            self.take("and")
            hi = self.value()
            return _Expr(f"{left.text} between {lo.text} and {hi.text}", left.refs or lo.refs or hi.refs)
        if op == "is":
            self.i += 1
            neg = self.at("not")
            if neg:
                self.i += 1
            if self.at("distinct"):
                self.i += 1
                self.take("from")
                right = self.value()
                return _Expr(f"{left.text} is distinct from {right.text}", left.refs or right.refs, neg)
            what = self.take("null", "true", "false").value
            return _Expr(f"{left.text} is {'not ' if neg else ''}{what}", left.refs, False)
        return left

    def compare(self, left: _Expr, op: str, right: _Expr) -> _Expr:
        text = f"{left.text} {op} {right.text}"
        if left.refs and left.text == right.text:
            raise _Reject(f"{text!r} compares a column with itself (a tautology)")
        refs = left.refs or right.refs
        lit = right.literal if right.literal is not None else left.literal
        anchored = refs and op in POSITIVE_OPS and not (left.refs and right.refs)
        if op in REGEX_OPS:
            if right.literal is None:
                raise _Reject(
                    f"the pattern of {op} must be a string literal ({right.text!r} cannot be checked "
                    "for catastrophic backtracking)"
                )
            _check_pattern(right.literal, case_insensitive=op.endswith("*"))
        if op in ("~", "~*") and lit is not None and _regex_matches_empty(lit):
            raise _Reject(f"regex {lit!r} matches the empty string (every message)")
        if op in (">", ">=") and left.func == "strpos" and left.anchored:
            anchored = True
        if left.func == "cardinality" and left.refs:
            # cardinality(<entity array>) is selective only when it asks for at least one element
            # ("has a phone"); "= 0" or "< 3" hold for nearly every message.
            n = _number(right.text) if not right.refs else None
            anchored = n is not None and ((op == ">" and n >= 0) or (op in (">=", "=") and n >= 1))
        return _Expr(text, refs, anchored)

    def exists(self) -> _Expr:
        self.take("exists")
        self.take("(")
        self.take("select")
        self.take("1")
        self.take("from")
        if not self.at("unnest"):
            raise _Reject("the only subquery allowed is over unnest(<array column>)")
        self.i += 1
        self.take("(")
        arr = self.column_ref()
        self.take(")")
        if arr.text.split(".")[-1] not in ARRAY_COLUMNS:
            raise _Reject("unnest() takes an entity array column")
        if self.at("as"):
            self.i += 1
        alias = self.ident()
        col = None
        if self.at("("):
            self.i += 1
            col = self.ident()
            self.take(")")
        self.scopes.append((alias, col))
        try:
            anchored = False
            if self.at("where"):
                self.i += 1
                anchored = self.boolean_operand(self.or_expr()).anchored
        finally:
            self.scopes.pop()
        self.take(")")
        return _Expr(f"exists(unnest({arr.text}))", True, anchored)

    # -- values --
    def value(self) -> _Expr:
        e = self.term()
        while (t := self.peek()) is not None and t.kind == "op" and t.value in BINARY_OPS:
            self.i += 1
            r = self.term()
            e = _Expr(f"{e.text} {t.value} {r.text}", e.refs or r.refs)
        return e

    def term(self) -> _Expr:
        if self.at("-"):
            self.i += 1
            e = self.atom()
            e = _Expr("-" + e.text, e.refs)
        else:
            e = self.atom()
        while self.at("::"):
            self.i += 1
            ty = self.peek()
            if ty is None or ty.kind != "word" or ty.value not in CAST_TYPES:
                raise _Reject(f"cast to {'?' if ty is None else ty.raw!r} is not allowed")
            self.i += 1
            array = self.at("[")
            if array:
                self.take("[")
                self.take("]")
            # A literal cast to text is still that literal (so a regex pattern '...'::text is checked).
            keep = e.literal if ty.value in ("text", "varchar") and not array else None
            e = _Expr(f"{e.text}::{ty.value}", e.refs, e.anchored, keep, e.func)
        return e

    def atom(self) -> _Expr:
        self.nest()
        try:
            return self._atom()
        finally:
            self.depth -= 1

    def _atom(self) -> _Expr:
        t = self.peek()
        if t is None:
            raise _Reject("unexpected end of input")
        if t.kind == "str":
            self.i += 1
            return _Expr(t.raw, False, literal=t.value)
        if t.kind == "num":
            self.i += 1
            return _Expr(t.value, False)
        if self.at("("):
            self.i += 1
            if self.at("select"):
                raise _Reject("subqueries are not allowed (only EXISTS over unnest of an array column)")
            e = self.or_expr()
            self.take(")")
            return _Expr(f"({e.text})", e.refs, e.anchored, e.literal, e.func)
        if self.at("true", "false", "null"):
            self.i += 1
            return _Expr(t.value, False)
        if self.at("array"):
            self.i += 1
            self.take("[")
            items = [self.value()]
            while self.at(","):
                self.i += 1
                items.append(self.value())
            self.take("]")
            if any(x.refs for x in items):
                raise _Reject("ARRAY[...] holds literals only")
            return _Expr("array[...]", False)
        if t.kind == "word" and self.at("(", k=1):
            return self.call()
        if t.kind == "word":
            return self.column_ref()
        raise _Reject(f"unexpected {t.raw!r}")

    def call(self) -> _Expr:
        name = self.peek().value  # type: ignore[union-attr]
        if name not in FUNCTIONS:
            raise _Reject(f"function {name}() is not allowed")
        self.i += 2
        args: list[_Expr] = []
        if not self.at(")"):
            args.append(self.or_expr())
            while self.at(","):
                self.i += 1
                args.append(self.or_expr())
        self.take(")")
        if name == "regexp_replace":
            _check_regexp_call(name, args)
        refs = any(a.refs for a in args)
        text = f"{name}({', '.join(a.text for a in args)})"
        has_lit = any(a.literal for a in args)
        anchored = False
        if name in ("strpos", "starts_with"):
            anchored = refs and has_lit
        elif name == "coalesce":
            anchored = bool(args) and args[0].anchored
        return _Expr(text, refs, anchored, None, name)

    def column_ref(self) -> _Expr:
        first = self.ident()
        if self.at("."):
            self.i += 1
            second = self.ident()
            for alias, col in self.scopes:
                if first == alias and col is not None and second == col:
                    return _Expr(f"{first}.{second}", True)
            if first not in self.qualifiers:
                raise _Reject(f"unknown table or alias {first!r} (only {', '.join(self.qualifiers)})")
            return self._column(second)
        for alias, col in self.scopes:
            if first == (col or alias):
                return _Expr(first, True)
        return self._column(first)

    def _column(self, name: str) -> _Expr:
        if name in LEAKY_COLUMNS:
            raise _Reject(f"column {name} is not allowed in a rule (label/bookkeeping: leakage)")
        if name not in RULE_COLUMNS:
            raise _Reject(f"unknown column {name!r}")
        return _Expr(f"m.{name}", True)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _check_pattern(pattern: str, *, case_insensitive: bool) -> None:
    try:
        check_regex(pattern, syntax="engine", case_insensitive=case_insensitive)
    except RegexError as e:
        raise _Reject(str(e)) from None


def _check_regexp_call(name: str, args: list[_Expr]) -> None:
    """``regexp_replace(source, pattern, replacement [, start [, n]] [, flags])``: a literal
    pattern that passes the backtracking check, numbers or literal flags after the replacement."""
    if not 3 <= len(args) <= 6:
        raise _Reject(f"{name}() takes a source, a pattern, a replacement and optional flags")
    pattern, options = args[1], args[3:]
    flags = ""
    for k, a in enumerate(options):
        if a.literal is not None and k == len(options) - 1:
            flags = a.literal
        elif a.refs or _number(a.text) is None:
            raise _Reject(f"{name}() options must be numbers and a literal flags string")
    bad = sorted(set(flags) - REGEXP_FLAGS)
    if bad:
        raise _Reject(
            f"{name}() flag(s) {''.join(bad)} are not allowed (only {''.join(sorted(REGEXP_FLAGS))})"
        )
    if pattern.literal is None:
        raise _Reject(
            f"the pattern of {name}() must be a string literal ({pattern.text!r} cannot be checked for "
            "catastrophic backtracking)"
        )
    ci = False
    for f in flags:  # later flags win, as in Postgres
        if f in "ic":
            ci = f == "i"
    _check_pattern(pattern.literal, case_insensitive=ci)


def _regex_matches_empty(pattern: str) -> bool:
    try:
        return can_match_empty(pattern)
    except RegexError:
        return False  # refused with its reason by check_regex


def validate_sql(sql: str, *, mode: Literal["select", "predicate"] = "select") -> Verdict:
    """Is ``sql`` a safe raw rule? ``mode='predicate'`` validates a bare WHERE predicate over ``m``."""
    if not isinstance(sql, str):
        return Verdict(False, ["rule SQL must be a string"])
    if len(sql) > MAX_SQL_LENGTH:
        return Verdict(False, [f"rule SQL longer than {MAX_SQL_LENGTH} characters"])
    if "\x00" in sql:
        return Verdict(False, ["NUL byte in rule SQL"])
    reasons: list[str] = []
    try:
        body, _ = _extract_strings(sql)
        # sqlparse splits on ';' and on a GO keyword only: a body with neither is one statement.
        if (";" in body or "go" in body.lower()) and len(
            [s for s in sqlparse.split(body) if s.strip().rstrip(";").strip()]
        ) > 1:
            reasons.append("multiple statements are not allowed")
    except _Reject:
        pass  # reported again, with the reason, by the lexer below
    try:
        toks = _lex(sql)
        if not toks:
            raise _Reject("empty rule")
        p = _Parser(toks, PREDICATE_ALIASES)
        if mode == "select":
            p.select_statement()
        elif mode == "predicate":
            p.where_clause()
            p.end()
        else:
            raise ValueError(f"unknown mode {mode!r}")
    except _Reject as e:
        reasons.append(str(e))
    except RecursionError:
        reasons.append("expression nested too deeply")
    return Verdict(not reasons, reasons)


def as_select(sql: str, *, mode: Literal["select", "predicate"] = "select") -> str:
    """A validated raw rule as a query over the warehouse returning ``message_id``."""
    verdict = validate_sql(sql, mode=mode)
    if not verdict.ok:
        raise ValueError("unsafe rule SQL: " + "; ".join(verdict.reasons))
    body = sql.strip().rstrip(";")
    if mode == "predicate":
        return f"select m.message_id from intermediate.int_messages_enriched as m where ({body})"
    # The portable form names a relation `messages` with an `id`: provide it as a CTE.
    cte = "with messages as (select m.*, m.message_id as id from intermediate.int_messages_enriched as m) "
    return f"select message_id from ({cte}{body}) as q(message_id)"


@contextlib.contextmanager
def readonly_guard(conn: psycopg.Connection, timeout_ms: int = 30_000) -> Iterator[None]:
    """The one guard every raw rule runs under (defence in depth after :func:`validate_sql`):
    a READ ONLY transaction, a statement timeout and standard-conforming strings."""
    with conn.transaction():
        conn.execute("set transaction read only")
        conn.execute(f"set local statement_timeout = {int(timeout_ms)}")
        conn.execute("set local standard_conforming_strings = on")
        yield


def evaluate_raw_sql_readonly(
    conn: psycopg.Connection,
    sql: str,
    timeout_ms: int = 30_000,
    *,
    mode: Literal["select", "predicate"] = "select",
) -> list[int]:
    """Run a validated raw rule (defence in depth: READ ONLY transaction, statement timeout,
    standard-conforming strings) and return the sorted message ids it hits."""
    query = as_select(sql, mode=mode)
    with readonly_guard(conn, timeout_ms):
        rows = conn.execute(f"select message_id from ({query}) as r order by 1").fetchall()
    return [r[0] for r in rows]


def coverage_guard(
    conn: psycopg.Connection,
    sql: str,
    *,
    max_coverage: float = MAX_COVERAGE,
    timeout_ms: int = 30_000,
    mode: Literal["select", "predicate"] = "select",
) -> Verdict:
    """Fails a (valid) raw rule that hits more than ``max_coverage`` of all messages."""
    verdict = validate_sql(sql, mode=mode)
    if not verdict.ok:
        return verdict
    query = as_select(sql, mode=mode)
    with readonly_guard(conn, timeout_ms):
        hits, total = conn.execute(
            f"select (select count(distinct message_id) from ({query}) as r), "
            "(select count(*) from intermediate.int_messages_enriched)"
        ).fetchone()
    if total and hits / total > max_coverage:
        return Verdict(
            False, [f"rule hits {hits} of {total} messages ({hits / total:.1%}), above {max_coverage:.0%}"]
        )
    return Verdict(True, [])
