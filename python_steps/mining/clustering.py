"""Stage 2: semantic clusters of the suspicious slice that stage 1 picked out.

Stage 1 scores every message cheaply (its most suspicious signal: the Wilson lower bound of the
signal's spam share, over signals with positive log-odds). Only the suspicious slice reaches this
stage: the top N% of mining-window messages by that score (presets narrow 1%, default 3%, wide 5%,
explore 15%, or a number) plus the spam stage 1 leaves uncovered, bounded by a sample size
(uncovered spam first, then by score, ties in a fixed hash order), so the cost does not grow with
the corpus. The run records what share of the window reached stage 2.

*Uncovered* means: no stage-1 signal that could become an active rule on its own covers it. A
candidate signal stands on its own when it clears drafting's single-signal bar
(:class:`python_steps.mining.drafting.DraftingConfig`: spam count, spam share, and for a phrase its
ham count and length) and is not a phrase made only of common words of general language: a single
common word never activates alone and a phrase of common words borrows nothing from its kind's
prior (python_steps.lifecycle.evidence), so a message that only such words flag is, for promotion,
as uncovered as one no candidate flags at all. A campaign that paraphrases is the typical case:
each phrasing is too rare to be a rule, the words it shares are everyday words. Stage 2's pooled
rules (:func:`cover_rules`) are what can still catch it. The spam no candidate flags at all
(``marts.stage1_uncovered_spam``) is a subset, recorded beside it.

The slice is embedded by a provider (:mod:`python_steps.mining.embeddings`: ``lexical`` offline, or
an OpenAI-compatible endpoint, cached) and clustered by DBSCAN on cosine distance (settable eps and
minimum size). Each cluster stores its centroid, cohesion (mean cosine similarity of members to the
centroid), spam share (of its labelled members) and the cosine distance from its centroid to the
nearest ham of the slice outside it. Ham-dominated clusters are dropped. A cluster whose centroid is
close enough to a known cluster of the pattern library (same provider and model) keeps that id, so
a campaign is one entity across nights; and the rules derived from every known pattern a new
cluster matches (:func:`python_steps.mining.library.library_matches`) are re-used: recorded with
the run, re-checked by shadow evaluation, revived by the lifecycle if they were deprecated idle.
When clustering fails or degenerates (one cluster swallows
the slice), messages are grouped by template signature instead, and the run records it.

Everything is deterministic: inputs in a fixed order, stateless or cached embeddings, DBSCAN with
brute-force neighbours, single-threaded BLAS, ties broken by ids.

Each cluster is summarized by aggregated signals only (size, top entities, top phrases with their
spam/ham counts, a few PII-redacted examples): that summary is what rule drafting and the
optional LLM see, never the raw messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from python_steps import tables
from python_steps.mining import embeddings, privacy, reuse
from python_steps.mining.drafting import DraftingConfig
from python_steps.text.common_words import phrase_is_common
from python_steps.warehouse import planner_settings

ENTITY_COLUMNS = ("domains", "phones", "short_codes", "handles", "emails")

# The suspicious slice: percent of mining-window messages, by stage-1 score, that reach stage 2.
SLICE_PRESETS = {"narrow": 1.0, "default": 3.0, "wide": 5.0, "explore": 15.0}


def parse_slice(value: str | float | int) -> float:
    """A slice preset name or a percent in (0, 100] -> the percent."""
    if isinstance(value, str) and value.strip().lower() in SLICE_PRESETS:
        return SLICE_PRESETS[value.strip().lower()]
    try:
        pct = float(str(value).strip().rstrip("%"))
    except ValueError:
        raise ValueError(
            f"stage-2 slice must be one of {', '.join(SLICE_PRESETS)} or a percent in (0, 100], not {value!r}"
        ) from None
    if not (0 < pct <= 100) or math.isnan(pct):
        raise ValueError(f"stage-2 slice must be a percent in (0, 100], not {value!r}")
    return pct


@dataclass(frozen=True)
class ClusterConfig:
    sample_size: int = 4000
    slice_percent: float = 3.0
    eps: float = 0.30  # cosine distance
    min_samples: int = 6
    max_clusters: int = 40
    min_spam_share: float = 0.5  # clusters with less spam among their labelled members are dropped
    identity_threshold: float = 0.90  # centroid cosine similarity that keeps a known cluster's id
    degenerate_share: float = 0.8  # one cluster holding more of the slice than this: degenerate
    top_k: int = 8
    examples: int = 3
    # what "covered by stage 1" means: drafting's own single-signal bar and its languages
    drafting: DraftingConfig = field(default_factory=DraftingConfig)


@dataclass
class Cluster:
    cluster_id: str
    message_ids: list[int]
    top_entities: list[dict] = field(default_factory=list)
    top_phrases: list[dict] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    counter_examples: list[str] = field(default_factory=list)
    centroid: list[float] = field(default_factory=list)
    cohesion: float | None = None
    spam_share: float | None = None
    nearest_ham_distance: float | None = None
    matched_similarity: float | None = None  # similarity to the known cluster whose id it kept

    @property
    def size(self) -> int:
        return len(self.message_ids)

    def signals(self) -> dict:
        """The aggregated view of the cluster (what an LLM may see)."""
        return {
            "cluster_id": self.cluster_id,
            "message_count": self.size,
            "top_entities": self.top_entities,
            "top_phrases": self.top_phrases,
            "examples": self.examples,
            "counter_examples": self.counter_examples,
        }


@dataclass
class SliceMessage:
    message_id: int
    external_id: str
    normalized_text: str
    signature: str | None
    is_spam: bool | None
    score: float
    uncovered: bool


@dataclass
class Stage2Result:
    clusters: list[Cluster]
    record: dict  # what the run records: slice share, embeddings, fallbacks, warnings


def redact(text: str, own: privacy.OwnEntities | None = None, limit: int = privacy.TEXT_LIMIT) -> str:
    """Personal data masked (emails, cards, IBANs, phones, handles, long numbers: the ``standard``
    privacy mode of :mod:`python_steps.mining.privacy`), the cluster's own entities kept; cut to
    ``limit`` characters."""
    return privacy.redact_text(text, own, limit)


def standing_signal(kind: str, value: str, spam: int, ham: int, cfg: DraftingConfig) -> bool:
    """Whether a stage-1 candidate signal could become an active rule on its own: it clears
    drafting's single-signal bar and is not a phrase made only of common words (module docstring)."""
    if spam < cfg.min_spam_count or spam + ham == 0 or spam / (spam + ham) < cfg.min_spam_share:
        return False
    if kind != "ngram":
        return True
    if ham > cfg.max_phrase_ham_count or len(value.split(" ")) > cfg.max_phrase_words:
        return False
    return not phrase_is_common(value, cfg.languages)


