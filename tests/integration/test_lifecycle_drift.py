"""Issue 5 acceptance on generated data: two consecutive periods of the generator's drift scenario.

Period 1 promotes rules; in period 2 the prize campaign's link domain (rwd.li) and phrase turn up in
legitimate loyalty messages, so the rules built on them decay and are deprecated with the reason in
the audit table, while a pinned rule is left untouched."""

from __future__ import annotations

import os

import psycopg
import pytest

from patas.bench.harness import fresh_database, patched_environ
from python_steps.bench.generate import DRIFT_DOMAIN, DRIFT_PHRASE, generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.lifecycle import manual
from python_steps.runspec import RunSpec
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = "2026-01-{:02d}T00:00:00+00:00"
PERIOD_1 = {"mining_start": DAY.format(1), "mining_end": DAY.format(11), "evaluation_start": DAY.format(11),
            "evaluation_end": DAY.format(16)}  # fmt: skip
PERIOD_2 = {"mining_start": DAY.format(16), "mining_end": DAY.format(26), "evaluation_start": DAY.format(26),
            "evaluation_end": DAY.format(31)}  # fmt: skip


def _status(conn) -> dict[str, tuple[str, bool]]:
    return {
        r[0]: (r[1], r[2])
        for r in conn.execute("select rule_id, status, is_pinned from patas.rule_lifecycle")
    }


@pytest.fixture(scope="module")
def periods(fresh_db_module, tmp_path_factory):
    from patas.runner import run_pipeline

    url = fresh_db_module
    tmp = tmp_path_factory.mktemp("drift")
    corpus = tmp / "drift.jsonl"
    generate_corpus(12_000, 5, corpus, days=30, scenario="drift")
    env = {"DAGSTER_HOME": str(tmp / "dagster"), "PATAS_HOME": str(tmp / "home"), "PATAS_DATABASE_URL": url}
    with patched_environ(env):
        settings = load_settings()
        ingest_file(url, corpus)
        first = run_pipeline(settings, url, RunSpec(split="time", **PERIOD_1))
        with psycopg.connect(url) as conn:
            after_1 = _status(conn)
            descriptions = dict(
                conn.execute("select distinct rule_id, description from patas.rule_drafts").fetchall()
            )
            drift_rules = {
                rid for rid, (st, _) in after_1.items()
                if st == "active" and any(w in descriptions[rid] for w in (DRIFT_DOMAIN, *DRIFT_PHRASE.split()))
            }  # fmt: skip
            others = sorted(
                rid for rid, (st, _) in after_1.items() if st == "active" and rid not in drift_rules
            )
            pinned = others[0] if others else None
            if pinned:
                manual.pin_rule(conn, pinned, reason="keep through the drift test", actor="test")
                conn.commit()
        second = run_pipeline(settings, url, RunSpec(split="time", **PERIOD_2))
        with psycopg.connect(url) as conn:
            after_2 = _status(conn)
            audit = conn.execute(
                "select rule_id, from_status, to_status, reason, metrics, run_id, actor from patas.rule_audit"
                " order by audit_id"
            ).fetchall()
        yield {"first": first, "second": second, "after_1": after_1, "after_2": after_2, "audit": audit,
               "drift_rules": drift_rules, "pinned": pinned}  # fmt: skip


@pytest.fixture(scope="module")
def fresh_db_module(server_url):
    with fresh_database(server_url, f"patas_drift_{os.getpid()}") as url:
        yield url


def test_both_periods_run(periods):
    assert periods["first"]["success"], periods["first"].get("failures")
    assert periods["second"]["success"], periods["second"].get("failures")


def test_period_one_promotes_including_the_drifting_rules(periods):
    active = [rid for rid, (st, _) in periods["after_1"].items() if st == "active"]
    assert len(active) >= 2
    assert periods["drift_rules"], "a rule on the prize campaign's domain or phrase should be promoted first"


def test_decayed_rules_are_deprecated_with_their_reason(periods):
    run_2 = periods["second"]["run_id"]
    deprecations = {r[0]: r for r in periods["audit"] if r[5] == run_2 and r[2] == "deprecated"}
    decayed = periods["drift_rules"] & set(deprecations)
    assert decayed, f"no drifting rule deprecated; deprecations: {deprecations}"
    for rid in decayed:
        _, from_status, _, reason, metrics, _, actor = deprecations[rid]
        assert from_status == "active" and actor == "patas"
        assert reason.split(":")[0] in {
            "precision_below_profile",
            "precision_drop",
            "ham_hits_above_profile",
        }, reason
        assert metrics and metrics["ham_hit_count"] > 0
        assert periods["after_2"][rid][0] == "deprecated"


def test_pinned_rule_is_untouched(periods):
    pinned = periods["pinned"]
    assert pinned is not None
    assert periods["after_2"][pinned] == ("active", True)
    run_2 = periods["second"]["run_id"]
    assert not [r for r in periods["audit"] if r[0] == pinned and r[5] == run_2]
