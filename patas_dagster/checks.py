"""Data-quality gates. Blocking checks stop promotion on bad evaluation data."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from patas_dagster.assets.dbt import patas_dbt_models
from patas_dagster.resources import WarehouseResource
from python_steps.ingest import expectations
from python_steps.lifecycle import store
from python_steps.mining import drafting
from python_steps.publish import report


@dg.asset_check(
    asset=dg.AssetKey(["raw", "ingest_batches"]), description="read = loaded + duplicate + quarantined"
)
def ingest_batches_account_for_every_line(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        bad = report.unbalanced_batches(conn)
    return dg.AssetCheckResult(passed=not bad, metadata={"unbalanced_batches": str(bad[:20])})


@dg.asset_check(
    asset=dg.AssetKey(["raw", "messages"]),
    description="great-expectations suite on the newest batch's rows (contract columns, uniqueness, labels).",
)
def messages_batch_meets_expectations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        v = expectations.validate_latest_batch(conn)
    return dg.AssetCheckResult(
        passed=v.success,
        metadata={"batch_id": v.batch_id or 0, "rows": v.rows, "failed": ", ".join(v.failed) or "none",
                  **{k: v for k, v in v.statistics.items() if v is not None}},
    )  # fmt: skip


@dg.asset_check(
    asset=dg.AssetKey(["patas", "rule_drafts"]),
    blocking=True,
    description="Every drafted rule recompiles to its stored SQL and that SQL passes the safety validator.",
)
def rule_drafts_are_safe_sql(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        problems = drafting.audit_stored_drafts(conn)
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": len(problems), "first": str(problems[:10])}
    )


@dg.asset_check(
    asset=get_asset_key_for_model([patas_dbt_models], "rule_evaluations"),
    blocking=True,
    description="Evaluation data is present and consistent for every candidate, shadow and active rule.",
)
def rule_evaluations_are_consistent(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        problems = store.check_evaluation_consistency(conn, context.run.run_id)
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": len(problems), "first": str(problems[:10])}
    )


all_checks = [
    ingest_batches_account_for_every_line,
    messages_batch_meets_expectations,
    rule_drafts_are_safe_sql,
    rule_evaluations_are_consistent,
]