def standing_candidates(conn: psycopg.Connection, cfg: DraftingConfig) -> tuple[list[str], list[str]]:
    """(kinds, values) of the stage-1 candidates that stand on their own, in code-point order."""
    rows = conn.execute(
        "select signal_kind, signal_value, spam_count::bigint, ham_count::bigint from marts.stage1_candidates"
    ).fetchall()
    kept = sorted((k, v) for k, v, spam, ham in rows if standing_signal(k, v, int(spam), int(ham), cfg))
    return [k for k, _ in kept], [v for _, v in kept]


# The slice query's planner settings, for that statement (docs/benchmarks.md). parallel_tuple_cost:
# the per-message scores are aggregated from millions of signal rows; at the default the planner
# expects few rows out of the parallel join and builds that aggregate in every process instead.
SLICE_SETTINGS = {
    "enable_nestloop": "off",
    "enable_mergejoin": "off",
    "jit": "off",
    "work_mem": "256MB",
    "parallel_tuple_cost": "0.001",
}


def load_slice(conn: psycopg.Connection, cfg: ClusterConfig) -> tuple[list[SliceMessage], dict]:
    """The suspicious slice (bounded by the sample size), in message-id order, and its figures."""
    kinds, values = standing_candidates(conn, cfg.drafting)
    # The slice: the window's top slice_percent by score (ties: md5 of the external id, then the
    # id), and every uncovered spam message; the sample takes the uncovered first, each part in that
    # order. The top comes from a bounded sort (LIMIT: a heap of the top rows), not from ranking
    # every window message (a full sort of 700k rows at 1M messages: docs/benchmarks.md).
    with planner_settings(conn, **SLICE_SETTINGS):
        rows = conn.execute(
            """
            with standing as (
                select * from unnest(%(kinds)s::text[], %(values)s::text[]) as t (signal_kind, signal_value)
            ),
            signal_scores as (
                select c.signal_kind, c.signal_value, c.spam_share_lower_bound as score,
                    (c.signal_kind, c.signal_value) in (select signal_kind, signal_value from standing) as standing
                from marts.signal_label_counts as c
                where c.log_odds > 0
            ),
            scores as (
                select s.message_id, max(ss.score) as score, bool_or(ss.standing) as covered
                from intermediate.int_message_signals_extracted as s
                inner join signal_scores as ss
                    on ss.signal_kind = s.signal_kind and ss.signal_value = s.signal_value
                group by s.message_id
            ),
            window_messages as materialized (
                select m.message_id, m.external_id, m.is_spam, coalesce(sc.score, 0)::float8 as score,
                    (coalesce(m.is_spam, false) and not coalesce(sc.covered, false)) as uncovered,
                    (u.message_id is not null) as no_candidate
                from intermediate.int_messages_windowed as m
                left join scores as sc using (message_id)
                left join marts.stage1_uncovered_spam as u using (message_id)
                where m.window_name = 'mining'
            ),
            counted as (
                select count(*) as window_count from window_messages
            ),
            top as (
                select message_id from window_messages
                order by score desc, md5(external_id), message_id
                limit (select ceil(%(pct)s / 100.0 * window_count)::bigint from counted)
            ),
            sliced as (
                select * from window_messages
                where uncovered or message_id in (select message_id from top)
            )
            select s.message_id, s.external_id, s.is_spam, s.score, s.uncovered,
                c.window_count, count(*) over () as slice_count,
                count(*) filter (where s.uncovered) over () as uncovered_count,
                count(*) filter (where s.no_candidate) over () as no_candidate_count
            from sliced as s
            cross join counted as c
            order by s.uncovered desc, s.score desc, md5(s.external_id), s.message_id
            limit %(sample)s
            """,
            {"pct": cfg.slice_percent, "sample": cfg.sample_size, "kinds": kinds, "values": values},
        ).fetchall()
    # The sample's texts, read by id (the ranking above sorts every window message: narrow rows).
    texts = {
        r[0]: r[1:]
        for r in conn.execute(
            "select message_id, normalized_text, signature from intermediate.int_messages_enriched"
            " where message_id = any(%s)",
            ([r[0] for r in rows],),
        )
    }
    rows = [(r[0], r[1], *texts[r[0]], *r[2:]) for r in rows]
    window_count = rows[0][7] if rows else _window_count(conn)
    slice_count = rows[0][8] if rows else 0
    sample = sorted(
        (SliceMessage(r[0], r[1], r[2] or "", r[3], r[4], float(r[5]), bool(r[6])) for r in rows),
        key=lambda m: m.message_id,
    )
    figures = {
        "slice_percent": cfg.slice_percent,
        "window_messages": int(window_count),
        "slice_messages": int(slice_count),
        "uncovered_spam": int(rows[0][9]) if rows else 0,
        "no_candidate_spam": int(rows[0][10]) if rows else 0,
        "standing_candidates": len(kinds),
        "stage2_messages": len(sample),
        "stage2_share": round(len(sample) / window_count, 6) if window_count else 0.0,
        "sample_size": cfg.sample_size,
    }
    return sample, figures


