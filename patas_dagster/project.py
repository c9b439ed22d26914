"""The one module that knows where the dbt project lives."""

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from python_steps.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT
DBT_PROFILES_DIR = PROJECT_ROOT / "profiles"


def dbt_executable() -> str:
    """The dbt of this interpreter's environment (never a stray ``dbtf`` on PATH) for a dbt
    subprocess, started through ``patas-dbt`` where installed, so it dies with the run that started
    it (patas_dagster.dbt_child). The pipeline's own dbt steps run in-process (dbt_inprocess)."""
    for name in ("patas-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise RuntimeError("dbt is not installed in this environment")
    return found


patas_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR)
