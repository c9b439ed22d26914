"""Stage-2 clustering on vectors (no database): determinism, DBSCAN settings, quality figures,
cluster identity across runs, the template fallback, the suspicious-slice presets."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace

import numpy as np
import pytest

from python_steps.mining.clustering import (
    ClusterConfig,
    SliceMessage,
    cluster_quality,
    cluster_vectors,
    group_slice,
    match_known,
    parse_slice,
)
from python_steps.mining.embeddings import lexical_embed

CAMPAIGNS = {
    "prize": "congratulations you won a {} prize claim it today at our office before friday",
    "loan": "instant loan approved for {} pounds no credit check reply yes to receive the money",
    "crypto": "double your bitcoin in {} hours with our trading robot join the channel now",
}
HAM = [
    "are we still meeting for lunch tomorrow",
    "can you pick up milk on the way home",
    "the train is late again see you at nine",
    "happy birthday hope you have a great day",
    "did you finish the report for monday",
    "call me when you get this please",
    "i left my keys at your place last night",
    "movie starts at eight dont be late",
]


def _sample(seed: int = 1, per_campaign: int = 12, drop: int = 0) -> list[SliceMessage]:
    rng = random.Random(seed)
    out: list[SliceMessage] = []
    mid = 0
    for name, template in CAMPAIGNS.items():
        for i in range(drop, per_campaign):
            mid += 1
            word = rng.choice(["big", "huge", "cash", "gold", "mega", "super"]) + str(i)
            out.append(
                SliceMessage(mid, f"{name}-{i}", template.format(word), f"sig-{name}", True, 0.9, False)
            )
    for i, text in enumerate(HAM):
        mid += 1
        out.append(SliceMessage(mid, f"ham-{i}", text, f"sig-ham-{i}", False, 0.2, False))
    return out


def _vectors(sample: list[SliceMessage]) -> np.ndarray:
    return lexical_embed([m.normalized_text for m in sample])


def _dump(clusters) -> bytes:
    return json.dumps([asdict(c) for c in clusters], sort_keys=True).encode()


def test_same_input_gives_byte_identical_clusters():
    sample = _sample()
    first, info = group_slice(sample, _vectors(sample), ClusterConfig())
    second, _ = group_slice(sample, _vectors(sample), ClusterConfig())
    assert _dump(first) == _dump(second)
    assert info["method"] == "dbscan"
    # The three campaigns, each whole, none of the ham.
    assert sorted(c.size for c in first) == [12, 12, 12]
    ham_ids = {m.message_id for m in sample if m.is_spam is False}
    assert all(not ham_ids & set(c.message_ids) for c in first)


def test_cluster_ids_do_not_depend_on_input_order():
    sample = _sample()
    shuffled = sample[:]
    random.Random(3).shuffle(shuffled)
    a, _ = group_slice(sample, _vectors(sample), ClusterConfig())
    b, _ = group_slice(shuffled, _vectors(shuffled), ClusterConfig())
    assert [(c.cluster_id, c.message_ids) for c in a] == [(c.cluster_id, c.message_ids) for c in b]


def test_eps_and_min_size_are_settings():
    sample = _sample()
    vectors = _vectors(sample)
    assert len(set(cluster_vectors(vectors, 0.30, 6)) - {-1}) == 3
    assert set(cluster_vectors(vectors, 0.30, 13)) == {-1}, "campaigns of 12 are noise at min size 13"
    assert set(cluster_vectors(vectors, 0.01, 6)) == {-1}, "a tiny eps joins nothing"
    assert cluster_vectors(vectors[:4], 0.3, 6) == [-1] * 4


def test_quality_figures_are_those_of_the_members():
    sample = _sample()
    vectors = _vectors(sample)
    labels = [m.is_spam for m in sample]
    members = list(range(12))  # the prize campaign
    centroid, cohesion, share, nearest = cluster_quality(vectors, members, labels)
    assert np.isclose(np.linalg.norm(centroid), 1.0)
    assert 0.5 < cohesion <= 1.0
    assert share == 1.0
    ham_rows = [i for i, lab in enumerate(labels) if lab is False]
    assert nearest == pytest.approx(min(1 - vectors[i] @ centroid for i in ham_rows))
    # Two ham among the members: the share counts labelled members only.
    mixed = [*members, ham_rows[0], ham_rows[1]]
    labels_with_unlabelled = [None if i == 0 else lab for i, lab in enumerate(labels)]
    _, cohesion2, share2, _ = cluster_quality(vectors, mixed, labels_with_unlabelled)
    assert share2 == pytest.approx(11 / 13) and cohesion2 < cohesion
    clusters, _ = group_slice(sample, vectors, ClusterConfig())
    for c in clusters:
        assert c.spam_share == 1.0 and 0.5 < c.cohesion <= 1.0 and 0 < c.nearest_ham_distance <= 2
        assert len(c.centroid) == 256


def test_ham_dominated_clusters_are_dropped():
    sample = [replace(m, is_spam=False) if m.external_id.startswith("loan") else m for m in _sample()]
    clusters, info = group_slice(sample, _vectors(sample), ClusterConfig())
    assert len(clusters) == 2 and info["dropped_ham_clusters"] == 1


def test_a_returning_campaign_keeps_its_id():
    night1 = _sample(seed=1)
    first, _ = group_slice(night1, _vectors(night1), ClusterConfig())
    known = [(c.cluster_id, np.asarray(c.centroid)) for c in first]
    # The next night: other wording draws, fewer messages: other members, so other content ids...
    night2 = _sample(seed=2, drop=2)
    fresh, _ = group_slice(night2, _vectors(night2), ClusterConfig())
    assert not {c.cluster_id for c in fresh} & {c.cluster_id for c in first}
    # ...but matched against the library, each campaign is the same entity.
    again, info = group_slice(night2, _vectors(night2), ClusterConfig(), known)
    assert info["known_clusters_matched"] == 3
    assert sorted(c.cluster_id for c in again) == sorted(c.cluster_id for c in first)
    assert all(c.matched_similarity >= 0.9 for c in again)
    # Above the similarity of any pair, nothing is matched.
    strict, info = group_slice(night2, _vectors(night2), ClusterConfig(identity_threshold=1.01), known)
    assert info["known_clusters_matched"] == 0 and all(c.matched_similarity is None for c in strict)


def test_matching_is_one_to_one_and_ordered_by_similarity():
    a = np.array([1.0, 0.0])
    b = np.array([0.96, 0.28])
    known = [("k1", np.array([1.0, 0.0])), ("k2", np.array([0.8, 0.6]))]
    # Both new centroids are closest to k1; the closer one gets it, the other falls to k2 or nothing.
    assert match_known([b, a], known, 0.9) == [("k2", pytest.approx(0.936)), ("k1", pytest.approx(1.0))]
    assert match_known([b, a], known, 0.95) == [None, ("k1", pytest.approx(1.0))]
    assert match_known([a], [], 0.9) == [None]


def test_degenerate_clustering_falls_back_to_template_signatures():
    sample = _sample()
    clusters, info = group_slice(sample, _vectors(sample), ClusterConfig(eps=1.5))
    assert info["method"] == "signature" and "degenerate" in info["fallback"]
    assert sorted(c.size for c in clusters) == [12, 12, 12]


@pytest.mark.parametrize(
    ("value", "percent"),
    [
        ("narrow", 1.0),
        ("default", 3.0),
        ("WIDE", 5.0),
        ("explore", 15.0),
        ("2.5", 2.5),
        ("7%", 7.0),
        (10, 10.0),
    ],
)
def test_slice_presets_and_numbers(value, percent):
    assert parse_slice(value) == percent


@pytest.mark.parametrize("value", ["huge", "0", "-1", "101", "nan"])
def test_bad_slices_are_refused(value):
    with pytest.raises(ValueError, match="slice"):
        parse_slice(value)
