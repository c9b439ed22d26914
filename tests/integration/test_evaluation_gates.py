"""Evaluation gates in the lifecycle step, on the hand-made corpus through dbt and Postgres.

Period 1, default thresholds: the 12-message evaluation window is below the minimum; the critical
``evaluation_window`` gate fails, nothing is promoted, the summary and the stored results say why.
Period 1 again with thresholds sized for the corpus: the rules that meet the profile are promoted.
Period 2: the labels of the active rules' evaluation hits turn to ham in the feed; the active set's
precision drops from 1.0 to 0 against the previous run; ``active_precision`` fails and the active
set stays exactly as it was, although the policy alone would deprecate both rules.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from test_lifecycle_periods import CONFIG
from test_shadow_eval_support import (
    MESSAGES,
    RULES,
    create_database,
    create_fixture,
    draft_rule,
    drop_database,
    run_shadow_evaluation,
    scratch_project,
)

from python_steps.lifecycle import store
from python_steps.publish.report import render_quality_gates
from python_steps.quality import evaluation, gates

pytestmark = pytest.mark.integration

SIZED = """
[gates.evaluation_window]
min_messages = 5
min_spam = 2
min_ham = 2
min_mining_messages = 1
[gates.active_precision]
min_hits = 2
"""


@pytest.fixture(scope="module")
def world(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    name = f"patas_evalgates_{os.getpid()}"
    url = create_database(server_url, name)
    tmp = tmp_path_factory.mktemp("evalgates")
    with psycopg.connect(url) as conn:
        create_fixture(conn, MESSAGES)
        conn.commit()
        ids = {key: draft_rule(conn, obj) for key, obj in RULES.items()}
    sized = Path(tmp / "quality_gates.toml")
    sized.write_text(SIZED)
    yield {
        "url": url,
        "project": scratch_project(tmp),
        "ids": ids,
        "sized": gates.load_config(sized),
        "tmp": tmp,
    }
    drop_database(server_url, name)


def _period(world: dict, run_id: str, config: gates.GateConfig) -> dict:
    run_shadow_evaluation(world["project"], world["url"], run_id)
    with psycopg.connect(world["url"]) as conn:
        lifecycle = functools.partial(
            store.apply_lifecycle, conn, run_id=run_id, profile="small", config=CONFIG, folds=0
        )
        summary, _ = evaluation.check_then_apply(conn, lifecycle, config, run_id=run_id)
    return summary


def _active(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select rule_id, version, tier from patas.rule_lifecycle where status = 'active' order by 1"
        ).fetchall()


def _results(url: str, run_id: str) -> dict[str, tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select gate, severity, status, detail from patas.quality_gate_results where run_id = %s",
            (run_id,),
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_window_below_the_minimum_blocks_promotion(world: dict) -> None:
    summary = _period(world, "tiny-window", gates.load_config())  # shipped defaults: 100 messages
    assert summary["promoted"] == [] and summary["withheld"] >= 2, summary
    assert _active(world["url"]) == []
    assert len(summary["blocked_by"]) == 1 and summary["blocked_by"][0].startswith("evaluation_window:")
    stored = _results(world["url"], "tiny-window")
    assert stored["evaluation_window"][:2] == ("critical", "failed")
    assert "evaluation messages 12 < 100" in stored["evaluation_window"][2], stored
    assert stored["active_precision"][1] == "skipped"  # no earlier run to compare with
    # The run summary (text and HTML report) says why.
    lines = render_quality_gates(
        [
            {"batch_id": 0, "gate": g, "severity": s, "status": st, "detail": d}
            for g, (s, st, d) in stored.items()
        ]
    )
    assert any(line.startswith("BLOCKED:") and "evaluation gate" in line for line in lines), lines


def test_windows_of_the_configured_size_promote(world: dict) -> None:
    summary = _period(world, "period-1", world["sized"])
    assert summary["blocked_by"] == []
    ids = world["ids"]
    assert summary["promoted"] == sorted([ids["code_or_handle"], ids["win_regex"]])
    assert _results(world["url"], "period-1")["evaluation_window"][1] == "passed"


def test_a_precision_drop_against_the_previous_run_keeps_the_active_set(world: dict) -> None:
    url = world["url"]
    before = _active(url)
    assert len(before) == 2
    with psycopg.connect(url) as conn:
        # The feed now labels every evaluation message the active rules hit as ham.
        conn.execute(
            """
            update intermediate.int_messages_enriched set is_spam = false
            where message_id in (
                select h.message_id from marts.rule_hits as h
                join patas.rule_lifecycle as l using (rule_id)
                where l.status = 'active' and h.window_name = 'evaluation'
            )
            """
        )
        conn.commit()
    summary = _period(world, "period-2", world["sized"])
    assert summary["promoted"] == [] and summary["deprecated"] == {}, summary
    assert summary["withheld"] >= 1  # the policy alone would have deprecated them
    assert [b.split(":")[0] for b in summary["blocked_by"]] == ["active_precision"]
    assert _active(url) == before
    severity, status, detail = _results(url, "period-2")["active_precision"]
    # great-expectations' own validation page of the run's gates (the data docs page), for the report.
    with psycopg.connect(url) as conn:
        lifecycle = functools.partial(store.apply_lifecycle, conn, run_id="period-2", profile="small",
                                      config=CONFIG, folds=0)  # fmt: skip
        _, checked = evaluation.check_then_apply(conn, lifecycle, world["sized"], run_id="period-2")
    written = gates.write_data_docs(checked.data_docs, world["tmp"] / "reports", "period-2")
    page = Path(written[0]).read_text()
    assert written[0].endswith("data_docs/run_period-2/evaluation_gates.html")
    assert "Great Expectations" in page and "active_precision" in page and "Failed" in page
    assert (severity, status) == ("critical", "failed")
    assert "active-set precision 0.000" in detail and "previous run 1.000 (period-1)" in detail, detail
    with psycopg.connect(url) as conn:
        blocked = conn.execute(
            "select run_id from patas.evaluation_profiles where blocked order by 1"
        ).fetchall()
    assert blocked == [("period-2",), ("tiny-window",)]
