"""The Python reference evaluator: what a rule means, over one message row.

``row`` is a mapping with the columns of the message relation (``docs/contracts.md``):
``normalized_text``, ``signature``, the entity arrays (``domains``, ``hosts``, ``urls``, ``phones``,
``short_codes``, ``handles``, ``emails``) and ``meta`` (a dict). Missing arrays count as empty.
The SQL predicate from :func:`compile_sql_predicate` selects exactly the rows for which this
returns True (tested against a real Postgres by a property test).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from python_steps.rules.compiler import ENTITY_COLUMNS, leaf_regex
from python_steps.rules.ir import AllOf, Leaf, Not, Rule


@lru_cache(maxsize=4096)
def _compiled(leaf: Leaf) -> re.Pattern[str]:
    pattern = leaf_regex(leaf, "python")
    assert pattern is not None
    return re.compile(pattern)


def meta_text(value: Any) -> str | None:
    """A JSON value as Postgres ``->>`` renders it (strings bare, null as SQL NULL)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # Floats and nested values: jsonb's rendering; exact for ordinary floats, objects and arrays
    # with string keys (jsonb orders keys by length, then bytes, and prints ", " / ": ").
    return _jsonb_text(value)


def _jsonb_text(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_jsonb_text(value[k])}" for k in keys)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_jsonb_text(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool | int):
        return meta_text(value) or ""
    return repr(value)


def evaluate(rule: Rule, row: Mapping[str, Any]) -> bool:
    """True when the rule hits the message ``row``."""
    if isinstance(rule, Not):
        return not evaluate(rule.child, row)
    if isinstance(rule, AllOf):
        return all(evaluate(c, row) for c in rule.children)
    if not isinstance(rule, Leaf):
        return any(evaluate(c, row) for c in rule.children)
    kind, value = rule.kind, rule.value
    if kind in ENTITY_COLUMNS:
        items = row.get(ENTITY_COLUMNS[kind]) or ()
        if rule.op == "present":
            return len(items) > 0
        if rule.op == "prefix":
            return any(x.startswith(value) for x in items)
        if rule.op == "suffix":
            return any(x == value or x.endswith("." + value) for x in items)
        return value in items
    if kind == "signature":
        return row.get("signature") == value
    if kind == "meta":
        meta = row.get("meta") or {}
        if isinstance(meta, str):
            meta = json.loads(meta)
        return isinstance(meta, dict) and meta_text(meta.get(rule.key)) == value
    text = row.get("normalized_text") or ""
    if kind == "text_contains":
        return value in text
    return _compiled(rule).search(text) is not None
