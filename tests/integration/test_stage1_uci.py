"""Stage 1 end to end on the shared UCI SMS data, checked against Python computed independently.

One database for the module: the UCI file is ingested in two batches (the second one after a
first dbt run, so the incremental path is exercised), stage-1 models are built, and then:

- the model's entity arrays and signals equal python_steps.text.normalize's for every message;
- strong spam signals (premium short codes, phone numbers, "claim", "prize") have the spam / ham
  counts Python computes over the same mining window;
- a re-run on unchanged data inserts nothing, and a full refresh gives the same tables as the
  incremental path;
- no model outside staging reads a source (from the manifest).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from patas.bench.stage1 import SEEDS, STAGE1_MODELS  # one list of the stage-1 models and seeds
from python_steps.ingest.load import ingest_file
from python_steps.settings import dbt_env, url_parts
from python_steps.text import normalize as nz

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTITY_KINDS = {
    "url": "urls",
    "host": "hosts",
    "domain": "domains",
    "phone": "phones",
    "short_code": "short_codes",
    "handle": "handles",
    "email": "emails",
}
EVALUATION_SHARE = 30
MIN_SPAM_COUNT = 3  # dbt var patas_min_spam_count


def _db_url(server_url: str, name: str) -> str:
    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    return f"postgresql://{auth}@{p.host}:{p.port}/{name}"


class Dbt:
    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir

    def __call__(self, *args: str) -> dict:
        target = self.workdir / "target"
        res = subprocess.run(
            [
                str(Path(sys.executable).with_name("dbt")),
                *args,
                "--target-path",
                str(target),
                "--log-path",
                str(self.workdir / "logs"),
            ],
            cwd=REPO_ROOT,
            env=dbt_env(self.url),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
        return json.loads((target / "run_results.json").read_text())

    def run(self, *extra: str) -> dict:
        return self("run", "--select", *STAGE1_MODELS, *extra)


def _rows_inserted(run_results: dict, model: str) -> int | None:
    for r in run_results["results"]:
        if r["unique_id"].endswith("." + model):
            return (r.get("adapter_response") or {}).get("rows_affected")
    raise KeyError(model)


def _snapshot(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {
            "staged": conn.execute(
                "select message_id, prepared_text, normalized_text, signature, word_tokens, sender_id, chat_id"
                " from intermediate.int_messages_normalized order by 1"
            ).fetchall(),
            "enriched": conn.execute(
                "select message_id, normalized_text, signature, urls, hosts, domains, phones, short_codes,"
                " handles, emails, label, split_bucket from intermediate.int_messages_enriched order by 1"
            ).fetchall(),
            "signals": conn.execute(
                "select message_id, signal_kind, signal_value from intermediate.int_message_signals_extracted"
                ' order by message_id, signal_kind, signal_value collate "C"'
            ).fetchall(),
            "counts": conn.execute(
                'select * from marts.signal_label_counts order by signal_kind, signal_value collate "C"'
            ).fetchall(),
            "candidates": conn.execute(
                "select * from marts.stage1_candidates order by suspiciousness_rank"
            ).fetchall(),
            "uncovered": conn.execute(
                "select * from marts.stage1_uncovered_spam order by message_id"
            ).fetchall(),
            "hosts": conn.execute("select * from intermediate.int_hosts_resolved order by host").fetchall(),
        }


@pytest.fixture(scope="module")
def stage1(server_url: str, shared_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    name = f"patas_stage1_{os.getpid()}"
    admin = _db_url(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
    url = _db_url(server_url, name)
    tmp = tmp_path_factory.mktemp("stage1_uci")
    lines = shared_dataset.read_text(encoding="utf-8").splitlines(keepends=True)
    part1, part2 = tmp / "uci_part1.jsonl", tmp / "uci_part2.jsonl"
    part1.write_text("".join(lines[:3000]), encoding="utf-8")
    part2.write_text("".join(lines[3000:]), encoding="utf-8")

    dbt = Dbt(url, tmp)
    dbt("seed", "--select", *SEEDS)
    ingest_file(url, part1)
    dbt.run()
    ingest_file(url, part2)
    incremental_run = dbt.run()
    incremental = _snapshot(url)
    rerun = dbt.run()
    after_rerun = _snapshot(url)
    # Every pipeline run reloads the seeds (new file nodes, same rows): no rebuild either.
    dbt("seed", "--select", *SEEDS)
    reseeded_run = dbt.run()
    dbt.run("--full-refresh")
    full = _snapshot(url)
    # Other window vars: the marts that rebuild on input change must equal a full refresh with
    # them; back to the default vars, they must equal the default full refresh again.
    share_vars = ("--vars", "{patas_evaluation_share: 45}")
    other_share_run = dbt.run(*share_vars)
    other_share = _snapshot(url)
    dbt.run("--full-refresh", *share_vars)
    other_share_full = _snapshot(url)
    back_to_default = dbt.run()
    back = _snapshot(url)
    # The two paths of staging and signal extraction (each distinct text once, or every
    # message), each forced for a full refresh of stage 1.
    dedupe_paths = {}
    for dedupe in ("true", "false"):
        dbt.run("--full-refresh", "--vars", f"{{patas_dedupe_texts: {dedupe}}}")
        run_dir = tmp / "target" / "run"
        staging_sql = next(run_dir.rglob("int_messages_normalized.sql")).read_text()
        signals_sql = next(run_dir.rglob("int_message_signals_extracted.sql")).read_text()
        with psycopg.connect(url) as c:
            left_over = c.execute(  # the distinct-text tables live only inside the models' builds
                "select count(*) from pg_class where relname like 'int\\_%\\_\\_texts'"
            ).fetchone()[0]
        dedupe_paths[dedupe] = (
            _snapshot(url),
            "from intermediate.int_messages_normalized__texts" in staging_sql,
            "from intermediate.int_message_signals_extracted__texts" in signals_sql,
            "text_signals as materialized" in signals_sql,
            left_over,
        )
    # The deduplicated extraction appending a batch: the second batch's signals deleted, then an
    # incremental run forced onto that path (its n-grams missing from the table are back-filled
    # over the first batch's messages too).
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "delete from intermediate.int_message_signals_extracted"
            " where batch_id = (select max(batch_id) from intermediate.int_message_signals_extracted)"
        )
    dedupe_incremental_run = dbt(
        "run", "--select", "int_message_signals_extracted", "--vars", "{patas_dedupe_texts: true}"
    )
    # (target/run holds only the append; the model's select is in target/compiled)
    compiled_dir = tmp / "target" / "compiled"
    dedupe_incremental_sql = next(compiled_dir.rglob("int_message_signals_extracted.sql")).read_text()
    dedupe_incremental = (_snapshot(url)["signals"], "text_signals as materialized" in dedupe_incremental_sql)
    try:
        yield {
            "url": url,
            "dbt": dbt,
            "texts": [json.loads(line) for line in lines],
            "incremental_run": incremental_run,
            "rerun": rerun,
            "reseeded_run": reseeded_run,
            "incremental": incremental,
            "after_rerun": after_rerun,
            "full": full,
            "other_share_run": other_share_run,
            "other_share": other_share,
            "other_share_full": other_share_full,
            "back_to_default": back_to_default,
            "back": back,
            "dedupe_paths": dedupe_paths,
            "dedupe_incremental_run": dedupe_incremental_run,
            "dedupe_incremental": dedupe_incremental,
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'drop database if exists "{name}" with (force)')


def _python_signals() -> tuple[dict[str, dict], frozenset[str]]:
    rules = nz.load_public_suffixes()
    with open(REPO_ROOT / "seeds" / "stop_words.csv", encoding="utf-8", newline="") as fh:
        stop = frozenset(r["word"] for r in csv.DictReader(fh))
    return {"rules": rules}, stop


def _expected_for(text: str, rules: dict, stop: frozenset[str]) -> dict:
    e = nz.message_entities(text)
    e["domains"] = sorted({d for h in e["hosts"] if (d := nz.registrable_domain(h, rules)) is not None})
    signals = {("signature", e["signature"])}
    for kind, column in ENTITY_KINDS.items():
        signals |= {(kind, v) for v in e[column]}
    signals |= {("money", v) for v in e["money"]}
    signals |= {("ngram", g) for g in nz.ngrams(e["normalized_text"], stop)}
    e["signals"] = signals
    return e


@pytest.fixture(scope="module")
def expected(stage1: dict) -> dict[str, dict]:
    ctx, stop = _python_signals()
    out = {
        o["id"]: _expected_for(o["text"], ctx["rules"], stop) | {"is_spam": o["is_spam"]}
        for o in stage1["texts"]
    }
    # Only vocabulary n-grams are kept: seen in >= patas_min_spam_count spam messages overall.
    spam_ngrams = Counter(s for e in out.values() if e["is_spam"] for s in e["signals"] if s[0] == "ngram")
    for e in out.values():
        e["signals"] = {s for s in e["signals"] if s[0] != "ngram" or spam_ngrams[s] >= MIN_SPAM_COUNT}
    return out


SNAPSHOT_TABLES = ("staged", "enriched", "signals", "counts", "candidates", "uncovered", "hosts")
# Rebuilt whole, and only when their inputs change (macro input_state).
GATED_MODELS = ("int_hosts_resolved", "signal_label_counts", "stage1_uncovered_spam")


def test_incremental_equals_full_refresh(stage1: dict) -> None:
    assert _rows_inserted(stage1["incremental_run"], "int_messages_normalized") == 5574 - 3000
    # the new batch changed the inputs of the gated models: they were rebuilt
    assert _rows_inserted(stage1["incremental_run"], "signal_label_counts") == len(stage1["full"]["counts"])
    assert _rows_inserted(stage1["incremental_run"], "int_hosts_resolved") == len(stage1["full"]["hosts"])
    for table in SNAPSHOT_TABLES:
        assert stage1["incremental"][table] == stage1["full"][table], table
    assert stage1["full"]["uncovered"] and stage1["full"]["hosts"]


def test_rerun_on_unchanged_data_inserts_nothing(stage1: dict) -> None:
    for model in (
        "int_messages_normalized",
        "int_message_signals_extracted",
        "int_messages_enriched",
        *GATED_MODELS,
    ):
        assert _rows_inserted(stage1["rerun"], model) == 0, model
        assert _rows_inserted(stage1["reseeded_run"], model) == 0, model
    assert stage1["after_rerun"] == stage1["incremental"]


def test_window_vars_rebuild_the_gated_marts(stage1: dict) -> None:
    other, full = stage1["other_share"], stage1["full"]
    # another evaluation share moves messages between the windows: other counts ...
    assert other["counts"] != full["counts"]
    assert _rows_inserted(stage1["other_share_run"], "signal_label_counts") == len(other["counts"])
    # ... equal to a full refresh with the same vars, and nothing upstream moved
    for table in SNAPSHOT_TABLES:
        assert other[table] == stage1["other_share_full"][table], table
    for table in ("staged", "enriched", "signals", "hosts"):
        assert other[table] == full[table], table
    # back to the default vars: the default tables again
    assert _rows_inserted(stage1["back_to_default"], "signal_label_counts") == len(full["counts"])
    assert stage1["back"] == full


def test_both_dedupe_paths_give_the_same_tables(stage1: dict) -> None:
    # UCI texts are 93% distinct: 'auto' takes the per-message path; both forced paths agree.
    paths = stage1["dedupe_paths"]
    assert paths["true"] == (stage1["full"], True, True, True, 0)
    assert paths["false"] == (stage1["full"], False, False, False, 0)


def test_deduplicated_extraction_appends_a_batch_like_a_full_refresh(stage1: dict) -> None:
    assert _rows_inserted(stage1["dedupe_incremental_run"], "int_message_signals_extracted") > 0
    assert stage1["dedupe_incremental"] == (stage1["full"]["signals"], True)


def test_entity_arrays_and_signals_match_python(stage1: dict, expected: dict[str, dict]) -> None:
    with psycopg.connect(stage1["url"]) as conn:
        rows = conn.execute(
            "select external_id, normalized_text, signature, urls, hosts, domains, phones, short_codes,"
            " handles, emails, normalizer_version from intermediate.int_messages_enriched"
        ).fetchall()
        signals = defaultdict(set)
        for ext, kind, value in conn.execute(
            "select e.external_id, s.signal_kind, s.signal_value from intermediate.int_message_signals_extracted s"
            " join intermediate.int_messages_enriched e using (message_id)"
        ):
            signals[ext].add((kind, value))
    assert len(rows) == len(expected)
    diffs = []
    for ext, normalized, signature, *arrays, version in rows:
        exp = expected[ext]
        assert version == nz.NORMALIZER_VERSION
        if normalized != exp["normalized_text"] or signature != exp["signature"]:
            diffs.append((ext, "text", normalized, exp["normalized_text"]))
        for column, got in zip(
            ("urls", "hosts", "domains", "phones", "short_codes", "handles", "emails"), arrays, strict=True
        ):
            if got != exp[column]:
                diffs.append((ext, column, got, exp[column]))
        if signals[ext] != exp["signals"]:
            diffs.append(
                (ext, "signals", sorted(signals[ext] - exp["signals"]), sorted(exp["signals"] - signals[ext]))
            )
    assert not diffs, diffs[:10]


def _mining_counts(expected: dict[str, dict]) -> dict[tuple[str, str], Counter]:
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for e in expected.values():
        if nz.split_bucket(e["signature"]) < EVALUATION_SHARE:
            continue
        label = "spam" if e["is_spam"] else "ham" if e["is_spam"] is False else "unlabelled"
        for sig in e["signals"]:
            counts[sig][label] += 1
    return counts


def test_strong_signals_have_the_python_counts(stage1: dict, expected: dict[str, dict]) -> None:
    py = _mining_counts(expected)
    with psycopg.connect(stage1["url"]) as conn:
        sql = {
            (k, v): (s, h, u)
            for k, v, s, h, u in conn.execute(
                "select signal_kind, signal_value, spam_count, ham_count, unlabelled_count from marts.signal_label_counts"
            )
        }
    # Every signal, not just a sample: the SQL counts equal the Python counts.
    assert set(sql) == set(py)
    mismatched = [k for k in sql if sql[k] != (py[k]["spam"], py[k]["ham"], py[k]["unlabelled"])]
    assert not mismatched, mismatched[:10]

    # The expected strong UCI spam signals are there, spam-heavy.
    for key in (("ngram", "claim"), ("ngram", "prize"), ("short_code", "86688"), ("phone", "08000930705")):
        spam, ham, _ = sql[key]
        assert spam >= 10 and ham == 0, (key, sql[key])
    assert sql[("ngram", "txt")][0] > 10 * sql[("ngram", "txt")][1]
    top_phones = sorted((v for k, v in sql.items() if k[0] == "phone"), reverse=True)[:5]
    assert top_phones and all(s >= 3 and h == 0 for s, h, _ in top_phones), top_phones
    assert sum(1 for k in sql if k[0] == "short_code") >= 20


def test_candidates_are_suspicious_and_explained(stage1: dict) -> None:
    with psycopg.connect(stage1["url"]) as conn:
        rows = conn.execute(
            "select signal_kind, signal_value, kept_reason, spam_count, ham_count, log_odds"
            " from marts.stage1_candidates order by suspiciousness_rank"
        ).fetchall()
        uncovered = conn.execute(
            "select count(*), count(*) filter (where m.is_spam is not true) from marts.stage1_uncovered_spam u"
            " join intermediate.int_messages_enriched m using (message_id)"
        ).fetchone()
    assert rows
    assert {r[2] for r in rows} <= {"top_fraction", "spam_only"}
    assert all(r[3] >= 3 and r[5] > 0 for r in rows)
    kinds = {r[0] for r in rows}
    assert {"short_code", "ngram", "phone"} <= kinds, kinds
    assert uncovered[1] == 0


def test_only_staging_reads_sources(stage1: dict) -> None:
    manifest = json.loads((stage1["dbt"].workdir / "target" / "manifest.json").read_text())
    offenders = [
        node["unique_id"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and any(dep.startswith("source.") for dep in node["depends_on"]["nodes"])
        and not node["original_file_path"].startswith("models/staging/")
    ]
    assert not offenders, offenders
