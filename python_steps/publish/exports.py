"""Rule exports: SQL, ROL (regex rule engine JSON) and typed JSON, from the rules of one status.

Consumers judge RAW messages; every export says what text it applies to.

``sql``
    One stand-alone ``SELECT id FROM messages WHERE ...;`` per rule, for a table
    ``messages(id, text, words)`` where ``text`` is the message text *normalized by PATAS* and
    ``words`` the words of that text joined by single spaces. In the warehouse both come from the
    raw text with the SQL functions dbt installs (``patas.normalize_text(text)``,
    ``patas.normalized_words(text)``, generated from the staging normalizer's macros); elsewhere
    ``patas normalize --jsonl`` prints them (``python_steps.text.normalize``, the Python twin). Three
    sections:

    - *portable*: runs unchanged on Postgres and SQLite: ``text contains`` leaves as
      ``text LIKE '%...%' ESCAPE '\\'`` (wildcards escaped), ``text has phrase`` leaves as
      ``(' ' || words || ' ') LIKE '% w1 w2 %'``, combined with AND / OR / NOT. Exact: a phrase
      hits when its words are consecutive words of the normalized text (``regex_subset.phrase_pattern``
      over the n-gram tokenizer's word class), which is what ``words`` spells with single spaces;
      words hold no LIKE wildcard, backslash or ASCII capital, and the normalized text no ASCII
      capital, so SQLite's ASCII case-insensitive LIKE changes nothing.
    - *postgres-only*: rules with a regex leaf, as ``text ~ '...'`` (POSIX regex); SQLite has no
      regex operator.
    - *warehouse-only*: rules on extracted entities (domain, phone, handle, ...), signatures or meta,
      which no predicate over the text reproduces faithfully: exported as the compiler's SELECT
      over PATAS's message relation (``intermediate.int_messages_enriched``).

``rol``
    ``{version, created_at, description, rules: [{id, name, type: "regex", pattern, flags, weight,
    enabled, category, metadata}]}``. The consumer compiles ``pattern`` with ``flags``
    (``["IGNORECASE"]``) and searches the RAW message text. ``metadata.applies_to`` says what the
    pattern matches: ``"raw_text"`` (``python_steps.rules.raw_text``: look-alike, case and
    zero-width classes derived from the normalizer's tables; the same hits as shadow evaluation on
    the raw text) or ``"normalized_text"`` (the compiler's regex; the consumer normalizes first,
    ``patas normalize``). Patterns are wrapped in ``(?-i:...)``: they spell out the case folding
    PATAS does, which Python's IGNORECASE would widen. Rules without any regex form (entity,
    signature, meta leaves) are left out and listed under ``skipped``.

``json``
    The typed rules with their status, tier, promotion metrics and latest evaluation metrics.

Deterministic: rules in id order, no wall clock (``created_at`` is the latest promotion time of
the exported rules unless the caller gives one). User text reaches SQL only through the rule
compiler's ``quote_literal``; descriptions in SQL comments are flattened to one line.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from python_steps import rules as rl
from python_steps.lifecycle import manual
from python_steps.rules import raw_text
from python_steps.rules.compiler import leaf_regex

FORMATS = ("sql", "rol", "json")
STATUSES = ("candidate", "shadow", "active", "deprecated", "all")
PORTABLE, POSTGRES, WAREHOUSE = "portable", "postgres-only", "warehouse-only"
FILE_NAMES = {"sql": "rules.sql", "rol": "rules.rol.json", "json": "rules.json", "features": "features.json"}
ROL_FORMAT_VERSION = "1.0"


class ExportError(ValueError):
    pass


# ---- reading the rules -------------------------------------------------------------------------


def load_rules(conn: psycopg.Connection, status: str = "active") -> list[dict[str, Any]]:
    """The rules of one status (or 'all'), with typed rule, tier and metrics, in id order."""
    if status not in STATUSES:
        raise ExportError(f"status must be one of {STATUSES}, not {status!r}")
    exists = conn.execute("select to_regclass('patas.rule_lifecycle') is not null").fetchone()[0]
    if not exists:
        return []
    has_history = conn.execute("select to_regclass('patas.rule_metrics_history') is not null").fetchone()[0]
    latest = (
        """
        left join lateral (
            select to_jsonb(h) - 'recorded_at' as metrics
            from patas.rule_metrics_history as h
            where h.rule_id = l.rule_id and h.window_name = 'evaluation'
            order by h.run_seq desc
            limit 1
        ) as latest on true
        """
        if has_history
        else "left join lateral (select null::jsonb as metrics) as latest on true"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""
            select l.rule_id, l.version, l.status, l.is_pinned, l.tier, l.promoted_at, l.promoted_run_id,
                   l.promoted_metrics, d.rule_json, d.description, d.sql_expression, d.regex, d.origin,
                   d.pattern_id, d.evaluation_kind, latest.metrics as latest_metrics
            from patas.rule_lifecycle as l
            inner join patas.rule_drafts as d on d.rule_id = l.rule_id and d.version = l.version
            {latest}
            where %s = 'all' or l.status = %s
            order by l.rule_id
            """,
            (status, status),
        ).fetchall()


