"""Rule drafting (Python) between stage 1 and shadow evaluation (both dbt)."""

import dagster as dg

from patas_dagster.assets.dbt import PYTHON_TABLE_KINDS, model_key
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps.mining import clustering, drafting, library, reuse, signal_matrix
from python_steps.mining.embeddings import EmbeddingConfig
from python_steps.mining.llm import LlmConfig
from python_steps.settings import load_settings


# Step key "patas__semantic_clusters" (patas.runner names the stage by it), as when it was one asset.
@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["patas", "semantic_clusters"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description=(
                "Stage 2: one row per semantic cluster of the suspicious slice and the spam stage 1 left uncovered, "
                "with size, quality and a PII-redacted summary (python_steps.mining.clustering)."
            ),
            deps=[
                model_key("stage1_uncovered_spam"),
                model_key("stage1_candidates"),
                model_key("signal_label_counts"),
                model_key("int_messages_windowed"),
                model_key("int_messages_enriched"),
                model_key("int_message_signals_extracted"),
            ],
        ),
        dg.AssetSpec(
            ["patas", "semantic_cluster_members"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per stage-2 cluster and member message.",
            deps=[["patas", "semantic_clusters"]],
        ),
        dg.AssetSpec(
            ["patas", "stage2_runs"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per run: the stage-2 record (method, share, embeddings, warnings) the run report shows.",
            deps=[["patas", "semantic_clusters"]],
        ),
        dg.AssetSpec(
            ["patas", "patterns"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description=(
                "The pattern library: recurring spam patterns across runs (clusters from stage 2; the "
                "lifecycle step adds the active rules' patterns). `patas patterns`."
            ),
            deps=[["patas", "semantic_clusters"]],
        ),
        dg.AssetSpec(
            ["patas", "pattern_versions"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per pattern and version: how each pattern drifted from run to run.",
            deps=[["patas", "patterns"]],
        ),
    ],
    name="patas__semantic_clusters",
)
def semantic_clusters(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, run_spec: RunSpecResource
):
    spec = run_spec.spec()
    cfg = clustering.ClusterConfig(
        sample_size=spec.stage2_sample_size,
        slice_percent=spec.stage2_slice_percent,
        eps=spec.stage2_eps,
        min_samples=spec.stage2_min_samples,
        drafting=drafting.DraftingConfig(languages=load_settings().languages),
    )
    settings = load_settings()
    slice_meta = {}
    with warehouse.connect() as conn:
        if spec.two_stage:
            # The slice query scans the mining window's signals: re-used when its inputs are unchanged.
            state = clustering.slice_input_state(conn, cfg, spec.dbt_vars(spec.resolve_windows(conn), ""))
            *sliced, how = clustering.reuse_or_load_slice(
                conn, cfg, state, settings.cache_dir, context.run_id
            )
            conn.commit()
            verb = "skipped, earlier result re-used" if how.reusable else "computed"
            context.log.info(f"stage 2 slice: {verb} ({how.reason})")
            slice_meta = {"slice_skipped": how.reusable, "slice_skip_reason": how.reason}
            result = clustering.build_clusters(
                conn, cfg, EmbeddingConfig.from_settings(settings), tuple(sliced),
                cache_dir=settings.cache_dir, slice_state=state,
            )  # fmt: skip
        else:
            result = clustering.Stage2Result([], {"method": "off", "stage2_messages": 0, "stage2_share": 0.0})
        clustering.write_clusters(conn, result.clusters, context.run_id, cfg.sample_size, result.record)
        if result.clusters:
            library.record_clusters(conn, result.clusters, context.run_id, result.record["provider"],
                                    result.record["model"])  # fmt: skip
        conn.commit()
    for warning in result.record.get("warnings", []):
        context.log.warning(f"stage 2: {warning}")
    clusters = result.clusters
    preview = "\n".join(
        f"- `{c.cluster_id}` {c.size} msgs: " + ", ".join(p["phrase"] for p in c.top_phrases[:3])
        for c in clusters[:10]
    )
    record = result.record
    emb = record.get("embeddings", {})
    yield dg.MaterializeResult(
        asset_key=["patas", "semantic_clusters"],
        metadata={
            "clusters": len(clusters),
            "clustered_messages": sum(c.size for c in clusters),
            "method": record.get("method", ""),
            "stage2_messages": record.get("stage2_messages", 0),
            "stage2_share": float(record.get("stage2_share", 0.0)),
            "embedding_provider": str(record.get("provider", "")),
            "embedding_calls": int(emb.get("calls", 0)),
            "embedding_cache_hits": int(emb.get("cache_hits", 0)),
            "known_clusters_matched": int(record.get("known_clusters_matched", 0)),
            "rules_reused": int(record.get("rules_reused", 0)),
            "warnings": dg.MetadataValue.json(record.get("warnings", [])),
            "preview": dg.MetadataValue.md(preview or "(none)"),
            **slice_meta,
        },
    )
    yield dg.MaterializeResult(
        asset_key=["patas", "semantic_cluster_members"],
        metadata={"rows": sum(c.size for c in clusters)},
    )
    yield dg.MaterializeResult(asset_key=["patas", "stage2_runs"])
    yield dg.MaterializeResult(asset_key=["patas", "patterns"])
    yield dg.MaterializeResult(asset_key=["patas", "pattern_versions"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["patas", "rule_drafts"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per drafted rule: typed rule, compiled SQL, origin and lineage.",
            deps=[
                model_key("stage1_candidates"),
                model_key("signal_label_counts"),
                model_key("int_message_signals_extracted"),
                model_key("int_messages_enriched"),
                model_key("int_messages_windowed"),
                dg.AssetKey(["patas", "semantic_clusters"]),
            ],
        ),
        dg.AssetSpec(
            ["patas", "rule_signal_clauses"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per rule clause signal: signal-evaluable rules in disjunctive normal form.",
            deps=[["patas", "rule_drafts"]],
        ),
        dg.AssetSpec(
            ["patas", "rule_counterexamples"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per rule and counter-example message (nearest ham it does not match, ham it does).",
            deps=[["patas", "rule_drafts"]],
        ),
        dg.AssetSpec(
            ["patas", "llm_calls"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per LLM drafting call (or cache hit, or skip): outcome, tokens, cost. Empty with the LLM off.",
            deps=[["patas", "semantic_clusters"]],
        ),
        dg.AssetSpec(
            ["patas", "llm_runs"],
            group_name="rules",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per run that drafted with an LLM: tokens, cost, privacy mode, budget, warnings.",
            deps=[["patas", "llm_calls"]],
        ),
    ],
    name="rule_drafts",
)
def rule_drafts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, run_spec: RunSpecResource):
    settings = load_settings()
    spec = run_spec.spec()
    llm_config = (
        LlmConfig.from_settings(settings, privacy_mode=spec.llm_privacy)
        if settings.llm_enabled and spec.use_llm
        else None
    )
    config = drafting.DraftingConfig(languages=settings.languages)
    with warehouse.connect() as conn:
        windows = spec.resolve_windows(conn)
        params = {"dbt_vars": spec.dbt_vars(windows, ""), "max_rules": spec.max_rules, "config": repr(config)}
        state = reuse.drafting_input_state(conn, params)
        # With the LLM on, every run drafts: its calls, tokens and budget are recorded per run.
        previous = reuse.check(conn, "drafting", state) if llm_config is None else None
        if previous is not None and previous.reusable:
            reuse.record(conn, context.run_id, "drafting", state, skipped=True, reason=previous.reason)
            conn.commit()
            yield from _reused_drafts(context, previous.reason)
            return
        signals = signal_matrix.load(conn)  # the labelled mining window, read once for both steps
        drafts, info = drafting.draft_with_stage2(
            conn, run_id=context.run_id, max_rules=spec.max_rules, config=config, llm_config=llm_config,
            signals=signals,
        )  # fmt: skip
        written = drafting.write_drafts(conn, drafts, context.run_id, signals=signals)
        reason = "the LLM drafts in every run" if previous is None else previous.reason
        reuse.record(conn, context.run_id, "drafting", state, skipped=False, reason=reason)
        conn.commit()
    context.log.info(f"drafting: drafted ({reason})")
    by_origin = {k: info[k] for k in ("pattern_mining", "semantic", "llm")}
    for warning in info.get("llm_warnings", []):
        context.log.warning(f"llm: {warning}")
    llm_meta = (
        {"llm_privacy": llm_config.privacy, "llm_tokens": int(info.get("llm_tokens", 0)),
         "llm_cost_usd": float(info.get("llm_cost_usd", 0.0)), "llm_budget_state": str(info.get("llm_budget_state", "ok")),
         "llm_warnings": dg.MetadataValue.json(info.get("llm_warnings", []))}
        if llm_config else {}
    )  # fmt: skip
    preview = "\n".join(f"- `{d.rule_id}` {d.description}" for d in drafts[:10])
    yield dg.MaterializeResult(
        asset_key=["patas", "rule_drafts"],
        metadata={"rules_drafted": len(drafts), "versions_inserted": written["versions_inserted"],
                  **{f"origin_{k}": v for k, v in sorted(by_origin.items())},
                  "skipped": False, "skip_reason": f"not skipped: {reason}",
                  "llm": "on" if llm_config else "off", "llm_calls": str(info.get("llm_calls", {})), **llm_meta,
                  "preview": dg.MetadataValue.md(preview or "(none)")},
    )  # fmt: skip
    yield dg.MaterializeResult(
        asset_key=["patas", "rule_signal_clauses"], metadata={"rows": written.get("clauses", 0)}
    )
    yield dg.MaterializeResult(
        asset_key=["patas", "rule_counterexamples"], metadata={"rows": written.get("counterexamples", 0)}
    )
    yield dg.MaterializeResult(
        asset_key=["patas", "llm_calls"], metadata={"llm": "on" if llm_config else "off"}
    )
    yield dg.MaterializeResult(asset_key=["patas", "llm_runs"])


def _reused_drafts(context: dg.AssetExecutionContext, reason: str):
    """Drafting skipped: the stored drafts, clauses and counter-examples stay as the earlier run left them."""
    context.log.info(f"drafting: skipped, the stored drafts re-used ({reason})")
    meta = {"skipped": True, "skip_reason": reason}
    for key in ("rule_drafts", "rule_signal_clauses", "rule_counterexamples", "llm_calls", "llm_runs"):
        yield dg.MaterializeResult(asset_key=["patas", key], metadata=meta)
