"""Retention: the oldest third of a generated corpus is archived and deleted; the next incremental
stage-1 run equals a from-scratch build on what remains, and the archive holds exactly what went."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from patas.bench.harness import fresh_database, patched_environ
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.ingest.retention import RetentionError, apply_retention
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGE1 = [
    dg.AssetKey(k)
    for k in (
        ["staging", "stg_raw__messages"],
        ["intermediate", "int_messages_normalized"],
        ["intermediate", "int_message_signals_extracted"],
        ["intermediate", "int_hosts_resolved"],
        ["intermediate", "int_messages_enriched"],
        ["intermediate", "int_messages_windowed"],
        ["marts", "signal_label_counts"],
        ["marts", "stage1_candidates"],
    )
]
SNAPSHOTS = {
    "signals": """
        select m.external_id, s.signal_kind, s.signal_value from intermediate.int_message_signals_extracted as s
        join raw.messages as m using (message_id) order by 1, 2, 3""",
    "enriched": """
        select external_id, normalized_text, signature, urls, domains, phones, handles, label, split_bucket
        from intermediate.int_messages_enriched order by external_id""",
    "signal_label_counts": "select * from marts.signal_label_counts order by 1, 2",
    "stage1_candidates": "select * from marts.stage1_candidates order by 1, 2",
    "hosts": "select * from intermediate.int_hosts_resolved order by 1",
}


def _snapshot(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOTS.items()}


def _stage1(url: str, home: Path) -> None:
    from patas.runner import run_pipeline

    env = {"DAGSTER_HOME": str(home / "dagster"), "PATAS_HOME": str(home), "PATAS_DATABASE_URL": url}
    with patched_environ(env):
        from patas_dagster.definitions import defs  # after run_pipeline prepared the manifest once

        # Stage 1 and the dbt models and seeds it reads (not ingestion), nothing after it.
        raw = dg.AssetSelection.assets(["raw", "messages"], ["raw", "ingest_batches"])
        selection = (dg.AssetSelection.assets(*STAGE1).upstream() - raw).resolve(defs.resolve_asset_graph())
        summary = run_pipeline(load_settings(), url, asset_selection=sorted(selection, key=str))
    assert summary["success"], summary.get("failures")


@pytest.fixture(scope="module")
def purged(server_url: str, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("retention")
    corpus = tmp / "corpus.jsonl"
    generate_corpus(4500, 13, corpus, days=45)
    lines = corpus.read_text().splitlines()
    files = []
    for i in range(3):
        files.append(tmp / f"batch{i}.jsonl")
        files[-1].write_text("\n".join(lines[i * 1500 : (i + 1) * 1500]) + "\n")
    pid = os.getpid()
    with (
        fresh_database(server_url, f"patas_ret_{pid}") as url,
        fresh_database(server_url, f"patas_ret2_{pid}") as url2,
    ):
        for f in files:
            ingest_file(url, f)
        _stage1(url, tmp / "home1")
        with psycopg.connect(url, autocommit=True) as conn:
            before = conn.execute("select count(*) from raw.messages").fetchone()[0]
            dry = apply_retention(conn, keep_days=30, archive_dir=tmp / "archive", dry_run=True)
            assert conn.execute("select count(*) from raw.messages").fetchone()[0] == before
            result = apply_retention(conn, keep_days=30, archive_dir=tmp / "archive")
            after = conn.execute("select count(*) from raw.messages").fetchone()[0]
        _stage1(url, tmp / "home1")
        incremental = _snapshot(url)
        with gzip.open(result["archive"], "rt", encoding="utf-8") as fh:
            archived = [json.loads(x) for x in fh]
        gone = {r["id"] for r in archived}
        for i, f in enumerate(files):  # the same batches, without the purged messages, from scratch
            rest = [x for x in f.read_text().splitlines() if json.loads(x)["id"] not in gone]
            if rest:
                (tmp / f"rest{i}.jsonl").write_text("\n".join(rest) + "\n")
                ingest_file(url2, tmp / f"rest{i}.jsonl")
        _stage1(url2, tmp / "home2")
        scratch = _snapshot(url2)
        yield {"dry": dry, "result": result, "before": before, "after": after, "archived": archived,
               "incremental": incremental, "scratch": scratch, "lines": lines, "url": url}  # fmt: skip


def test_the_oldest_third_is_archived_then_deleted(purged: dict) -> None:
    r, archived = purged["result"], purged["archived"]
    assert purged["dry"]["purged"] == r["purged"] and purged["dry"]["archive"] is None
    assert 1300 <= r["purged"] <= 1700, r  # 15 of 45 days
    assert purged["after"] == purged["before"] - r["purged"] == r["remaining"]
    assert len(archived) == r["purged"] and not Path(r["archive"] + ".partial").exists()
    originals = {json.loads(x)["id"]: json.loads(x) for x in purged["lines"]}
    for row in archived[:50]:  # the ingest contract: the same text, label and time as ingested
        src = originals[row["id"]]
        assert (row["text"], row["is_spam"]) == (src["text"], src["is_spam"])
        assert row["timestamp"][:19] == src["timestamp"][:19] and row["timestamp"] < r["cutoff"]


@pytest.mark.parametrize("table", list(SNAPSHOTS))
def test_an_incremental_run_after_the_purge_equals_a_build_from_scratch(purged: dict, table: str) -> None:
    inc, scratch = purged["incremental"][table], purged["scratch"][table]
    assert inc, table
    assert inc == scratch, (table, len(inc), len(scratch))


def test_bad_arguments_change_nothing(purged: dict, tmp_path: Path) -> None:
    with psycopg.connect(purged["url"], autocommit=True) as conn:
        for days in (0, -3):
            with pytest.raises(RetentionError, match="at least 1"):
                apply_retention(conn, keep_days=days, archive_dir=tmp_path)
        assert conn.execute("select count(*) from raw.messages").fetchone()[0] == purged["after"]
    with psycopg.connect(purged["url"]) as conn, pytest.raises(RetentionError, match="autocommit"):
        apply_retention(conn, keep_days=30, archive_dir=tmp_path)
    assert not list(tmp_path.iterdir())
