"""Shared fixtures of the shadow-evaluation, lifecycle and export tests (no tests in this file).

The shadow-evaluation models read three stage-1 models and two drafting tables. These tests
create those relations themselves, with the contract columns (docs/contracts.md) and a small
hand-made corpus, then run only the shadow-evaluation and lifecycle dbt models against them.

dbt runs in a scratch copy of the project that holds those models, their macros and stub models
standing in for the upstream ones (never run: ``ref()`` resolves to the fixture tables), so the
tests neither write ``target/`` in the shared work tree nor depend on the rest of the graph.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from python_steps import rules as rl
from python_steps import tables
from python_steps.settings import dbt_env

REPO_ROOT = Path(__file__).resolve().parents[2]

SHADOW_STAGING = ("stg_patas__rule_drafts", "stg_patas__rule_signal_clauses")
SHADOW_MODELS = ("rule_hits", "rule_evaluations", "rule_overlaps")
POST_LIFECYCLE_STAGING = (
    "stg_patas__rule_lifecycle",
    "stg_patas__rule_metrics_history",
    "stg_patas__ruleset_members",
)
POST_LIFECYCLE_MODELS = ("ruleset_evaluation", "active_rules", "rule_history")
UPSTREAM_STUBS = {
    "intermediate": (
        "int_messages_enriched",
        "int_message_signals_extracted",
        "int_messages_windowed",
        "int_message_labels_overridden",
    ),
}

# Stand-ins for the stage-1 models (the shadow-evaluation tests fill them by hand); the Python-written
# tables come from python_steps.tables.
FIXTURE_DDL = """
create schema if not exists intermediate;
create schema if not exists patas;
-- The effective-label overrides (label feedback, unbans); empty unless a test adds some.
create table intermediate.int_message_labels_overridden (
    message_id bigint primary key,
    external_id text,
    original_is_spam boolean,
    is_spam boolean not null,
    override_kind text not null,
    feedback_id bigint,
    feedback_source text,
    feedback_received_at timestamptz,
    is_changed boolean not null,
    is_reversal boolean not null
);
create table intermediate.int_messages_enriched (
    message_id bigint primary key,
    external_id text not null,
    text text not null,
    normalized_text text not null,
    signature text not null,
    urls text[] not null default '{}',
    hosts text[] not null default '{}',
    domains text[] not null default '{}',
    phones text[] not null default '{}',
    short_codes text[] not null default '{}',
    handles text[] not null default '{}',
    emails text[] not null default '{}',
    meta jsonb not null default '{}',
    event_at timestamptz,
    split_bucket integer,
    is_spam boolean,
    batch_id bigint not null default 1
);
create table intermediate.int_message_signals_extracted (
    message_id bigint not null,
    signal_kind text not null,
    signal_value text not null
);
-- The window of each message; the view int_messages_windowed adds it to the messages' columns.
create table intermediate.test_message_windows (
    message_id bigint primary key,
    window_name text not null
);
create view intermediate.int_messages_windowed as
select m.*, w.window_name
from intermediate.int_messages_enriched as m
inner join intermediate.test_message_windows as w on w.message_id = m.message_id;
"""

ENTITY_SIGNALS = {
    "urls": "url",
    "hosts": "host",
    "domains": "domain",
    "phones": "phone",
    "short_codes": "short_code",
    "handles": "handle",
    "emails": "email",
}


def message(
    message_id: int,
    text: str,
    is_spam: bool | None,
    window: str = "evaluation",
    **arrays: Any,
) -> dict[str, Any]:
    """A fixture message; normalized text is the lower-cased, space-collapsed text."""
    row = {
        "message_id": message_id,
        "external_id": f"m{message_id}",
        "text": text,
        "normalized_text": " ".join(text.lower().split()),
        "signature": arrays.pop("signature", f"{message_id:08x}"),
        "meta": arrays.pop("meta", {}),
        "is_spam": is_spam,
        "window": window,
    }
    for col in ENTITY_SIGNALS:
        row[col] = sorted(set(arrays.pop(col, [])))
    assert not arrays, arrays
    return row


def create_fixture(conn: psycopg.Connection, messages: Iterable[Mapping[str, Any]]) -> None:
    conn.execute(FIXTURE_DDL)
    tables.ensure_all(conn)  # the project's own definition of the drafts tables
    insert_messages(conn, messages)


def split_bucket(message_id: int, window: str) -> int | None:
    """A split bucket that puts the message in its window under the default hash split
    (dbt_project.yml: evaluation below patas_evaluation_share, 30), varied by id as real buckets
    are: the models that assign windows from the messages' own columns (macro window_predicate)
    must agree with the int_messages_windowed stand-in."""
    return {"evaluation": message_id % 30, "mining": 30 + message_id % 70}.get(window)


def insert_messages(conn: psycopg.Connection, messages: Iterable[Mapping[str, Any]]) -> None:
    with conn.cursor() as cur:
        for m in messages:
            cur.execute(
                """
                insert into intermediate.int_messages_enriched (message_id, external_id, text, normalized_text,
                    signature, urls, hosts, domains, phones, short_codes, handles, emails, meta, is_spam,
                    split_bucket)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    m["message_id"],
                    m["external_id"],
                    m["text"],
                    m["normalized_text"],
                    m["signature"],
                    *(m[c] for c in ENTITY_SIGNALS),
                    Jsonb(m["meta"]),
                    m["is_spam"],
                    split_bucket(m["message_id"], m["window"]),
                ),
            )
            cur.execute(
                "insert into intermediate.test_message_windows (message_id, window_name) values (%s, %s)",
                (m["message_id"], m["window"]),
            )
            signals = {(kind, v) for col, kind in ENTITY_SIGNALS.items() for v in m[col]}
            signals.add(("signature", m["signature"]))
            words = m["normalized_text"].split()
            for n in (1, 2, 3):
                signals.update(("ngram", " ".join(words[i : i + n])) for i in range(len(words) - n + 1))
            cur.executemany(
                "insert into intermediate.int_message_signals_extracted values (%s, %s, %s)",
                [(m["message_id"], k, v) for k, v in sorted(signals)],
            )
    conn.commit()


