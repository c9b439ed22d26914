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
    kinds={"postgres"},
    description=(
        "One row per label verdict on an ingested message (moderator, user appeal, API); the latest "
        "per message overrides its label in shadow evaluation (int_message_labels_overridden)."
    ),
)

defs = dg.Definitions(
    assets=[
        label_feedback,
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
    resources={
        "warehouse": WarehouseResource(),
        "dbt": dbt_resource(),
        "run_spec": RunSpecResource.configure_at_launch(),
    },
)