# What the slice query reads: stage 1's tables (each a function of the stage-1 step's inputs; their
# catalog identity says whether dbt rebuilt them since).
SLICE_RELATIONS = (
    tables.STAGE1_CANDIDATES,
    "marts.signal_label_counts",
    "marts.stage1_uncovered_spam",
    "intermediate.int_messages_enriched",
    "intermediate.int_messages_windowed",
    "intermediate.int_message_signals_extracted",
)
SLICE_STEP = "stage2_slice"
SLICE_CACHE_FILE = "stage2_slice.json"


def slice_input_state(conn: psycopg.Connection, cfg: ClusterConfig, dbt_vars: dict) -> str:
    """The input state of the slice query: stage 1's inputs (messages, batches, label feedback, the
    run's dbt vars without the run id), the identity of the stage-1 tables it reads, the database,
    the slice's configuration and the code (python_steps.mining.reuse)."""
    database = conn.execute(
        "select current_database(), inet_server_addr()::text, inet_server_port()"
    ).fetchone()
    payload = {
        "warehouse": reuse.warehouse_state(conn),
        "relations": reuse.relations_state(conn, list(SLICE_RELATIONS)),
        "database": list(database),
        "dbt_vars": {k: v for k, v in dbt_vars.items() if k != "patas_run_id"},
        "config": [cfg.slice_percent, cfg.sample_size, repr(cfg.drafting)],
        "code": reuse.code_version(),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def reuse_or_load_slice(
    conn: psycopg.Connection, cfg: ClusterConfig, state: str, cache_dir: Path, run_id: str
) -> tuple[list[SliceMessage], dict, reuse.Reuse]:
    """The slice (:func:`load_slice`), or the one an earlier run computed from the same input state
    (``state``), kept in ``cache_dir``. Recorded in patas.run_step_states as step ``stage2_slice``
    with the md5 of the kept file as its output state: a missing or edited file computes again."""
    path = cache_dir / SLICE_CACHE_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    kept = hashlib.md5(text.encode()).hexdigest() if text else "absent"
    previous = reuse.check(conn, SLICE_STEP, state, kept)
    if previous.reusable:
        stored = json.loads(text)
        sample = [SliceMessage(*m) for m in stored["sample"]]
        reuse.record(conn, run_id, SLICE_STEP, state, skipped=True, reason=previous.reason, output_state=kept)
        return sample, stored["figures"], previous
    sample, figures = load_slice(conn, cfg)
    text = json.dumps(
        {"input_state": state, "sample": [list(astuple(m)) for m in sample], "figures": figures},
        sort_keys=True,
    )
    reuse.write_cache_file(path, text)
    reuse.record(conn, run_id, SLICE_STEP, state, skipped=False, reason=previous.reason,
                 output_state=hashlib.md5(text.encode()).hexdigest())  # fmt: skip
    return sample, figures, previous


def _window_count(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select count(*) from intermediate.int_messages_windowed where window_name = 'mining'"
    ).fetchone()[0]


# -- clustering (pure: vectors in, labels and figures out) ----------------------------------------
def cluster_vectors(vectors: np.ndarray, eps: float, min_samples: int) -> list[int]:
    """DBSCAN labels (-1 = noise) on cosine distance, deterministic for a given input order."""
    if len(vectors) < min_samples:
        return [-1] * len(vectors)
    from sklearn.cluster import DBSCAN
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        labels = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine", algorithm="brute").fit_predict(
            vectors
        )
    return [int(v) for v in labels]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def cluster_quality(
    vectors: np.ndarray, members: list[int], labels: list[bool | None]
) -> tuple[np.ndarray, float, float | None, float | None]:
    """(centroid, cohesion, spam share, cosine distance from the centroid to the nearest ham outside
    the cluster) for the rows ``members`` of ``vectors``; ``labels`` is_spam per row."""
    centroid = _unit(vectors[members].mean(axis=0))
    cohesion = float(np.mean(vectors[members] @ centroid))
    spam = sum(1 for i in members if labels[i] is True)
    ham = sum(1 for i in members if labels[i] is False)
    share = spam / (spam + ham) if spam + ham else None
    inside = set(members)
    ham_rows = [i for i, lab in enumerate(labels) if lab is False and i not in inside]
    nearest = float(1.0 - np.max(vectors[ham_rows] @ centroid)) if ham_rows else None
    return centroid, cohesion, share, nearest


