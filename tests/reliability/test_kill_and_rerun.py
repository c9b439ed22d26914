"""``kill -9`` of real ``patas`` processes, then the same command again: the state an uninterrupted
run reaches, every input line accounted for, no batch left running, no child of the killed process
left alive, and ``marts.active_rules`` and the export files equal to the lifecycle table.

A module-scoped uninterrupted run on the same corpus is the reference (compared by a fingerprint of
the batch, message, quarantine, draft, lifecycle, metric, audit, mart and ruleset tables, free of run
ids and wall-clock times). Every run here has an LLM key, a database password and an API key set to
sentinels; ``test_no_secret_in_any_output`` greps everything the runs wrote for them.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from patas_processes import (
    KILL_POINTS,
    REPO,
    Patas,
    StubLlm,
    consistency_problems,
    fingerprint,
    input_lines,
    record_figure,
    run_and_kill,
    wait_until,
)

from patas.bench.harness import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 3000
BAD_LINES = b'not json\n{"id": "no-text", "is_spam": true}\n{"text": "x", "is_spam": "perhaps"}\n'
LLM_KEY = "sk-SENTINEL-llm-7f3a9c"
DB_PASSWORD = "pw-SENTINEL-db-51e2"


def _with_password(url: str, password: str) -> str:
    """The same URL with a password (the test servers trust local connections and ignore it)."""
    p = urlsplit(url)
    netloc = f"{p.username or 'postgres'}:{password}@{p.hostname}:{p.port or 5432}"
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    gen = Patas("", path.parent)
    res = gen("generate", "--rows", str(ROWS), "--seed", "11", "--out", str(path))
    assert res.returncode == 0, res.stderr
    with path.open("ab") as f:
        f.write(BAD_LINES)
    return path


@pytest.fixture(scope="module")
def llm() -> Iterator[StubLlm]:
    with StubLlm() as stub:
        yield stub


def _user(url: str, home: Path, llm: StubLlm) -> Patas:
    return Patas(
        _with_password(url, DB_PASSWORD),
        home,
        {"PATAS_LLM_ENABLED": "1", "PATAS_LLM_BASE_URL": llm.base_url, "PATAS_LLM_API_KEY": LLM_KEY},
    )


def _ingest(patas: Patas, corpus: Path) -> None:
    res = patas("ingest", str(corpus))
    assert res.returncode == 0, res.stderr
    lines = input_lines(corpus)
    assert f"read {lines:,} = loaded {ROWS:,} + duplicate 0 + quarantined {lines - ROWS}" in res.stdout


@pytest.fixture(scope="module")
def reference(server_url: str, corpus: Path, llm: StubLlm, tmp_path_factory) -> Iterator[dict]:
    """An uninterrupted ingest and run: the state every interrupted sequence must reach."""
    with fresh_database(server_url, f"patas_rel_ref_{os.getpid()}") as url:
        patas = _user(url, tmp_path_factory.mktemp("ref_home"), llm)
        _ingest(patas, corpus)
        t0 = time.monotonic()
        res = patas("run")
        seconds = time.monotonic() - t0
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert consistency_problems(url, patas.home) == []
        record_figure("uninterrupted run (reference)", runs=1, outcome="success", seconds=round(seconds, 1))
        yield {"url": url, "patas": patas, "fingerprint": fingerprint(url), "seconds": seconds}


def test_runs_killed_at_each_point_then_rerun_reach_the_uninterrupted_state(
    server_url: str, corpus: Path, llm: StubLlm, reference: dict, tmp_path: Path
):
    with fresh_database(server_url, f"patas_rel_kill_{os.getpid()}") as url:
        patas = _user(url, tmp_path / "home", llm)
        _ingest(patas, corpus)
        for point in KILL_POINTS:
            killed = run_and_kill(patas, point)
            record_figure(
                f"kill -9 patas run: {point}",
                runs=1,
                outcome="killed" if killed.reached else "finished before the kill point",
                seconds_into_run=killed.seconds_into_run,
                last_step_started=killed.steps_started[-1:],
                children=killed.children_before,
                children_gone_after_s=killed.children_left_after_s,
                sessions_gone_after_s=killed.backends_left_after_s,
                run_lock_free_after_s=killed.lock_free_after_s,
            )
            assert killed.reached, f"the run ended before {point!r}: {killed.steps_started}"
            assert killed.children_left_after_s is not None, "a child of the killed run is still alive"
            assert killed.lock_free_after_s is not None, "the killed run's lock is still held"
            with psycopg.connect(url) as conn:
                if point.startswith("stage 1"):
                    # dbt runs inside the step's process (patas_dagster.dbt_inprocess): killing the
                    # run kills dbt, and no session of the run is left on the server.
                    assert killed.dbt_in_process, "dbt was running in the killed process"
                    assert killed.backends_left_after_s is not None, "a session of the killed run is left"
                if point == "right after lifecycle":
                    # The lifecycle refreshes marts.active_rules in its own transaction, so the two are
                    # never apart. On a warehouse's first run the mart does not exist yet (dbt builds it
                    # after the lifecycle): then nothing is published, rather than something stale.
                    lifecycle = conn.execute(
                        "select rule_id, version from patas.rule_lifecycle where status = 'active' order by 1"
                    ).fetchall()
                    assert lifecycle, "the lifecycle had committed"
                    if conn.execute("select to_regclass('marts.active_rules')").fetchone()[0] is not None:
                        mart = conn.execute(
                            "select rule_id, rule_version from marts.active_rules order by 1"
                        ).fetchall()
                        assert mart == lifecycle
        t0 = time.monotonic()
        res = patas("run")
        rerun_seconds = time.monotonic() - t0
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert consistency_problems(url, patas.home) == []
        got = fingerprint(url)
        differing = {
            k: (got[k], reference["fingerprint"][k]) for k in got if got[k] != reference["fingerprint"][k]
        }
        record_figure(
            "rerun after the kills",
            runs=1,
            outcome="equal to the uninterrupted run" if not differing else f"differs: {sorted(differing)}",
            seconds=round(rerun_seconds, 1),
        )
        assert not differing, differing


def _copy_in_progress(url: str, into_messages: bool) -> bool:
    """Whether a COPY (into raw.messages, or else into the ingest's staging table) has rows in."""
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(
            conn.execute(
                """select 1 from pg_stat_progress_copy
                   where datname = current_database() and tuples_processed > 0
                     and coalesce(relid = to_regclass('raw.messages'), false) = %s""",
                (into_messages,),
            ).fetchone()
        )


def _kill_ingest_mid_copy(patas: Patas, path: Path, *, into_messages: bool) -> bool:
    """SIGKILL ``patas ingest`` once its COPY is seen loading rows; whether it was still running then."""
    proc = patas.start("ingest", str(path))
    seen = wait_until(
        lambda: proc.poll() is not None or _copy_in_progress(patas.url, into_messages), 120, 0.01
    )
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return seen is not None and running


def _counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """select (select count(*) from raw.messages), (select count(distinct external_id) from raw.messages),
                      (select count(*) from raw.ingest_batches where status = 'running')"""
        ).fetchone()


