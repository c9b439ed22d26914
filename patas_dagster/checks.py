"""Data-quality gates. Blocking checks stop promotion on bad evaluation data."""

from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from patas_dagster.assets.dbt import patas_dbt_models
from patas_dagster.resources import WarehouseResource
from python_steps.lifecycle import store
from python_steps.mining import drafting
from python_steps.publish import report
from python_steps.quality import gates
from python_steps.settings import load_settings


@dg.asset_check(
    asset=dg.AssetKey(["raw", "ingest_batches"]), description="read = loaded + duplicate + quarantined"
)
def ingest_batches_account_for_every_line(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        bad = report.unbalanced_batches(conn)
    return dg.AssetCheckResult(passed=not bad, metadata={"unbalanced_batches": str(bad[:20])})


@dg.asset_check(
    asset=dg.AssetKey(["raw", "messages"]),
    blocking=True,
    description=(
        "Data-quality gates (great-expectations) on the newest batch against the earlier batches: volume, "
        "spam and unlabelled share, text-length quantiles, duplicate and quarantine share, future "
        "timestamps. A critical failure blocks everything downstream (no promotion on that data); a "
        "warning shows here. Thresholds: python_steps/quality/quality_gates.toml, "
        "$PATAS_HOME/quality_gates.toml; results: patas.quality_gate_results."
    ),
)
def messages_batch_passes_quality_gates(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    home = load_settings().home
    config = gates.load_config(home / "quality_gates.toml")
    with warehouse.connect() as conn:
        v = gates.validate_newest_batch(conn, config, run_id=context.run.run_id)
        conn.commit()
    docs = gates.write_data_docs(v.data_docs, home / "reports", context.run.run_id)  # GE's pages
    failed = v.critical_failures or v.warnings
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if v.critical_failures else dg.AssetCheckSeverity.WARN,
        description=v.summary(),
        metadata={
            "batch_id": v.batch_id or 0,
            "rows": v.rows,
            "critical_failures": len(v.critical_failures),
            "warnings": len(v.warnings),
            "reused": v.reused,  # an earlier run's results for the same batch, history and thresholds
            **{f"data_docs_{Path(p).stem}": dg.MetadataValue.path(p) for p in docs},
            "gates": dg.MetadataValue.md(
                "| gate | severity | status | detail |\n|---|---|---|---|\n"
                + "\n".join(f"| {r.gate} | {r.severity} | {r.status} | {r.detail} |" for r in v.results)
            ),
        },
    )


@dg.asset_check(
    asset=dg.AssetKey(["patas", "rule_drafts"]),
    blocking=True,
    description="Every drafted rule recompiles to its stored SQL and that SQL passes the safety validator.",
)
def rule_drafts_are_safe_sql(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        problems, reused = drafting.audit_stored_drafts_once(conn, context.run.run_id)
    reuse = {"reused": True, "skip_reason": reused} if reused else {"reused": False}
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": len(problems), "first": str(problems[:10]), **reuse}
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


@dg.asset_check(
    asset=dg.AssetKey(["patas", "rule_lifecycle"]),
    description=(
        "Evaluation gates (great-expectations), checked by the lifecycle step before it changes any status: "
        "window sizes above a minimum, the active set's precision against the previous run. A critical "
        "failure withheld every promotion and deprecation (the active set is unchanged); results: "
        "patas.quality_gate_results, patas.evaluation_profiles."
    ),
)
def evaluation_passes_quality_gates(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        rows = conn.execute(
            "select gate, severity, status, detail from patas.quality_gate_results"
            " where run_id = %s and gate = any(%s) order by gate",
            (context.run.run_id, list(gates.EVALUATION_GATES)),
        ).fetchall()
    critical = [r for r in rows if r[2] == "failed" and r[1] == "critical"]
    failed = [r for r in rows if r[2] == "failed"]
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
        description=(
            ("BLOCKED, the active set is unchanged: " if critical else "")
            + (
                "; ".join(f"{r[0]} ({r[1]}): {r[3]}" for r in failed)
                or "every evaluation gate passed or was skipped"
            )
        ),
        metadata={
            "gates": dg.MetadataValue.md(
                "| gate | severity | status | detail |\n|---|---|---|---|\n"
                + "\n".join(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows)
            )
        },
    )


all_checks = [
    ingest_batches_account_for_every_line,
    messages_batch_passes_quality_gates,
    rule_drafts_are_safe_sql,
    rule_evaluations_are_consistent,
    evaluation_passes_quality_gates,
]