def match_known(
    centroids: list[np.ndarray], known: list[tuple[str, np.ndarray]], threshold: float
) -> list[tuple[str, float] | None]:
    """For each new centroid, the known cluster (id, similarity) it continues, one-to-one: pairs at
    or above ``threshold`` taken greedily by similarity, ties by position and id."""
    if not centroids or not known:
        return [None] * len(centroids)
    sims = np.asarray(centroids) @ np.asarray([v for _, v in known]).T
    pairs = sorted(
        (-round(float(sims[i, j]), 9), i, known[j][0], j)
        for i in range(len(centroids))
        for j in range(len(known))
        if sims[i, j] >= threshold
    )
    out: list[tuple[str, float] | None] = [None] * len(centroids)
    taken: set[str] = set()
    for neg, i, kid, _ in pairs:
        if out[i] is None and kid not in taken:
            out[i] = (kid, -neg)
            taken.add(kid)
    return out


def _cluster_id(external_ids: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(external_ids)).encode()).hexdigest()
    return "c_" + digest[:12]


def group_slice(
    sample: list[SliceMessage],
    vectors: np.ndarray,
    cfg: ClusterConfig,
    known: list[tuple[str, np.ndarray]] = (),
    labels: list[int] | None = None,
) -> tuple[list[Cluster], dict]:
    """Clusters of the slice with their figures and ids (known ids kept), largest first; and what
    happened (method, fallback reason, clusters dropped as ham-dominated). ``labels``: DBSCAN's
    labels of ``vectors`` when already known (:func:`cluster_vectors`)."""
    info: dict = {"method": "dbscan"}
    try:
        labels = cluster_vectors(vectors, cfg.eps, cfg.min_samples) if labels is None else list(labels)
        sizes = Counter(v for v in labels if v >= 0)
        # Degenerate: one cluster swallows a slice big enough to hold several (eps too large).
        big_enough = len(sample) >= 5 * cfg.min_samples
        if big_enough and sizes and max(sizes.values()) > cfg.degenerate_share * len(sample):
            raise ValueError(
                f"degenerate: one cluster holds {max(sizes.values())} of {len(sample)} messages (eps too large?)"
            )
    except Exception as exc:  # clustering is optional: fall back to templates, never fail the run
        info = {"method": "signature", "fallback": f"grouped by template signature: {exc}"}
        by_sig: dict[str, int] = {}
        labels = []
        for m in sample:
            key = m.signature or f"<none:{m.message_id}>"
            labels.append(by_sig.setdefault(key, len(by_sig)))
        counts = Counter(labels)
        labels = [v if counts[v] >= cfg.min_samples else -1 for v in labels]
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        if label >= 0:
            groups.setdefault(label, []).append(row)
    is_spam = [m.is_spam for m in sample]
    clusters: list[Cluster] = []
    dropped = 0
    for rows in groups.values():
        centroid, cohesion, share, nearest = cluster_quality(vectors, rows, is_spam)
        if share is not None and share < cfg.min_spam_share:
            dropped += 1
            continue
        c = Cluster(
            _cluster_id([sample[r].external_id for r in rows]), sorted(sample[r].message_id for r in rows)
        )
        c.centroid = [round(float(x), 9) for x in centroid]
        c.cohesion = round(cohesion, 6)
        c.spam_share = None if share is None else round(share, 6)
        c.nearest_ham_distance = None if nearest is None else round(nearest, 6)
        clusters.append(c)
    clusters.sort(key=lambda c: (-c.size, c.cluster_id))
    clusters = clusters[: cfg.max_clusters]
    matches = match_known([np.asarray(c.centroid) for c in clusters], list(known), cfg.identity_threshold)
    for c, m in zip(clusters, matches, strict=True):
        if m is not None:
            c.cluster_id, c.matched_similarity = m[0], round(m[1], 6)
    info["dropped_ham_clusters"] = dropped
    info["known_clusters_matched"] = sum(1 for m in matches if m is not None)
    return clusters, info


