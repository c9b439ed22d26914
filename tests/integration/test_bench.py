"""The benchmark harness, small: a speed bench on a few thousand generated messages and the quality
bench on the shared UCI data (one pipeline run). Asserts the outputs are well-formed and the
quality is above a floor; never asserts wall-clock timings."""

from __future__ import annotations

import json
import math

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEED_ROWS = 6000
SPEED_RULES = 200
STAGES = ("ingest", "stage1", "stage2", "stage2_rerun", "drafting", "shadow_eval", "promotion", "exports")
SPEED_KEYS = {
    "rows": int,
    "ingest_s": float,
    "copy_floor_s": float,
    "stage1_s": float,
    "scan_floor_s": float,
    "shadow_eval_s": float,
    "rules_evaluated": int,
    "peak_rss_mb": float,
    "drafting_s": float,
    "promotion_s": float,
    "exports_s": float,
    "staged_total_s": float,
}
QUALITY_KEYS = (
    "profile",
    "precision",
    "recall",
    "fpr",
    "f1",
    "rules",
    "baseline_lr_recall_at_precision",
    "baseline_naive_precision",
    "baseline_naive_recall",
)


@pytest.fixture(scope="module")
def speed(server_url, tmp_path_factory):
    from patas.bench.speed import run_speed_bench

    tmp = tmp_path_factory.mktemp("bench_speed")
    out = tmp / "speed.json"
    result = run_speed_bench(
        SPEED_ROWS, 5, out, server_url=server_url, cache_dir=tmp, target_rules=SPEED_RULES, end_to_end=False
    )
    return result, out


@pytest.fixture(scope="module")
def quality(server_url, shared_dataset, tmp_path_factory):
    from patas.bench.quality import run_quality_bench

    tmp = tmp_path_factory.mktemp("bench_quality")
    out = tmp / "quality.json"
    result = run_quality_bench(
        shared_dataset, out, split="hash", server_url=server_url, one_run=True, engine="staged", cache_dir=tmp
    )
    return result, out


def test_speed_output_is_well_formed(speed):
    result, out = speed
    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    for key, kind in SPEED_KEYS.items():
        assert isinstance(result[key], kind), (key, result[key])
    assert result["rows"] == SPEED_ROWS
    assert result["ingest_report"]["read"] == SPEED_ROWS
    r = result["ingest_report"]
    assert r["read"] == r["loaded"] + r["duplicate"] + r["quarantined"]
    assert result["scan_floor_rows"] == r["loaded"]
    assert result["end_to_end_s"] is None  # skipped here: the e2e test runs the Dagster path


def test_speed_stages_and_ratios_are_positive(speed):
    result, _ = speed
    by_stage = {s["stage"]: s for s in result["stages"]}
    assert tuple(by_stage) == STAGES
    for s in by_stage.values():
        assert s["seconds"] > 0
    for stage, ref in (("ingest", "copy_floor"), ("stage1", "scan_floor")):
        assert by_stage[stage]["reference"] == ref
        assert by_stage[stage]["ratio_to_reference"] > 0
        assert by_stage[stage]["rows_per_s"] > 0
    assert result["ingest_vs_copy_floor"] > 0 and result["stage1_vs_scan_floor"] > 0
    pipeline = [s["seconds"] for k, s in by_stage.items() if k != "stage2_rerun"]  # a rerun, not a stage
    assert math.isclose(result["staged_total_s"], sum(pipeline), abs_tol=0.01)
    assert result["peak_rss_mb"] > 0


def test_speed_reports_what_reached_stage_2_and_its_rerun(speed):
    result, _ = speed
    first, again = result["stage2"], result["stage2_rerun"]
    assert 0 < first["stage2_messages"] <= min(first["sample_size"], first["window_messages"])
    assert first["stage2_share"] == round(first["stage2_messages"] / first["window_messages"], 6)
    assert first["no_candidate_spam"] <= first["uncovered_spam"] <= first["slice_messages"]
    assert first["provider"] == "lexical" and first["embedding_texts"] == first["stage2_messages"]
    assert (first["embedding_calls"], first["embedding_cache_hits"]) == (0, 0)  # lexical: no calls, no cache
    assert again == first  # unchanged data: the same slice, the same clusters


