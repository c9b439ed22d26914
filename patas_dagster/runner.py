"""`patas run`: materialize the whole graph in-process on a persistent Dagster instance."""

import os
import time
from pathlib import Path

import dagster as dg

from python_steps import report
from python_steps.dbt_manifest import ensure_manifest
from python_steps.settings import Settings, dbt_env
from python_steps.warehouse import connect


def _instance(settings: Settings) -> dg.DagsterInstance:
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def run_pipeline(
    settings: Settings,
    url: str,
    *,
    split: str = "auto",
    mining_start: str | None = None,
    mining_end: str | None = None,
    evaluation_start: str | None = None,
    evaluation_end: str | None = None,
    evaluation_share: int = 30,
    profile: str | None = None,
    ingest_paths: list[str] | None = None,
) -> dict:
    env = dbt_env(url)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("PATAS_PG_", "DBT_"))})
    os.environ["PATAS_DATABASE_URL"] = url
    ensure_manifest(env)
    from patas_dagster.definitions import defs  # needs target/manifest.json

    run_config = {
        # The summary is the user's output; Dagster's step-by-step log stays in the instance (patas ui).
        "loggers": {"console": {"config": {"log_level": os.environ.get("PATAS_LOG_LEVEL", "WARNING")}}},
        "ops": {
            "raw_messages": {"config": {"paths": list(ingest_paths or [])}},
            "patas_dbt_models": {
                "config": {
                    "split": split,
                    "mining_start": mining_start,
                    "mining_end": mining_end,
                    "evaluation_start": evaluation_start,
                    "evaluation_end": evaluation_end,
                    "evaluation_share": evaluation_share,
                }
            },
            "rule_lifecycle": {"config": {"profile": profile or settings.profile}},
        },
    }
    t0 = time.perf_counter()
    job = defs.resolve_job_def("patas_pipeline")
    result = job.execute_in_process(run_config=run_config, instance=_instance(settings), raise_on_error=False)
    elapsed = time.perf_counter() - t0
    with connect(url) as conn:
        summary = report.build_summary(conn, result.run_id)
    summary.update(success=result.success, run_seconds=round(elapsed, 1), run_id=result.run_id)
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()[:500]}"
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
        summary["failures"] = failures
    return summary
