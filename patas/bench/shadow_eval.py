"""Benchmark: set-based shadow evaluation of N rules over M messages (target: 1,000 x 1M <= 60 s).

Builds, in a fresh database, the three stage-1 relations shadow evaluation reads
(``int_messages_enriched``, ``int_message_signals_extracted``, ``int_messages_windowed``, contract
columns) with a deterministic synthetic corpus made in SQL, drafts N rules with the real rule
compiler in a drafting-like mix (entity, phrase, conjunction and predicate rules, taken from values
present in the data), then times the dbt models ``rule_hits`` and ``rule_evaluations`` (and
``rule_overlaps`` separately).

    .venv/bin/python -m patas.bench.shadow_eval --messages 1000000 --rules 1000
    .venv/bin/python -m patas.bench.shadow_eval --messages 100000 --rules 200 --keep

Prints a JSON summary (timings, hit counts, machine) and writes it to benchmarks/out/.
The corpus is synthetic on purpose: the benchmark isolates shadow evaluation from stage 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from patas.embedded import database_url
from python_steps import rules as rl
from python_steps.settings import PROJECT_ROOT as ROOT
from python_steps.settings import dbt_env, url_parts

MODELS = ("rule_hits", "rule_evaluations", "rule_overlaps")
STAGING = ("stg_patas__rule_drafts", "stg_patas__rule_signal_clauses")

CORPUS_SQL = """
create schema if not exists intermediate;
create schema if not exists patas;
select setseed(0.42);
create unlogged table intermediate.bench_words as
select i as word_no, 'w' || i as word from generate_series(1, %(vocab)s) as i;

create table intermediate.int_messages_enriched as
with base as (
    select
        i as message_id,
        random() as r_label,
        random() as r_dom, (random() * %(domains)s)::int as dom,
        random() as r_phone, (random() * %(phones)s)::int as phone,
        random() as r_handle, (random() * %(handles)s)::int as handle,
        random() as r_code, (random() * %(codes)s)::int as code,
        (select string_agg('w' || (1 + floor(power(random(), 2) * %(vocab)s))::int, ' ')
         from generate_series(1, 5 + (i %% 7)) as g where g > 0 and i > 0) as words
    from generate_series(1, %(messages)s) as i
)
select
    message_id,
    'b' || message_id as external_id,
    words as text,
    words as normalized_text,
    md5(words) as signature,
    '{}'::text[] as urls,
    '{}'::text[] as hosts,
    case when r_dom < 0.2 then array['d' || dom || '.example'] else '{}'::text[] end as domains,
    case when r_phone < 0.1 then array['4477009' || lpad(phone::text, 5, '0')] else '{}'::text[] end as phones,
    case when r_code < 0.05 then array[(80000 + code)::text] else '{}'::text[] end as short_codes,
    case when r_handle < 0.1 then array['h' || handle] else '{}'::text[] end as handles,
    '{}'::text[] as emails,
    '{}'::jsonb as meta,
    null::timestamptz as event_at,
    (message_id %% 100)::int as split_bucket,
    case when r_label < 0.3 then true when r_label < 0.9 then false end as is_spam,
    1::bigint as batch_id
from base;
alter table intermediate.int_messages_enriched add primary key (message_id);

create view intermediate.int_messages_windowed as
select m.*, case when m.message_id %% 10 < 3 then 'evaluation' else 'mining' end as window_name
from intermediate.int_messages_enriched as m;

-- No label feedback in this benchmark: the effective-label overrides rule_evaluations reads are empty.
create table intermediate.int_message_labels_overridden (
    message_id bigint primary key, external_id text, original_is_spam boolean, is_spam boolean not null,
    override_kind text, feedback_id bigint, feedback_source text, feedback_received_at timestamptz,
    is_changed boolean, is_reversal boolean
);

