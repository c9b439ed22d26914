"""The reference seeds load once per file content, not on every run (macros/warehouse/materialization_seed_postgres.sql)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from patas.bench.harness import run_dbt

pytestmark = pytest.mark.integration


def _messages(work_dir: Path) -> dict[str, str]:
    results = json.loads((work_dir / "target" / "run_results.json").read_text())
    return {
        r["unique_id"].split(".")[-1]: r["message"]
        for r in results["results"]
        if r["unique_id"].startswith("seed.")
    }


def test_an_unchanged_seed_is_left_alone_and_a_touched_one_reloads(fresh_db: str, tmp_path: Path):
    run_dbt(fresh_db, ["seed"], work_dir=tmp_path)
    first = _messages(tmp_path)
    assert first["public_suffixes"].startswith("INSERT"), first
    with psycopg.connect(fresh_db) as conn:
        counts = conn.execute(
            "select (select count(*) from reference.public_suffixes), (select count(*) from reference.link_shorteners)"
        ).fetchone()
    run_dbt(fresh_db, ["seed"], work_dir=tmp_path)
    assert set(_messages(tmp_path).values()) == {"UNCHANGED 0"}
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "delete from reference.link_shorteners where domain = (select min(domain) from reference.link_shorteners)"
        )
    run_dbt(fresh_db, ["seed"], work_dir=tmp_path)
    third = _messages(tmp_path)
    assert third["link_shorteners"].startswith("INSERT") and third["public_suffixes"] == "UNCHANGED 0", third
    run_dbt(fresh_db, ["seed", "--full-refresh"], work_dir=tmp_path)
    assert all(m.startswith("CREATE") for m in _messages(tmp_path).values())
    with psycopg.connect(fresh_db) as conn:
        after = conn.execute(
            "select (select count(*) from reference.public_suffixes), (select count(*) from reference.link_shorteners)"
        ).fetchone()
    assert after == counts


def test_every_seed_row_loads_as_written(fresh_db: str, tmp_path: Path):
    """macros/warehouse/load_csv_rows_postgres.sql: each table holds its CSV file row for row,
    public_suffixes across two insert batches (more rows than dbt's batch of 10,000)."""
    import csv

    from python_steps.settings import PROJECT_ROOT

    run_dbt(fresh_db, ["seed"], work_dir=tmp_path)
    seeds = {
        "public_suffixes": ("suffix", "rule_kind"),
        "stop_words": ("word", "language"),
        "link_shorteners": ("domain",),
    }
    with psycopg.connect(fresh_db) as conn:
        for name, columns in seeds.items():
            with (PROJECT_ROOT / "seeds" / f"{name}.csv").open(newline="", encoding="utf-8") as f:
                expected = sorted(tuple(row[c] for c in columns) for row in csv.DictReader(f))
            stored = sorted(conn.execute(f"select {', '.join(columns)} from reference.{name}").fetchall())
            assert stored == expected, name
    assert (
        len(expected) > 0 and sum(1 for _ in (PROJECT_ROOT / "seeds" / "public_suffixes.csv").open()) > 10_001
    )
