"""Typed rules: the JSON form, validation, canonical form, identity, description, complexity.

JSON form (see ``schema.json``)::

    {"kind": "domain", "op": "eq" | "suffix", "value": "example.com"}
    {"kind": "host" | "url" | "phone" | "short_code" | "handle" | "email" | "signature",
     "op": "eq", "value": "..."}                      (host also allows "suffix"; op defaults to eq)
    {"kind": "phone", "op": "prefix", "value": "0871"}  a phone whose digits start so (2-8 digits:
                                                      premium-rate and other number ranges)
    {"kind": "domain" | "host" | "url" | "phone" | "short_code" | "handle" | "email",
     "op": "present"}                                 the message carries at least one such entity
    {"kind": "text_contains", "value": "free entry"}  substring of normalized text
    {"kind": "text_phrase", "value": "claim your prize"}  whole words, in sequence
    {"kind": "text_regex", "value": "txt [0-9]{5}"}   bounded regex (see ``regex_subset``) that
                                                      passes ``regex_safety.check_regex``
    {"kind": "meta", "key": "channel", "op": "eq", "value": "sms"}
    {"all": [rule, ...]}   {"any": [rule, ...]}   {"not": rule}

:func:`parse_rule` validates and returns the canonical rule: values canonicalized (domains
lower-case IDNA A-labels, phones digits only, handles without '@', text values normalized),
nested ``all``/``any`` flattened, children de-duplicated and sorted, single-child combinators
collapsed, double negation removed. Equal rules therefore have equal canonical JSON and the same
:func:`rule_id`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import idna

from python_steps.rules import regex_safety, regex_subset

ENTITY_KINDS = ("domain", "host", "url", "phone", "short_code", "handle", "email", "signature")
TEXT_KINDS = ("text_contains", "text_phrase", "text_regex")
LEAF_KINDS = (*ENTITY_KINDS, *TEXT_KINDS, "meta")
SUFFIX_KINDS = ("domain", "host")
PREFIX_KINDS = ("phone",)
PRESENT_KINDS = ("domain", "host", "url", "phone", "short_code", "handle", "email")
PREFIX_DIGITS = (2, 8)

META_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
MAX_VALUE_LENGTH = 512
MAX_TEXT_VALUE_LENGTH = 256
MAX_PHRASE_WORDS = 8
MAX_CHILDREN = 64
MAX_DEPTH = 8
MAX_LEAVES = 64

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_HANDLE_RE = re.compile(r"^[a-z0-9_.]{1,64}$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{8,128}$")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s/?#]+\S*$")


class RuleError(ValueError):
    """An invalid rule; the message names the path (``rule.all[1].value``) and the reason."""


@dataclass(frozen=True, order=True)
class Leaf:
    kind: str
    value: str
    op: str = (
        "eq"  # 'eq' | 'suffix' | 'prefix' | 'present' for entity and meta leaves; 'match' for text leaves
    )
    key: str | None = None  # meta leaves only


@dataclass(frozen=True)
class AllOf:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    child: Rule


Rule = Leaf | AllOf | AnyOf | Not


# ---- value canonicalization --------------------------------------------------------------------


def _plain_string(value: Any, path: str, limit: int = MAX_VALUE_LENGTH) -> str:
    if not isinstance(value, str):
        raise RuleError(f"{path}: must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise RuleError(f"{path}: must not contain NUL")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise RuleError(f"{path}: must not contain lone surrogates")
    if len(value) > limit:
        raise RuleError(f"{path}: longer than {limit} characters")
    return value


def canonical_domain(value: str, path: str = "value") -> str:
    v = unicodedata.normalize("NFKC", value.strip()).lower().rstrip(".")
    if not v:
        raise RuleError(f"{path}: empty domain")
    if not v.isascii():
        try:
            v = idna.encode(v, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError as e:
            raise RuleError(f"{path}: not a valid internationalized domain ({e})") from None
    if not _DOMAIN_RE.match(v):
        raise RuleError(f"{path}: {value!r} is not a domain name (letters, digits, '-', '_', dots)")
    return v


def normalize_text_value(value: str) -> str:
    """Text values are compared with ``normalized_text``, so they are normalized the same way.

    Uses ``python_steps.text.normalize.normalize_text`` (the Python twin of the SQL normalizer) when
    it is installed; until then NFKC + case folding + whitespace collapsing.
    """
    try:
        from python_steps.text.normalize import normalize_text  # type: ignore[import-not-found]
    except ImportError:
        return " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    return normalize_text(value)


def phrase_words(text: str) -> tuple[str, ...]:
    """The words of a text: maximal runs of word characters (``regex_subset.WORD_CLASS``, the n-gram tokenizer's)."""
    return tuple(re.findall(regex_subset.WORD_CLASS + "+", text))


def _canonical_value(kind: str, raw: Any, path: str) -> str:
    if kind == "meta" and isinstance(raw, bool):
        raw = "true" if raw else "false"
    elif kind in ("meta", "phone", "short_code") and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    limit = MAX_TEXT_VALUE_LENGTH if kind in TEXT_KINDS else MAX_VALUE_LENGTH
    v = _plain_string(raw, path, limit)
    if kind in ("domain", "host"):
        return canonical_domain(v, path)
    if kind == "url":
        v = v.strip()
        scheme, sep, rest = v.partition("://")
        if not sep:
            raise RuleError(f"{path}: a url needs a scheme, like https://example.com/path")
        host, slash, tail = rest.partition("/")
        v = f"{scheme.lower()}://{host.lower()}{slash}{tail}".rstrip(".,;:!?)")
        if not _URL_RE.match(v):
            raise RuleError(f"{path}: {raw!r} is not a url")
        return v
    if kind in ("phone", "short_code"):
        if re.search(r"[^0-9+()\s.\-]", v):
            raise RuleError(f"{path}: {raw!r} has characters other than digits and separators")
        digits = re.sub(r"[^0-9]", "", v)
        lo, hi = (6, 15) if kind == "phone" else (4, 6)
        if not lo <= len(digits) <= hi:
            raise RuleError(f"{path}: a {kind} has {lo} to {hi} digits, got {len(digits)}")
        return digits
    if kind == "handle":
        h = v.strip().lower().removeprefix("@")
        if not _HANDLE_RE.match(h):
            raise RuleError(f"{path}: {raw!r} is not a handle (letters, digits, '_', '.', up to 64)")
        return h
    if kind == "email":
        local, at, dom = v.strip().lower().rpartition("@")
        if not at or not local or re.search(r"[\s@\"]", local) or len(local) > 64:
            raise RuleError(f"{path}: {raw!r} is not an email address")
        return f"{local}@{canonical_domain(dom, path)}"
    if kind == "signature":
        s = v.strip().lower()
        if not _SIGNATURE_RE.match(s):
            raise RuleError(f"{path}: a signature is 8 to 128 hex digits")
        return s
    if kind == "text_contains":
        t = normalize_text_value(v)
        if not t.strip():
            raise RuleError(f"{path}: text_contains needs non-blank text")
        return t
    if kind == "text_phrase":
        words = phrase_words(normalize_text_value(v))
        if not words:
            raise RuleError(f"{path}: text_phrase needs at least one word")
        if len(words) > MAX_PHRASE_WORDS:
            raise RuleError(f"{path}: text_phrase has more than {MAX_PHRASE_WORDS} words")
        return " ".join(words)
    if kind == "text_regex":
        try:
            # Backtracking first: its reason ("nested quantifier: ...") says why, not just what.
            regex_safety.check_regex(v, syntax="subset")
            return regex_subset.render_source(regex_subset.parse_regex(v))
        except regex_subset.RegexError as e:
            raise RuleError(f"{path}: {e}") from None
    if kind == "meta":
        return v
    raise AssertionError(kind)


# ---- parsing -----------------------------------------------------------------------------------


def parse_rule(obj: Mapping[str, Any] | str) -> Rule:
    """Validate a rule (a dict, or its JSON text) and return its canonical form."""
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as e:
            raise RuleError(f"rule: not valid JSON ({e})") from None
    rule = canonicalize(_parse(obj, "rule", 1))
    if complexity(rule)["leaves"] > MAX_LEAVES:
        raise RuleError(f"rule: more than {MAX_LEAVES} leaves")
    if not is_anchored(rule):
        raise RuleError("rule: purely negative rules (every branch a 'not') would match almost everything")
    return rule


def _parse(obj: Any, path: str, depth: int) -> Rule:
    if depth > MAX_DEPTH:
        raise RuleError(f"{path}: nested deeper than {MAX_DEPTH}")
    if not isinstance(obj, Mapping):
        raise RuleError(f"{path}: must be an object, got {type(obj).__name__}")
    combinators = [k for k in ("all", "any", "not") if k in obj]
    if combinators:
        (name,) = combinators if len(combinators) == 1 else (None,)
        if name is None or len(obj) != 1:
            raise RuleError(f"{path}: a combinator object has exactly one key ('all', 'any' or 'not')")
        body = obj[name]
        if name == "not":
            return Not(_parse(body, f"{path}.not", depth + 1))
        if not isinstance(body, list) or not body:
            raise RuleError(f"{path}.{name}: must be a non-empty list of rules")
        if len(body) > MAX_CHILDREN:
            raise RuleError(f"{path}.{name}: more than {MAX_CHILDREN} children")
        kids = tuple(_parse(c, f"{path}.{name}[{i}]", depth + 1) for i, c in enumerate(body))
        return AllOf(kids) if name == "all" else AnyOf(kids)
    kind = obj.get("kind")
    if kind not in LEAF_KINDS:
        raise RuleError(
            f"{path}.kind: must be one of {', '.join(LEAF_KINDS)} (or use all/any/not), got {kind!r}"
        )
    allowed = {"kind", "value", "op"} | ({"key"} if kind == "meta" else set())
    extra = sorted(set(obj) - allowed)
    if extra:
        raise RuleError(f"{path}: unknown field(s) {', '.join(extra)} for kind {kind!r}")
    op = obj.get("op", "match" if kind in TEXT_KINDS else "eq")
    ops = _ops(kind)
    if op not in ops:
        raise RuleError(f"{path}.op: {kind} allows {' or '.join(ops)}, got {op!r}")
    if op == "present":
        if obj.get("value", "") != "":
            raise RuleError(f"{path}.value: op 'present' takes no value")
        return Leaf(kind=kind, value="", op=op)
    if "value" not in obj:
        raise RuleError(f"{path}.value: missing")
    if op == "prefix":
        return Leaf(kind=kind, value=_prefix_digits(obj["value"], f"{path}.value"), op=op)
    key = None
    if kind == "meta":
        key = obj.get("key")
        if not isinstance(key, str) or not META_KEY_RE.match(key):
            raise RuleError(f"{path}.key: must match {META_KEY_RE.pattern}, got {key!r}")
    value = _canonical_value(kind, obj["value"], f"{path}.value")
    return Leaf(kind=kind, value=value, op=op, key=key)


def _ops(kind: str) -> tuple[str, ...]:
    if kind in TEXT_KINDS:
        return ("match",)
    ops = ("eq", "suffix") if kind in SUFFIX_KINDS else ("eq",)
    if kind in PREFIX_KINDS:
        ops += ("prefix",)
    if kind in PRESENT_KINDS:
        ops += ("present",)
    return ops


def _prefix_digits(raw: Any, path: str) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise RuleError(f"{path}: a phone prefix is a string of digits (leading zeros matter)")
    v = _plain_string(raw, path).strip()
    lo, hi = PREFIX_DIGITS
    if not re.fullmatch(rf"\+?[0-9]{{{lo},{hi}}}", v):
        raise RuleError(f"{path}: a phone prefix is {lo} to {hi} digits, got {raw!r}")
    return v.lstrip("+")


# ---- canonical form ----------------------------------------------------------------------------


def canonicalize(rule: Rule) -> Rule:
    if isinstance(rule, Leaf):
        return rule
    if isinstance(rule, Not):
        child = canonicalize(rule.child)
        return child.child if isinstance(child, Not) else Not(child)
    cls = type(rule)
    flat: dict[str, Rule] = {}
    for c in (canonicalize(c) for c in rule.children):
        for g in c.children if isinstance(c, cls) else (c,):
            flat[canonical_json(g)] = g
    kids = tuple(flat[k] for k in sorted(flat))
    return kids[0] if len(kids) == 1 else cls(kids)


def to_json(rule: Rule) -> dict[str, Any]:
    if isinstance(rule, Leaf):
        if rule.op == "present":
            return {"kind": rule.kind, "op": rule.op}
        d: dict[str, Any] = {"kind": rule.kind, "value": rule.value}
        if rule.kind not in TEXT_KINDS:
            d["op"] = rule.op
        if rule.key is not None:
            d["key"] = rule.key
        return d
    if isinstance(rule, Not):
        return {"not": to_json(rule.child)}
    return {"all" if isinstance(rule, AllOf) else "any": [to_json(c) for c in rule.children]}


def canonical_json(rule: Rule) -> str:
    return json.dumps(to_json(rule), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rule_id(rule: Rule) -> str:
    """``r_`` + the first 16 hex digits of sha256 of the canonical JSON."""
    return "r_" + hashlib.sha256(canonical_json(canonicalize(rule)).encode("utf-8")).hexdigest()[:16]


def is_anchored(rule: Rule) -> bool:
    """True when every way to satisfy the rule needs some positive leaf."""
    if isinstance(rule, Leaf):
        return True
    if isinstance(rule, Not):
        return False
    if isinstance(rule, AllOf):
        return any(is_anchored(c) for c in rule.children)
    return all(is_anchored(c) for c in rule.children)


def leaves(rule: Rule) -> list[Leaf]:
    if isinstance(rule, Leaf):
        return [rule]
    if isinstance(rule, Not):
        return leaves(rule.child)
    return [x for c in rule.children for x in leaves(c)]


def depth(rule: Rule) -> int:
    if isinstance(rule, Leaf):
        return 1
    if isinstance(rule, Not):
        return 1 + depth(rule.child)
    return 1 + max(depth(c) for c in rule.children)


def complexity(rule: Rule) -> dict[str, int]:
    """``{'leaves', 'depth', 'score'}``; score = leaves + depth (a lone leaf scores 2)."""
    n, d = len(leaves(rule)), depth(rule)
    return {"leaves": n, "depth": d, "score": n + d}


# ---- description -------------------------------------------------------------------------------

_ENTITY_NAMES = {"short_code": "short code"}


def describe(rule: Rule) -> str:
    """A readable one-line description, e.g. ``domain = example.com AND text has phrase "win"``."""
    if isinstance(rule, Leaf):
        q = json.dumps(rule.value, ensure_ascii=False)
        if rule.kind == "text_contains":
            return f"text contains {q}"
        if rule.kind == "text_phrase":
            return f"text has phrase {q}"
        if rule.kind == "text_regex":
            return f"text matches /{rule.value}/"
        if rule.kind == "meta":
            return f"meta.{rule.key} = {q}"
        name = _ENTITY_NAMES.get(rule.kind, rule.kind)
        if rule.op == "present":
            return f"has an {name}" if name == "email" else f"has a {name}"
        if rule.op == "prefix":
            return f"{name} starts with {rule.value}"
        if rule.op == "suffix":
            return f"{name} under {rule.value}"
        return f"{name} = {rule.value}"
    if isinstance(rule, Not):
        inner = describe(rule.child)
        return f"NOT {inner}" if isinstance(rule.child, Leaf) else f"NOT ({inner})"
    sep = " AND " if isinstance(rule, AllOf) else " OR "
    # Leaves first, then negations, then groups (stable within each, so still deterministic).
    kids = sorted(rule.children, key=lambda c: 0 if isinstance(c, Leaf) else 1 if isinstance(c, Not) else 2)
    return sep.join(describe(c) if isinstance(c, Leaf | Not) else f"({describe(c)})" for c in kids)
