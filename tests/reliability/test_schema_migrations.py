"""Versioned schema migrations: the previous release's schema, with data in it, upgrades in place.

The previous schema is the DDL of ``python_steps/tables.py`` as of commit bd60739, kept as a fixture
file (``fixtures/schema_bd60739.sql``) so the test does not need git history at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from python_steps import tables

FIXTURES = Path(__file__).parent / "fixtures"
PREVIOUS_SCHEMA = (FIXTURES / "schema_bd60739.sql").read_text()
PATAS = str(Path(sys.executable).parent / "patas")

# Data as the previous release wrote it, including a failed batch with neither an end time nor a
# reason (legal then; migration 2 makes both required).
PREVIOUS_DATA = """
insert into raw.ingest_batches (source_path, source_format, status, finished_at,
                                read_count, loaded_count, duplicate_count, quarantined_count)
values ('/data/a.jsonl', 'jsonl', 'done', '2026-11-01T10:00:00Z', 3, 2, 0, 1),
       ('/data/b.jsonl', 'jsonl', 'failed', null, 0, 0, 0, 0);
insert into raw.messages (external_id, event_at, text, is_spam, meta, batch_id, source_line)
values ('m1', '2026-10-01T00:00:00Z', 'WIN a prize at prize.example', true, '{"chat": "c1"}', 1, 1),
       ('m2', null, 'see you at lunch', false, '{}', 1, 2);
insert into raw.ingest_quarantine (batch_id, line_number, reason_code, reason, raw_line, raw_bytes)
values (1, 3, 'malformed_json', 'not JSON', 'not json', 'not json'::bytea);
insert into patas.rule_lifecycle (rule_id, version, status, tier, status_reason, updated_run_id)
values ('r_1', 1, 'active', 'SAFE_AUTO', 'promoted', 'run-1');
insert into patas.rule_audit (rule_id, version, from_status, to_status, reason, run_id, actor)
values ('r_1', 1, 'shadow', 'active', 'meets conservative', 'run-1', 'pipeline');
insert into patas.api_keys (name, role, token_sha256, token_prefix, created_by)
values ('ops', 'operator', 'abc123', 'pk_abc', 'cli');
"""

KEPT_AS_IS = (  # table -> order key: rows that must come through an upgrade byte for byte
    ("raw.messages", "message_id"),
    ("raw.ingest_quarantine", "batch_id, line_number"),
    ("patas.rule_lifecycle", "rule_id"),
    ("patas.rule_audit", "audit_id"),
    ("patas.api_keys", "key_id"),
)


def _rows(conn: psycopg.Connection, table: str, order: str) -> list[tuple]:
    return conn.execute(f"select * from {table} order by {order}").fetchall()


def _constraints(conn: psycopg.Connection, table: str) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "select conname from pg_constraint where conrelid = %s::regclass", (table,)
        ).fetchall()
    }


def _previous_release_warehouse(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(PREVIOUS_SCHEMA)
        conn.execute(PREVIOUS_DATA)


def test_the_baseline_migration_is_the_previous_schema_unchanged():
    # Migration 1 is frozen: an edit to the old DDL strings would never reach existing warehouses.
    lines = PREVIOUS_SCHEMA.splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("-- "))
    body = "\n".join(lines[header:])  # the fixture's own header comment off
    assert tables.MIGRATIONS[0].sql.strip() == body.strip()
    versions = [m.version for m in tables.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1)), "versions are 1, 2, 3, ... in order"


def test_the_previous_schema_with_data_upgrades_in_place(fresh_db: str):
    _previous_release_warehouse(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        before = {t: _rows(conn, t, o) for t, o in KEPT_AS_IS}
        assert tables.schema_version(conn) == 0
        conn.commit()
        assert tables.migrate(conn) == [m.version for m in tables.MIGRATIONS]
        assert tables.schema_version(conn) == tables.LATEST_VERSION
        for table, order in KEPT_AS_IS:
            assert _rows(conn, table, order) == before[table], table
        # the new shape: migration 2's constraints, with the old failed batch brought into line
        assert conn.execute("select to_regclass('patas.rule_evidence')").fetchone()[0] is not None  # 3
        assert {"ingest_batches_end_is_recorded", "ingest_batches_failure_is_explained"} <= _constraints(
            conn, "raw.ingest_batches"
        )
        batches = conn.execute(
            "select status, finished_at is not null, error from raw.ingest_batches order by batch_id"
        ).fetchall()
        assert batches[0] == ("done", True, None)
        assert batches[1][:2] == ("failed", True) and "before schema version 2" in batches[1][2]
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "insert into raw.ingest_batches (source_path, source_format, status) values ('x', 'csv', 'failed')"
            )
        recorded = conn.execute(
            "select version, checksum from patas.schema_migrations order by version"
        ).fetchall()
        assert recorded == [(m.version, m.checksum) for m in tables.MIGRATIONS]
        assert tables.migrate(conn) == [], "idempotent: a second call applies nothing"


def test_patas_ingest_upgrades_the_previous_schema_and_loads(fresh_db: str, tmp_path: Path):
    _previous_release_warehouse(fresh_db)
    data = tmp_path / "new.jsonl"
    data.write_text('{"id": "m3", "text": "call 555-0100 now", "is_spam": true}\nnot json\n')
    env = {**os.environ, "PATAS_DATABASE_URL": fresh_db, "PATAS_HOME": str(tmp_path / "home")}
    res = subprocess.run([PATAS, "ingest", str(data)], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "read 2 = loaded 1 + duplicate 0 + quarantined 1" in res.stdout
    with psycopg.connect(fresh_db) as conn:
        assert tables.schema_version(conn) == tables.LATEST_VERSION
        assert conn.execute("select count(*) from raw.messages").fetchone()[0] == 3


def test_concurrent_first_starts_apply_each_migration_once(fresh_db: str):
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with psycopg.connect(fresh_db) as conn:
                results.append(tables.migrate(conn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results, key=len) == [[], [], [], [m.version for m in tables.MIGRATIONS]]
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("select count(*) from patas.schema_migrations").fetchone()[0] == len(
            tables.MIGRATIONS
        )


def test_a_warehouse_newer_than_this_patas_is_refused(fresh_db: str):
    with psycopg.connect(fresh_db) as conn:
        tables.migrate(conn)
        conn.execute(
            "insert into patas.schema_migrations (version, name, checksum) values (%s, 'from the future', '-')",
            (tables.LATEST_VERSION + 1,),
        )
        conn.commit()
        with pytest.raises(tables.SchemaVersionError, match="newer than this PATAS"):
            tables.migrate(conn)
