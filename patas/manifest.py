"""Keep dbt's ``target/manifest.json`` current: Dagster's ``@dbt_assets`` is built from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from patas_dagster.project import dbt_executable
from python_steps.settings import PROJECT_ROOT

MANIFEST = PROJECT_ROOT / "target" / "manifest.json"
SOURCES = ("models", "macros", "seeds", "tests/dbt", "dbt_project.yml")


def _newest_source_mtime(root: Path = PROJECT_ROOT) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for f in path.rglob("*"):
                if f.is_file():
                    newest = max(newest, f.stat().st_mtime)
    return newest


def manifest_is_stale() -> bool:
    return not MANIFEST.exists() or MANIFEST.stat().st_mtime < _newest_source_mtime()


def ensure_manifest(env: dict[str, str], *, force: bool = False, in_process: bool = False) -> Path:
    """Run ``dbt parse`` when the manifest is missing or older than the project's sources.

    ``in_process``: parse in this process, whose environment already holds ``env``'s profile
    variables (``patas run``), and keep the parsed project for the run's dbt steps."""
    if force or manifest_is_stale():
        if in_process:
            from patas_dagster.dbt_inprocess import write_manifest
            from patas_dagster.project import patas_dbt_project as project

            # The same directories as the run's dbt resource: its steps find this parse.
            return write_manifest(str(project.project_dir), str(project.profiles_dir))
        # Through patas-dbt: a parse started by a run that is killed dies with it.
        res = subprocess.run(
            [dbt_executable(), "parse", "--quiet"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"dbt parse failed:\n{res.stdout}\n{res.stderr}")
    return MANIFEST
