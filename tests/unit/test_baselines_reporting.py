"""Benchmark reporting without a database: Markdown tables and plots from hand-made result JSON."""

from __future__ import annotations

import json

from patas.bench.plots import plot_quality, plot_stage_times
from patas.bench.tables import quality_table, speed_table

STAGES = ("ingest", "stage1", "stage2", "drafting", "shadow_eval", "promotion", "exports")


def _speed(rows: int) -> dict:
    scale = rows / 1000
    stages = [
        {
            "stage": s,
            "seconds": 0.5 * scale * (i + 1),
            "rows_per_s": rows if s in ("ingest", "stage1") else None,
        }
        for i, s in enumerate(STAGES)
    ]
    return {
        "rows": rows,
        "stages": stages,
        "staged_total_s": sum(s["seconds"] for s in stages),
        "end_to_end_s": None if rows < 2000 else 40.0 * scale,
        "copy_floor_s": 0.1 * scale,
        "ingest_vs_copy_floor": 5.0,
        "scan_floor_s": 0.01 * scale,
        "stage1_vs_scan_floor": 100.0,
        "dbt_noop_s": 3.2,
        "rules_evaluated": 1000,
        "rules_drafted": 400,
        "rules_padded": 600,
        "rules_active": 12,
        "peak_rss_mb": 350.0,
        "peak_server_pss_mb": None,
    }


def _profile(name: str, rules: int, precision: float, recall: float) -> dict:
    lr = None if not rules else 0.9
    return {
        "profile": name,
        "rules": rules,
        "precision": precision,
        "recall": recall,
        "fpr": 0.001,
        "f1": 0.5,
        "baseline_lr_recall_at_precision": lr,
        "baseline_lr_cv_precision": lr,
        "baseline_lr_cv_recall": lr,
    }


QUALITY = {
    "data": "/x/uci.jsonl",
    "split": "hash",
    "evaluation_messages": 1659,
    "profiles": [
        _profile("conservative", 0, 0.0, 0.0),
        _profile("balanced", 3, 0.99, 0.4),
        _profile("aggressive", 9, 0.95, 0.6),
    ],
    "baselines": {
        "naive": {"rules": 341, "precision": 1.0, "recall": 0.35, "fpr": 0.0, "f1": 0.52},
        "lr": {
            "pr_curve": [[0.1, 1.0], [0.5, 0.99], [1.0, 0.13]],
            "at_precision": {
                "0.95": {"oracle_recall": 0.9, "cv_threshold_precision": 0.96, "cv_threshold_recall": 0.85}
            },
        },
    },
}


def test_speed_table_has_a_column_per_size_and_a_row_per_stage():
    table = speed_table([_speed(100_000), _speed(1_000)])
    lines = table.splitlines()
    assert lines[0] == "| | 1,000 messages | 100,000 messages |"
    assert sum(line.startswith("| stage 1 (dbt") for line in lines) == 1
    assert "| **end to end (`patas run` via Dagster, from the file)** | not run | **4000.0 s** |" in lines
    assert "1,000 (400 + 600)" in table


def test_speed_table_marks_a_timed_out_stage():
    run = _speed(1_000)
    run["stages"][3]["timed_out"] = True
    table = speed_table([run])
    assert "| rule drafting | > 2 s (cancelled: statement timeout) |" in table
    assert "| **sum of stages** | **> " in table


def test_quality_table_lists_profiles_and_baselines():
    table = quality_table(QUALITY)
    assert "| PATAS balanced | 3 | 0.990 | 0.400 |" in table
    assert "| naive exact URL/phone miner | 341 |" in table
    assert "| conservative | – (no rule promoted) | – | – |" in table
    assert "| 0.95 | 0.900 | 0.960 / 0.850 |" in table


def test_plots_write_png_files(tmp_path):
    speed_files = []
    for rows in (1_000, 10_000):
        path = tmp_path / f"speed_{rows}.json"
        path.write_text(json.dumps(_speed(rows)))
        speed_files.append(path)
    quality_file = tmp_path / "quality.json"
    quality_file.write_text(json.dumps(QUALITY))
    for out in (
        plot_stage_times(speed_files, tmp_path / "stages.png"),
        plot_quality(quality_file, tmp_path / "quality.png"),
    ):
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
