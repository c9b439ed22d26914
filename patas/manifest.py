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


def ensure_manifest(env: dict[str, str], *, force: bool = False) -> Path:
    """Run ``dbt parse`` when the manifest is missing or older than the project's sources."""
    if force or manifest_is_stale():
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
