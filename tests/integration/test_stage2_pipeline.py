"""Stage 2 inside whole runs of the graph on a real Postgres, with embeddings from a real HTTP
server on 127.0.0.1 speaking the OpenAI embeddings API: the suspicious slice and its recorded
share, the cache (a rerun sends nothing), stable cluster ids, the pattern library, and the
degradation to lexical embeddings when the endpoint is down."""

from __future__ import annotations

import os

import psycopg
import pytest
from embeddings_stub import EmbeddingsStub, closed_port_url

from patas.bench.harness import fresh_database, patched_environ
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.mining import library
from python_steps.mining.embeddings import EmbeddingConfig
from python_steps.publish.report import render_summary
from python_steps.runspec import RunSpec
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTERS_SQL = "select cluster_id, message_count, centroid from patas.semantic_clusters order by cluster_id"


def _state(url: str, run_id: str) -> dict:
    with psycopg.connect(url) as c:
        return {
            "record": c.execute(
                "select record from patas.stage2_runs where run_id = %s", (run_id,)
            ).fetchone()[0],
            "clusters": c.execute(CLUSTERS_SQL).fetchall(),
            "patterns": c.execute(
                "select pattern_id, version, runs_active from patas.patterns where kind = 'cluster' order by 1"
            ).fetchall(),
        }


@pytest.fixture(scope="module")
def runs(server_url, tmp_path_factory):
    from patas.runner import run_pipeline

    tmp = tmp_path_factory.mktemp("stage2")
    corpus = tmp / "corpus.jsonl"
    generate_corpus(4000, 5, corpus)
    stub = EmbeddingsStub()
    with fresh_database(server_url, f"patas_s2_{os.getpid()}") as url:
        env = {
            "DAGSTER_HOME": str(tmp / "dagster"),
            "PATAS_HOME": str(tmp / "home"),
            "PATAS_DATABASE_URL": url,
            "PATAS_EMBEDDINGS_PROVIDER": "openai",
            "PATAS_EMBEDDINGS_BASE_URL": stub.base_url,
            "PATAS_EMBEDDINGS_MODEL": "stub-embed",
            "PATAS_EMBEDDINGS_API_KEY": "k",
            "PATAS_EMBEDDINGS_MAX_RETRIES": "1",
        }
        out: dict = {"url": url, "stub": stub}
        try:
            with patched_environ(env):
                ingest_file(url, corpus)
                spec = RunSpec(stage2_slice="wide")
                out["first"] = run_pipeline(load_settings(), url, spec)
                out["first_state"] = _state(url, out["first"]["run_id"])
                with psycopg.connect(url) as c:
                    out["member_text"] = c.execute(
                        "select m.cluster_id, r.text from patas.semantic_cluster_members as m"
                        " join raw.messages as r using (message_id) order by m.cluster_id, m.message_id limit 1"
                    ).fetchone()
                out["requests_after_first"] = len(stub.requests)
                out["second"] = run_pipeline(load_settings(), url, spec)
                out["second_state"] = _state(url, out["second"]["run_id"])
                out["requests_after_second"] = len(stub.requests)
            with patched_environ({**env, "PATAS_EMBEDDINGS_BASE_URL": closed_port_url(),
                                  "PATAS_EMBEDDINGS_MODEL": "never-cached"}):  # fmt: skip
                out["down"] = run_pipeline(load_settings(), url, RunSpec(stage2_slice="2.5"))
                out["down_state"] = _state(url, out["down"]["run_id"])
            with patched_environ(env):
                out["simple"] = run_pipeline(load_settings(), url, RunSpec(two_stage=False))
                out["simple_state"] = _state(url, out["simple"]["run_id"])
                out["settings"] = load_settings()
            yield out
        finally:
            stub.close()