def clear_messages(conn: psycopg.Connection) -> None:
    conn.execute(
        "truncate intermediate.int_messages_enriched, intermediate.int_message_signals_extracted, "
        "intermediate.test_message_windows"
    )
    conn.commit()


def draft_rule(
    conn: psycopg.Connection, rule_obj: Mapping[str, Any], *, origin: str = "pattern_mining", version: int = 1
) -> str:
    """Store a typed rule as drafting does (contract columns), with its signal clauses."""
    rule = rl.parse_rule(rule_obj)
    rid = rl.rule_id(rule)
    clauses = rl.signal_clauses(rule)
    conn.execute(
        """
        insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description, sql_expression,
            regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)
        values (%s, %s, %s, %s, %s, %s, %s, %s, null, %s, %s, 'fixture')
        on conflict do nothing
        """,
        (
            rid,
            version,
            Jsonb(rl.to_json(rule)),
            rl.canonical_json(rule),
            rl.describe(rule),
            rl.compile_sql_predicate(rule),
            rl.to_python_regex(rule),
            origin,
            "signal" if clauses else "predicate",
            rl.complexity(rule)["score"],
        ),
    )
    if clauses:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into patas.rule_signal_clauses values (%s, %s, %s, %s) on conflict do nothing",
                [(rid, no, kind, value) for no, kind, value in clauses],
            )
    conn.commit()
    return rid


def expected_hits(
    rule_objs: Mapping[str, Mapping[str, Any]],
    messages: Iterable[Mapping[str, Any]],
    window: str = "evaluation",
) -> dict[str, set[int]]:
    """The reference evaluator's hits per rule id on one window."""
    msgs = [m for m in messages if m["window"] == window]
    out: dict[str, set[int]] = {}
    for rid, obj in rule_objs.items():
        rule = rl.parse_rule(obj)
        out[rid] = {m["message_id"] for m in msgs if rl.evaluate(rule, m)}
    return out


# ---- dbt ---------------------------------------------------------------------------------------


