"""dbt's unit tests (the ``unit_tests:`` of models/*.yml) check the models' SQL on fixed inputs. A
run leaves them out (patas_dagster/assets/dbt.py: they test the code, which a run does not change);
they run here, once their parents exist (built on an empty warehouse), as dbt requires."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml

from patas.bench.harness import run_dbt
from python_steps import tables
from python_steps.ingest.load import ensure_schema

pytestmark = pytest.mark.integration


def test_every_dbt_unit_test_passes(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        tables.migrate(conn)
        conn.commit()
    run_dbt(fresh_db, ["seed"], work_dir=tmp_path)
    run_dbt(fresh_db, ["run"], work_dir=tmp_path)  # on an empty warehouse: the parents exist, empty
    run_dbt(fresh_db, ["test", "--select", "test_type:unit"], work_dir=tmp_path)
    results = [
        r
        for r in json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
        if r["unique_id"].startswith("unit_test.")
    ]
    declared = {
        f"{model['model']}::{model['name']}"
        for path in Path(__file__).resolve().parents[2].joinpath("models").rglob("*.yml")
        for model in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }
    ran = {r["unique_id"].split(".", 2)[-1].replace(".", "::", 1) for r in results}
    assert declared and ran == declared, (ran, declared)
    assert all(r["status"] == "pass" for r in results), [(r["unique_id"], r["message"]) for r in results]
