"""Embedding providers against a real HTTP server on 127.0.0.1 speaking the OpenAI embeddings API,
with the cache in a real Postgres (no network, no mocks)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from embeddings_stub import EmbeddingsStub, closed_port_url, stub_vector

from python_steps.mining.embeddings import LEXICAL_MODEL, EmbeddingConfig, embed, lexical_embed
from python_steps.settings import load_settings

pytestmark = pytest.mark.integration

TEXTS = [f"win a free prize number {i} call now" for i in range(25)] + [
    "see you at lunch",
    "see you at lunch",
]


@pytest.fixture()
def stub():
    server = EmbeddingsStub()
    yield server
    server.close()


def _cfg(base_url: str, **kw) -> EmbeddingConfig:
    return EmbeddingConfig(**{"provider": "openai", "base_url": base_url, "api_key": "k", "model": "stub-embed",
                              "backoff_s": 0.01, **kw})  # fmt: skip


def test_batches_are_bounded_and_vectors_come_back_in_order(stub, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        vectors, report = embed(TEXTS, _cfg(stub.base_url, batch_size=10), conn)
    # 26 distinct texts in batches of at most 10; the duplicate is sent once.
    assert [len(r["input"]) for r in stub.requests] == [10, 10, 6]
    assert all(r["path"] == "/v1/embeddings" and r["model"] == "stub-embed" for r in stub.requests)
    assert report.calls == 3 and report.cache_misses == 26 and report.cache_hits == 0
    assert report.provider == "openai" and report.warnings == []
    assert vectors.shape == (27, 64)
    assert np.allclose(vectors[3], stub_vector(TEXTS[3]))
    assert np.allclose(vectors[-1], vectors[-2])


def test_a_rerun_on_unchanged_texts_makes_zero_calls(stub, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        first, _ = embed(TEXTS, _cfg(stub.base_url), conn)
        conn.commit()
        sent = len(stub.requests)
        second, report = embed(list(reversed(TEXTS)), _cfg(stub.base_url), conn)
        assert len(stub.requests) == sent == 1
        assert report.calls == 0 and report.cache_hits == 26 and report.cache_misses == 0
        assert np.array_equal(second[::-1], first)
        # Another model is another cache key: it calls again.
        embed(TEXTS[:2], _cfg(stub.base_url, model="other"), conn)
        assert len(stub.requests) == 2


def test_the_cache_expires_after_its_ttl(stub, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        embed(TEXTS[:3], _cfg(stub.base_url), conn)
        conn.execute("update patas.embedding_cache set created_at = now() - interval '8 days'")
        conn.commit()
        _, report = embed(TEXTS[:3], _cfg(stub.base_url), conn)
        assert report.cache_hits == 0 and report.calls == 1
        _, report = embed(TEXTS[:3], _cfg(stub.base_url, cache_ttl_days=30), conn)
        assert report.cache_hits == 3 and report.calls == 0


def test_server_errors_are_retried_with_backoff(stub, fresh_db):
    stub.fail_next = 2
    with psycopg.connect(fresh_db) as conn:
        vectors, report = embed(TEXTS[:4], _cfg(stub.base_url, max_retries=3), conn)
    assert len(stub.requests) == 3 and report.calls == 3
    assert report.provider == "openai" and report.warnings == []
    assert np.allclose(vectors[0], stub_vector(TEXTS[0]))


def test_an_endpoint_that_keeps_failing_degrades_to_lexical(stub, fresh_db):
    stub.mode = "error"
    with psycopg.connect(fresh_db) as conn:
        vectors, report = embed(TEXTS, _cfg(stub.base_url, max_retries=2), conn)
    assert len(stub.requests) == 3  # one try and two retries
    assert report.provider == "lexical" and report.model == LEXICAL_MODEL
    assert report.requested_provider == "openai"
    assert len(report.warnings) == 1 and "unavailable, used lexical" in report.warnings[0]
    assert np.array_equal(vectors, lexical_embed(TEXTS))


def test_an_endpoint_that_is_down_degrades_to_lexical(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        vectors, report = embed(TEXTS[:5], _cfg(closed_port_url(), max_retries=1, timeout_s=2), conn)
    assert report.provider == "lexical" and report.calls == 2
    assert "APIConnectionError" in report.warnings[0]
    assert vectors.shape == (5, 256)


def test_without_a_cache_the_provider_is_called_directly(stub):
    vectors, report = embed(TEXTS[:3], _cfg(stub.base_url), None)
    vectors2, _ = embed(TEXTS[:3], _cfg(stub.base_url), None)
    assert len(stub.requests) == 2 and report.cache_hits == 0
    assert np.array_equal(vectors, vectors2)


def test_a_broken_cache_table_is_recorded_and_bypassed(stub, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        conn.execute("create schema patas; create table patas.embedding_cache (provider text)")
        conn.commit()
        vectors, report = embed(TEXTS[:3], _cfg(stub.base_url), conn)
        assert report.provider == "openai" and len(stub.requests) == 1
        assert report.warnings and report.warnings[0].startswith("embedding cache unavailable")
        assert conn.execute("select 1").fetchone() == (1,), "the connection stays usable"
    assert np.allclose(vectors[1], stub_vector(TEXTS[1]))


def test_lexical_is_stateless_and_deterministic():
    a = lexical_embed(TEXTS)
    b = lexical_embed(["see you at lunch", *TEXTS[:3]])
    assert a.tobytes() == lexical_embed(TEXTS).tobytes()
    assert np.array_equal(a[-1], b[0]) and np.array_equal(a[:3], b[1:])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert a[0] @ a[1] > 0.6 > a[0] @ a[-1]


def test_settings_name_the_provider():
    s = load_settings({"PATAS_EMBEDDINGS_PROVIDER": "OpenAI", "PATAS_EMBEDDINGS_BASE_URL": "http://127.0.0.1:1/v1",
                       "PATAS_EMBEDDINGS_MODEL": "m", "PATAS_EMBEDDINGS_API_KEY": "k",
                       "PATAS_EMBEDDINGS_BATCH_SIZE": "100", "PATAS_EMBEDDINGS_CACHE_TTL_DAYS": "2"})  # fmt: skip
    cfg = EmbeddingConfig.from_settings(s)
    assert (cfg.provider, cfg.base_url, cfg.model_name, cfg.api_key, cfg.batch_size, cfg.cache_ttl_days) == (
        "openai", "http://127.0.0.1:1/v1", "m", "k", 100, 2.0)  # fmt: skip
    assert EmbeddingConfig.from_settings(load_settings({})).provider == "lexical"
    with pytest.raises(ValueError, match="between"):
        EmbeddingConfig(batch_size=4096)
    with pytest.raises(ValueError, match="provider"):
        EmbeddingConfig(provider="bert")
