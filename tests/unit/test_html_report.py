"""The HTML run report: self-contained, every figure present, warehouse text escaped (no database)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from python_steps.publish.html_report import render_html
from python_steps.publish.report import render_summary

SUMMARY = {
    "run_id": "r1",
    "success": False,
    "run_seconds": 12.5,
    "warehouse": {"messages": 1000, "spam": 200, "ham": 790, "quarantined": 3},
    "rules_by_status": {"active": 2, "shadow": 5},
    "stage_seconds": {"stage 1": 4.0, "shadow evaluation": 3.5},
    "deprecated_this_run": {"r_b": "feedback: 5 of 9 hits (56%) were reversed <script>alert(1)</script>"},
    "quality_gates": [
        {"batch_id": 7, "gate": "future_timestamps", "severity": "critical", "status": "failed",
         "detail": "20 event time(s) more than 3600 s after ingestion"},
        {"batch_id": 7, "gate": "volume", "severity": "warning", "status": "passed", "detail": "ok"},
    ],
    "figures": {
        "rules": [["r_a", 0.4, 1.0, "active"], ["r_b", 0.1, 0.5, "deprecated"], ["r_c", None, None, "shadow"]],
        "promoted": [["r_a", "meets_profile: conservative"]],
        "batches": [[1, 500, 0.2], [2, 480, 0.21], [7, 20, 0.9]],
        "runs": [[1, 3, 0.99, 20.0], [2, 2, 0.97, 12.5]],
    },
}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)


def test_the_page_has_every_figure_and_no_external_resource() -> None:
    html = render_html(SUMMARY, render_summary(SUMMARY))
    parser = _Tags()
    parser.feed(html)
    assert parser.tags.count("svg") == 4  # precision/recall, stage times, runs, batches
    assert parser.tags.count("circle") >= 2 + 2 + 3  # the two rules with metrics, the legend, the points
    assert "script" not in parser.tags and not re.search(r"(src|href)=", html)
    assert "Precision against recall per rule, evaluation window (2 rules)" in html


def test_a_blocked_run_says_so_and_warehouse_text_is_escaped() -> None:
    html = render_html(SUMMARY, render_summary(SUMMARY))
    assert "Blocked by a critical data-quality gate" in html and "FAILED" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "meets_profile: conservative" in html
    ok = render_html({**SUMMARY, "success": True, "quality_gates": []}, "")
    assert "Blocked" not in ok and "succeeded" in ok


LLM = {
    "model": "gpt-4o-mini", "privacy": "strict", "prompt_version": "p2", "prompt_tokens": 9000,
    "completion_tokens": 1000, "cost_usd": 0.95, "priced": True, "budget_usd": 1.0, "budget_tokens": 200000,
    "budget_state": "reached", "calls": {"ok": 4, "over_budget": 2}, "retries": 1, "budget_used": 0.95,
    "warnings": ["LLM budget reached ($0.9500 of $1.0000): 2 cluster(s) were not sent <b>"],
}  # fmt: skip


def test_the_llm_section_shows_spend_and_the_budget_warning() -> None:
    summary = {**SUMMARY, "llm": LLM}
    text = render_summary(summary)
    assert "llm:             gpt-4o-mini, privacy strict, prompt p2: calls ok 4, over_budget 2;" in text
    assert "10,000 tokens (9,000 prompt + 1,000 completion), $0.9500 of $1.00 budget; 1 retries" in text
    assert "warning:         LLM budget reached ($0.9500 of $1.0000)" in text
    html = render_html(summary, text)
    assert "<h2>LLM drafting</h2>" in html and "<p class='blocked'><b>Warning</b>: LLM budget reached" in html
    assert "95%" in html and "not sent &lt;b&gt;" in html
    assert "LLM drafting" not in render_html(SUMMARY, render_summary(SUMMARY))


def test_an_evaluation_gate_block_and_the_data_docs_links_show():
    gate = {"batch_id": 7, "gate": "active_precision", "severity": "critical", "status": "failed",
            "detail": "active-set precision 0.500 on this evaluation window, previous run 0.990 (r0)"}  # fmt: skip
    summary = {**SUMMARY, "quality_gates": [gate], "data_docs": ["data_docs/run_r1/evaluation_gates.html"]}
    html = render_html(summary, render_summary(summary))
    assert "Blocked by a critical evaluation gate" in html and "the active set is unchanged" in html
    assert "previous run 0.990 (r0)" in html
    assert "<a href='data_docs/run_r1/evaluation_gates.html'>evaluation_gates</a>" in html
    assert "nothing downstream of the batch ran" not in html
    text = render_summary(summary)
    assert "BLOCKED:         a critical evaluation gate failed" in text


def test_the_text_summary_names_the_window_of_each_ruleset_line() -> None:
    """marts.ruleset_evaluation has a row per ruleset and window: the two lines must not look like
    the same ruleset measured twice."""
    rows = [
        {
            "ruleset_name": "active",
            "window_name": "evaluation",
            "rule_count": 3,
            "precision": 1.0,
            "recall": 0.9,
        },
        {
            "ruleset_name": "active",
            "window_name": "mining",
            "rule_count": 3,
            "precision": 1.0,
            "recall": 0.95,
        },
    ]
    text = render_summary({**SUMMARY, "rulesets": rows})
    assert "ruleset active (evaluation window): rule_count 3, precision 1.0000, recall 0.9000" in text
    assert "ruleset active (mining window): rule_count 3, precision 1.0000, recall 0.9500" in text