create table intermediate.int_message_signals_extracted as
with words as (
    select m.message_id, w.word, w.pos
    from intermediate.int_messages_enriched as m,
        unnest(string_to_array(m.normalized_text, ' ')) with ordinality as w(word, pos)
),
grams as (
    select message_id, word as gram from words
    union
    select a.message_id, a.word || ' ' || b.word
    from words as a join words as b on b.message_id = a.message_id and b.pos = a.pos + 1
    union
    select a.message_id, a.word || ' ' || b.word || ' ' || c.word
    from words as a
    join words as b on b.message_id = a.message_id and b.pos = a.pos + 1
    join words as c on c.message_id = a.message_id and c.pos = a.pos + 2
)
select message_id, 'ngram'::text as signal_kind, gram as signal_value from grams
union all
select message_id, 'domain', unnest(domains) from intermediate.int_messages_enriched
union all
select message_id, 'phone', unnest(phones) from intermediate.int_messages_enriched
union all
select message_id, 'short_code', unnest(short_codes) from intermediate.int_messages_enriched
union all
select message_id, 'handle', unnest(handles) from intermediate.int_messages_enriched
union all
select message_id, 'signature', signature from intermediate.int_messages_enriched;
analyze intermediate.int_messages_enriched;
analyze intermediate.int_message_signals_extracted;
"""

DRAFTS_DDL = """
create table patas.rule_drafts (
    rule_id text not null, version integer not null, rule_json jsonb not null, rule_canonical text not null,
    description text not null, sql_expression text not null, regex text, origin text not null,
    pattern_id text, evaluation_kind text not null, complexity integer, drafted_run_id text,
    created_at timestamptz not null default now(), primary key (rule_id, version)
);
create table patas.rule_signal_clauses (
    rule_id text not null, clause_no integer not null, signal_kind text not null, signal_value text not null,
    primary key (rule_id, clause_no, signal_kind, signal_value)
);
"""


def _rule_mix(n: int, vocab: int, seed: int = 7) -> list[dict]:
    """A drafting-like mix: 30% entity, 30% phrase, 20% conjunction, 20% predicate rules."""
    rnd = random.Random(seed)
    word = lambda: f"w{1 + int(rnd.random() ** 2 * vocab)}"  # noqa: E731
    out: list[dict] = []
    seen: set[str] = set()
    while len(out) < n:
        k = len(out) % 10
        if k < 3:
            kind = rnd.choice(["domain", "phone", "handle", "short_code"])
            value = {
                "domain": f"d{rnd.randrange(2000)}.example",
                "phone": f"4477009{rnd.randrange(1000):05d}",
                "handle": f"h{rnd.randrange(1000)}",
                "short_code": str(80000 + rnd.randrange(200)),
            }[kind]
            obj = {"kind": kind, "value": value}
        elif k < 6:
            obj = {"kind": "text_phrase", "value": " ".join(word() for _ in range(rnd.choice([1, 2, 2, 3])))}
        elif k < 8:
            obj = {
                "all": [
                    {"kind": "text_phrase", "value": f"{word()} {word()}"},
                    {"kind": "domain", "value": f"d{rnd.randrange(2000)}.example"},
                ]
            }
        elif k == 8:
            obj = {"kind": "text_contains", "value": f"{word()} {word()}"}
        else:
            choice = rnd.random()
            if choice < 0.5:
                obj = {"kind": "text_regex", "value": f"{word()} w[0-9]{{2}} {word()}"}
            else:
                obj = {
                    "all": [
                        {"kind": "text_phrase", "value": word()},
                        {"not": {"kind": "text_contains", "value": word()}},
                    ]
                }
        rule = rl.parse_rule(obj)
        rid = rl.rule_id(rule)
        if rid in seen:
            continue
        seen.add(rid)
        out.append(obj)
    return out


def _draft(conn: psycopg.Connection, objs: list[dict]) -> dict[str, int]:
    kinds = {"signal": 0, "predicate": 0}
    with conn.cursor() as cur:
        for obj in objs:
            rule = rl.parse_rule(obj)
            rid = rl.rule_id(rule)
            clauses = rl.signal_clauses(rule)
            kind = "signal" if clauses else "predicate"
            kinds[kind] += 1
            cur.execute(
                "insert into patas.rule_drafts values (%s, 1, %s, %s, %s, %s, %s, 'pattern_mining', null, %s, %s, 'bench')",
                (
                    rid,
                    Jsonb(rl.to_json(rule)),
                    rl.canonical_json(rule),
                    rl.describe(rule),
                    rl.compile_sql_predicate(rule),
                    rl.to_python_regex(rule),
                    kind,
                    rl.complexity(rule)["score"],
                ),
            )
            if clauses:
                cur.executemany(
                    "insert into patas.rule_signal_clauses values (%s, %s, %s, %s) on conflict do nothing",
                    [(rid, no, k, v) for no, k, v in clauses],
                )
    conn.commit()
    return kinds


def _project(tmp: Path) -> Path:
    proj = tmp / "dbt_project"
    (proj / "models" / "marts").mkdir(parents=True)
    (proj / "models" / "intermediate").mkdir(parents=True)
    shutil.copytree(ROOT / "macros", proj / "macros")
    shutil.copy(ROOT / "dbt_project.yml", proj)
    for name in MODELS:
        shutil.copy(ROOT / "models" / "marts" / f"{name}.sql", proj / "models" / "marts")
    (proj / "models" / "staging").mkdir(parents=True)
    for name in ("_patas__sources.yml", "stg_patas__rule_drafts.sql", "stg_patas__rule_signal_clauses.sql"):
        shutil.copy(ROOT / "models" / "staging" / name, proj / "models" / "staging")
    for name in ("int_messages_enriched", "int_message_signals_extracted", "int_messages_windowed"):
        (proj / "models" / "intermediate" / f"{name}.sql").write_text("select 1 as message_id\n")
    return proj


def _dbt(proj: Path, url: str, select: list[str], variables: dict) -> tuple[float, str]:
    env = dbt_env(url)
    env["DBT_LOG_PATH"] = str(proj / "logs")
    env["DBT_TARGET_PATH"] = str(proj / "target")
    cmd = [
        str(Path(sys.executable).with_name("dbt")),
        "run",
        "--select",
        *select,
        "--project-dir",
        str(proj),
        "--profiles-dir",
        str(ROOT / "profiles"),
        "--vars",
        json.dumps(variables),
        "--threads",
        "1",
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=proj)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"dbt failed:\n{res.stdout[-5000:]}\n{res.stderr[-2000:]}")
    return elapsed, res.stdout


def _node_seconds(stdout: str) -> dict[str, float]:
    out = {}
    for m in re.finditer(r"OK created sql \w+ model marts\.(\w+) .*?\[\w+ [^\]]*? in ([0-9.]+)s\]", stdout):
        out[m.group(1)] = float(m.group(2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--vocab", type=int, default=20_000)
    ap.add_argument("--predicates-per-scan", type=int, default=250)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = ap.parse_args()

    server = database_url()
    p = url_parts(server)
    auth = p.user + (f":{p.password}" if p.password else "")
    name = f"patas_bench_shadow_{args.messages}_{args.rules}"
    admin = f"postgresql://{auth}@{p.host}:{p.port}/postgres"
    url = f"postgresql://{auth}@{p.host}:{p.port}/{name}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
    summary: dict = {"messages": args.messages, "rules": args.rules}
    try:
        t0 = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                CORPUS_SQL
                % {
                    "messages": args.messages,
                    "vocab": args.vocab,
                    "domains": 2000,
                    "phones": 1000,
                    "handles": 1000,
                    "codes": 200,
                }
            )
            signals = conn.execute(
                "select count(*) from intermediate.int_message_signals_extracted"
            ).fetchone()[0]
            conn.execute(DRAFTS_DDL)
        summary["corpus_build_seconds"] = round(time.perf_counter() - t0, 1)
        summary["signal_rows"] = signals
        with psycopg.connect(url) as conn:
            summary["rule_kinds"] = _draft(conn, _rule_mix(args.rules, args.vocab))
        with tempfile.TemporaryDirectory() as tmp:
            proj = _project(Path(tmp))
            variables = {"patas_run_id": "bench", "patas_predicates_per_scan": args.predicates_per_scan}
            _dbt(proj, url, [*STAGING, "rule_hits"], variables)  # warm-up: parse, caches
            wall, out = _dbt(proj, url, ["rule_hits", "rule_evaluations"], variables)
            summary["shadow_evaluation_dbt_wall_seconds"] = round(wall, 2)
            summary["model_seconds"] = _node_seconds(out)
            wall, out = _dbt(proj, url, ["rule_overlaps"], variables)
            summary["rule_overlaps_dbt_wall_seconds"] = round(wall, 2)
            summary["model_seconds"].update(_node_seconds(out))
        with psycopg.connect(url) as conn:
            summary["rule_hit_rows"] = conn.execute("select count(*) from marts.rule_hits").fetchone()[0]
            summary["rules_with_hits"] = conn.execute(
                "select count(*) from marts.rule_evaluations where hit_count > 0"
            ).fetchone()[0]
            summary["overlap_pairs"] = conn.execute("select count(*) from marts.rule_overlaps").fetchone()[0]
        summary["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'drop database if exists "{name}" with (force)')
    out_dir = ROOT / "benchmarks" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"shadow_eval_{args.messages}_{args.rules}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
