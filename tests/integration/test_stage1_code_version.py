"""The batch-incremental stage-1 models rebuild themselves when their code changes.

They append only the batches they have not seen, so a new normalizer or extractor would otherwise
reach new batches only. Each records the stage-1 code version it was built with (dbt var
``patas_stage1_code``, which every run passes); a different version truncates the table and the
run's append rebuilds it from every batch. Real ``patas`` processes and a real Postgres.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg

from patas.bench.harness import fresh_database
from python_steps.mining import reuse
from python_steps.mining.windows import RunWindows
from python_steps.runspec import RunSpec

PATAS = str(Path(sys.executable).parent / "patas")
MODELS = [
    "stg_raw__messages",
    "int_messages_normalized",
    "int_message_signals_extracted",
    "int_messages_enriched",
]
STAGED = ("intermediate.int_messages_normalized", "intermediate.int_message_signals_extracted",
          "intermediate.int_messages_enriched")  # fmt: skip
VERSION_A, VERSION_B = "a" * 32, "b" * 32


def _patas(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([PATAS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if ok:
        assert res.returncode == 0, f"{args} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _build(env: dict[str, str], cwd: Path, version: str, ok: bool = True) -> subprocess.CompletedProcess:
    return _patas(env, cwd, "dbt", "--", "run", "--select", *MODELS,
                  "--vars", json.dumps({"patas_stage1_code": version}), ok=ok)  # fmt: skip


def _versions(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute("select model_name, code_version from intermediate.model_code_versions").fetchall()
        )


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        out = {rel: conn.execute(f"select count(*) from {rel}").fetchone()[0] for rel in STAGED}
        out["phones"] = conn.execute(
            "select count(*) from intermediate.int_message_signals_extracted where signal_kind = 'phone'"
        ).fetchone()[0]
    return out


def test_every_run_passes_the_stage1_code_version():
    spec_vars = RunSpec().dbt_vars(RunWindows(split_mode="hash", evaluation_share=30), "r1")
    assert spec_vars["patas_stage1_code"] == reuse.stage1_code_version()
    assert len(reuse.stage1_code_version()) == 32


def test_a_new_stage1_code_version_rebuilds_the_incremental_models(server_url: str, tmp_path: Path):
    corpus = tmp_path / "corpus.jsonl"
    with fresh_database(server_url, f"patas_codever_{os.getpid()}") as url:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(tmp_path / "home")}
        _patas(env, tmp_path, "generate", "--rows", "1500", "--seed", "3", "--out", str(corpus))
        _patas(env, tmp_path, "ingest", str(corpus))
        _patas(env, tmp_path, "dbt", "--", "seed")  # the reference data extraction joins
        _build(env, tmp_path, VERSION_A)
        assert _versions(url) == {rel: VERSION_A for rel in STAGED}
        built = _counts(url)
        assert built["phones"] > 0 and built["intermediate.int_messages_enriched"] == 1500

        # An older extraction left behind: the phone signals are gone from the stored rows.
        with psycopg.connect(url) as conn:
            conn.execute("delete from intermediate.int_message_signals_extracted where signal_kind = 'phone'")
        _build(env, tmp_path, VERSION_A)  # the same code: incremental, nothing new to append
        assert _counts(url)["phones"] == 0

        _build(env, tmp_path, VERSION_B)  # new code: every model rebuilt from every batch
        assert _counts(url) == built
        assert _versions(url) == {rel: VERSION_B for rel in STAGED}

        # A full refresh (README: after editing a dbt macro) keeps the signal key's unique index.
        _patas(env, tmp_path, "dbt", "--", "run", "--full-refresh", "--select", *MODELS,
               "--vars", json.dumps({"patas_stage1_code": VERSION_B}))  # fmt: skip
        assert _counts(url) == built
        with psycopg.connect(url) as conn:
            keys = conn.execute(
                """
                select count(*) from pg_index as i
                where i.indrelid = 'intermediate.int_message_signals_extracted'::regclass
                    and i.indisunique and i.indisvalid and i.indkey::text = (
                        select string_agg(a.attnum::text, ' ' order by k.position)
                        from unnest(array['message_id', 'signal_kind', 'signal_value']) with ordinality
                            as k (name, position)
                        inner join pg_attribute as a
                            on a.attrelid = i.indrelid and a.attname = k.name
                    )
                """
            ).fetchone()[0]
        assert keys == 1

        bad = _build(env, tmp_path, "x'; drop table raw.messages; --", ok=False)
        assert bad.returncode != 0
        assert "patas_stage1_code must be an md5" in bad.stdout + bad.stderr
        assert _counts(url) == built


def test_the_unique_tests_fail_on_a_duplicate_with_or_without_a_unique_index(server_url: str, tmp_path: Path):
    """dbt's `unique` test, answered by the catalog when the column has a valid unique index of
    its own (macros/tests/test_unique.sql): it still fails on a duplicate wherever one can exist."""
    corpus = tmp_path / "corpus.jsonl"
    with fresh_database(server_url, f"patas_unique_{os.getpid()}") as url:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(tmp_path / "home")}
        _patas(env, tmp_path, "generate", "--rows", "300", "--seed", "3", "--out", str(corpus))
        _patas(env, tmp_path, "ingest", str(corpus))
        _patas(env, tmp_path, "dbt", "--", "seed")
        _build(env, tmp_path, VERSION_A)

        def unique_tests() -> dict[str, str]:
            res = _patas(
                env,
                tmp_path,
                "dbt",
                "--",
                "test",
                "--select",
                "int_messages_normalized",
                "stop_words",
                ok=False,
            )
            found = re.findall(
                r"\b(PASS|FAIL)(?: \d+)? (unique_(?:int_messages_normalized|stop_words)_\w+)", res.stdout
            )
            return {name: status for status, name in found}

        assert unique_tests() == {
            "unique_int_messages_normalized_message_id": "PASS",
            "unique_stop_words_word": "PASS",
        }
        with psycopg.connect(url) as conn:
            # a seed has no index: the test groups, and finds the copy
            (word,) = conn.execute("select min(word) from reference.stop_words").fetchone()
            conn.execute(
                "insert into reference.stop_words select * from reference.stop_words where word = %s", (word,)
            )
        assert unique_tests()["unique_stop_words_word"] == "FAIL"
        with psycopg.connect(url) as conn:
            conn.execute(
                "delete from reference.stop_words where ctid = (select max(ctid) from reference.stop_words where word = %s)",
                (word,),
            )
            names = [
                r[0]
                for r in conn.execute(
                    "select attname from pg_attribute where attrelid = 'intermediate.int_messages_normalized'::regclass"
                    " and attnum > 0 and not attisdropped order by attnum"
                )
            ]
            # message_id without its unique index: the test groups again, and finds the copy
            (index,) = conn.execute(
                "select indexrelid::regclass::text from pg_index where indisunique"
                " and indrelid = 'intermediate.int_messages_normalized'::regclass"
            ).fetchone()
            conn.execute(f"drop index {index}")
            columns = ", ".join("external_id || '-copy'" if n == "external_id" else n for n in names)
            conn.execute(
                f"insert into intermediate.int_messages_normalized select {columns} from intermediate.int_messages_normalized"
                " order by message_id limit 1"
            )
        assert unique_tests() == {
            "unique_int_messages_normalized_message_id": "FAIL",
            "unique_stop_words_word": "PASS",
        }