def scratch_project(tmp: Path) -> Path:
    """A copy of the dbt project holding the shadow-evaluation and lifecycle marts only."""
    proj = tmp / "dbt_project"
    if proj.exists():
        return proj
    (proj / "models" / "marts").mkdir(parents=True)
    (proj / "models" / "staging").mkdir(parents=True)
    for name in (*SHADOW_STAGING, *POST_LIFECYCLE_STAGING):
        shutil.copy(REPO_ROOT / "models" / "staging" / f"{name}.sql", proj / "models" / "staging")
    for yml in ("_patas__sources.yml", "_patas__models.yml"):
        shutil.copy(REPO_ROOT / "models" / "staging" / yml, proj / "models" / "staging")
    shutil.copytree(REPO_ROOT / "macros", proj / "macros")  # the project's macros, all of them
    shutil.copytree(REPO_ROOT / "models" / "docs", proj / "models" / "docs")  # shared column docs
    (proj / "tests" / "dbt").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dbt_project.yml", proj / "dbt_project.yml")
    for name in (*SHADOW_MODELS, *POST_LIFECYCLE_MODELS, "active_rules"):
        shutil.copy(REPO_ROOT / "models" / "marts" / f"{name}.sql", proj / "models" / "marts")
    for yml in ("_rules__models.yml",):
        shutil.copy(REPO_ROOT / "models" / "marts" / yml, proj / "models" / "marts")
    for test in sorted((REPO_ROOT / "tests" / "dbt").glob("assert_rule*.sql")) + sorted(
        (REPO_ROOT / "tests" / "dbt").glob("assert_ruleset*.sql")
    ):
        shutil.copy(test, proj / "tests" / "dbt")
    for folder, names in UPSTREAM_STUBS.items():
        (proj / "models" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (proj / "models" / folder / f"{name}.sql").write_text(
                "-- stand-in: the shadow-evaluation tests create this relation as a fixture table\n"
                "select 1 as message_id\n"
            )
    return proj


def run_dbt(
    project: Path,
    url: str,
    args: list[str],
    *,
    run_id: str,
    extra_vars: Mapping[str, Any] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    variables = {"patas_run_id": run_id, **(extra_vars or {})}
    cmd = [
        str(dbt),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(REPO_ROOT / "profiles"),
        "--vars",
        json.dumps(variables),
        "--no-partial-parse",
    ]
    env = dbt_env(url)
    env["DBT_LOG_PATH"] = str(project / "logs")
    env["DBT_TARGET_PATH"] = str(project / "target")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=project, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{res.stdout[-6000:]}\n{res.stderr[-3000:]}")
    return res


def run_shadow_evaluation(project: Path, url: str, run_id: str, **kw: Any) -> subprocess.CompletedProcess:
    return run_dbt(project, url, ["run", "--select", *SHADOW_STAGING, *SHADOW_MODELS], run_id=run_id, **kw)


def run_post_lifecycle(project: Path, url: str, run_id: str, **kw: Any) -> subprocess.CompletedProcess:
    return run_dbt(
        project,
        url,
        ["run", "--select", *POST_LIFECYCLE_STAGING, *POST_LIFECYCLE_MODELS],
        run_id=run_id,
        **kw,
    )


# ---- databases ---------------------------------------------------------------------------------


def create_database(server_url: str, name: str) -> str:
    from python_steps.settings import url_parts

    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    admin = f"postgresql://{auth}@{p.host}:{p.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
    return f"postgresql://{auth}@{p.host}:{p.port}/{name}"


def drop_database(server_url: str, name: str) -> None:
    from python_steps.settings import url_parts

    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    with psycopg.connect(f"postgresql://{auth}@{p.host}:{p.port}/postgres", autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')


# ---- the small corpus --------------------------------------------------------------------------

MESSAGES = [
    message(1, "WIN a prize at spam.example now", True, domains=["spam.example"]),
    message(2, "win cash spam.example", True, domains=["spam.example"]),
    message(3, "meeting notes from spam.example", False, domains=["spam.example"]),
    message(4, "call 447700900123 or msg @promo_bot", True, phones=["447700900123"], handles=["promo_bot"]),
    message(5, "call 447700900123", True, phones=["447700900123"]),
    message(6, "hi mum call me", False),
    message(7, "free entry in 2 a wkly comp", True),
    message(8, "free entry to the museum", False),
    message(9, "free entry txt 87121", None, short_codes=["87121"]),
    message(10, "txt WIN to 87121", True, short_codes=["87121"]),
    message(11, "win cash spam.example", True, "mining", domains=["spam.example"]),
    message(12, "lunch?", False),
    message(13, "urgent claim your prize", True, handles=["bonus_bot"]),
    message(14, "free entry win cash", True, "mining"),
]

RULES = {
    "domain": {"kind": "domain", "value": "spam.example"},
    "phone_and_handle": {
        "all": [{"kind": "phone", "value": "447700900123"}, {"kind": "handle", "value": "promo_bot"}]
    },
    "code_or_handle": {
        "any": [{"kind": "short_code", "value": "87121"}, {"kind": "handle", "value": "bonus_bot"}]
    },
    "free_entry": {"kind": "text_contains", "value": "free entry"},
    "win_regex": {"kind": "text_regex", "value": "win (a|cash)"},
    "call_not_bot": {
        "all": [{"kind": "text_phrase", "value": "call"}, {"not": {"kind": "handle", "value": "promo_bot"}}]
    },
    "nothing": {"kind": "domain", "value": "nothing.example"},
}