# ---- SQL ---------------------------------------------------------------------------------------


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return rl.quote_literal(f"%{escaped}%")


def _text_sql(rule: rl.Rule, allow_regex: bool) -> str | None:
    """A predicate over ``text`` (normalized) and ``words``, or None when the rule needs more."""
    if isinstance(rule, rl.Leaf):
        if rule.kind == "text_contains":
            return f"text LIKE {_like_pattern(rule.value)} ESCAPE '\\'"
        if rule.kind == "text_phrase":
            # words: the normalized text's words joined by single spaces; the phrase's words are
            # words (no wildcard, no backslash), so the escape only documents it.
            return f"(' ' || words || ' ') LIKE {_like_pattern(' ' + rule.value + ' ')} ESCAPE '\\'"
        if rule.kind == "text_regex" and allow_regex:
            pattern = leaf_regex(rule, "postgres")
            return None if pattern is None else f"text ~ {rl.quote_literal(pattern)}"
        return None
    if isinstance(rule, rl.Not):
        inner = _text_sql(rule.child, allow_regex)
        return None if inner is None else f"NOT ({inner})"
    parts = [_text_sql(c, allow_regex) for c in rule.children]
    if any(p is None for p in parts):
        return None
    sep = " AND " if isinstance(rule, rl.AllOf) else " OR "
    return "(" + sep.join(parts) + ")"  # type: ignore[arg-type]


def sql_export_kind(rule_json: Mapping[str, Any]) -> tuple[str, str]:
    """(section, statement) for one typed rule. Raw-SQL manual rules are warehouse-only."""
    if "raw_sql" in rule_json:
        return WAREHOUSE, " ".join(str(rule_json["raw_sql"]).split()).rstrip(";")
    rule = rl.parse_rule(rule_json)
    portable = _text_sql(rule, allow_regex=False)
    if portable is not None:
        return PORTABLE, f"SELECT id FROM messages WHERE {portable}"
    pg = _text_sql(rule, allow_regex=True)
    if pg is not None:
        return POSTGRES, f"SELECT id FROM messages WHERE {pg}"
    return WAREHOUSE, rl.compile_select(rule)


def _one_line(text: str | None) -> str:
    return " ".join(str(text or "").split())


def _sql(rules: Sequence[Mapping[str, Any]], status: str) -> str:
    sections: dict[str, list[str]] = {PORTABLE: [], POSTGRES: [], WAREHOUSE: []}
    for r in rules:
        section, statement = sql_export_kind(r["rule_json"])
        sections[section].append(
            f"-- rule: {r['rule_id']} v{r['version']} [{r['tier']}] {_one_line(r['description'])}\n{statement};\n"
        )
    head = [
        f"-- PATAS rules ({status}): {len(rules)} rule(s).",
        "-- Each statement selects the ids of the messages one rule hits, from messages(id, text, words):",
        "-- text is the PATAS-normalized message text, words its words joined by single spaces.",
        "-- In the PATAS warehouse, from raw text (functions generated from the staging normalizer):",
        "--   create temporary view messages as select message_id as id, patas.normalize_text(text) as text,",
        "--     patas.normalized_words(text) as words from <your table of raw messages>",
        "-- Elsewhere (SQLite, ...): patas normalize --jsonl < raw.jsonl  prints each JSON line with",
        '--   "normalized_text" and "words" added (--text / --words: one line per input line).',
    ]
    titles = {
        PORTABLE: "portable: Postgres and SQLite, unchanged",
        POSTGRES: "postgres-only: POSIX regex operator ~ (regex rules)",
        WAREHOUSE: "warehouse-only: entity, signature or meta rules over PATAS's message relation",
    }
    out = "\n".join(head) + "\n"
    for section in (PORTABLE, POSTGRES, WAREHOUSE):
        out += f"\n-- section: {section} -- {titles[section]} ({len(sections[section])})\n\n"
        out += "\n".join(sections[section])
    return out


# ---- ROL and JSON ------------------------------------------------------------------------------


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _created_at(rules: Sequence[Mapping[str, Any]], given: str | None) -> str | None:
    if given is not None:
        return given
    stamps = [r["promoted_at"] for r in rules if r.get("promoted_at") is not None]
    return _iso(max(stamps)) if stamps else None


