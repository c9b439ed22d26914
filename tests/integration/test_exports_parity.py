"""Export parity: each export, applied to the same messages, selects exactly what shadow evaluation
counted (Postgres and SQLite for the SQL export, Python ``re`` for ROL, the reference evaluator for
the typed JSON).

The messages table of the exports holds normalized text (see ``python_steps.publish.exports``); the
fixture's normalized text carries LIKE wildcards, quotes, backslashes and non-Latin letters.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from test_shadow_eval_support import (
    MESSAGES,
    RULES,
    create_database,
    create_fixture,
    draft_rule,
    drop_database,
    message,
    run_shadow_evaluation,
    scratch_project,
)

from python_steps import rules as rl
from python_steps.lifecycle import store as lc
from python_steps.lifecycle.profiles import ProfileConfig, SafetyProfile, TierThresholds
from python_steps.publish import exports as ex
from python_steps.text.lines import normalize_jsonl
from python_steps.text.normalize import tokens

pytestmark = pytest.mark.integration

RUN_ID = "run-export-1"
PROFILE = SafetyProfile("small", min_precision=0.9, max_ham_hits=0, max_coverage=0.5, min_hits=2)
# Tiers sized for the hand-made window; promotion on its own metrics (folds=0: no mining folds).
CONFIG = ProfileConfig(
    profiles={"small": PROFILE},
    default_profile="small",
    tiers=TierThresholds(safe_auto_min_precision=0.9, safe_auto_max_false_positive_rate=1.0),
)

TRICKY = [
    message(201, "get 50%_off today", True),
    message(202, "get 50% off today", False),
    message(203, "it's free, o'neil", True),
    message(204, "path a\\b\\c wins", True),
    message(205, "abc_def xyz", False),
    message(206, "бесплатно приз ждёт", True),
    message(207, "free entry!! claim now", True),
    message(208, "claimed nothing", False),
]

TEXT_RULES = {
    "wildcards": {"kind": "text_contains", "value": "50%_off"},
    "quote": {"kind": "text_contains", "value": "it's free"},
    "backslash": {"kind": "text_contains", "value": "a\\b"},
    "underscore": {"kind": "text_contains", "value": "_"},
    "cyrillic": {"kind": "text_contains", "value": "приз"},
    "and_not": {
        "all": [
            {"kind": "text_contains", "value": "free"},
            {"not": {"kind": "text_contains", "value": "entry"}},
        ]
    },
    "or": {
        "any": [{"kind": "text_contains", "value": "claim now"}, {"kind": "text_contains", "value": "museum"}]
    },
    "phrase": {"kind": "text_phrase", "value": "claim"},
    "regex": {"kind": "text_regex", "value": "free entry!+"},
    "mixed": {
        "all": [{"kind": "text_contains", "value": "win"}, {"kind": "domain", "value": "spam.example"}]
    },
    "meta": {"kind": "meta", "key": "channel", "value": "sms"},
}


@pytest.fixture(scope="module")
def exported(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    name = f"patas_exports_{os.getpid()}"
    url = create_database(server_url, name)
    project = scratch_project(tmp_path_factory.mktemp("exports"))
    corpus = MESSAGES + TRICKY
    with psycopg.connect(url) as conn:
        create_fixture(conn, corpus)
        ids = {key: draft_rule(conn, obj) for key, obj in {**RULES, **TEXT_RULES}.items()}
    run_shadow_evaluation(project, url, RUN_ID)
    with psycopg.connect(url) as conn:
        lc.apply_lifecycle(conn, run_id=RUN_ID, profile="small", config=CONFIG, folds=0)
        hits: dict[str, set[int]] = {rid: set() for rid in ids.values()}
        for rid, mid in conn.execute(
            "select rule_id, message_id from marts.rule_hits where window_name = 'evaluation'"
        ).fetchall():
            hits[rid].add(mid)
        docs = {fmt: ex.export_rules(conn, fmt, status="all") for fmt in ex.FORMATS}
    evaluation = [m for m in corpus if m["window"] == "evaluation"]
    yield {"url": url, "ids": ids, "hits": hits, "docs": docs, "messages": evaluation}
    drop_database(server_url, name)


def test_the_fixture_hits_what_it_should(exported: dict) -> None:
    ids, hits = exported["ids"], exported["hits"]
    assert hits[ids["wildcards"]] == {201}  # not 202: '%' and '_' are literal
    assert hits[ids["quote"]] == {203}
    assert hits[ids["backslash"]] == {204}
    assert hits[ids["underscore"]] == {4, 201, 205}  # 4: @promo_bot
    assert hits[ids["cyrillic"]] == {206}
    assert hits[ids["or"]] == {8, 207}  # 8: the museum


def test_sql_sections(exported: dict) -> None:
    ids = exported["ids"]
    statements = {s["rule_id"]: s for s in ex.parse_sql_export(exported["docs"]["sql"])}
    assert set(statements) == set(ids.values())
    section = {key: statements[rid]["section"] for key, rid in ids.items()}
    portable = ("wildcards", "quote", "backslash", "underscore", "cyrillic", "and_not", "or", "free_entry")
    for key in (*portable, "phrase"):
        assert section[key] == ex.PORTABLE, key
    for key in ("regex", "win_regex"):
        assert section[key] == ex.POSTGRES, key
    for key in ("mixed", "meta", "domain", "phone_and_handle", "code_or_handle", "nothing", "call_not_bot"):
        assert section[key] == ex.WAREHOUSE, key
    assert exported["docs"]["sql"].count(";\n") == len(ids)


def _words(normalized: str) -> str:
    return " ".join(tokens(normalized))


def _sqlite(rows: list[tuple[int, str, str]]) -> sqlite3.Connection:
    """messages(id, text, words) as the SQL export's header describes it."""
    db = sqlite3.connect(":memory:")
    db.execute("create table messages (id integer primary key, text text not null, words text not null)")
    db.executemany("insert into messages values (?, ?, ?)", rows)
    return db