# Stage 2 after the slice, kept between runs in the cache directory (the latest run's only): the
# slice's lexical vectors (a function of its texts, the space and the code), DBSCAN's labels (of the
# vectors and the settings) and the clusters' summaries (of their members, the slice's input state,
# which covers every stage-1 table they read, and the code). Each is what computing it gives.
STAGE2_VECTORS_FILE = "stage2_vectors.npz"
STAGE2_MEMO_FILE = "stage2_memo.json"


def _md5(*parts: object) -> str:
    return hashlib.md5(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _slice_vectors(
    texts: list[str], embedding: embeddings.EmbeddingConfig, conn: psycopg.Connection, cache_dir: Path | None
) -> tuple[np.ndarray, embeddings.EmbeddingReport, str | None]:
    """The slice's vectors and the embedding report; and a key of the vectors when they are lexical
    (None otherwise: nothing after them is kept either)."""
    if cache_dir is None or embedding.provider != "lexical":
        vectors, report = embeddings.embed(texts, embedding, conn)
        return vectors, report, None
    key = _md5(embedding.model_name, embedding.dimensions, embeddings.lexical_code_version(), texts)
    path = cache_dir / STAGE2_VECTORS_FILE
    try:
        with np.load(path, allow_pickle=False) as kept:
            if str(kept["key"]) == key:
                report = embeddings.EmbeddingReport(
                    embedding.provider, embedding.model_name, embedding.provider, texts=len(texts)
                )
                return np.array(kept["vectors"]), report, key
    except (OSError, ValueError, KeyError):
        pass
    vectors, report = embeddings.embed(texts, embedding, conn)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f"stage2_vectors.{os.getpid()}.tmp.npz"
        np.savez(tmp, key=np.array(key), vectors=vectors)
        tmp.replace(path)
    except OSError:
        pass
    return vectors, report, key


def _read_memo(cache_dir: Path | None) -> dict:
    with contextlib.suppress(OSError, ValueError):
        if cache_dir is not None:
            memo = json.loads((cache_dir / STAGE2_MEMO_FILE).read_text(encoding="utf-8"))
            if isinstance(memo, dict):
                return memo
    return {}


def _write_memo(cache_dir: Path | None, memo: dict) -> None:
    if cache_dir is None:
        return
    with contextlib.suppress(OSError):  # key order kept: the summaries are stored as read
        reuse.write_cache_file(cache_dir / STAGE2_MEMO_FILE, json.dumps(memo))


def build_clusters(
    conn: psycopg.Connection,
    cfg: ClusterConfig | None = None,
    embedding: embeddings.EmbeddingConfig | None = None,
    sliced: tuple[list[SliceMessage], dict] | None = None,
    *,
    cache_dir: Path | None = None,
    slice_state: str | None = None,
) -> Stage2Result:
    """Stage 2 on the warehouse: the slice (``sliced`` when given: the slice and its figures, as
    :func:`load_slice` returns them), its embeddings, clusters with identity and summaries.
    ``cache_dir``: where the lexical vectors, DBSCAN's labels and (with ``slice_state``, the slice's
    input state, :func:`slice_input_state`) the summaries of the latest run are kept."""
    from python_steps.mining import library

    cfg = cfg or ClusterConfig()
    embedding = embedding or embeddings.EmbeddingConfig()
    sample, record = sliced if sliced is not None else load_slice(conn, cfg)
    record = dict(record)
    if not sample:
        record.update(method="none", clusters=0)
        return Stage2Result([], record)
    texts = [m.normalized_text for m in sample]
    vectors, report, vectors_key = _slice_vectors(texts, embedding, conn, cache_dir)
    record["embeddings"] = report.as_dict()
    record["warnings"] = list(report.warnings)
    known = library.known_clusters(conn, report.provider, report.model)
    memo = _read_memo(cache_dir) if vectors_key is not None else {}
    new_memo: dict = {}
    labels = None
    if vectors_key is not None:
        from importlib.metadata import version

        labels_key = _md5(vectors_key, cfg.eps, cfg.min_samples, version("scikit-learn"))
        labels = memo.get("labels", {}).get(labels_key)
        if labels is None:
            with contextlib.suppress(Exception):  # a failure falls back in group_slice, as before
                labels = cluster_vectors(vectors, cfg.eps, cfg.min_samples)
        if labels is not None:
            new_memo["labels"] = {labels_key: labels}
    clusters, info = group_slice(sample, vectors, cfg, known, labels)
    record.update(info)
    # A returning campaign: the rules derived from the known patterns its cluster matches are
    # re-used (re-checked by this run's shadow evaluation; revived by the lifecycle when idle).
    matches = library.library_matches(conn, clusters, report.provider, report.model)
    record["library_matches"] = matches
    record["rules_reused"] = len(matches)
    if "fallback" in info:
        record["warnings"].append(info["fallback"])
    record["provider"], record["model"] = report.provider, report.model
    record["clusters"] = len(clusters)
    summaries_key = None
    if vectors_key is not None and slice_state is not None:
        summaries_key = _md5(
            slice_state, reuse.code_version(), cfg.top_k, cfg.examples, [c.message_ids for c in clusters]
        )
    kept = memo.get("summaries", {}).get(summaries_key) if summaries_key else None
    if kept is not None and len(kept) == len(clusters):
        for c, row in zip(clusters, kept, strict=True):
            c.top_entities, c.top_phrases, c.examples, c.counter_examples = row
    else:
        _summarize_all(conn, clusters, cfg)
    if summaries_key is not None:
        new_memo["summaries"] = {
            summaries_key: [[c.top_entities, c.top_phrases, c.examples, c.counter_examples] for c in clusters]
        }
    if vectors_key is not None and new_memo != memo:
        _write_memo(cache_dir, new_memo)
    return Stage2Result(clusters, record)


def _summarize_all(conn: psycopg.Connection, clusters: list[Cluster], cfg: ClusterConfig) -> None:
    """Summaries of every cluster, in three set-based queries (one pass over the signal table, not
    one per cluster); each cluster's result is what a query on its members alone returns."""
    if not clusters:
        return
    member_cluster = [i for i, c in enumerate(clusters) for _ in c.message_ids]
    member_ids = [m for c in clusters for m in c.message_ids]
    rows_by_cluster: list[list[tuple]] = [[] for _ in clusters]
    for row in conn.execute(
        f"""
        select u.cluster_no, m.external_id, m.text, {", ".join("m." + c for c in ENTITY_COLUMNS)}
        from unnest(%s::int[], %s::bigint[]) as u (cluster_no, message_id)
        inner join intermediate.int_messages_enriched as m on m.message_id = u.message_id
        order by u.cluster_no, (m.is_spam is not true), m.external_id
        """,
        (member_cluster, member_ids),
    ).fetchall():
        rows_by_cluster[row[0]].append(row[1:])
    phrases_by_cluster: list[list[tuple]] = [[] for _ in clusters]
    for no, p, n, spam, ham in conn.execute(
        """
        with members as (
            select * from unnest(%s::int[], %s::bigint[]) as u (cluster_no, message_id)
        ),
        sizes as (
            select cluster_no, count(*) as size from members group by cluster_no
        ),
        phrases as (
            select mb.cluster_no, s.signal_value, count(*) as in_cluster,
                max(coalesce(c.spam_count, 0)) as spam, max(coalesce(c.ham_count, 0)) as ham
            from intermediate.int_message_signals_extracted as s
            inner join members as mb on mb.message_id = s.message_id
            left join marts.signal_label_counts as c
                on c.signal_kind = s.signal_kind and c.signal_value = s.signal_value
            where s.signal_kind = 'ngram'
            group by mb.cluster_no, s.signal_value
        ),
        ranked as (
            select p.*, row_number() over (
                partition by p.cluster_no order by p.in_cluster desc, p.ham, p.signal_value
            ) as pos
            from phrases as p
            inner join sizes as z on z.cluster_no = p.cluster_no
            where p.in_cluster * 2 >= z.size
        )
        select cluster_no, signal_value, in_cluster, spam, ham
        from ranked where pos <= %s
        order by cluster_no, pos
        """,
        (member_cluster, member_ids, cfg.top_k),
    ).fetchall():
        phrases_by_cluster[no].append((p, n, spam, ham))
    for c, rows, phrases in zip(clusters, rows_by_cluster, phrases_by_cluster, strict=True):
        entities: Counter[tuple[str, str]] = Counter()
        for row in rows:
            for kind, values in zip(ENTITY_COLUMNS, row[2:], strict=True):
                for v in values or ():
                    entities[(kind.rstrip("s") if kind != "short_codes" else "short_code", v)] += 1
        c.top_entities = [
            {"kind": k, "value": v, "messages": n}
            for (k, v), n in sorted(entities.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.top_k]
        ]
        c.top_phrases = [
            {"phrase": p, "cluster_messages": n, "spam_count": int(s), "ham_count": int(h)}
            for p, n, s, h in phrases
        ]
        own = privacy.OwnEntities.from_entities(c.top_entities, c.size)
        c.examples = [redact(r[1], own) for r in rows[: cfg.examples]]  # spam members first
    wanted = [(i, p["phrase"]) for i, c in enumerate(clusters) for p in c.top_phrases[:3]]
    if not wanted:
        return
    for no, text in counter_example_texts(conn, wanted, cfg.examples):
        c = clusters[no]
        c.counter_examples.append(redact(text, privacy.OwnEntities.from_entities(c.top_entities, c.size)))


def counter_example_texts(
    conn: psycopg.Connection, wanted: list[tuple[int, str]], examples: int
) -> list[tuple]:
    """(cluster number, text): per cluster, the ``examples`` ham messages sharing the most of its
    phrases (``wanted``: cluster number and phrase pairs), ties by external id. The phrases' messages
    are counted before the messages are read: each is read once per cluster (docs/benchmarks.md)."""
    return conn.execute(
        """
        with words as (
            select * from unnest(%s::int[], %s::text[]) as w (cluster_no, phrase)
        ),
        shared as (
            select w.cluster_no, s.message_id, count(*) as shared
            from words as w
            inner join intermediate.int_message_signals_extracted as s
                on s.signal_kind = 'ngram' and s.signal_value = w.phrase
            group by w.cluster_no, s.message_id
        ),
        ham as (
            select sh.cluster_no, m.text, m.external_id, sh.shared
            from shared as sh
            inner join intermediate.int_messages_enriched as m on m.message_id = sh.message_id
            where m.is_spam is false
        ),
        ranked as (
            select cluster_no, text,
                row_number() over (partition by cluster_no order by shared desc, external_id) as pos
            from ham
        )
        select cluster_no, text from ranked where pos <= %s order by cluster_no, pos
        """,
        ([i for i, _ in wanted], [p for _, p in wanted], examples),
    ).fetchall()


def write_clusters(
    conn: psycopg.Connection,
    clusters: list[Cluster],
    run_id: str,
    sample_size: int,
    record: dict | None = None,
) -> None:
    """Replace the current clusters (the table holds the latest run's stage 2) and record the run's
    stage 2 (slice share, provider, fallbacks) in ``patas.stage2_runs``."""
    tables.ensure_all(conn)
    conn.execute("truncate patas.semantic_clusters, patas.semantic_cluster_members")
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into patas.semantic_clusters
                (cluster_id, run_id, message_count, sample_size, top_entities, top_phrases, examples,
                 counter_examples, centroid, cohesion, spam_share, nearest_ham_distance, matched_similarity)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                (
                    c.cluster_id,
                    run_id,
                    c.size,
                    sample_size,
                    json.dumps(c.top_entities),
                    json.dumps(c.top_phrases),
                    json.dumps(c.examples),
                    json.dumps(c.counter_examples),
                    c.centroid or None,
                    c.cohesion,
                    c.spam_share,
                    c.nearest_ham_distance,
                    c.matched_similarity,
                )
                for c in clusters
            ],
        )
        with cur.copy("copy patas.semantic_cluster_members (cluster_id, message_id) from stdin") as cp:
            for c in clusters:
                for mid in c.message_ids:
                    cp.write_row((c.cluster_id, mid))
    if record is not None:
        conn.execute(
            """
            insert into patas.stage2_runs (run_id, record) values (%s, %s)
            on conflict (run_id) do update set record = excluded.record
            """,
            (run_id, json.dumps(record, sort_keys=True)),
        )


