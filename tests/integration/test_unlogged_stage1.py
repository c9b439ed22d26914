"""The stage-1 tables and rule_hits are unlogged: what a Postgres crash leaves, PATAS rebuilds.

A crash (not a clean shutdown) empties every unlogged table and keeps its identity (oid and file
node): checked by hand on a local server with ``pg_ctlcluster 15 main stop -m immediate``
(docs/benchmarks.md, session 15). The shared test server cannot be crashed, so the test leaves the
same state with ``delete`` (no row, same file node) and checks what a team would see afterwards:

- the HTTP API's shadow re-evaluation (a run without stage 1) fails with a one-line reason instead
  of measuring every rule at zero hits;
- ``patas run`` is not skipped as "nothing new" and rebuilds the tables, row for row as before;
- a warehouse whose table is still logged (built before this change) is converted when a new
  stage-1 code version rebuilds it.

Real ``patas`` processes, the real Dagster job, a real Postgres.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from patas.bench.harness import fresh_database, patched_environ
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PATAS = str(Path(sys.executable).parent / "patas")
UNLOGGED = (
    "intermediate.int_messages_normalized",
    "intermediate.int_message_signals_extracted",
    "intermediate.int_messages_enriched",
    "marts.rule_hits",
)
LOGGED = (
    "raw.messages",
    "marts.signal_label_counts",
    "marts.rule_evaluations",
    "marts.active_rules",
    "patas.rule_lifecycle",
)
SNAPSHOTS = {
    "signals": """
        select m.external_id, s.signal_kind, s.signal_value from intermediate.int_message_signals_extracted as s
        join raw.messages as m using (message_id) order by 1, 2, 3""",
    "enriched": "select * from intermediate.int_messages_enriched order by message_id",
    "normalized": "select * from intermediate.int_messages_normalized order by message_id",
    "rule_hits": "select * from marts.rule_hits order by rule_id, window_name, message_id",
    "rule_evaluations": """
        select rule_id, rule_version, window_name, hit_count, spam_hit_count, ham_hit_count, unique_spam_hit_count,
            window_message_count, precision, recall
        from marts.rule_evaluations order by rule_id, window_name""",
}


def _patas(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([PATAS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{args} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _persistence(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            rel: conn.execute(
                "select relpersistence::text from pg_class where oid = %s::regclass", (rel,)
            ).fetchone()[0]
            for rel in UNLOGGED + LOGGED
        }


def _file_nodes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            rel: conn.execute("select relfilenode from pg_class where oid = %s::regclass", (rel,)).fetchone()[
                0
            ]
            for rel in UNLOGGED
        }


def _snapshot(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOTS.items()}


def _crash(url: str) -> None:
    """What crash recovery leaves: the unlogged tables without a row, under the same file node."""
    nodes = _file_nodes(url)
    with psycopg.connect(url) as conn:
        for rel in UNLOGGED:
            conn.execute(f"delete from {rel}")
    assert _file_nodes(url) == nodes


@pytest.fixture(scope="module")
def built(server_url: str, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("unlogged")
    corpus = tmp / "corpus.jsonl"
    with fresh_database(server_url, f"patas_unlogged_{os.getpid()}") as url:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(tmp / "home")}
        _patas(env, tmp, "generate", "--rows", "1500", "--seed", "11", "--out", str(corpus))
        _patas(env, tmp, "ingest", str(corpus))
        _patas(env, tmp, "run")
        yield {"url": url, "env": env, "tmp": tmp, "persistence": _persistence(url), "before": _snapshot(url)}


def test_the_rebuilt_tables_are_unlogged_and_what_a_team_reads_is_logged(built) -> None:
    assert built["persistence"] == {**{r: "u" for r in UNLOGGED}, **{r: "p" for r in LOGGED}}
    assert all(built["before"][name] for name in SNAPSHOTS), "a generated corpus gives rows in every table"


def test_after_a_crash_shadow_evaluation_refuses_and_a_run_rebuilds_the_same_rows(built) -> None:
    from patas.manifest import ensure_manifest
    from patas.runner import run_pipeline
    from patas.service.worker import eval_shadow_selection
    from python_steps.settings import dbt_env

    url, env, tmp = built["url"], built["env"], built["tmp"]
    _crash(url)
    home = Path(env["PATAS_HOME"])
    with patched_environ(
        {"PATAS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PATAS_DATABASE_URL": url}
    ):
        ensure_manifest(dbt_env(url))
        summary = run_pipeline(load_settings(), url, asset_selection=eval_shadow_selection())
    assert not summary["success"]
    assert any(
        "the stage-1 tables are empty while raw.messages holds messages" in f for f in summary["failures"]
    )
    assert any("run `patas run` to rebuild them" in f for f in summary["failures"])

    res = _patas(env, tmp, "run")
    assert "nothing new" not in res.stdout, res.stdout[-2000:]
    assert _snapshot(url) == built["before"]
    assert _persistence(url) == built["persistence"]


def test_a_logged_table_from_an_earlier_version_is_converted_when_it_is_rebuilt(built) -> None:
    url, env, tmp = built["url"], built["env"], built["tmp"]
    with psycopg.connect(url) as conn:
        conn.execute("alter table intermediate.int_messages_normalized set logged")
        conn.execute(
            "update intermediate.model_code_versions set code_version = %s"
            " where model_name = 'intermediate.int_messages_normalized'",
            ("0" * 32,),
        )
    assert _persistence(url)["intermediate.int_messages_normalized"] == "p"
    _patas(env, tmp, "run")
    assert _persistence(url) == built["persistence"]
    assert _snapshot(url) == built["before"]