def test_portable_sql_runs_unchanged_on_sqlite_and_postgres(exported: dict) -> None:
    statements = ex.parse_sql_export(exported["docs"]["sql"])
    rows = [
        (m["message_id"], m["normalized_text"], _words(m["normalized_text"])) for m in exported["messages"]
    ]
    db = _sqlite(rows)
    checked = 0
    with psycopg.connect(exported["url"]) as conn:
        conn.execute(
            "create temporary table messages (id bigint primary key, text text not null, words text)"
        )
        with conn.cursor() as cur:
            cur.executemany("insert into pg_temp.messages values (%s, %s, %s)", rows)
        for s in statements:
            expected = exported["hits"][s["rule_id"]]
            if s["section"] in (ex.PORTABLE, ex.POSTGRES):
                got_pg = {r[0] for r in conn.execute(s["sql"].rstrip(";")).fetchall()}
                assert got_pg == expected, s
                checked += 1
            if s["section"] == ex.PORTABLE:
                got_lite = {r[0] for r in db.execute(s["sql"]).fetchall()}
                assert got_lite == expected, s
                checked += 1
    assert checked == 2 * 9 + 2  # 9 portable rules on both engines, 2 postgres-only


def test_warehouse_sql_selects_the_shadow_hits(exported: dict) -> None:
    window = {m["message_id"] for m in exported["messages"]}
    with psycopg.connect(exported["url"]) as conn:
        for s in ex.parse_sql_export(exported["docs"]["sql"]):
            if s["section"] != ex.WAREHOUSE:
                continue
            got = {r[0] for r in conn.execute(s["sql"].rstrip(";")).fetchall()} & window
            assert got == exported["hits"][s["rule_id"]], s


def test_rol_regexes_select_the_shadow_hits(exported: dict) -> None:
    doc = json.loads(exported["docs"]["rol"])
    assert set(doc) >= {"version", "created_at", "description", "rules"}
    ids = exported["ids"]
    exported_ids = {r["id"] for r in doc["rules"]}
    skipped = {s["id"] for s in doc["skipped"]}
    assert exported_ids | skipped == set(ids.values()) and not exported_ids & skipped
    assert ids["mixed"] in skipped and ids["meta"] in skipped and ids["domain"] in skipped
    for r in doc["rules"]:
        assert r["type"] == "regex" and r["category"] == "spam"
        assert set(r) == {
            "id",
            "name",
            "type",
            "pattern",
            "flags",
            "weight",
            "enabled",
            "category",
            "metadata",
        }
        assert r["flags"] == ["IGNORECASE"]
        pattern = re.compile(r["pattern"], re.IGNORECASE)
        column = {"raw_text": "text", "normalized_text": "normalized_text"}[r["metadata"]["applies_to"]]
        got = {m["message_id"] for m in exported["messages"] if pattern.search(m[column])}
        assert got == exported["hits"][r["id"]], r
    applies = {r["id"]: r["metadata"]["applies_to"] for r in doc["rules"]}
    assert applies[ids["phrase"]] == "raw_text" and applies[ids["quote"]] == "normalized_text"


