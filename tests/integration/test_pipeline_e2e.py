"""One session-scoped run of the whole graph on a real Postgres, re-run to prove idempotency and
determinism (same data and configuration: byte-identical rules and metrics)."""

from __future__ import annotations

import psycopg
import pytest

from patas.bench.harness import patched_environ
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULES_SQL = """
select rule_id, version, rule_canonical, sql_expression, coalesce(regex, ''), origin, evaluation_kind
from patas.rule_drafts order by rule_id
"""
METRICS_SQL = """
select rule_id, window_name, hit_count, spam_hit_count, ham_hit_count, precision, recall
from marts.rule_evaluations order by rule_id, window_name
"""
EVIDENCE_SQL = """
select rule_id, rule_kind, evidence_folds, evidence_folds_used, evidence_spam_hits, evidence_ham_hits,
    evidence_ham_total, prior_mean, prior_strength, posterior_mean, posterior_lower_bound, tier
from patas.rule_evidence order by rule_id
"""


@pytest.fixture(scope="session")
def e2e(warehouse_url, tmp_path_factory):
    from patas.runner import run_pipeline

    tmp = tmp_path_factory.mktemp("e2e")
    corpus = tmp / "corpus.jsonl"
    generate_corpus(8000, 11, corpus)
    env = {
        "DAGSTER_HOME": str(tmp / "dagster"),
        "PATAS_HOME": str(tmp / "home"),
        "PATAS_DATABASE_URL": warehouse_url,
    }
    with patched_environ(env):
        settings = load_settings()
        first_ingest = ingest_file(warehouse_url, corpus).as_dict()
        first = run_pipeline(settings, warehouse_url)
        with psycopg.connect(warehouse_url) as c:
            rules_1 = c.execute(RULES_SQL).fetchall()
            metrics_1 = c.execute(METRICS_SQL).fetchall()
            evidence_1 = c.execute(EVIDENCE_SQL).fetchall()
            tiers_1 = dict(c.execute("select rule_id, tier from patas.rule_lifecycle").fetchall())
            active_1 = [
                r[0] for r in c.execute("select rule_id from patas.rule_lifecycle where status = 'active'")
            ]
        second_ingest = ingest_file(warehouse_url, corpus).as_dict()
        second = run_pipeline(settings, warehouse_url)
        with psycopg.connect(warehouse_url) as c:
            rules_2 = c.execute(RULES_SQL).fetchall()
            metrics_2 = c.execute(METRICS_SQL).fetchall()
            evidence_2 = c.execute(EVIDENCE_SQL).fetchall()
        yield {
            "first": first,
            "second": second,
            "ingest": (first_ingest, second_ingest),
            "rules": (rules_1, rules_2),
            "metrics": (metrics_1, metrics_2),
            "evidence": (evidence_1, evidence_2),
            "tiers": tiers_1,
            "active": active_1,
            "settings": settings,
        }


def test_first_run_succeeds_and_promotes(e2e):
    first = e2e["first"]
    assert first["success"], first.get("failures")
    assert first["rules_drafted"] > 0
    assert first["rules_by_status"].get("active", 0) >= 1


def test_active_ruleset_is_precise_on_held_out_window(e2e):
    active = [r for r in e2e["first"]["rulesets"] if r["ruleset_name"] == "active"]
    assert active, e2e["first"]["rulesets"]
    assert active[0]["precision"] >= 0.95
    assert 0 < active[0]["recall"] <= 1


def test_reingest_loads_nothing(e2e):
    first, second = e2e["ingest"]
    assert first["loaded"] == 8000 and first["read"] == 8000
    assert second["loaded"] == 0 and second["duplicate"] == 8000


def test_rerun_gives_identical_rules_and_metrics(e2e):
    rules_1, rules_2 = e2e["rules"]
    metrics_1, metrics_2 = e2e["metrics"]
    assert rules_1 and rules_1 == rules_2
    assert metrics_1 and metrics_1 == metrics_2


def test_promotion_weighed_cross_fitted_evidence(e2e):
    evidence_1, evidence_2 = e2e["evidence"]
    assert evidence_1 and evidence_1 == evidence_2  # deterministic
    windows = {r[1] for r in e2e["metrics"][0]}
    assert windows == {"mining", "evaluation"}  # shadow evaluation measured the mining window too
    by_id = {r[0]: r for r in evidence_1}
    assert all(r[2] == 5 for r in evidence_1)
    assert any(r[3] > 0 and r[4] > 0 for r in evidence_1)  # out-of-fold mining hits count
    # Only SAFE_AUTO rules became active on their own; the stored tier is the evidence's.
    assert e2e["active"] and all(by_id[rid][11] == "SAFE_AUTO" == e2e["tiers"][rid] for rid in e2e["active"])
    assert not [r for r in evidence_1 if r[1] == "word_common" and r[11] == "SAFE_AUTO"]
    for r in evidence_1:
        assert 0 <= r[10] <= r[9] <= 1 and r[8] > 0


def test_rerun_changes_no_status(e2e):
    second = e2e["second"]
    assert second["success"], second.get("failures")
    assert second["rules_by_status"] == e2e["first"]["rules_by_status"]
    promotions = {k: v for k, v in second.get("transitions_this_run", {}).items() if k.endswith("->active")}
    assert not promotions


def test_exports_written(e2e):
    exports = e2e["settings"].exports_dir
    assert (exports / "rules.rol.json").exists()
    assert (exports / "rules.sql").exists()


def test_a_copy_under_another_name_can_refresh_the_active_rules(e2e, warehouse_url):
    """marts.refresh_active_rules() (called by promotion and the manual lifecycle actions) names
    relations by schema and table only: a copy of the warehouse under another database name (a
    restore, CREATE DATABASE ... TEMPLATE) keeps it working."""
    from patas.bench.harness import with_database
    from python_steps.settings import url_parts

    source = url_parts(warehouse_url).dbname
    copy = f"{source}_copy"
    admin = with_database(warehouse_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{copy}" with (force)')
        c.execute(f'create database "{copy}" template "{source}"')
    try:
        with psycopg.connect(with_database(warehouse_url, copy)) as c:
            sql = "select prosrc from pg_proc where proname = 'refresh_active_rules'"
            body = c.execute(sql).fetchone()[0]
            assert f'"{source}".' not in body
            before = c.execute("select count(*) from marts.active_rules").fetchone()[0]
            c.execute("select marts.refresh_active_rules()")
            assert c.execute("select count(*) from marts.active_rules").fetchone()[0] == before > 0
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'drop database if exists "{copy}" with (force)')
