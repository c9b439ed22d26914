"""The PATAS code location: `dagster dev -m patas_dagster.definitions` (or `patas ui`)."""

import dagster as dg

from patas_dagster.assets.dbt import patas_dbt_models
from patas_dagster.assets.ingestion import raw_messages
from patas_dagster.assets.lifecycle import rule_exports, rule_lifecycle, run_report
from patas_dagster.assets.rules import rule_drafts, semantic_clusters
from patas_dagster.checks import all_checks
from patas_dagster.jobs import patas_pipeline
from patas_dagster.loggers import loggers
from patas_dagster.resources import RunSpecResource, WarehouseResource, dbt_resource
from patas_dagster.sensors import inbox_sensor, nightly_schedule

# Written outside runs (patas feedback, POST /api/v1/feedback): an external asset, so the lineage
# from moderator verdicts to effective labels and shadow evaluation shows in the graph.
label_feedback = dg.AssetSpec(
    ["patas", "label_feedback"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    description=(
        "One row per label verdict on an ingested message (moderator, user appeal, API); the latest "
        "per message overrides its label in shadow evaluation (int_message_labels_overridden)."
    ),
)

# Written inside runs but not by an asset: the data-quality check (blocking, on raw/messages) writes
# the batch profiles and gate results; the first dbt step records the run's windows. External
# assets, so the run report's inputs show in the graph.
batch_profiles = dg.AssetSpec(
    ["patas", "batch_profiles"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    deps=[["raw", "messages"], ["raw", "ingest_batches"]],
    description=(
        "One profile per ingested batch (counts, shares, text-length quantiles), written by the check "
        "messages_batch_passes_quality_gates; later batches are compared with it."
    ),
)
quality_gate_results = dg.AssetSpec(
    ["patas", "quality_gate_results"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    deps=[["patas", "batch_profiles"]],
    description=(
        "One row per data-quality gate and batch (passed, failed, skipped; critical or warning), written "
        "by the check messages_batch_passes_quality_gates. Thresholds: quality_gates.toml."
    ),
)
runs_register = dg.AssetSpec(
    ["patas", "runs"],
    group_name="stage1",
    kinds={"python", "postgres"},
    deps=[["raw", "messages"]],
    description="One row per run: the mining and evaluation windows it used (recorded by the first dbt step).",
)

defs = dg.Definitions(
    assets=[
        label_feedback,
        batch_profiles,
        quality_gate_results,
        runs_register,
        raw_messages,
        patas_dbt_models,
        semantic_clusters,
        rule_drafts,
        rule_lifecycle,
        rule_exports,
        run_report,
    ],
    asset_checks=all_checks,
    jobs=[patas_pipeline],
    sensors=[inbox_sensor],
    schedules=[nightly_schedule],
    loggers=loggers,
    # Every step in the run's own process, as `patas run` executes the job: the warehouse resource
    # is set up once per run and holds the run lock from the first step to the last.
    executor=dg.in_process_executor,
    resources={
        "warehouse": WarehouseResource(),
        "dbt": dbt_resource(),
        "run_spec": RunSpecResource.configure_at_launch(),
    },
)