def test_speed_rule_counts_are_consistent(speed):
    result, _ = speed
    assert result["rules_drafted"] > 0
    assert result["rules_evaluated"] == result["rules_drafted"] + result["rules_padded"]
    assert result["rules_evaluated"] >= min(SPEED_RULES, result["rules_drafted"])
    if result["rules_padded"]:
        assert result["rules_evaluated"] == SPEED_RULES
    assert 0 <= result["rules_active"] <= result["rules_evaluated"]


def test_quality_output_is_well_formed(quality):
    result, out = quality
    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    assert [p["profile"] for p in result["profiles"]] == ["conservative", "balanced", "aggressive"]
    assert result["mining_messages"] > 0 and result["evaluation_messages"] > 0
    # UCI: 5,574 labelled messages, all loaded, each on exactly one side of the hash split or in
    # the label-blind test slice (ingested unlabelled, all of it in the evaluation window).
    assert result["measured_on"] == "label_blind_test" and result["test_share"] == 15
    assert result["test_messages"] == result["hidden_labels"] > 0 and result["test_spam"] > 0
    assert result["mining_messages"] + result["evaluation_messages"] + result["test_messages"] == 5574
    for p in result["profiles"]:
        for key in QUALITY_KEYS:
            assert key in p, key
        assert p["tp"] + p["fp"] + p["fn"] + p["tn"] == result["test_messages"]
        w = p["promotion_window"]
        assert w["tp"] + w["fp"] + w["fn"] + w["tn"] == result["evaluation_messages"]
        for key in ("precision", "recall", "fpr", "f1", "baseline_naive_precision", "baseline_naive_recall"):
            assert 0.0 <= p[key] <= 1.0, (key, p[key])
        assert p["per_language"]["en"]["messages"] > 0
    assert result["baselines"]["naive"]["rules"] > 0
    assert result["baselines"]["lr"]["pr_curve"]


def test_quality_is_above_the_floor_on_uci(quality):
    result, _ = quality
    # Drafting: every drafted rule together, before the profiles gate them.
    union = result["drafted_union"]
    assert union["rules"] > 0
    assert union["precision"] >= 0.85 and union["recall"] >= 0.5, union
    # The baselines are sane on this data (so the comparison means something).
    assert result["baselines"]["naive"]["precision"] >= 0.9
    assert result["baselines"]["lr"]["at_precision"]["0.95"]["oracle_recall"] >= 0.5
    profiles = {p["profile"]: p for p in result["profiles"]}
    for p in profiles.values():
        if p["rules"]:
            assert p["precision"] >= 0.9, p
            assert p["recall"] > 0.0, p
            # The oracle ceiling at PATAS's precision is a real recall figure.
            assert 0.0 < p["baseline_lr_recall_at_precision"] <= 1.0
    if profiles["conservative"]["rules"]:
        assert profiles["conservative"]["precision"] >= 0.95
    # Looser profiles promote at least what conservative promotes.
    assert profiles["conservative"]["rules"] <= profiles["aggressive"]["rules"]
    assert profiles["conservative"]["recall"] <= profiles["aggressive"]["recall"]


def test_conservative_promotes_precise_rules_on_uci(quality):
    conservative = quality[0]["profiles"][0]
    assert conservative["rules"] > 0, conservative
    assert conservative["precision"] >= 0.9, conservative


def test_conservative_meets_the_issue_target_on_uci(quality):
    # Issue 6: precision >= 0.98 at recall >= 0.70 on the held-out side, measured on messages whose
    # labels the pipeline never saw (not on the window promotion chose the rules on).
    conservative = quality[0]["profiles"][0]
    assert conservative["precision"] >= 0.98 and conservative["recall"] >= 0.70, conservative


def test_profiles_keep_the_design_order_on_uci(quality):
    # DESIGN.md: conservative is never less precise than aggressive on the same data. (The issue's
    # stricter chain, conservative >= balanced >= aggressive, is reported in profile_order; a looser
    # set with the same false positives and more true positives breaks it: see docs/benchmarks.md.)
    result, _ = quality
    profiles = {p["profile"]: p for p in result["profiles"]}
    assert profiles["conservative"]["precision"] >= profiles["aggressive"]["precision"], profiles
    order = result["profile_order"]
    assert order["holds"] == (not order["broken"])
    assert all(" < " in b for b in order["broken"])


def test_plots_are_drawn(speed, quality, tmp_path):
    from patas.bench.plots import plot_quality, plot_stage_times

    for path in (
        plot_stage_times([speed[1]], tmp_path / "stages.png"),
        plot_quality(quality[1], tmp_path / "quality.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
