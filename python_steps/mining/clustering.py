"""Stage 2: semantic clusters of the spam that stage 1 flagged or left uncovered.

Offline embeddings (TF-IDF over character n-grams of the normalized text, reduced by truncated
SVD, L2-normalized) and DBSCAN with cosine distance. The sample is bounded (uncovered spam first,
then the rest, each in a fixed hash order), so the cost does not grow with the corpus, and the
whole stage is deterministic: inputs in a fixed order, fixed seeds, single-threaded BLAS.

Each cluster is summarized by aggregated signals only (size, top entities, top phrases with their
spam/ham counts, a few PII-redacted examples): that summary is what rule drafting and the
optional LLM see, never the raw messages.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import psycopg

from python_steps import tables

ENTITY_COLUMNS = ("domains", "phones", "short_codes", "handles", "emails")


@dataclass(frozen=True)
class ClusterConfig:
    sample_size: int = 4000
    svd_components: int = 48
    eps: float = 0.30  # cosine distance
    min_samples: int = 6
    max_clusters: int = 40
    top_k: int = 8
    examples: int = 3
    seed: int = 0


@dataclass
class Cluster:
    cluster_id: str
    message_ids: list[int]
    top_entities: list[dict] = field(default_factory=list)
    top_phrases: list[dict] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    counter_examples: list[str] = field(default_factory=list)

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


_REDACTIONS = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?<!\w)@\w{2,}"), "<handle>"),
    (re.compile(r"\+?\d[\d\s().-]{5,}\d"), "<phone>"),
    (re.compile(r"\d{4,}"), "<number>"),
]


def redact(text: str, limit: int = 240) -> str:
    """Mask emails, handles, phone numbers and long numbers; cut to ``limit`` characters."""
    for pattern, placeholder in _REDACTIONS:
        text = pattern.sub(placeholder, text)
    return text[:limit]


def load_sample(conn: psycopg.Connection, cfg: ClusterConfig) -> list[tuple[int, str]]:
    """Mining-window spam, uncovered by stage-1 candidates first, in a fixed hash order."""
    rows = conn.execute(
        """
        select m.message_id, m.normalized_text
        from intermediate.int_messages_enriched as m
        inner join intermediate.int_messages_windowed as w using (message_id)
        left join marts.stage1_uncovered_spam as u using (message_id)
        where w.window_name = 'mining' and m.is_spam
        order by (u.message_id is null), md5(m.external_id), m.message_id
        limit %s
        """,
        (cfg.sample_size,),
    ).fetchall()
    return sorted(rows)


def cluster_texts(texts: list[str], cfg: ClusterConfig) -> list[int]:
    """DBSCAN labels (-1 = noise) for texts, deterministic for a given input order."""
    if len(texts) < cfg.min_samples:
        return [-1] * len(texts)
    from sklearn.cluster import DBSCAN
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        tfidf = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=40_000, dtype="float64"
        )
        x = tfidf.fit_transform(texts)
        if x.shape[1] == 0:
            return [-1] * len(texts)
        components = max(2, min(cfg.svd_components, x.shape[1] - 1, len(texts) - 1))
        emb = TruncatedSVD(n_components=components, random_state=cfg.seed, algorithm="arpack").fit_transform(
            x
        )
        emb = normalize(emb)
        labels = DBSCAN(
            eps=cfg.eps, min_samples=cfg.min_samples, metric="cosine", algorithm="brute"
        ).fit_predict(emb)
    return [int(v) for v in labels]


def _cluster_id(message_ids: list[int], external: dict[int, str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(external[m] for m in message_ids)).encode()).hexdigest()
    return "c_" + digest[:12]


def build_clusters(conn: psycopg.Connection, cfg: ClusterConfig | None = None) -> list[Cluster]:
    cfg = cfg or ClusterConfig()
    sample = load_sample(conn, cfg)
    if not sample:
        return []
    ids = [r[0] for r in sample]
    labels = cluster_texts([r[1] for r in sample], cfg)
    groups: dict[int, list[int]] = {}
    for mid, label in zip(ids, labels, strict=True):
        if label >= 0:
            groups.setdefault(label, []).append(mid)
    external = dict(
        conn.execute(
            "select message_id, external_id from intermediate.int_messages_enriched where message_id = any(%s)",
            (ids,),
        ).fetchall()
    )
    ordered = sorted(groups.values(), key=lambda g: (-len(g), min(external[m] for m in g)))[
        : cfg.max_clusters
    ]
    clusters = [Cluster(_cluster_id(g, external), sorted(g)) for g in ordered]
    _summarize_all(conn, clusters, cfg)
    return clusters


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
        order by u.cluster_no, m.external_id
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
        c.examples = [redact(r[1]) for r in rows[: cfg.examples]]
    wanted = [(i, p["phrase"]) for i, c in enumerate(clusters) for p in c.top_phrases[:3]]
    if not wanted:
        return
    for no, text in conn.execute(
        """
        with words as (
            select * from unnest(%s::int[], %s::text[]) as w (cluster_no, phrase)
        ),
        ham as (
            select w.cluster_no, m.message_id, m.text, m.external_id, count(*) as shared
            from words as w
            inner join intermediate.int_message_signals_extracted as s
                on s.signal_kind = 'ngram' and s.signal_value = w.phrase
            inner join intermediate.int_messages_enriched as m on m.message_id = s.message_id
            where m.is_spam is false
            group by w.cluster_no, m.message_id, m.text, m.external_id
        ),
        ranked as (
            select cluster_no, text,
                row_number() over (partition by cluster_no order by shared desc, external_id) as pos
            from ham
        )
        select cluster_no, text from ranked where pos <= %s order by cluster_no, pos
        """,
        ([i for i, _ in wanted], [p for _, p in wanted], cfg.examples),
    ).fetchall():
        clusters[no].counter_examples.append(redact(text))


def write_clusters(conn: psycopg.Connection, clusters: list[Cluster], run_id: str, sample_size: int) -> None:
    """Replace the current clusters (the table holds the latest run's stage 2)."""
    tables.ensure_all(conn)
    conn.execute("truncate patas.semantic_clusters, patas.semantic_cluster_members")
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into patas.semantic_clusters
                (cluster_id, run_id, message_count, sample_size, top_entities, top_phrases, examples, counter_examples)
            values (%s, %s, %s, %s, %s, %s, %s, %s)
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
                )
                for c in clusters
            ],
        )
        with cur.copy("copy patas.semantic_cluster_members (cluster_id, message_id) from stdin") as cp:
            for c in clusters:
                for mid in c.message_ids:
                    cp.write_row((c.cluster_id, mid))


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
                     where m.cluster_id = c.cluster_id order by message_id)
        from patas.semantic_clusters as c
        order by c.message_count desc, c.cluster_id
        """
    ).fetchall()
    return [Cluster(cid, list(ids), ents, phr, ex, cex) for cid, ents, phr, ex, cex, ids in rows]