def test_json_rules_evaluate_to_the_shadow_hits(exported: dict) -> None:
    doc = json.loads(exported["docs"]["json"])
    assert len(doc["rules"]) == len(exported["ids"])
    for r in doc["rules"]:
        rule = rl.parse_rule(r["rule"])
        assert rl.rule_id(rule) == r["id"]
        got = {m["message_id"] for m in exported["messages"] if rl.evaluate(rule, m)}
        assert got == exported["hits"][r["id"]], r["id"]
        assert r["latest_metrics"]["hit_count"] == len(got)


def test_exports_are_deterministic(exported: dict, tmp_path) -> None:
    with psycopg.connect(exported["url"]) as conn:
        again = {fmt: ex.export_rules(conn, fmt, status="all") for fmt in ex.FORMATS}
        written = ex.write_exports(conn, tmp_path, status="all")
    assert again == exported["docs"]
    assert {p.name for p in written.values()} == {
        "rules.sql",
        "rules.rol.json",
        "rules.json",
        "features.json",
    }
    assert written["rol"].read_text() == exported["docs"]["rol"]
    features = json.loads(written["features"].read_text())  # FEATURE_ONLY rules: features, never blocking
    assert features["format"] == "patas-features/1"
    with psycopg.connect(exported["url"]) as conn:
        feature_only = {
            r[0]
            for r in conn.execute(
                "select rule_id from patas.rule_lifecycle where tier = 'FEATURE_ONLY' and status in ('candidate', 'shadow')"
            )
        }
    assert {f["id"] for f in features["features"]} == feature_only


def test_active_export_only_holds_active_rules(exported: dict) -> None:
    with psycopg.connect(exported["url"]) as conn:
        active = {
            r[0] for r in conn.execute("select rule_id from patas.rule_lifecycle where status = 'active'")
        }
        doc = json.loads(ex.export_rules(conn, "json"))
    assert {r["id"] for r in doc["rules"]} == active and active
    with pytest.raises(ex.ExportError):
        ex.export_rules(None, "xml")  # type: ignore[arg-type]


# ---- parity on raw text, after a whole pipeline run ----------------------------------------------
#
# For the active rules of a real run: shadow evaluation's hits (marts.rule_hits, evaluation window)
# = the SQL export run in Postgres over patas.normalize_text(text) of the RAW messages = the
# portable SQL export run in SQLite over `patas normalize` output; ROL patterns marked raw_text
# find the same messages in the raw text (compiled with the consumer's IGNORECASE), the others in
# the normalized text. Prints the share of rules and of spam hits that are raw-text faithful.

UCI = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "uci_sms_spam.jsonl"

EVALUATION_SQL = """
select m.message_id, m.text, m.is_spam
from raw.messages as m
inner join intermediate.int_messages_windowed as w on w.message_id = m.message_id
where w.window_name = 'evaluation'
order by m.message_id
"""


