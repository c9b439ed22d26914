"""``GET /metrics``: Prometheus text format, read from the warehouse at scrape time.

Gauges describe the warehouse as it is (rules by status, the active set's precision and recall,
ingest counts, the newest batch's quality gates, label feedback, LLM tokens and cost) and the last
run (its start, duration, outcome, stage times, LLM tokens, cost and budget, from
``$PATAS_HOME/reports/latest.json``, which the runner writes after every run). Counters count this server's ``/rules/match`` work. Every query is
fixed SQL (no request data reaches it); a relation that does not exist yet gives no sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def warehouse_metrics(conn: psycopg.Connection) -> Iterator[Metric]:
    """The warehouse's figures as metric families (fixed SQL, read-only)."""
    if _exists(conn, "patas.rule_lifecycle"):
        g = _gauge("patas_rules", "Rules by lifecycle status.", ["status"])
        counts = dict(conn.execute("select status, count(*) from patas.rule_lifecycle group by 1").fetchall())
        for status in ("candidate", "shadow", "active", "deprecated"):
            g.add_metric([status], counts.get(status, 0))
        yield g
    if _exists(conn, "marts.ruleset_evaluation"):
        row = conn.execute(
            """
            select precision, recall, coverage, rule_count from marts.ruleset_evaluation
            where ruleset_name = 'active' and window_name = 'evaluation'
            """
        ).fetchone()
        if row:
            for name, value, doc in (
                (
                    "patas_active_ruleset_precision",
                    row[0],
                    "Precision of the active set on the evaluation window.",
                ),
                ("patas_active_ruleset_recall", row[1], "Recall of the active set on the evaluation window."),
                (
                    "patas_active_ruleset_coverage",
                    row[2],
                    "Share of evaluation-window messages the set hits.",
                ),
            ):
                if value is not None:
                    g = _gauge(name, doc)
                    g.add_metric([], float(value))
                    yield g
    if _exists(conn, "raw.ingest_batches"):
        row = conn.execute(
            """
            select count(*), coalesce(sum(read_count), 0), coalesce(sum(loaded_count), 0),
                   coalesce(sum(duplicate_count), 0), coalesce(sum(quarantined_count), 0)
            from raw.ingest_batches where status = 'done'
            """
        ).fetchone()
        g = _gauge("patas_ingest_batches", "Finished ingestion batches.")
        g.add_metric([], row[0])
        yield g
        g = _gauge("patas_ingest_lines", "Lines read by finished batches, by outcome.", ["outcome"])
        for outcome, value in zip(("read", "loaded", "duplicate", "quarantined"), row[1:], strict=True):
            g.add_metric([outcome], value)
        yield g
    if _exists(conn, "patas.quality_gate_results"):
        rows = conn.execute(
            """
            select severity, status, count(*) from patas.quality_gate_results
            where batch_id = (select max(batch_id) from patas.quality_gate_results)
            group by 1, 2
            """
        ).fetchall()
        g = _gauge(
            "patas_quality_gates", "Quality gates of the newest validated batch, by severity and status.",
            ["severity", "status"],
        )  # fmt: skip
        counts = {(sev, st): n for sev, st, n in rows}
        for sev in ("critical", "warning"):
            for st in ("passed", "failed", "skipped"):
                g.add_metric([sev, st], counts.get((sev, st), 0))
        yield g
    if _exists(conn, "patas.label_feedback"):
        counts = dict(
            conn.execute("select verdict, count(*) from patas.label_feedback group by 1").fetchall()
        )
        g = _gauge("patas_label_feedback", "Label verdicts recorded, by verdict.", ["verdict"])
        for verdict in ("spam", "ham"):
            g.add_metric([verdict], counts.get(verdict, 0))
        yield g
    if _exists(conn, "patas.llm_calls"):
        row = conn.execute(
            "select coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) from patas.llm_calls"
        ).fetchone()
        g = _gauge("patas_llm_tokens", "LLM tokens spent on drafting, all runs.", ["kind"])
        g.add_metric(["prompt"], row[0])
        g.add_metric(["completion"], row[1])
        yield g
    if _exists(conn, "patas.llm_runs"):
        row = conn.execute("select coalesce(sum(cost_usd), 0), count(*) from patas.llm_runs").fetchone()
        g = _gauge(
            "patas_llm_cost_usd", "Money spent on LLM drafting (US dollars, from the price table), all runs."
        )
        g.add_metric([], float(row[0]))
        yield g