def test_ingest_killed_mid_copy_loads_nothing_and_the_rerun_accounts_for_every_line(
    fresh_db: str, tmp_path: Path
):
    patas = Patas(fresh_db, tmp_path / "home")
    big = tmp_path / "big.jsonl"
    rows = 120_000
    assert patas("generate", "--rows", str(rows), "--seed", "5", "--out", str(big)).returncode == 0
    with big.open("ab") as f:
        f.write(BAD_LINES)
    lines = input_lines(big)

    # 1. a new file (the direct COPY path)
    assert _kill_ingest_mid_copy(patas, big, into_messages=True), (
        "the ingest finished before its COPY was seen"
    )
    assert _counts(fresh_db) == (0, 0, 1), "no half batch: nothing visible, the batch row still 'running'"
    t0 = time.monotonic()
    res = patas("ingest", str(big))
    assert res.returncode == 0, res.stderr
    seconds = time.monotonic() - t0
    assert f"read {lines:,} = loaded {rows:,} + duplicate 0 + quarantined {lines - rows}" in res.stdout
    assert _counts(fresh_db) == (rows, rows, 0)
    with psycopg.connect(fresh_db) as conn:
        failed = conn.execute("select error from raw.ingest_batches where status = 'failed'").fetchall()
    assert len(failed) == 1 and failed[0][0].startswith("abandoned"), failed
    record_figure(
        "kill -9 patas ingest: mid-COPY of a new file", runs=1, outcome="nothing loaded; rerun loaded all",
        lines=lines, rerun_seconds=round(seconds, 1),
    )  # fmt: skip

    # 2. an overlapping file (the staging path: some ids exist already)
    overlap = tmp_path / "overlap.jsonl"
    extra = tmp_path / "extra.jsonl"
    assert patas("generate", "--rows", "20000", "--seed", "6", "--out", str(extra)).returncode == 0
    overlap.write_bytes(big.read_bytes() + extra.read_bytes())
    mid_copy = _kill_ingest_mid_copy(patas, overlap, into_messages=False)
    assert mid_copy, "the re-ingest finished before its COPY was seen"
    assert _counts(fresh_db) == (rows, rows, 1)
    res = patas("ingest", str(overlap))
    assert res.returncode == 0, res.stderr
    got = re.search(
        r"read ([\d,]+) = loaded ([\d,]+) \+ duplicate ([\d,]+) \+ quarantined ([\d,]+)", res.stdout
    )
    read, loaded, duplicate, quarantined = (int(g.replace(",", "")) for g in got.groups())
    assert read == input_lines(overlap) == loaded + duplicate + quarantined
    assert _counts(fresh_db) == (rows + loaded, rows + loaded, 0)
    assert duplicate >= rows and loaded > 0
    record_figure(
        "kill -9 patas ingest: mid-COPY of an overlapping file", runs=1,
        outcome="nothing loaded; rerun loaded the new rows only", lines=read,
    )  # fmt: skip


