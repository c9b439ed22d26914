"""Promotion and deprecation (Python) after shadow evaluation; exports and the run report after active_rules."""

import functools

import dagster as dg

from patas_dagster.assets.dbt import PYTHON_TABLE_KINDS, model_key
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps.lifecycle import replay
from python_steps.lifecycle.profiles import load_profiles
from python_steps.mining import library
from python_steps.mining.embeddings import EmbeddingConfig
from python_steps.publish import exports, report
from python_steps.quality import evaluation, gates
from python_steps.settings import load_settings


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["patas", "rule_lifecycle"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per rule: status (candidate/shadow/active/deprecated), tier, pin, promotion metrics.",
            deps=[
                model_key("rule_evaluations"),
                model_key("rule_hits"),
                model_key("int_messages_enriched"),
                model_key("int_messages_windowed"),
                model_key("int_message_labels_overridden"),
                ["patas", "rule_drafts"],
            ],
        ),
        dg.AssetSpec(
            ["patas", "rule_audit"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per status transition, with the reason and the metrics that justified it.",
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "rule_metrics_history"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per rule, run and window: the metrics each run measured.",
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "ruleset_members"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per would-be ruleset (one per safety profile) and member rule.",
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "rule_evidence"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description=(
                "One row per rule: the evidence promotion weighed in the latest run (cross-fitted held-out "
                "hits, the rule kind's prior, the posterior of precision)."
            ),
            deps=[["patas", "rule_lifecycle"]],
        ),
        dg.AssetSpec(
            ["patas", "evaluation_profiles"],
            group_name="lifecycle",
            kinds=PYTHON_TABLE_KINDS,
            description=(
                "One row per run: window sizes and the active set's precision, checked by the evaluation "
                "gates before any promotion (a critical failure keeps the active set unchanged)."
            ),
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
        # The evaluation gates first: a critical failure withholds every promotion and deprecation.
        summary, checked = evaluation.check_then_apply(
            conn,
            functools.partial(
                replay.apply_lifecycle,  # replays an earlier run's promotion when its inputs are unchanged
                conn,
                run_id=context.run_id,
                profile=profile,
                config=profiles,
                folds=spec.crossfit_folds,
                languages=settings.languages,
            ),
            gates.load_config(settings.home / "quality_gates.toml"),
            run_id=context.run_id,
        )
        conn.commit()
        # The pattern library remembers each active rule's evidence (its centroid embedding).
        patterns = library.record_rule_patterns(
            conn, context.run_id, EmbeddingConfig.from_settings(settings), cache_dir=settings.cache_dir
        )
        conn.commit()
        # Each pattern's success this run: its rules' hits, rules derived, active, re-used.
        patterns.update(library.record_pattern_stats(conn, context.run_id))
        conn.commit()
    gates.write_data_docs(checked.data_docs, settings.home / "reports", context.run_id)  # GE's pages
    verb = "skipped, earlier result replayed" if summary["skipped"] else "computed"
    context.log.info(f"promotion: {verb} ({summary['skip_reason']})")
    for reason in summary["blocked_by"]:
        context.log.warning(f"promotion blocked by a critical evaluation gate: {reason}")
    for warning in patterns.get("embeddings", {}).get("warnings", []):
        context.log.warning(f"pattern library: {warning}")
    meta = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    meta["blocked_by"] = "; ".join(summary["blocked_by"]) or "no"
    meta["rule_patterns"] = patterns["rule_patterns"]
    meta["pattern_stats"] = patterns["pattern_stats"]
    yield dg.MaterializeResult(asset_key=["patas", "rule_lifecycle"], metadata={"profile": profile, **meta})
    yield dg.MaterializeResult(
        asset_key=["patas", "rule_audit"], metadata={"transitions": summary.get("transitions", 0)}
    )
    yield dg.MaterializeResult(asset_key=["patas", "rule_metrics_history"])
    yield dg.MaterializeResult(asset_key=["patas", "ruleset_members"])
    yield dg.MaterializeResult(asset_key=["patas", "rule_evidence"])
    yield dg.MaterializeResult(
        asset_key=["patas", "evaluation_profiles"],
        metadata={"blocked_by": "; ".join(summary["blocked_by"]) or "no", "withheld": summary["withheld"]},
    )


@dg.asset(
    key=["patas", "rule_exports"],
    group_name="publishing",
    kinds={"python", "file"},
    description=(
        "The active rules as files in $PATAS_HOME/exports: SQL, ROL (regex rule engine JSON) and typed "
        "JSON, with the normalizer version they assume (dbt exposure rule_exports)."
    ),
    deps=[
        model_key("active_rules"),
        model_key("int_messages_enriched"),
        ["patas", "rule_drafts"],
        ["patas", "rule_lifecycle"],
        ["patas", "rule_metrics_history"],
    ],
)
def rule_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = load_settings()
    with warehouse.connect() as conn:
        written = exports.write_exports(conn, settings.exports_dir, cache_dir=settings.cache_dir)
    return dg.MaterializeResult(
        metadata={fmt: dg.MetadataValue.path(str(p)) for fmt, p in sorted(written.items())}
    )


@dg.asset(
    key=["patas", "run_report"],
    group_name="publishing",
    kinds={"python", "html"},
    description=(
        "The run report, $PATAS_HOME/reports/run_<id>.html (and .json): stage times, counts, quality "
        "gates, rules promoted and deprecated with reasons, plots over runs (dbt exposure run_report)."
    ),
    deps=[
        ["patas", "rule_exports"],
        model_key("ruleset_evaluation"),
        model_key("rule_evaluations"),
        model_key("active_rules"),
        model_key("stage1_candidates"),
        model_key("int_messages_windowed"),
        ["raw", "ingest_batches"],
        ["raw", "ingest_quarantine"],
        ["patas", "runs"],
        ["patas", "rule_audit"],
        ["patas", "stage2_runs"],
        ["patas", "llm_runs"],
        ["patas", "batch_profiles"],
        ["patas", "quality_gate_results"],
        ["patas", "label_feedback"],
    ],
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
