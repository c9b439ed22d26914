"""Benchmark figures for ``docs/`` (matplotlib, Agg backend), drawn from the benchmarks' JSON files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

STAGES = ("ingest", "stage1", "stage2", "drafting", "shadow_eval", "promotion", "exports")
FLOORS = (("copy_floor_s", "COPY floor (ingest)"), ("scan_floor_s", "scan floor (stage 1)"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_stage_times(speed_files: Sequence[Path], out: Path) -> Path:
    """Stage wall times against corpus size (log-log), with the floors dashed."""
    runs = sorted((json.loads(Path(f).read_text()) for f in speed_files), key=lambda r: r["rows"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.5))
    sizes = [r["rows"] for r in runs]
    for stage in STAGES:
        found = [next((s for s in r["stages"] if s["stage"] == stage), None) for r in runs]
        secs = [s["seconds"] if s else None for s in found]
        if any(v is not None for v in secs):
            cut = any(s and s.get("timed_out") for s in found)
            label = f"{stage} (cancelled at the statement timeout: a lower bound)" if cut else stage
            ax.plot(sizes, secs, marker="^" if cut else "o", linestyle=":" if cut else "-", label=label)
    e2e = [r.get("end_to_end_s") for r in runs]
    if any(v is not None for v in e2e):
        ax.plot(sizes, e2e, marker="s", color="black", linewidth=2, label="end to end (Dagster run)")
    for key, label in FLOORS:
        ax.plot(sizes, [r[key] for r in runs], linestyle="--", marker="x", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages in the corpus")
    ax.set_ylabel("wall time (s)")
    rules = sorted({r["rules_evaluated"] for r in runs})
    ax.set_title(
        f"PATAS stage times ({'/'.join(f'{n:,}' for n in rules)} rules shadow-evaluated)", fontsize=10
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _measured(q: dict) -> str:
    if q.get("test_share"):
        return f"measured on {q['test_messages']:,} label-blind messages"
    return f"{q['evaluation_messages']:,} held out"


def plot_quality(quality_file: Path, out: Path) -> Path:
    """Precision against recall on the held-out side: PATAS profiles, LR curve, naive miner."""
    q = json.loads(Path(quality_file).read_text())
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    curve = q["baselines"]["lr"]["pr_curve"]
    if curve:
        ax.plot(
            [c[0] for c in curve], [c[1] for c in curve], color="grey", label="TF-IDF + LR (all thresholds)"
        )
    empty = [p["profile"] for p in q["profiles"] if not p["rules"]]
    for p in q["profiles"]:
        if not p["rules"]:
            continue  # no rule promoted: nothing to place (named in the legend below)
        ax.scatter(
            p["recall"], p["precision"], s=70, zorder=3, label=f"PATAS {p['profile']} ({p['rules']} rules)"
        )
        if p.get("baseline_lr_cv_recall") is not None:
            ax.scatter(
                p["baseline_lr_cv_recall"], p["baseline_lr_cv_precision"], marker="^", facecolors="none",
                edgecolors="grey", zorder=3,
            )  # fmt: skip
    naive = q["baselines"]["naive"]
    ax.scatter(naive["recall"], naive["precision"], marker="X", s=80, color="red", zorder=3,
               label=f"naive exact URL/phone miner ({naive['rules']} rules)")  # fmt: skip
    ax.scatter(
        [], [], marker="^", facecolors="none", edgecolors="grey", label="LR, threshold from mining-side CV"
    )
    union = q.get("drafted_union")
    if union:
        ax.scatter(union["recall"], union["precision"], marker="D", s=60, color="purple", zorder=3,
                   label=f"all {union['rules']} drafted rules, no profile (diagnostic)")  # fmt: skip
    if empty:
        ax.scatter([], [], marker="", label="PATAS, no rule promoted: " + ", ".join(empty))
    ax.set_xlim(0, 1.02)
    ax.set_ylim(min(0.5, naive["precision"] - 0.05), 1.01)
    ax.set_xlabel(
        "recall (held-out, labels never seen by the pipeline)"
        if q.get("test_share")
        else "recall (held-out side)"
    )
    ax.set_ylabel("precision")
    name = Path(q["data"]).name
    ax.set_title(f"Rule quality on {name} ({q['split']} split, {_measured(q)})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
