"""Real ``patas`` processes that race: an ingest while a run is in stage 1, and manual deprecations
while a run drafts and while it promotes. The promises: both sides succeed (serialized by the
batch lock, the run lock and the lifecycle lock, never by luck), nothing is half-done, and a
person's action survives the run it raced: a rule deprecated by hand stays deprecated, audited as
the person's action, and the published rules (``marts.active_rules`` and the exports) agree.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from patas_processes import (
    KILL_POINTS,
    Patas,
    consistency_problems,
    input_lines,
    record_figure,
    run_log,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGE_1 = KILL_POINTS["stage 1"]


def _log(patas: Patas, before: set[Path]) -> str:
    path = run_log(patas.home, before)
    return path.read_text(errors="replace") if path else ""


def _active(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select rule_id from patas.rule_lifecycle where status = 'active' and not is_pinned order by rule_id"
            )
        ]


def test_an_ingest_during_a_run_and_deprecations_during_a_run(fresh_db: str, tmp_path: Path) -> None:
    patas = Patas(fresh_db, tmp_path / "home")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert patas("generate", "--rows", "3000", "--seed", "11", "--out", str(first)).returncode == 0
    assert patas("generate", "--rows", "20000", "--seed", "12", "--out", str(second)).returncode == 0
    assert patas("ingest", str(first)).returncode == 0

    # 1. a run; while dbt builds stage 1, an ingest of another file
    before = set((patas.home / "logs").glob("run-*.log"))
    run = patas.start("run")
    reached = wait_until(lambda: STAGE_1(_log(patas, before)) or run.poll() is not None, 600)
    assert reached is not None and run.poll() is None, "the run ended before stage 1 was seen"
    t0 = time.monotonic()
    ingest = patas("ingest", str(second))
    ingest_seconds = time.monotonic() - t0
    run_out, run_err = run.communicate(timeout=900)
    assert ingest.returncode == 0, ingest.stderr
    assert run.returncode == 0, run_out[-2000:] + run_err[-2000:]
    assert run.poll() == 0
    lines = input_lines(second)
    assert f"read {lines:,} = loaded 20,000 + duplicate 0 + quarantined 0" in ingest.stdout
    assert consistency_problems(fresh_db, patas.home) == []
    active = _active(fresh_db)
    assert len(active) >= 2, active
    record_figure(
        "patas ingest while patas run builds stage 1",
        runs=1,
        outcome="both succeed; state consistent",
        ingest_seconds=round(ingest_seconds, 1),
        rules_active=len(active),
    )

    # 2. the next run (it takes the new batch in); one rule deprecated by hand while it drafts,
    #    another while its lifecycle step runs
    early, late = active[0], active[-1]
    before = set((patas.home / "logs").glob("run-*.log"))
    run = patas.start("run")
    actions = {}
    for rule_id, step in ((early, "rule_drafts"), (late, "rule_lifecycle")):
        marker = f'Started execution of step "{step}"'
        seen = wait_until(lambda m=marker: m in _log(patas, before) or run.poll() is not None, 900, 0.02)
        assert seen is not None and run.poll() is None, f"the run ended before {step} started"
        res = patas("rules", "deprecate", rule_id, "--reason", f"moderator: raced {step}")
        assert res.returncode == 0, res.stderr
        actions[rule_id] = step
    run_out, run_err = run.communicate(timeout=900)
    assert run.returncode == 0, run_out[-2000:] + run_err[-2000:]

    with psycopg.connect(fresh_db) as conn:
        status = dict(
            conn.execute(
                "select rule_id, status || ' ' || coalesce(status_reason, '') from patas.rule_lifecycle "
                "where rule_id = any(%s)",
                (list(actions),),
            ).fetchall()
        )
        audit = conn.execute(
            "select rule_id, to_status, actor, reason from patas.rule_audit where rule_id = any(%s) "
            "and to_status = 'deprecated'",
            (list(actions),),
        ).fetchall()
        published = {r[0] for r in conn.execute("select rule_id from marts.active_rules")}
    for rule_id, step in actions.items():
        assert status[rule_id].startswith("deprecated"), (rule_id, status[rule_id])
        assert any(a[0] == rule_id and a[2].startswith("cli") and step in a[3] for a in audit), audit
        assert rule_id not in published
    assert consistency_problems(fresh_db, patas.home) == []
    record_figure(
        "patas rules deprecate while patas run drafts, and while it promotes",
        runs=1,
        outcome="both deprecations survive the run; audited; published rules agree",
    )