def test_the_slice_and_its_share_are_recorded(runs):
    assert runs["first"]["success"], runs["first"].get("failures")
    rec = runs["first_state"]["record"]
    assert rec["slice_percent"] == 5.0 and rec["method"] == "dbscan"
    assert 0 < rec["stage2_messages"] <= rec["sample_size"]
    assert rec["stage2_share"] == pytest.approx(rec["stage2_messages"] / rec["window_messages"], abs=1e-6)
    # The slice is the top 5% by score plus uncovered spam: never more than both together.
    assert rec["slice_messages"] <= -(-rec["window_messages"] * 5 // 100) + rec["uncovered_spam"]
    assert rec["embeddings"]["provider"] == "openai" and rec["warnings"] == []
    assert "stage 2:" in render_summary(runs["first"]) and "openai / stub-embed" in render_summary(
        runs["first"]
    )
    clusters = runs["first_state"]["clusters"]
    assert clusters, "the generated campaigns form clusters"
    assert all(len(centroid) == 64 for _, _, centroid in clusters)


def test_batches_go_to_the_endpoint_bounded(runs):
    first = runs["stub"].requests[: runs["requests_after_first"]]
    assert first and all(r["path"] == "/v1/embeddings" and 1 <= len(r["input"]) <= 2048 for r in first)
    # Stage 2's calls, then the library's (the active rules' evidence) in the same run.
    assert 1 <= runs["first_state"]["record"]["embeddings"]["calls"] <= len(first)


def test_a_rerun_on_unchanged_data_makes_zero_embedding_calls_and_keeps_cluster_ids(runs):
    assert runs["second"]["success"], runs["second"].get("failures")
    assert runs["requests_after_second"] == runs["requests_after_first"]
    rec = runs["second_state"]["record"]
    assert rec["embeddings"]["calls"] == 0 and rec["embeddings"]["cache_misses"] == 0
    assert rec["embeddings"]["cache_hits"] > 0
    assert runs["second_state"]["clusters"] == runs["first_state"]["clusters"]
    assert rec["known_clusters_matched"] == len(runs["first_state"]["clusters"])


def test_a_returning_cluster_reuses_the_rules_derived_from_it(runs):
    # Run 1 starts with an empty library: nothing to re-use. Run 2 sees the same campaigns: every
    # rule drafted from one of its clusters (if drafting kept a cluster lineage) is re-used, and
    # every re-use names a known pattern at or above the threshold and a drafted rule.
    first, second = runs["first_state"]["record"], runs["second_state"]["record"]
    assert first["library_matches"] == [] and first["rules_reused"] == 0
    reused = {m["rule_id"]: m for m in second["library_matches"]}
    assert second["rules_reused"] == len(reused)
    with psycopg.connect(runs["url"]) as conn:
        derived = conn.execute(
            "select distinct rule_id from patas.rule_drafts where pattern_id like 'cluster:%%' and drafted_run_id = %s",
            (runs["first"]["run_id"],),
        ).fetchall()
        patterns = {r[0] for r in conn.execute("select pattern_id from patas.patterns")}
        drafted = {r[0] for r in conn.execute("select rule_id from patas.rule_drafts")}
        success = library.pattern_success(conn, sorted({m["pattern_id"] for m in reused.values()}))
    assert {r[0] for r in derived} <= set(reused)
    for rid, m in reused.items():
        assert m["similarity"] >= library.REUSE_THRESHOLD and m["pattern_id"] in patterns and rid in drafted
    assert all(s["runs_reused"] >= 1 for s in success.values())
    line = f"pattern library: {len(reused)} rule(s) re-used from"
    assert (line in render_summary(runs["second"])) == bool(reused)


def test_the_library_versions_each_cluster_per_run(runs):
    first = runs["first_state"]["patterns"]
    second = runs["second_state"]["patterns"]
    assert first and all(v == 1 and n == 1 for _, v, n in first)
    assert [p for p, _, _ in second] == [p for p, _, _ in first]
    assert all(v == 2 and n == 2 for _, v, n in second)


def test_the_library_matches_a_campaign_text_to_its_pattern_with_its_rules(runs):
    cfg = EmbeddingConfig.from_settings(runs["settings"])
    cid, text = runs["member_text"]
    with psycopg.connect(runs["url"]) as conn:
        exact = library.match(conn, text, cfg, k=3, method="exact")
        rule_patterns = library.list_patterns(conn, kind="rule")
    assert exact["method"] == "exact" and exact["provider"] == "openai"
    sims = [m["similarity"] for m in exact["matches"]]
    assert len(sims) == 3 and sims == sorted(sims, reverse=True)
    assert exact["matches"][0]["pattern_id"] == f"cluster:{cid}" and sims[0] > sims[1]
    # Active rules' evidence is in the library too, each pattern carrying its rule.
    active = runs["second"]["rules_by_status"].get("active", 0)
    assert active >= 1 and 0 < len(rule_patterns) <= active
    for p in rule_patterns:
        assert [r["rule_id"] for r in p["rules"]] == [p["pattern_id"].removeprefix("rule:")]


def test_an_endpoint_that_is_down_degrades_to_lexical_and_the_run_completes(runs):
    down = runs["down"]
    assert down["success"], down.get("failures")
    rec = runs["down_state"]["record"]
    assert rec["provider"] == "lexical" and rec["embeddings"]["requested_provider"] == "openai"
    assert any("unavailable, used lexical" in w for w in rec["warnings"])
    assert rec["slice_percent"] == 2.5
    assert "warning:" in render_summary(down)
    assert all(len(c) == 256 for _, _, c in runs["down_state"]["clusters"])


def test_no_two_stage_runs_stage_1_only(runs):
    simple = runs["simple"]
    assert simple["success"], simple.get("failures")
    assert runs["simple_state"]["record"]["method"] == "off"
    assert runs["simple_state"]["clusters"] == []
    assert "stage 2:         off" in render_summary(simple)