@pytest.fixture(scope="module", params=["generated", "uci"])
def pipeline_run(request, server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from patas.bench.harness import patched_environ
    from patas.runner import run_pipeline
    from python_steps.bench.generate import generate_corpus
    from python_steps.ingest.load import ingest_file
    from python_steps.settings import load_settings

    kind = request.param
    tmp = tmp_path_factory.mktemp(f"parity_{kind}")
    if kind == "generated":
        corpus = tmp / "corpus.jsonl"
        generate_corpus(8000, 11, corpus)  # about a fifth of the spam obfuscated
    else:
        if not UCI.exists():
            pytest.skip(f"shared UCI data not present at {UCI}")
        corpus = UCI
    name = f"patas_parity_{kind}_{os.getpid()}"
    url = create_database(server_url, name)
    env = {"DAGSTER_HOME": str(tmp / "dagster"), "PATAS_HOME": str(tmp / "home"), "PATAS_DATABASE_URL": url}
    (tmp / "dagster").mkdir()
    try:
        with patched_environ(env):
            ingest_file(url, corpus)
            summary = run_pipeline(load_settings(), url)
        assert summary["success"], summary.get("failures")
        yield {"kind": kind, "url": url, "home": tmp / "home"}
    finally:
        drop_database(server_url, name)


def test_exports_agree_with_shadow_evaluation_on_raw_text(pipeline_run: dict) -> None:
    url = pipeline_run["url"]
    with psycopg.connect(url) as conn:
        active = ex.load_rules(conn, "active")
        docs = ex.render_exports(conn)
        messages = conn.execute(EVALUATION_SQL).fetchall()
        hits: dict[str, set[int]] = {r["rule_id"]: set() for r in active}
        for rid, mid in conn.execute(
            "select rule_id, message_id from marts.rule_hits where window_name = 'evaluation'"
        ).fetchall():
            if rid in hits:
                hits[rid].add(mid)
        assert active and any(hits.values())
        window = {m[0] for m in messages}
        spam = {m[0] for m in messages if m[2]}

        # SQL export in Postgres, over the raw text through the generated functions
        conn.execute(
            """
            create temporary view messages as
            select m.message_id as id, patas.normalize_text(m.text) as text,
                   patas.normalized_words(m.text) as words
            from raw.messages as m
            inner join intermediate.int_messages_windowed as w on w.message_id = m.message_id
            where w.window_name = 'evaluation'
            """
        )
        statements = ex.parse_sql_export(docs["sql"])
        assert {s["rule_id"] for s in statements} == set(hits)
        for s in statements:
            got = {r[0] for r in conn.execute(s["sql"].rstrip(";")).fetchall()}
            if s["section"] == ex.WAREHOUSE:
                got &= window
            assert got == hits[s["rule_id"]], s

    # portable SQL in SQLite, over `patas normalize --jsonl` output of the raw text
    lines = [json.dumps({"id": mid, "text": text}, ensure_ascii=False) for mid, text, _ in messages]
    normalized = list(normalize_jsonl(lines))
    db = _sqlite([(o["id"], o["normalized_text"], o["words"]) for o in normalized])
    portable = [s for s in statements if s["section"] == ex.PORTABLE]
    for s in portable:
        assert {r[0] for r in db.execute(s["sql"]).fetchall()} == hits[s["rule_id"]], s

    # ROL: raw_text patterns on the raw text (IGNORECASE, as the consumer compiles them)
    rol = json.loads(docs["rol"])
    raw = {mid: text for mid, text, _ in messages}
    norm = {o["id"]: o["normalized_text"] for o in normalized}
    raw_rules = []
    for r in rol["rules"]:
        rx = re.compile(r["pattern"], re.IGNORECASE)
        texts = raw if r["metadata"]["applies_to"] == "raw_text" else norm
        got = {mid for mid, text in texts.items() if rx.search(text)}
        assert got == hits[r["id"]], (r["id"], r["name"], r["metadata"]["applies_to"])
        if r["metadata"]["applies_to"] == "raw_text":
            raw_rules.append(r["id"])

    spam_hit = set().union(*hits.values()) & spam
    raw_spam_hit = set().union(*(hits[i] for i in raw_rules)) & spam if raw_rules else set()
    print(
        f"\n[{pipeline_run['kind']}] active rules: {len(active)}; portable SQL: {len(portable)}; "
        f"raw-text faithful ROL rules: {len(raw_rules)}/{len(active)} = {len(raw_rules) / len(active):.1%}; "
        f"spam hits covered by raw-text rules: {len(raw_spam_hit)}/{len(spam_hit)} = "
        f"{len(raw_spam_hit) / max(len(spam_hit), 1):.1%}"
    )
    assert portable and raw_rules


def test_manual_deprecate_reaches_reader_and_files(pipeline_run: dict, tmp_path) -> None:
    url = pipeline_run["url"]
    with psycopg.connect(url) as conn:
        victim = ex.load_rules(conn, "active")[0]["rule_id"]
        ex.manual_action(
            conn, "deprecate", victim, reason="parity test", actor="cli:test", exports_dir=tmp_path
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role patas_reader")
        ids = {r[0] for r in conn.execute("select rule_id from marts.active_rules").fetchall()}
        # the reader can apply the SQL export to raw text: the functions are its to execute
        assert conn.execute("select patas.normalize_text('FRее  c1aim')").fetchone()[0] == "free claim"
    assert victim not in ids and ids
    assert victim not in (tmp_path / "rules.rol.json").read_text()
    assert victim not in (tmp_path / "rules.sql").read_text()
