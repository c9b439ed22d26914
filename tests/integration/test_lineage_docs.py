"""`patas docs` documents everything: every table PATAS writes from Python is a dbt source, every
column of every model and source is described, the home page is PATAS's own, and the consumers of
``active_rules`` are exposures.

The truth about columns is the warehouse, not the yml: the sources are compared with a database
migrated to the latest schema (python_steps.tables), the models with a database dbt built (empty
tables: fast). A new column without a description fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from patas.manifest import ensure_manifest
from python_steps import tables
from python_steps.settings import PROJECT_ROOT, dbt_env

pytestmark = pytest.mark.integration

# dbt's own bookkeeping beside incremental models (macros/incremental/input_state_table.sql),
# documented with its macros; not a model, not written by a Python step.
NOT_DOCUMENTED = {"model_input_states"}
MODEL_SCHEMAS = ("staging", "intermediate", "marts")


@pytest.fixture(scope="module")
def manifest(server_url) -> dict:
    return json.loads(ensure_manifest(dbt_env(server_url)).read_text())


def _columns(url: str, schemas: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            select c.table_schema, c.table_name, c.column_name
            from information_schema.columns as c
            join information_schema.tables as t using (table_schema, table_name)
            where c.table_schema = any(%s) and t.table_type in ('BASE TABLE', 'VIEW')
            order by c.table_schema, c.table_name, c.ordinal_position
            """,
            (list(schemas),),
        ).fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in rows:
        if table not in NOT_DOCUMENTED:
            out.setdefault((schema, table), []).append(column)
    return out


def _declared(manifest: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            out[(node["schema"], node.get("alias") or node["name"])] = node
    for node in manifest["sources"].values():
        out[(node["schema"], node["identifier"])] = node
    return out


def _undescribed(actual: dict[tuple[str, str], list[str]], declared: dict) -> list[str]:
    problems = []
    for (schema, table), columns in sorted(actual.items()):
        node = declared.get((schema, table))
        if node is None:
            problems.append(f"{schema}.{table}: not declared (a source in models/staging/_*__sources.yml)")
            continue
        if not (node.get("description") or "").strip():
            problems.append(f"{schema}.{table}: no description")
        for column in columns:
            if not (node["columns"].get(column, {}).get("description") or "").strip():
                problems.append(f"{schema}.{table}.{column}: no description")
        # A renamed column would leave a described ghost behind while the real one goes undescribed.
        for ghost in sorted(set(node["columns"]) - set(columns)):
            problems.append(f"{schema}.{table}.{ghost}: declared, but the relation has no such column")
    return problems


def test_every_table_patas_writes_is_a_source_with_every_column_described(fresh_db, manifest):
    with psycopg.connect(fresh_db) as conn:
        tables.ensure_all(conn)
    actual = _columns(fresh_db, ("raw", "patas"))
    assert ("raw", "ingest_quarantine") in actual and ("patas", "runs") in actual  # the check has teeth
    problems = _undescribed(actual, _declared(manifest))
    assert not problems, "\n".join(problems)


def test_every_model_column_is_described(fresh_db, manifest, tmp_path):
    with psycopg.connect(fresh_db) as conn:
        tables.ensure_all(conn)
    res = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--exclude-resource-type", "test", "unit_test",
         "--quiet", "--target-path", str(tmp_path / "target")],
        env=dbt_env(fresh_db), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    actual = _columns(fresh_db, MODEL_SCHEMAS)
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(actual) == len(models), sorted(actual)  # every model was built, nothing else counted
    problems = _undescribed(actual, _declared(manifest))
    assert not problems, "\n".join(problems)


def test_docs_blocks_are_rendered(manifest):
    """Shared descriptions ({{ doc('col_...') }}) resolve to text in the manifest."""
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] not in ("model", "source"):
            continue
        texts = [node.get("description") or ""] + [
            c.get("description") or "" for c in node["columns"].values()
        ]
        assert not any("{{" in t or "{%" in t for t in texts), node["unique_id"]


def test_the_home_page_is_patas_own(manifest):
    overview = manifest["docs"].get("doc.patas.__overview__")
    assert overview, "models/overview.md must define {% docs __overview__ %}"
    for needle in ("raw.ingest_quarantine", "active_rules", "exposures", "run_report", "rule_drafts"):
        assert needle in overview["block_contents"], needle


def test_the_consumers_of_active_rules_are_exposures(manifest):
    consumers = {
        e["name"]
        for e in manifest["exposures"].values()
        if "model.patas.active_rules" in e["depends_on"]["nodes"]
    }
    assert {"patas_api", "rule_exports", "run_report"} <= consumers, consumers
    for exposure in manifest["exposures"].values():
        assert exposure["description"].strip() and exposure["owner"]["name"], exposure["name"]


def test_python_steps_close_the_lineage_in_dbt_docs(manifest):
    """dbt cannot draw model -> Python step -> source; each Python step is an exposure on its inputs,
    and what it writes is a source read downstream, so the chain from raw.messages to the exports
    has no gap: stage1_candidates -> rule_drafting ... rule_drafts -> rule_hits -> ... active_rules."""
    exposures = {e["name"]: set(e["depends_on"]["nodes"]) for e in manifest["exposures"].values()}
    assert "model.patas.stage1_candidates" in exposures["rule_drafting"]
    assert "model.patas.stage1_uncovered_spam" in exposures["stage2_clustering"]
    assert "model.patas.rule_evaluations" in exposures["rule_lifecycle_step"]
    parents = manifest["parent_map"]
    assert "source.patas.patas.rule_drafts" in parents["model.patas.stg_patas__rule_drafts"]
    assert "source.patas.patas.rule_lifecycle" in parents["model.patas.stg_patas__rule_lifecycle"]
