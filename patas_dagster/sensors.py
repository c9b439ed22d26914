"""Pick up new message files dropped into the inbox folder ($PATAS_HOME/inbox)."""

import dagster as dg

from patas_dagster.jobs import patas_pipeline
from python_steps.ingest.inbox import pending_files
from python_steps.settings import load_settings


@dg.sensor(job=patas_pipeline, minimum_interval_seconds=30, description="One run per new file in the inbox.")
def inbox_sensor(context: dg.SensorEvaluationContext):
    inbox = load_settings().inbox
    inbox.mkdir(parents=True, exist_ok=True)
    for entry in pending_files(inbox):
        yield dg.RunRequest(
            run_key=entry.run_key,
            run_config={"resources": {"run_spec": {"config": {"ingest_paths": [str(entry.path)]}}}},
            tags={"patas/source": entry.path.name},
        )


nightly_schedule = dg.ScheduleDefinition(
    name="nightly_patas_run",
    job=patas_pipeline,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-evaluate and re-mine every night on what has been ingested.",
)
