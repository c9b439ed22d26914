"""The shape of the asset graph: every stage present, wired in the order of the design."""

import subprocess
import sys

import dagster as dg
import pytest

from python_steps.settings import PROJECT_ROOT

K = dg.AssetKey


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def _ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    todo = list(graph.get(key).parent_keys)
    while todo:
        k = todo.pop()
        if k not in seen:
            seen.add(k)
            todo.extend(graph.get(k).parent_keys)
    return seen


EXPECTED = [
    K(["raw", "messages"]),
    K(["raw", "ingest_batches"]),
    K(["staging", "stg_raw__messages"]),
    K(["intermediate", "int_messages_normalized"]),
    K(["intermediate", "int_messages_enriched"]),
    K(["intermediate", "int_message_signals_extracted"]),
    K(["intermediate", "int_messages_windowed"]),
    K(["marts", "signal_label_counts"]),
    K(["marts", "stage1_candidates"]),
    K(["patas", "semantic_clusters"]),
    K(["patas", "rule_drafts"]),
    K(["patas", "rule_signal_clauses"]),
    K(["marts", "rule_hits"]),
    K(["marts", "rule_evaluations"]),
    K(["marts", "ruleset_evaluation"]),
    K(["marts", "rule_overlaps"]),
    K(["patas", "rule_lifecycle"]),
    K(["patas", "rule_audit"]),
    K(["marts", "active_rules"]),
    K(["patas", "rule_exports"]),
    K(["patas", "run_report"]),
]


def test_every_stage_is_an_asset(graph):
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    missing = [k.to_user_string() for k in EXPECTED if k not in materializable]
    assert not missing, f"missing assets: {missing}"


@pytest.mark.parametrize(
    ("downstream", "upstream"),
    [
        (K(["staging", "stg_raw__messages"]), K(["raw", "messages"])),
        (K(["intermediate", "int_messages_normalized"]), K(["staging", "stg_raw__messages"])),
        (K(["patas", "semantic_clusters"]), K(["marts", "stage1_uncovered_spam"])),
        (K(["patas", "rule_drafts"]), K(["marts", "stage1_candidates"])),
        (K(["patas", "rule_drafts"]), K(["patas", "semantic_clusters"])),
        (K(["marts", "rule_hits"]), K(["patas", "rule_drafts"])),
        (K(["marts", "rule_hits"]), K(["patas", "rule_signal_clauses"])),
        (K(["marts", "rule_evaluations"]), K(["marts", "rule_hits"])),
        (K(["patas", "rule_lifecycle"]), K(["marts", "rule_evaluations"])),
        (K(["marts", "active_rules"]), K(["patas", "rule_lifecycle"])),
        (K(["marts", "ruleset_evaluation"]), K(["patas", "ruleset_members"])),
        (K(["patas", "rule_exports"]), K(["marts", "active_rules"])),
    ],
)
def test_order(graph, downstream, upstream):
    assert upstream in _ancestors(graph, downstream)
    assert downstream not in _ancestors(graph, upstream)


def test_promotion_is_gated_by_a_blocking_check(defs):
    checks = {
        spec.key: spec
        for cdef in defs.resolve_asset_graph().asset_check_keys
        for spec in [defs.resolve_asset_graph().get_check_spec(cdef)]
    }
    gate = [s for k, s in checks.items() if k.name == "rule_evaluations_are_consistent"]
    assert gate and gate[0].blocking
    assert gate[0].asset_key == K(["marts", "rule_evaluations"])


def test_the_quality_gates_block_everything_downstream_of_raw_messages(defs):
    graph = defs.resolve_asset_graph()
    gate = [
        graph.get_check_spec(k)
        for k in graph.asset_check_keys
        if k.name == "messages_batch_passes_quality_gates"
    ]
    assert gate and gate[0].blocking and gate[0].asset_key == K(["raw", "messages"])
    assert K(["raw", "messages"]) in _ancestors(graph, K(["patas", "rule_lifecycle"]))


def test_label_feedback_reaches_shadow_evaluation_through_the_effective_labels(defs):
    graph = defs.resolve_asset_graph()
    labels = K(["intermediate", "int_message_labels_overridden"])
    assert K(["patas", "label_feedback"]) in _ancestors(graph, labels)
    for downstream in (
        ["marts", "rule_evaluations"],
        ["marts", "ruleset_evaluation"],
        ["patas", "rule_lifecycle"],
    ):
        assert labels in _ancestors(graph, K(downstream))


