"""Promotion and deprecation (Python) after shadow evaluation; exports and the run report after active_rules."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from patas_dagster.assets.dbt import patas_dbt_models
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps.lifecycle import store
from python_steps.lifecycle.profiles import load_profiles
from python_steps.mining import library
from python_steps.mining.embeddings import EmbeddingConfig
from python_steps.publish import exports, report
from python_steps.settings import load_settings


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["patas", "rule_lifecycle"],
            group_name="lifecycle",
            description="One row per rule: status (candidate/shadow/active/deprecated), tier, pin, promotion metrics.",
            deps=[
                get_asset_key_for_model([patas_dbt_models], "rule_evaluations"),
                get_asset_key_for_model([patas_dbt_models], "rule_hits"),
            ],
        ),
        dg.AssetSpec(
            ["patas", "rule_audit"],
            group_name="lifecycle",
            description="One row per status transition, with the reason and the metrics that justified it.",
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "rule_metrics_history"],
            group_name="lifecycle",
            description="One row per rule, run and window: the metrics each run measured.",
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "ruleset_members"],
            group_name="lifecycle",
            description="One row per would-be ruleset (one per safety profile) and member rule.",
            deps=[["patas", "rule_lifecycle"]],
        ),
    ],
    name="rule_lifecycle",
)
def rule_lifecycle(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, run_spec: RunSpecResource
):
    settings = load_settings()
    spec = run_spec.spec()
    profile = spec.profile_or(settings.profile)
    profiles = load_profiles(settings.home / "safety_profiles.toml")  # custom profiles, when the file exists
    with warehouse.connect() as conn:
        summary = store.apply_lifecycle(
            conn,
            run_id=context.run_id,
            profile=profile,
            config=profiles,
            folds=spec.crossfit_folds,
            languages=settings.languages,
        )
        conn.commit()
        # The pattern library remembers each active rule's evidence (its centroid embedding).
        patterns = library.record_rule_patterns(conn, context.run_id, EmbeddingConfig.from_settings(settings))
        conn.commit()
    for warning in patterns.get("embeddings", {}).get("warnings", []):
        context.log.warning(f"pattern library: {warning}")
    meta = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    meta["rule_patterns"] = patterns["rule_patterns"]
    yield dg.MaterializeResult(asset_key=["patas", "rule_lifecycle"], metadata={"profile": profile, **meta})
    yield dg.MaterializeResult(
        asset_key=["patas", "rule_audit"], metadata={"transitions": summary.get("transitions", 0)}
    )
    yield dg.MaterializeResult(asset_key=["patas", "rule_metrics_history"])


@dg.asset(
    key=["patas", "rule_exports"],
    group_name="publishing",
    description="The active rules as files: SQL, ROL (regex rule engine JSON) and typed JSON.",
    deps=[get_asset_key_for_model([patas_dbt_models], "active_rules")],
)
def rule_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    out_dir = load_settings().exports_dir
    with warehouse.connect() as conn:
        written = exports.write_exports(conn, out_dir)
    return dg.MaterializeResult(
        metadata={fmt: dg.MetadataValue.path(str(p)) for fmt, p in sorted(written.items())}
    )


@dg.asset(
    key=["patas", "run_report"],
    group_name="publishing",
    description="The run's figures: messages, windows, rules drafted and promoted, ruleset precision and recall.",
    deps=[["patas", "rule_exports"], get_asset_key_for_model([patas_dbt_models], "ruleset_evaluation")],
)
def run_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    out_dir = load_settings().home / "reports"
    with warehouse.connect() as conn:
        summary = report.build_summary(conn, context.run_id)
    path = report.write_report(summary, out_dir)
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(path)),
            "report_html": dg.MetadataValue.path(str(path.with_suffix(".html"))),
            # A fenced block: the summary is aligned plain text, one fact a line.
            "summary": dg.MetadataValue.md("```\n" + report.render_summary(summary) + "\n```"),
        }
    )
