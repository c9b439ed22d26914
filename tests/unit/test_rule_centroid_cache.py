"""The rule patterns' centroids kept between runs (library.RuleCentroidCache): a cached centroid is
the one computing it gives, bit for bit; a changed rule, space or file computes again."""

from __future__ import annotations

import json

import numpy as np

from python_steps.mining import library
from python_steps.mining.embeddings import EmbeddingConfig, lexical_embed

CFG = EmbeddingConfig()  # lexical
TEXTS = {
    "r_prize": [f"congratulations you won a {w} prize claim it today" for w in ("big", "huge", "cash", "")],
    "r_loan": [f"instant loan approved for {w} pounds no credit check" for w in ("500", "900")],
    "r_crypto": [f"double your bitcoin in {w} hours with our robot" for w in ("24", "48", "12")],
}


def _computed_as_before(texts_by_rule: dict[str, list[str]]) -> dict[str, tuple[list[float], float]]:
    """Every rule's texts embedded in one batch, as record_rule_patterns did before the cache."""
    flat = [(rid, t) for rid, texts in texts_by_rule.items() for t in texts]
    vectors = lexical_embed([t for _, t in flat])
    out = {}
    for rid in texts_by_rule:
        idx = [i for i, (r, _) in enumerate(flat) if r == rid]
        centroid = vectors[idx].mean(axis=0)
        centroid = centroid / float(np.linalg.norm(centroid))
        cohesion = round(float(np.mean(vectors[idx] @ centroid)), 6)
        out[rid] = ([round(float(x), 9) for x in centroid], cohesion)
    return out


def _centroids(texts_by_rule, cache_dir, cfg=CFG):
    cache = library.RuleCentroidCache(cache_dir, cfg)
    out, report = library._rule_centroids(texts_by_rule, cfg, None, cache)
    cache.save()
    return {rid: (c, cohesion) for rid, (c, cohesion, _) in out.items()}, report


def test_cached_centroids_equal_computed_ones_and_a_changed_rule_computes_again(tmp_path):
    expected = _computed_as_before(TEXTS)
    uncached, report = _centroids(TEXTS, None)
    assert uncached == expected and report.texts == 9
    assert _centroids(TEXTS, tmp_path)[0] == expected  # cold
    path = tmp_path / library.RuleCentroidCache.FILE
    assert len(json.loads(path.read_text())["centroids"]) == 3
    warm, report = _centroids(TEXTS, tmp_path)
    assert warm == expected and report.texts == 9
    # One rule's hits change: it alone is embedded again.
    changed = {**TEXTS, "r_loan": [*TEXTS["r_loan"], "instant loan approved today"]}
    mixed, _ = _centroids(changed, tmp_path)
    assert mixed == _computed_as_before(changed)
    assert mixed["r_loan"] != expected["r_loan"] and mixed["r_prize"] == expected["r_prize"]
    assert len(json.loads(path.read_text())["centroids"]) == 3  # the latest run's only


def test_the_rows_of_an_unchanged_state_are_kept_and_another_state_or_space_is_not_a_hit(tmp_path):
    cache = library.RuleCentroidCache(tmp_path, CFG)
    out, _ = library._rule_centroids(TEXTS, CFG, None, cache)
    cache.put_rows("state-1", {rid: (len(TEXTS[rid]), key) for rid, (_, _, key) in out.items()})
    cache.save()
    again = library.RuleCentroidCache(tmp_path, CFG)
    assert again.rows("state-2") is None
    kept = again.rows("state-1")
    assert {rid: (c, cohesion) for rid, (_, c, cohesion) in kept.items()} == _computed_as_before(TEXTS)
    assert {rid: n for rid, (n, _, _) in kept.items()} == {rid: len(t) for rid, t in TEXTS.items()}
    # Another space (dimensions) has other keys: nothing of the 256-dimension file is used.
    small = EmbeddingConfig(dimensions=64)
    assert library.RuleCentroidCache(tmp_path, small).rows("state-1") is None
    assert all(len(c) == 64 for c, _ in _centroids(TEXTS, tmp_path, small)[0].values())
    # A corrupt file is ignored (computed again), never an error.
    (tmp_path / library.RuleCentroidCache.FILE).write_text("{not json")
    assert _centroids(TEXTS, tmp_path)[0] == _computed_as_before(TEXTS)
    # A remote provider is never kept (it has its own cache in the warehouse, with a TTL).
    assert library.RuleCentroidCache(tmp_path, EmbeddingConfig(provider="openai")).path is None
