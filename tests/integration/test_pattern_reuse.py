"""A returning campaign re-uses its old rules, end to end through dbt and Postgres.

Run 1: a parcel-fee campaign forms cluster ``c_parcel``; two rules are derived from it (a domain
rule and a phrase rule, both promoted; the phrase rule is then deprecated by hand). Run 2: the
campaign is gone; the domain rule, idle, is deprecated. Run 3: the campaign is back in other words, as a new
cluster: the library matches it with ``cluster:c_parcel``, stage 2 records both rules as re-used,
and the lifecycle brings the idle one back (deprecated -> shadow -> active on this run's shadow
evaluation) while the one deprecated by hand stays deprecated. The pattern's success figures over
the three runs follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from test_shadow_eval_support import (
    clear_messages,
    create_database,
    create_fixture,
    draft_rule,
    drop_database,
    insert_messages,
    message,
    run_shadow_evaluation,
    scratch_project,
)

from python_steps.lifecycle import manual, store
from python_steps.lifecycle.profiles import ProfileConfig, SafetyProfile, TierThresholds
from python_steps.mining import clustering, library
from python_steps.mining.clustering import Cluster
from python_steps.mining.embeddings import LEXICAL_MODEL, lexical_embed

pytestmark = pytest.mark.integration

IDLE = SafetyProfile(
    "idle1", min_precision=0.9, max_ham_hits=0, max_coverage=0.6, min_hits=2, max_idle_runs=1
)
CONFIG = ProfileConfig(
    profiles={"idle1": IDLE},
    default_profile="idle1",
    tiers=TierThresholds(safe_auto_min_precision=0.9, safe_auto_max_false_positive_rate=1.0),
)
DOMAIN = {"kind": "domain", "value": "parcel-fee.example"}
PHRASE = {"kind": "text_phrase", "value": "customs fee"}

HAM = [
    message(1, "see you at lunch tomorrow", False),
    message(2, "the parcel for mum arrived today", False),
    message(3, "can you call me back later", False),
    message(4, "meeting moved to friday", False),
]
RUN_1 = HAM + [
    message(
        10 + i,
        f"your parcel is held pay the customs fee {w} at parcel-fee.example",
        True,
        domains=["parcel-fee.example"],
    )
    for i, w in enumerate(("now", "today", "within 24h", "urgently"))
]
OTHER = [
    message(20 + i, f"double your bitcoin in {h} hours with our robot", True)
    for i, h in enumerate((12, 24, 48))
]
RUN_2 = HAM + OTHER
RUN_3 = HAM + [
    message(30 + i, text, True, domains=["parcel-fee.example"])
    for i, text in enumerate(
        (
            "parcel held: pay your customs fee at parcel-fee.example",
            "we hold your parcel, pay the customs fee today at parcel-fee.example",
            "your parcel is waiting, settle the customs fee at parcel-fee.example now",
        )
    )
]


def _cluster(cid: str, msgs: list[dict]) -> Cluster:
    vectors = lexical_embed([m["normalized_text"] for m in msgs])
    centroid = vectors.mean(axis=0)
    c = Cluster(cid, [m["message_id"] for m in msgs])
    c.centroid = [round(float(x), 9) for x in centroid / np.linalg.norm(centroid)]
    c.spam_share, c.cohesion = 1.0, float(np.mean(vectors @ centroid / np.linalg.norm(centroid)))
    return c


def _stage2(conn: psycopg.Connection, run_id: str, clusters: list[Cluster]) -> dict:
    """What stage 2 does with its clusters: match the library first, record, then remember them."""
    matches = library.library_matches(conn, clusters, "lexical", LEXICAL_MODEL)
    record = {"method": "dbscan", "library_matches": matches, "rules_reused": len(matches)}
    clustering.write_clusters(conn, clusters, run_id, 100, record)
    library.record_clusters(conn, clusters, run_id, "lexical", LEXICAL_MODEL)
    conn.commit()
    return record


def _lifecycle(world: dict, run_id: str) -> dict:
    run_shadow_evaluation(world["project"], world["url"], run_id)
    with psycopg.connect(world["url"]) as conn:
        summary = store.apply_lifecycle(conn, run_id=run_id, profile="idle1", config=CONFIG, folds=0)
        library.record_pattern_stats(conn, run_id)
        conn.commit()
    return summary


def _status(url: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute("select rule_id, status, status_reason from patas.rule_lifecycle")
        }


@pytest.fixture(scope="module")
def world(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    name = f"patas_reuse_{os.getpid()}"
    url = create_database(server_url, name)
    project = scratch_project(tmp_path_factory.mktemp("reuse"))
    world: dict = {"url": url, "project": project}
    with psycopg.connect(url) as conn:
        create_fixture(conn, RUN_1)
        world["stage2_1"] = _stage2(conn, "run-1", [_cluster("c_parcel", RUN_1[4:])])
        world["domain"] = draft_rule(conn, DOMAIN, origin="semantic")
        world["phrase"] = draft_rule(conn, PHRASE, origin="semantic")
        conn.execute("update patas.rule_drafts set pattern_id = 'cluster:c_parcel'")
        conn.commit()
    world["run_1"] = _lifecycle(world, "run-1")
    world["status_1"] = _status(url)
    with psycopg.connect(url) as conn:
        manual.deprecate_rule(conn, world["phrase"], reason="too broad for us", actor="alice")
        clear_messages(conn)
        insert_messages(conn, RUN_2)
        world["stage2_2"] = _stage2(conn, "run-2", [_cluster("c_bitcoin", OTHER)])
    world["run_2"] = _lifecycle(world, "run-2")
    world["status_2"] = _status(url)
    with psycopg.connect(url) as conn:
        clear_messages(conn)
        insert_messages(conn, RUN_3)
        world["stage2_3"] = _stage2(conn, "run-3", [_cluster("c_parcel_again", RUN_3[4:])])
    world["run_3"] = _lifecycle(world, "run-3")
    world["status_3"] = _status(url)
    yield world
    drop_database(server_url, name)


def test_run_1_promotes_the_campaign_rule_and_run_2_deprecates_it_idle(world: dict) -> None:
    assert world["stage2_1"]["library_matches"] == []  # nothing known yet
    assert world["status_1"][world["domain"]][0] == world["status_1"][world["phrase"]][0] == "active"
    assert world["stage2_2"]["library_matches"] == []  # another campaign: nothing re-used
    status, reason = world["status_2"][world["domain"]]
    assert status == "deprecated" and reason.startswith("idle:")
    status, reason = world["status_2"][world["phrase"]]
    assert status == "deprecated" and reason.startswith("manual_deprecate:")


def test_run_3_recognises_the_returning_campaign_and_reuses_its_rules(world: dict) -> None:
    matches = world["stage2_3"]["library_matches"]
    assert [(m["cluster_id"], m["pattern_id"], m["rule_id"], m["status"]) for m in matches] == sorted(
        [
            ("c_parcel_again", "cluster:c_parcel", world["domain"], "deprecated"),
            ("c_parcel_again", "cluster:c_parcel", world["phrase"], "deprecated"),
        ],
        key=lambda t: t[2],
    )
    assert all(library.REUSE_THRESHOLD <= m["similarity"] < 1.0 for m in matches)  # other words


def test_the_idle_rule_comes_back_and_the_rule_deprecated_by_hand_does_not(world: dict) -> None:
    assert world["run_3"]["promoted"] == [world["domain"]]
    assert world["run_3"]["transitions"].get("deprecated->shadow") == 1
    assert world["status_3"][world["domain"]][0] == "active"
    assert world["status_3"][world["phrase"]][0] == "deprecated"
    with psycopg.connect(world["url"]) as conn:
        audit = conn.execute(
            "select from_status, to_status, reason from patas.rule_audit where rule_id = %s and run_id = 'run-3'"
            " order by audit_id",
            (world["domain"],),
        ).fetchall()
    assert [(a, b) for a, b, _ in audit] == [("deprecated", "shadow"), ("shadow", "active")]
    assert audit[0][2].startswith("returning: its campaign is back (cluster c_parcel_again matches pattern"
                                  " cluster:c_parcel")  # fmt: skip


def test_the_pattern_success_figures_over_the_three_runs(world: dict) -> None:
    with psycopg.connect(world["url"]) as conn:
        shown = library.show_pattern(conn, "cluster:c_parcel")
        other = library.show_pattern(conn, "cluster:c_bitcoin")
    s = shown["success"]
    # Runs 1 and 3 hit (4 + 3 spam, no ham); run 2 measured nothing.
    assert (s["hits"], s["spam_hits"], s["ham_hits"], s["precision"]) == (7, 7, 0, 1.0)
    assert (s["nights_active"], s["runs_measured"], s["runs_reused"]) == (2, 3, 1)
    assert (s["rules_derived"], s["rules_active"]) == (2, 1)
    assert shown["runs_active"] == 1  # stage 2 saw the cluster under this id in run 1 only
    assert sorted(r["rule_id"] for r in shown["rules"]) == sorted([world["domain"], world["phrase"]])
    assert other["success"]["runs_measured"] == 0 and other["rules"] == []
