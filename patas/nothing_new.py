"""`patas run` with nothing new: the latest run's results stand, and no step runs.

Checked before Dagster, dbt or any step is imported (python_steps.run_state says what "nothing
new" covers). The check holds the warehouse run lock, as a run would; when another run holds it,
or anything differs, the caller runs the graph as usual.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from python_steps import run_state, tables
from python_steps.lifecycle.profiles import ProfileError, load_profiles
from python_steps.lifecycle.replay import active_rules_without_a_hit
from python_steps.mining import reuse
from python_steps.runspec import RunSpec
from python_steps.settings import Settings
from python_steps.warehouse import WarehouseError, connect, run_lock

# Everything that runs: the logic and the dbt project (the steps' own code version), the wiring,
# this application and the pinned dependencies.
CODE_GLOBS = (*reuse.CODE_GLOBS, ("patas_dagster", "**/*.py"), ("patas", "**/*.py"))
CODE_FILES = (*reuse.CODE_FILES, "pyproject.toml")


def code_version() -> str:
    return reuse.code_version(reuse.PROJECT_ROOT, CODE_GLOBS, CODE_FILES)


# What a summary says about the run that wrote it, not about the warehouse it left.
PER_RUN_FIELDS = {
    "steps": {},
    "stage_seconds": {},
    "transitions_this_run": {},
    "deprecated_this_run": {},
    "rules_new_this_run": 0,
}


def nothing_new(settings: Settings, url: str, spec: RunSpec) -> dict[str, Any] | None:
    """The summary of the latest run, marked ``nothing_new``, when the warehouse, the settings and
    the code are exactly as that run left them; None when a run must go ahead."""
    if spec.ingest_paths:
        return None
    t0 = time.perf_counter()
    try:
        with (
            connect(url, autocommit=True) as lock_conn,
            run_lock(lock_conn, wait=False),
            connect(url) as conn,
        ):
            if tables.schema_version(conn) != tables.LATEST_VERSION:
                return None
            try:
                profile = load_profiles(settings.home / "safety_profiles.toml").get(
                    spec.profile_or(settings.profile)
                )
            except ProfileError:
                return None  # the run itself reports it
            if profile.max_idle_runs and active_rules_without_a_hit(conn):
                return None  # each run counts one more idle run
            state = run_state.run_state(
                conn, spec=spec.as_dict(), settings=settings, home=settings.home, environ=os.environ,
                code=code_version(),
            )  # fmt: skip
            previous = run_state.unchanged_since(conn, state)
    except WarehouseError:
        return None  # another run holds the lock: the run itself says so
    if previous is None:
        return None
    report_file = settings.home / "reports" / f"run_{previous}.json"
    try:
        summary = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    summary.update(PER_RUN_FIELDS)
    summary.update(
        success=True,
        nothing_new={"since_run": previous},
        run_id=previous,
        run_seconds=round(time.perf_counter() - t0, 1),
        report_file=str(report_file),
        run_spec=spec.as_dict(),
    )
    summary.pop("failures", None)
    return summary
