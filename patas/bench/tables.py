"""Markdown tables of benchmark results (for ``docs/benchmarks.md``), from the benchmarks' JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STAGE_LABELS = (
    ("ingest", "ingest (file -> raw.messages)"),
    ("stage1", "stage 1 (dbt: staging, signals, counts, candidates)"),
    ("stage2", "stage 2 (semantic clusters, bounded sample)"),
    ("drafting", "rule drafting"),
    ("shadow_eval", "shadow evaluation (dbt)"),
    ("promotion", "promotion (lifecycle + dbt marts)"),
    ("exports", "exports"),
)


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def speed_table(runs: Sequence[dict[str, Any]]) -> str:
    """One column per corpus size: stage seconds (rows/s), floors, ratios, rules, memory."""
    runs = sorted(runs, key=lambda r: r["rows"])
    head = "| | " + " | ".join(f"{r['rows']:,} messages" for r in runs) + " |"
    lines = [head, "|---" * (len(runs) + 1) + "|"]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for stage, label in STAGE_LABELS:
        cells = []
        for r in runs:
            s = next((x for x in r["stages"] if x["stage"] == stage), None)
            if s is None:
                cells.append("–")
                continue
            if s.get("timed_out"):
                cells.append(f"> {s['seconds']:.0f} s (cancelled: statement timeout)")
                continue
            rate = f" ({s['rows_per_s']:,} rows/s)" if s.get("rows_per_s") else ""
            cells.append(f"{s['seconds']:.1f} s{rate}")
        row(label, cells)

    def total(r: dict[str, Any]) -> str:
        cut = any(x.get("timed_out") for x in r["stages"])
        return f"**{'> ' if cut else ''}{r['staged_total_s']:.1f} s**"

    def e2e(r: dict[str, Any]) -> str:
        if r.get("end_to_end_s") is not None:
            return f"**{r['end_to_end_s']:.1f} s**"
        return "failed" if (r.get("end_to_end") or {}).get("error") else "not run"

    row("**sum of stages**", [total(r) for r in runs])
    row("**end to end (`patas run` via Dagster, from the file)**", [e2e(r) for r in runs])
    row("COPY floor (same rows, unindexed table)", [f"{r['copy_floor_s']:.2f} s" for r in runs])
    row("ingest / COPY floor", [f"{_f(r['ingest_vs_copy_floor'], 2)}x" for r in runs])
    row("scan floor (seq scan + GROUP BY)", [f"{r['scan_floor_s']:.2f} s" for r in runs])
    row("stage 1 / scan floor", [f"{_f(r['stage1_vs_scan_floor'], 0)}x" for r in runs])
    row("one dbt invocation, nothing selected", [f"{r['dbt_noop_s']:.1f} s" for r in runs])
    row(
        "rules shadow-evaluated (drafted + padded)",
        [f"{r['rules_evaluated']:,} ({r['rules_drafted']:,} + {r['rules_padded']:,})" for r in runs],
    )
    row("rules active (conservative)", [_f(r.get("rules_active")) for r in runs])
    row("peak RSS, PATAS processes (Python + dbt)", [f"{_f(r['peak_rss_mb'], 0)} MB" for r in runs])
    row(
        "peak PSS, Postgres server (incl. shared buffers)",
        [f"{_f(r.get('peak_server_pss_mb'), 0)} MB" for r in runs],
    )
    row("commit measured", [f"`{(r.get('code') or {}).get('git_commit') or '?'}`" for r in runs])
    return "\n".join(lines)


def quality_table(q: dict[str, Any]) -> str:
    """One row per profile and per baseline, on the evaluation side."""
    lines = [
        "| ruleset | rules | precision | recall | FPR | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for p in q["profiles"]:
        lines.append(
            f"| PATAS {p['profile']} | {p['rules']} | {p['precision']:.3f} | {p['recall']:.3f} "
            f"| {p['fpr']:.4f} | {p['f1']:.3f} |"
        )
    u = q.get("drafted_union")
    if u:
        lines.append(
            f"| *all drafted rules, no profile (diagnostic)* | {u['rules']} | {u['precision']:.3f} "
            f"| {u['recall']:.3f} | {u['fpr']:.4f} | {u['f1']:.3f} |"
        )
    n = q["baselines"]["naive"]
    lines.append(
        f"| naive exact URL/phone miner | {n['rules']} | {n['precision']:.3f} | {n['recall']:.3f} "
        f"| {n['fpr']:.4f} | {n['f1']:.3f} |"
    )
    lines += ["", "| PATAS profile | its precision | LR oracle recall at that precision | LR (CV threshold) precision / recall |",
              "|---|---|---|---|"]  # fmt: skip
    for p in q["profiles"]:
        if p.get("baseline_lr_recall_at_precision") is None:
            lines.append(f"| {p['profile']} | – (no rule promoted) | – | – |")
            continue
        lines.append(
            f"| {p['profile']} | {p['precision']:.3f} | {p['baseline_lr_recall_at_precision']:.3f} "
            f"| {p['baseline_lr_cv_precision']:.3f} / {p['baseline_lr_cv_recall']:.3f} |"
        )
    lines += [
        "",
        "| target precision | LR oracle recall | LR (CV threshold) precision / recall |",
        "|---|---|---|",
    ]
    for key, fig in sorted(q["baselines"]["lr"].get("at_precision", {}).items()):
        lines.append(
            f"| {key} | {fig['oracle_recall']:.3f} | {fig['cv_threshold_precision']:.3f} / {fig['cv_threshold_recall']:.3f} |"
        )
    return "\n".join(lines)
