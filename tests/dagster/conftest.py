import psycopg
import pytest

from patas.manifest import ensure_manifest
from python_steps import tables
from python_steps.settings import dbt_env


@pytest.fixture(scope="session")
def manifest(server_url):
    """dbt's manifest, built once per session: @dbt_assets needs it at import time."""
    return ensure_manifest(dbt_env(server_url))


@pytest.fixture(scope="session")
def defs(manifest):
    from patas_dagster.definitions import defs

    return defs


@pytest.fixture
def small_warehouse(fresh_db, tmp_path, monkeypatch) -> str:
    """A fresh database with 400 generated messages ingested, and this process's environment
    pointing dbt and the warehouse resource at it (as `patas run` sets it up); returns its URL."""
    from python_steps.bench.generate import generate_corpus
    from python_steps.ingest.load import ingest_file

    corpus = tmp_path / "c.jsonl"
    generate_corpus(400, 3, corpus)
    with psycopg.connect(fresh_db) as conn:
        tables.migrate(conn)
    ingest_file(fresh_db, corpus)
    for k, v in dbt_env(fresh_db).items():
        if k.startswith(("PATAS_PG_", "DBT_")):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("PATAS_DATABASE_URL", fresh_db)
    return fresh_db