def last_run_metrics(report: Path) -> Iterator[Metric]:
    """The last run's figures from the run report the runner writes (none before the first run)."""
    try:
        summary: dict[str, Any] = json.loads(report.read_text())
        finished = report.stat().st_mtime
    except (OSError, ValueError):
        return
    g = _gauge(
        "patas_last_run_finished_timestamp_seconds", "When the last run's report was written (Unix time)."
    )
    g.add_metric([], finished)
    yield g
    if isinstance(summary.get("run_seconds"), int | float):
        g = _gauge("patas_last_run_duration_seconds", "Wall time of the last run.")
        g.add_metric([], float(summary["run_seconds"]))
        yield g
    if isinstance(summary.get("success"), bool):
        g = _gauge(
            "patas_last_run_success", "1 when the last run succeeded, 0 when it failed or was blocked."
        )
        g.add_metric([], 1.0 if summary["success"] else 0.0)
        yield g
    llm = summary.get("llm")
    if isinstance(llm, dict):
        yield from _last_run_llm(llm)
    stages = summary.get("stage_seconds") or {}
    if stages:
        g = _gauge("patas_last_run_stage_seconds", "Seconds per stage of the last run.", ["stage"])
        for stage, seconds in sorted(stages.items()):
            g.add_metric([stage], float(seconds))
        yield g


def _last_run_llm(llm: dict[str, Any]) -> Iterator[Metric]:
    g = _gauge("patas_last_run_llm_tokens", "LLM tokens the last run spent.", ["kind"])
    g.add_metric(["prompt"], float(llm.get("prompt_tokens") or 0))
    g.add_metric(["completion"], float(llm.get("completion_tokens") or 0))
    yield g
    g = _gauge("patas_last_run_llm_calls", "LLM drafting calls of the last run, by outcome.", ["outcome"])
    for outcome, n in sorted((llm.get("calls") or {}).items()):
        g.add_metric([str(outcome)], float(n))
    yield g
    if llm.get("priced"):
        g = _gauge("patas_last_run_llm_cost_usd", "Money the last run spent on the LLM (US dollars).")
        g.add_metric([], float(llm.get("cost_usd") or 0.0))
        yield g
    if llm.get("priced") and llm.get("budget_usd") is not None:
        g = _gauge("patas_last_run_llm_budget_usd", "The last run's LLM budget (US dollars).")
        g.add_metric([], float(llm["budget_usd"]))
        yield g
    if isinstance(llm.get("budget_used"), int | float):
        g = _gauge(
            "patas_last_run_llm_budget_used_ratio",
            "Share of its LLM budget the last run spent (money when priced, else tokens); 1 = reached.",
        )
        g.add_metric([], float(llm["budget_used"]))
        yield g
    g = _gauge(
        "patas_last_run_llm_budget_reached", "1 when the last run stopped calling the LLM at its budget."
    )
    g.add_metric([], 1.0 if llm.get("budget_state") == "reached" else 0.0)
    yield g


class _PatasCollector(Collector):
    def __init__(self, connect: Any, report: Path) -> None:
        self._connect, self._report = connect, report

    def collect(self) -> Iterator[Metric]:
        up = _gauge("patas_warehouse_up", "1 when the warehouse answered this scrape.")
        try:
            with self._connect() as conn:
                families = list(warehouse_metrics(conn))
            up.add_metric([], 1.0)
        except psycopg.Error:
            families = []
            up.add_metric([], 0.0)
        yield up
        yield from families
        yield from last_run_metrics(self._report)


class ServiceMetrics:
    """One registry per app: the warehouse collector and this server's match counters."""

    def __init__(self, connect: Any, reports_dir: Path) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_PatasCollector(connect, reports_dir / "latest.json"))
        self.match_requests = Counter(
            "patas_match_requests", "POST /rules/match calls served.", registry=self.registry
        )
        self.match_messages = Counter(
            "patas_match_messages", "Messages matched against the active rules.", registry=self.registry
        )
        self.match_hits = Counter(
            "patas_match_hits", "Rule hits returned by /rules/match (a message hit by 2 rules counts 2).",
            registry=self.registry,
        )  # fmt: skip


def write_textfile(url: str, reports_dir: Path, path: Path) -> Path:
    """The same warehouse and last-run metrics as ``GET /metrics``, as a Prometheus textfile (for
    node_exporter's textfile collector, where no service runs). Written atomically."""
    from prometheus_client import write_to_textfile

    registry = CollectorRegistry()
    registry.register(
        _PatasCollector(lambda: psycopg.connect(url, connect_timeout=5), reports_dir / "latest.json")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path