def cluster_rules(clusters: list[Cluster], *, max_ham: int = 0, min_cover: float = 0.6) -> list[dict]:
    """Typed rules (JSON) proposed from clusters: the cluster's most covering phrase that is clean on
    ham in the mining window; else the two best phrases together. Returned with lineage."""
    proposals: list[dict] = []
    for c in clusters:
        clean = [
            p
            for p in c.top_phrases
            if p["ham_count"] <= max_ham and p["cluster_messages"] >= min_cover * c.size
        ]
        if clean:
            best = clean[0]
            rule = {"kind": "text_phrase", "value": best["phrase"]}
        elif len(c.top_phrases) >= 2:
            rule = {
                "all": [
                    {"kind": "text_phrase", "value": c.top_phrases[0]["phrase"]},
                    {"kind": "text_phrase", "value": c.top_phrases[1]["phrase"]},
                ]
            }
        else:
            continue
        proposals.append({"rule": rule, "cluster_id": c.cluster_id, "cluster_size": c.size})
    return proposals


def cover_rules(
    conn: psycopg.Connection,
    clusters: list[Cluster],
    *,
    min_cover: float = 0.6,
    max_phrases: int = 8,
    min_gain: int = 2,
    min_spam: int = 3,
    min_concentration: float = 0.5,
    drafting: DraftingConfig | None = None,
) -> list[dict]:
    """Typed rules that pool a campaign's evidence: ``any`` of a few of its phrases, for a campaign
    that no single phrase covers (one that paraphrases: same offer, varied words).

    A campaign is a *family* of clusters: clusters that share a clean phrase (n-gram of the
    vocabulary with no ham and at least ``min_spam`` spam in the mining window, on at least
    ``min_gain`` members of each) with at least ``min_concentration`` of its spam inside them are
    one family, transitively. A paraphrasing campaign falls into
    several clusters (one per way of saying its opening, say) whose other parts, said in the same
    few ways, tie them together; a single cluster is a family of its own. Per family, clean phrases
    with at least ``min_concentration`` of their mining spam inside the family (the campaign's own
    words, not spam's in general), and that are not a single common word of general language (weak
    evidence alone, and pooled), are taken greedily, each the one covering most members not yet
    covered (ties: fewer words, then alphabetical), while each adds at least ``min_gain`` members,
    up to ``max_phrases``; proposed when the union covers ``min_cover`` of the family. Each phrase
    alone may be too rare to earn a rule; the family, grouped by meaning, is what ties them into
    one. Only the members stage 1 leaves uncovered count (no standing signal: :func:`load_slice`;
    ``drafting`` is the bar), so a family is the uncovered part of a campaign and the spam stage 1
    already covers neither joins nor sways it. Returned with lineage (the family's largest cluster)."""
    bar = drafting or DraftingConfig()
    kinds, values = standing_candidates(conn, bar)
    covered = {
        r[0]
        for r in conn.execute(
            """
            select distinct s.message_id
            from intermediate.int_message_signals_extracted as s
            inner join unnest(%s::text[], %s::text[]) as st (signal_kind, signal_value)
                on st.signal_kind = s.signal_kind and st.signal_value = s.signal_value
            where s.message_id = any(%s::bigint[])
            """,
            (kinds, values, sorted({m for c in clusters for m in c.message_ids})),
        )
    }
    own = [[m for m in c.message_ids if m not in covered] for c in clusters]
    todo_ids = [(c, ids) for c, ids in zip(clusters, own, strict=True) if len(ids) >= 2 * min_gain]
    if not todo_ids:
        return []
    todo = [c for c, _ in todo_ids]
    cluster_no = [i for i, (_, ids) in enumerate(todo_ids) for _ in ids]
    member_ids = [m for _, ids in todo_ids for m in ids]
    members: list[dict[str, set[int]]] = [{} for _ in todo]
    spam_of: dict[str, int] = {}
    for no, phrase, ids, spam in conn.execute(
        """
        with members as (
            select * from unnest(%s::int[], %s::bigint[]) as u (cluster_no, message_id)
        )
        select mb.cluster_no, s.signal_value, array_agg(mb.message_id order by mb.message_id),
            max(c.spam_count)::bigint
        from intermediate.int_message_signals_extracted as s
        inner join members as mb on mb.message_id = s.message_id
        inner join marts.signal_label_counts as c
            on c.signal_kind = s.signal_kind and c.signal_value = s.signal_value
        where s.signal_kind = 'ngram' and c.ham_count = 0 and c.spam_count >= %s
        group by mb.cluster_no, s.signal_value
        having count(*) >= %s
        order by mb.cluster_no, s.signal_value
        """,
        (cluster_no, member_ids, min_spam, min_gain),
    ).fetchall():
        if " " not in phrase and phrase_is_common(phrase, bar.languages):
            continue  # a single everyday word is weak evidence, pooled or not
        members[no][phrase] = set(ids)
        spam_of[phrase] = int(spam)
    parent = list(range(len(todo)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holders: dict[str, list[int]] = {}
    for no, phrases in enumerate(members):
        for phrase in phrases:
            holders.setdefault(phrase, []).append(no)
    for phrase in sorted(holders):
        nos = holders[phrase]
        inside = sum(len(members[no][phrase]) for no in nos)
        if len(nos) > 1 and inside >= min_concentration * spam_of[phrase]:  # the clusters' own word
            for no in nos[1:]:
                a, b = root(nos[0]), root(no)
                parent[max(a, b)] = min(a, b)
    families: dict[int, list[int]] = {}
    for no in range(len(todo)):
        families.setdefault(root(no), []).append(no)
    proposals: list[dict] = []
    for nos in families.values():
        size = sum(len(todo_ids[no][1]) for no in nos)
        pooled: dict[str, set[int]] = {}
        for no in nos:
            for phrase, ids in members[no].items():
                pooled.setdefault(phrase, set()).update(ids)
        phrases = {p: ids for p, ids in pooled.items() if len(ids) >= min_concentration * spam_of[p]}
        if any(len(ids) >= min_cover * size for ids in phrases.values()):
            continue  # one phrase covers it: cluster_rules proposes that phrase
        covered: set[int] = set()
        chosen: list[str] = []
        while len(chosen) < max_phrases and phrases:
            phrase, gain = max(
                ((p, len(ids - covered)) for p, ids in phrases.items()),
                key=lambda t: (t[1], -len(t[0].split()), [-ord(ch) for ch in t[0]]),
            )
            if gain < min_gain:
                break
            chosen.append(phrase)
            covered |= phrases.pop(phrase)
        if len(chosen) >= 2 and len(covered) >= min_cover * size:
            rule = {"any": [{"kind": "text_phrase", "value": p} for p in sorted(chosen)]}
            lead = todo[min(nos)]  # clusters come largest first
            proposals.append({"rule": rule, "cluster_id": lead.cluster_id, "cluster_size": len(covered)})
    return proposals


def summary_dict(c: Cluster) -> dict:
    return asdict(c) | {"size": c.size}


def load_clusters(conn: psycopg.Connection) -> list[Cluster]:
    """The clusters stage 2 wrote last, largest first (members included)."""
    if not conn.execute("select to_regclass('patas.semantic_clusters') is not null").fetchone()[0]:
        return []
    rows = conn.execute(
        """
        select c.cluster_id, c.top_entities, c.top_phrases, c.examples, c.counter_examples,
               array(select message_id from patas.semantic_cluster_members as m
                     where m.cluster_id = c.cluster_id order by message_id),
               coalesce(c.centroid, '{}'), c.cohesion, c.spam_share, c.nearest_ham_distance,
               c.matched_similarity
        from patas.semantic_clusters as c
        order by c.message_count desc, c.cluster_id
        """
    ).fetchall()
    return [
        Cluster(cid, list(ids), ents, phr, ex, cex, list(cen), coh, share, near, sim)
        for cid, ents, phr, ex, cex, ids, cen, coh, share, near, sim in rows
    ]
