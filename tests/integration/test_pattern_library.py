"""The pattern library on a real Postgres: versions per run, show by prefix, match by meaning, and
the two vector paths (pgvector where the server has it, exact cosine over float8[] otherwise)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from python_steps import tables
from python_steps.mining import library
from python_steps.mining.clustering import Cluster
from python_steps.mining.embeddings import LEXICAL_MODEL, EmbeddingConfig, lexical_embed
from python_steps.text.normalize import normalize_text

pytestmark = pytest.mark.integration

CAMPAIGNS = {
    "c_prize": [
        f"congratulations you won a {w} prize claim it today at our office" for w in ("big", "huge", "cash")
    ],
    "c_loan": [
        f"instant loan approved for {w} pounds no credit check reply yes" for w in ("500", "900", "2000")
    ],
    "c_crypto": [f"double your bitcoin in {w} hours with our trading robot" for w in ("24", "48", "12")],
}
CFG = EmbeddingConfig()  # lexical


def _clusters(scale: int = 1) -> list[Cluster]:
    out = []
    for i, (cid, texts) in enumerate(sorted(CAMPAIGNS.items())):
        v = lexical_embed([normalize_text(t) for t in texts]).mean(axis=0)
        c = Cluster(cid, list(range(10 * i, 10 * i + 3 * scale)))
        c.centroid = [round(float(x), 9) for x in v / np.linalg.norm(v)]
        c.top_phrases = [
            {"phrase": texts[0].split()[0], "cluster_messages": 3, "spam_count": 3, "ham_count": 0}
        ]
        c.cohesion, c.spam_share, c.nearest_ham_distance = 0.9, 1.0, 0.7
        out.append(c)
    return out


@pytest.fixture()
def lib(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        tables.ensure_all(conn)
        library.record_clusters(conn, _clusters(), "run-1", "lexical", LEXICAL_MODEL)
        conn.commit()
        yield conn


def test_each_run_that_sees_a_pattern_is_a_version(lib):
    library.record_clusters(lib, _clusters(), "run-1", "lexical", LEXICAL_MODEL)  # the same run again
    assert [(p["pattern_id"], p["version"], p["runs_active"]) for p in library.list_patterns(lib)] == [
        ("cluster:c_crypto", 1, 1), ("cluster:c_loan", 1, 1), ("cluster:c_prize", 1, 1)]  # fmt: skip
    library.record_clusters(lib, _clusters(scale=2), "run-2", "lexical", LEXICAL_MODEL)
    shown = library.show_pattern(lib, "cluster:c_loan")
    assert (shown["version"], shown["runs_active"], shown["message_count"]) == (2, 2, 6)
    assert [(v["version"], v["run_id"], v["message_count"]) for v in shown["versions"]] == [
        (1, "run-1", 3), (2, "run-2", 6)]  # fmt: skip
    assert shown["rules"] == []


def test_show_takes_a_unique_prefix_and_refuses_unknown_or_ambiguous_ids(lib):
    assert library.show_pattern(lib, "c_pr")["pattern_id"] == "cluster:c_prize"
    assert library.show_pattern(lib, "cluster:c_lo")["pattern_id"] == "cluster:c_loan"
    with pytest.raises(library.PatternNotFound, match="no pattern 'nope'"):
        library.show_pattern(lib, "nope")
    with pytest.raises(library.PatternNotFound, match="more than one"):
        library.show_pattern(lib, "c_")
    with pytest.raises(library.PatternNotFound, match="no pattern"):
        library.show_pattern(lib, "c%")  # LIKE wildcards in the id are literal


def test_exact_match_ranks_by_cosine_similarity(lib):
    text = "Congratulations! You WON a GOLD prize, claim it today"
    out = library.match(lib, text, CFG, k=2, method="exact")
    assert out["method"] == "exact" and out["provider"] == "lexical" and out["warnings"] == []
    assert out["matches"][0]["pattern_id"] == "cluster:c_prize" and len(out["matches"]) == 2
    q = lexical_embed([normalize_text(text)])[0]
    centroid = np.asarray(next(c for c in _clusters() if c.cluster_id == "c_prize").centroid)
    assert out["matches"][0]["similarity"] == pytest.approx(
        float(q @ centroid / np.linalg.norm(centroid)), abs=1e-6
    )
    assert out["matches"][0]["similarity"] > out["matches"][1]["similarity"]
    # Another embedding space is never compared with this one.
    other = EmbeddingConfig(provider="openai", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=1)
    assert library.match(lib, text, other, method="exact")["provider"] == "lexical"  # degraded, still lexical
    lib.execute("update patas.patterns set model = 'other-model'")
    assert library.match(lib, text, CFG, method="exact")["matches"] == []


def test_text_reaches_sql_only_as_a_parameter(lib):
    out = library.match(lib, "'); drop table patas.patterns; --", CFG, k=1, method="exact")
    assert len(out["matches"]) == 1
    assert lib.execute("select count(*) from patas.patterns").fetchone()[0] == 3


def test_pgvector_and_exact_paths_agree(lib):
    if not library.vector_extension(lib):
        with pytest.raises(ValueError, match="no pgvector"):
            library.match(lib, "x", CFG, method="pgvector")
        pytest.skip("this server has no pgvector extension (the embedded server has it; CI runs there)")
    lib.commit()
    library.record_clusters(lib, _clusters(), "run-1", "lexical", LEXICAL_MODEL)  # creates the index
    indexes = [r[0] for r in lib.execute("select indexname from pg_indexes where tablename = 'patterns'")]
    assert "patterns_centroid_hnsw_256" in indexes
    for text in ("instant loan, no credit check!", "bitcoin robot doubles it", "see you at lunch"):
        exact = library.match(lib, text, CFG, k=3, method="exact")
        vec = library.match(lib, text, CFG, k=3, method="pgvector")
        auto = library.match(lib, text, CFG, k=3)
        assert vec["method"] == auto["method"] == "pgvector"
        assert [m["pattern_id"] for m in vec["matches"]] == [m["pattern_id"] for m in exact["matches"]]
        assert [m["similarity"] for m in vec["matches"]] == pytest.approx(
            [m["similarity"] for m in exact["matches"]], abs=1e-5
        )


def test_pgvector_query_is_served_by_the_hnsw_index(lib, monkeypatch):
    if not library.vector_extension(lib):
        pytest.skip("this server has no pgvector extension (the embedded server has it; CI runs there)")
    lib.commit()
    library.record_clusters(lib, _clusters(), "run-1", "lexical", LEXICAL_MODEL)  # creates the index
    lib.execute("set enable_seqscan = off")  # a few rows: make the planner show what it can use
    query = "[" + ",".join(["0.0625"] * 256) + "]"
    plan = "\n".join(
        r[0]
        for r in lib.execute(
            "explain " + library.pgvector_nearest_sql(256),
            {"q": query, "provider": "lexical", "model": LEXICAL_MODEL, "fetch": 21, "k": 5},
        )
    )
    assert "Index Scan using patterns_centroid_hnsw_256" in plan, plan
    # When the index's candidates hold too few patterns of the asked space, the answer is exact:
    # here 100 patterns of another model sit exactly on the query, nearer than any of this space.
    text = "instant loan, no credit check!"
    q = [round(float(x), 9) for x in lexical_embed([normalize_text(text)])[0]]
    others = []
    for i in range(100):
        c = Cluster(f"c_other_{i:03d}", [i])
        c.centroid = q
        others.append(c)
    library.record_clusters(lib, others, "run-1", "lexical", "another-model")
    lib.execute(
        "set enable_sort = off"
    )  # a space of three: the planner would sort it rather than ask the index
    monkeypatch.setattr(library, "PGVECTOR_EF_SEARCH", 10)
    monkeypatch.setattr(library, "PGVECTOR_FETCH_MARGIN", 0)
    exact = library.match(lib, text, CFG, k=3, method="exact")
    vec = library.match(lib, text, CFG, k=3, method="pgvector")
    assert vec["method"] == "exact" and len(exact["matches"]) == 3
    assert [m["pattern_id"] for m in vec["matches"]] == [m["pattern_id"] for m in exact["matches"]]
    assert all(m["model"] == LEXICAL_MODEL for m in vec["matches"])


def test_exact_match_sees_a_centroid_changed_in_the_same_transaction(lib):
    text = "Congratulations! You WON a GOLD prize, claim it today"
    assert library.match(lib, text, CFG, k=1, method="exact")["matches"][0]["pattern_id"] == "cluster:c_prize"
    swapped = {c.cluster_id: c for c in _clusters()}
    swapped["c_prize"].centroid, swapped["c_loan"].centroid = (
        swapped["c_loan"].centroid,
        swapped["c_prize"].centroid,
    )
    library.record_clusters(lib, list(swapped.values()), "run-1", "lexical", LEXICAL_MODEL)  # no commit
    assert library.match(lib, text, CFG, k=1, method="exact")["matches"][0]["pattern_id"] == "cluster:c_loan"