SECRET_FILE_ROOTS = ("logs", "reports", "exports", "dagster")


def test_no_secret_in_any_output(reference: dict, llm: StubLlm):
    """The LLM key, the database password and an API token never reach a log, report, export, Dagster
    event (its storage), dbt artifact or CLI output."""
    patas: Patas = reference["patas"]
    token_res = patas("apikey", "create", "rel-probe", "--role", "reader")
    assert token_res.returncode == 0, token_res.stderr
    token = token_res.stdout.strip().split()[-1]
    assert len(token) >= 20
    assert f"Bearer {LLM_KEY}" in llm.authorizations, "positive control: the stub LLM got the key"
    outputs = {
        "patas rules list": patas("rules", "list").stdout,
        "patas db status": patas("db", "status").stdout,
        "patas apikey list": patas("apikey", "list").stdout,
    }
    files = [p for root in SECRET_FILE_ROOTS for p in (patas.home / root).rglob("*") if p.is_file()]
    run_ids = [p.stem.removeprefix("run-") for p in (patas.home / "logs").glob("run-*.log")]
    dbt_dirs = [d for r in run_ids for d in (REPO / "target").glob(f"*-{r[:7]}-*")]
    files += [p for d in dbt_dirs for p in d.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in files) and any("reports" in p.parts for p in files)
    leaks = []
    for secret in (LLM_KEY, DB_PASSWORD, token):
        needle = secret.encode()
        leaks += [f"{secret[:6]}... in {p}" for p in files if needle in p.read_bytes()]
        leaks += [f"{secret[:6]}... in `{cmd}`" for cmd, out in outputs.items() if secret in out]
    record_figure(
        "secrets (LLM key, DB password, API token)", runs=1,
        outcome="no leak" if not leaks else f"{len(leaks)} leaks", files_scanned=len(files),
    )  # fmt: skip
    assert not leaks, leaks