def test_dbt_tests_are_asset_checks(defs):
    check_keys = defs.resolve_asset_graph().asset_check_keys
    dbt_checks = [k for k in check_keys if k.name.startswith(("unique_", "not_null_"))]
    assert dbt_checks, "dbt data tests should surface as Dagster asset checks"


def test_job_sensor_schedule_present(defs):
    assert defs.resolve_job_def("patas_pipeline")
    assert defs.resolve_sensor_def("inbox_sensor")
    assert defs.resolve_schedule_def("nightly_patas_run")


def test_definitions_validate_in_a_fresh_process(manifest):
    res = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "dagster"),
            "definitions",
            "validate",
            "-m",
            "patas_dagster.definitions",
        ]
        if (PROJECT_ROOT / ".venv" / "bin" / "dagster").exists()
        else [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "patas_dagster.definitions"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_every_asset_has_a_description_and_kinds(defs):
    specs = list(defs.resolve_all_asset_specs())
    assert len(specs) > 40
    bare = [s.key.to_user_string() for s in specs if not (s.description or "").strip() or not s.kinds]
    assert not bare, f"assets without a description or kinds: {bare}"
    python_steps = [s for s in specs if s.key.path[0] in ("raw", "patas")]
    assert python_steps and all("python" in s.kinds for s in python_steps)
    dbt_models = [s for s in specs if s.key.path[0] in ("staging", "intermediate", "marts")]
    assert dbt_models and all({"dbt", "postgres"} <= s.kinds for s in dbt_models)
    # dbt models carry their yml description, not only dagster-dbt's fallback (the raw SQL).
    assert all(not s.description.startswith("#### Raw SQL") for s in dbt_models)


@pytest.mark.parametrize(
    ("downstream", "upstream"),
    [
        # Every table a Python step reads is declared upstream of it (lineage without gaps).
        (K(["patas", "semantic_clusters"]), K(["intermediate", "int_messages_enriched"])),
        (K(["patas", "rule_drafts"]), K(["intermediate", "int_messages_windowed"])),
        (K(["patas", "rule_lifecycle"]), K(["intermediate", "int_message_labels_overridden"])),
        (K(["patas", "rule_exports"]), K(["patas", "rule_metrics_history"])),
        (K(["patas", "run_report"]), K(["patas", "quality_gate_results"])),
        (K(["patas", "run_report"]), K(["raw", "ingest_quarantine"])),
        (K(["patas", "run_report"]), K(["patas", "llm_runs"])),
        (K(["patas", "run_report"]), K(["patas", "stage2_runs"])),
    ],
)
def test_python_steps_declare_what_they_read(graph, downstream, upstream):
    assert upstream in set(graph.get(downstream).parent_keys)


def test_every_table_a_python_step_writes_in_a_run_is_an_asset(graph):
    written = [
        ["raw", "ingest_quarantine"], ["patas", "semantic_cluster_members"], ["patas", "stage2_runs"],
        ["patas", "patterns"], ["patas", "pattern_versions"], ["patas", "rule_counterexamples"],
        ["patas", "llm_calls"], ["patas", "llm_runs"], ["patas", "rule_evidence"], ["patas", "ruleset_members"],
    ]  # fmt: skip
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assert not [k for k in written if K(k) not in materializable]


def test_the_evaluation_gates_show_as_a_check_on_the_lifecycle(defs):
    graph = defs.resolve_asset_graph()
    specs = [
        graph.get_check_spec(k) for k in graph.asset_check_keys if k.name == "evaluation_passes_quality_gates"
    ]
    # Not blocking: the lifecycle step itself withholds promotion; the check tells the UI why.
    assert specs and specs[0].asset_key == K(["patas", "rule_lifecycle"]) and not specs[0].blocking
    assert "active set is unchanged" in specs[0].description


def test_every_dbt_node_runs_after_ingest_so_no_dbt_step_comes_first(defs):
    """A dbt model or seed without raw.messages upstream would get a dbt step of its own at the
    start of every run (one more dbt invocation): the reference seeds and the label-feedback
    staging model are scheduled with stage 1."""
    from patas_dagster.assets.dbt import patas_dbt_models

    graph = defs.resolve_asset_graph()
    raw = K(["raw", "messages"])
    loose = sorted(key.to_user_string() for key in patas_dbt_models.keys if raw not in _ancestors(graph, key))
    assert loose == []
