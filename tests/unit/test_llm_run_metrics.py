"""The last run's LLM tokens, cost and budget in the Prometheus metrics (read from the run report)."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from patas.service.metrics import _PatasCollector


def _scrape(report_path) -> dict[tuple[str, tuple], float]:
    def down():
        raise __import__("psycopg").OperationalError("no warehouse in a unit test")

    registry = CollectorRegistry()
    registry.register(_PatasCollector(down, report_path))
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_last_run_llm_figures(tmp_path):
    report = tmp_path / "latest.json"
    report.write_text(json.dumps({"run_id": "r", "success": True, "llm": {
        "prompt_tokens": 900, "completion_tokens": 100, "cost_usd": 0.4, "priced": True, "budget_usd": 0.5,
        "budget_used": 0.8, "budget_state": "reached", "calls": {"ok": 2, "over_budget": 3}}}))  # fmt: skip
    m = _scrape(report)
    assert m[("patas_last_run_llm_tokens", (("kind", "prompt"),))] == 900
    assert m[("patas_last_run_llm_tokens", (("kind", "completion"),))] == 100
    assert m[("patas_last_run_llm_calls", (("outcome", "over_budget"),))] == 3
    assert m[("patas_last_run_llm_cost_usd", ())] == 0.4
    assert m[("patas_last_run_llm_budget_usd", ())] == 0.5
    assert m[("patas_last_run_llm_budget_used_ratio", ())] == 0.8
    assert m[("patas_last_run_llm_budget_reached", ())] == 1.0


def test_no_llm_no_llm_figures_and_unpriced_has_no_cost(tmp_path):
    report = tmp_path / "latest.json"
    report.write_text(json.dumps({"run_id": "r", "success": True}))
    assert not [k for k in _scrape(report) if "llm" in k[0]]
    report.write_text(json.dumps({"run_id": "r", "llm": {"prompt_tokens": 5, "completion_tokens": 1,
                                                         "priced": False, "budget_usd": 1.0, "cost_usd": 0}}))  # fmt: skip
    names = {k[0] for k in _scrape(report)}
    assert "patas_last_run_llm_tokens" in names and "patas_last_run_llm_cost_usd" not in names