# The raw-text regex of a rule depends only on the rule and on this code: the rule modules, the
# normalizer's tables and Unicode's database. The character classes behind it cost a pass over
# Unicode's decomposition mappings per process (python_steps.rules.raw_text._decomposable), so
# exports keep the patterns they rendered in a file per code version (``cache_dir``) and a run whose
# active set is unchanged renders none.
RAW_REGEX_CODE = ("python_steps/rules", "python_steps/text")


@functools.lru_cache(maxsize=1)
def raw_regex_code_version() -> str:
    root = Path(__file__).resolve().parents[2]
    h = hashlib.md5(f"{unicodedata.unidata_version}|{sys.version_info[:2]}".encode())
    for path in sorted(p for folder in RAW_REGEX_CODE for p in (root / folder).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


class RawRegexCache:
    """``{canonical rule JSON: raw-text pattern or None}``, loaded from and saved to ``cache_dir``
    (one JSON file per code version; None: no file, every pattern is rendered)."""

    def __init__(self, cache_dir: Path | None):
        self.path = cache_dir / f"raw_regex-{raw_regex_code_version()}.json" if cache_dir else None
        self.patterns: dict[str, str | None] = {}
        self.dirty = False
        if self.path is not None and self.path.is_file():
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.patterns = loaded

    def raw_regex(self, rule_json: Mapping[str, Any]) -> str | None:
        key = json.dumps(rule_json, sort_keys=True, ensure_ascii=False)
        if key not in self.patterns:
            self.patterns[key] = raw_text.raw_regex(rl.parse_rule(rule_json))
            self.dirty = True
        return self.patterns[key]

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for old in self.path.parent.glob("raw_regex-*.json"):
                if old != self.path:
                    old.unlink(missing_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.patterns, sort_keys=True, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self.path)
        self.dirty = False


def rol_pattern(
    rule_json: Mapping[str, Any], regex: str | None, cache: RawRegexCache | None = None
) -> tuple[str, str] | None:
    """``(pattern, applies_to)`` of one rule for a regex engine that searches RAW text with
    IGNORECASE: the raw-text form where one exists, else the compiler's regex over normalized
    text (``regex``), else None."""
    if "raw_sql" not in rule_json:
        raw = (cache or RawRegexCache(None)).raw_regex(rule_json)
        if raw is not None:
            return raw, "raw_text"
    if regex:
        return raw_text.normalized_regex(regex), "normalized_text"
    return None


def _rol(
    rules: Sequence[Mapping[str, Any]],
    status: str,
    created_at: str | None,
    cache: RawRegexCache | None = None,
) -> str:
    entries, skipped = [], []
    for r in rules:
        form = rol_pattern(r["rule_json"], r["regex"], cache)
        if form is None:
            skipped.append(
                {"id": r["rule_id"], "reason": "no faithful regex form (entity, signature or meta rule)"}
            )
            continue
        pattern, applies_to = form
        m = r["latest_metrics"] or r["promoted_metrics"] or {}
        entries.append(
            {
                "id": r["rule_id"],
                "name": _one_line(r["description"]),
                "type": "regex",
                "pattern": pattern,
                "flags": ["IGNORECASE"],
                "weight": round(float(m.get("precision_lower_bound") or 0.0), 6),
                "enabled": r["status"] == "active",
                "category": "spam",
                "metadata": {
                    "applies_to": applies_to,
                    "match": "re.search",
                    "rule_version": r["version"],
                    "status": r["status"],
                    "tier": r["tier"],
                    "origin": r["origin"],
                    "precision": m.get("precision"),
                    "recall": m.get("recall"),
                    "hit_count": m.get("hit_count"),
                },
            }
        )
    doc = {
        "version": ROL_FORMAT_VERSION,
        "created_at": _created_at(rules, created_at),
        "description": (
            f"PATAS {status} rules as regular expressions, searched in the raw message text with the "
            "flags given; metadata.applies_to 'normalized_text' means the text must first be "
            "normalized by PATAS (patas normalize)"
        ),
        "rules": entries,
        "skipped": skipped,
    }
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _json(rules: Sequence[Mapping[str, Any]], status: str) -> str:
    doc = {
        "format": "patas-rules/1",
        "status": status,
        "rules": [
            {
                "id": r["rule_id"],
                "version": r["version"],
                "status": r["status"],
                "is_pinned": r["is_pinned"],
                "tier": r["tier"],
                "origin": r["origin"],
                "pattern_id": r["pattern_id"],
                "description": r["description"],
                "rule": r["rule_json"],
                "evaluation_kind": r["evaluation_kind"],
                "sql_expression": r["sql_expression"],
                "regex": r["regex"],
                "promoted_at": _iso(r["promoted_at"]),
                "promoted_run_id": r["promoted_run_id"],
                "promoted_metrics": r["promoted_metrics"],
                "latest_metrics": r["latest_metrics"],
            }
            for r in rules
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def _features(rules: Sequence[Mapping[str, Any]]) -> str:
    """FEATURE_ONLY rules (not deprecated): signals for a downstream model, never blocking rules."""
    doc = {
        "format": "patas-features/1",
        "note": "FEATURE_ONLY rules: use them as model features, never as blocking rules",
        "features": [
            {
                "id": r["rule_id"],
                "version": r["version"],
                "status": r["status"],
                "description": r["description"],
                "rule": r["rule_json"],
                "sql_expression": r["sql_expression"],
                "regex": r["regex"],
                "latest_metrics": r["latest_metrics"],
            }
            for r in rules
            if r["tier"] == "FEATURE_ONLY" and r["status"] in ("candidate", "shadow")
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# ---- entry points ------------------------------------------------------------------------------


def export_rules(
    conn: psycopg.Connection, fmt: str, status: str = "active", *, created_at: str | None = None
) -> str:
    """The rules of ``status`` in format ``fmt`` ('sql', 'rol' or 'json') as text."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, not {fmt!r}")
    rules = load_rules(conn, status)
    if fmt == "sql":
        return _sql(rules, status)
    if fmt == "rol":
        return _rol(rules, status, created_at)
    return _json(rules, status)


def render_exports(
    conn: psycopg.Connection, status: str = "active", *, cache_dir: Path | None = None
) -> dict[str, str]:
    """Every format as text, ``{fmt: text}``, read in the caller's transaction; plus ``features``:
    the FEATURE_ONLY rules, exported as features (never as blocking rules). ``cache_dir``: where
    the raw-text regexes already rendered by this code are kept (:class:`RawRegexCache`)."""
    rules = load_rules(conn, status)
    cache = RawRegexCache(cache_dir)
    texts = {
        "sql": _sql(rules, status),
        "rol": _rol(rules, status, None, cache),
        "json": _json(rules, status),
        "features": _features(load_rules(conn, "all")),
    }
    cache.save()
    return texts


def write_export_texts(texts: Mapping[str, str], out_dir: Path) -> dict[str, Path]:
    """Write rendered exports to ``out_dir`` (rules.sql, rules.rol.json, rules.json, and
    features.json when rendered), each file replaced atomically (a temporary file renamed over it);
    return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in [f for f in FILE_NAMES if f in texts]:
        path = out_dir / FILE_NAMES[fmt]
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(texts[fmt], encoding="utf-8")
        tmp.replace(path)
        written[fmt] = path
    return written


def write_exports(
    conn: psycopg.Connection, out_dir: Path, status: str = "active", *, cache_dir: Path | None = None
) -> dict[str, Path]:
    """Write every format to ``out_dir`` (rules.sql, rules.rol.json, rules.json); return the paths."""
    return write_export_texts(render_exports(conn, status, cache_dir=cache_dir), out_dir)


MANUAL_ACTIONS = {
    "promote": manual.promote_rule,
    "deprecate": manual.deprecate_rule,
    "pin": manual.pin_rule,
    "approve": manual.approve_rule,
    "reject": manual.reject_rule,
}


def manual_action(
    conn: psycopg.Connection,
    action: str,
    rule_id: str,
    *,
    reason: str,
    actor: str,
    exports_dir: Path | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A manual promote / deprecate / pin (``python_steps.lifecycle.manual``, audited) that reaches
    consumers before it returns: ``marts.active_rules`` is refreshed in the action's transaction
    (by the lifecycle), and with ``exports_dir`` the export files are rendered in that same
    transaction and replaced, each atomically, once it commits. The CLI and the API pass the
    settings' exports folder."""
    fn = MANUAL_ACTIONS[action]
    with conn.transaction():
        result = fn(conn, rule_id, reason=reason, actor=actor, **kw)
        texts = render_exports(conn) if exports_dir is not None else None
    if texts is not None and exports_dir is not None:
        write_export_texts(texts, exports_dir)
    return result


def parse_sql_export(text: str) -> list[dict[str, str]]:
    """The statements of a SQL export: [{rule_id, section, sql}] (for tests and tooling)."""
    out: list[dict[str, str]] = []
    section, rule_id = "", None
    for line in text.splitlines():
        if line.startswith("-- section: "):
            section = line[len("-- section: ") :].split(" ", 1)[0]
        elif line.startswith("-- rule: "):
            rule_id = line[len("-- rule: ") :].split(" ", 1)[0]
        elif line.strip() and not line.startswith("--") and rule_id:
            out.append({"rule_id": rule_id, "section": section, "sql": line})
            rule_id = None
    return out
