import pytest

from patas.manifest import ensure_manifest
from python_steps.settings import dbt_env


@pytest.fixture(scope="session")
def manifest(server_url):
    """dbt's manifest, built once per session: @dbt_assets needs it at import time."""
    return ensure_manifest(dbt_env(server_url))


@pytest.fixture(scope="session")
def defs(manifest):
    from patas_dagster.definitions import defs

    return defs
