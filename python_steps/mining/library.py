"""The pattern library: what stage 2 and promotion learned, remembered across runs.

A pattern is a stage-2 cluster (``cluster:<cluster id>``) or a promoted rule's evidence
(``rule:<rule id>``: the centroid of the spam it hit in shadow evaluation), with its centroid
embedding (per provider and model: vectors of different spaces are never compared) and its figures.
Every run that observes a pattern appends a version (``patas.pattern_versions``) and bumps the
pattern's ``version`` and ``runs_active``; re-running the same run id changes nothing further.

Stage 2 reads the known clusters first (:func:`known_clusters`): a new cluster whose centroid is
close to a known one keeps its id, so its rules (keyed by pattern) are drafted and re-checked again
before new ones. :func:`match` returns the known patterns nearest to a text by cosine similarity,
with the rules drafted from them: through pgvector (``<=>``, with an HNSW index per dimension:
approximate, the index's search) where the server has the ``vector`` extension, else exactly, in
Python, over the stored ``float8[]`` (also when the index's candidates hold too few patterns of the
asked space). Stage 2's own matching (:func:`library_matches`) is always exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import psycopg

from python_steps import tables
from python_steps.mining import embeddings, reuse
from python_steps.warehouse import planner_settings


class PatternNotFound(LookupError):
    pass


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def vector_extension(conn: psycopg.Connection, *, create: bool = True) -> bool:
    """Whether pgvector is usable in this database (created here when the server ships it)."""
    installed = conn.execute(
        "select exists (select 1 from pg_extension where extname = 'vector')"
    ).fetchone()[0]
    if installed or not create:
        return bool(installed)
    available = conn.execute(
        "select exists (select 1 from pg_available_extensions where name = 'vector')"
    ).fetchone()[0]
    if not available:
        return False
    try:
        with conn.transaction():
            conn.execute("create extension if not exists vector")
    except psycopg.Error:  # no privilege: the exact fallback serves
        return False
    return True


def _ensure_vector_index(conn: psycopg.Connection, dimensions: int) -> None:
    dims = int(dimensions)
    if not 0 < dims <= 2000:  # HNSW indexes vectors of at most 2,000 dimensions
        return
    with conn.transaction():
        conn.execute(
            f"create index if not exists patterns_centroid_hnsw_{dims} on patas.patterns "
            f"using hnsw ((centroid::vector({dims})) vector_cosine_ops) where dimensions = {dims}"
        )


_UPSERT = """
    with upserted as (
        insert into patas.patterns as p (pattern_id, kind, provider, model, dimensions, centroid, version,
            first_run_id, last_run_id, runs_active, message_count, spam_share, cohesion,
            nearest_ham_distance, summary)
        values (%(id)s, %(kind)s, %(provider)s, %(model)s, %(dims)s, %(centroid)s, 1, %(run)s, %(run)s, 1,
            %(n)s, %(share)s, %(cohesion)s, %(nearest)s, %(summary)s)
        on conflict (pattern_id) do update set
            version = p.version + (p.last_run_id <> excluded.last_run_id)::int,
            runs_active = p.runs_active + (p.last_run_id <> excluded.last_run_id)::int,
            provider = excluded.provider, model = excluded.model, dimensions = excluded.dimensions,
            centroid = excluded.centroid, last_run_id = excluded.last_run_id,
            message_count = excluded.message_count, spam_share = excluded.spam_share,
            cohesion = excluded.cohesion, nearest_ham_distance = excluded.nearest_ham_distance,
            summary = excluded.summary, updated_at = clock_timestamp()
        returning pattern_id, version
    )
    insert into patas.pattern_versions (pattern_id, version, run_id, centroid, message_count, spam_share,
        cohesion, nearest_ham_distance)
    select pattern_id, version, %(run)s, %(centroid)s, %(n)s, %(share)s, %(cohesion)s, %(nearest)s
    from upserted
    on conflict (pattern_id, version) do update set centroid = excluded.centroid,
        message_count = excluded.message_count, spam_share = excluded.spam_share,
        cohesion = excluded.cohesion, nearest_ham_distance = excluded.nearest_ham_distance
"""


def _upsert_params(pattern_id: str, kind: str, provider: str, model: str, centroid: list[float], run_id: str,
                   message_count: int, spam_share, cohesion, nearest, summary: dict) -> dict:  # fmt: skip
    return {"id": pattern_id, "kind": kind, "provider": provider, "model": model, "dims": len(centroid),
            "centroid": centroid, "run": run_id, "n": message_count, "share": spam_share, "cohesion": cohesion,
            "nearest": nearest, "summary": json.dumps(summary, sort_keys=True)}  # fmt: skip


def _upsert_many(conn: psycopg.Connection, params: list[dict]) -> None:
    """Upsert each pattern and append (or, for the same run, rewrite) its version: one statement per
    pattern, sent together (``executemany`` pipelines them); the version is the one the upsert
    returns, as the pattern's new version."""
    if params:
        with conn.cursor() as cur:
            cur.executemany(_UPSERT, params)


def record_clusters(conn: psycopg.Connection, clusters, run_id: str, provider: str, model: str) -> int:
    """Every cluster of this run as a pattern version (``clusters``: clustering.Cluster objects)."""
    ensure_schema(conn)
    use_vector = vector_extension(conn)
    params = []
    for c in clusters:
        if not c.centroid:
            continue
        summary = {"top_phrases": c.top_phrases, "top_entities": c.top_entities, "examples": c.examples}
        params.append(_upsert_params(f"cluster:{c.cluster_id}", "cluster", provider, model, list(c.centroid),
                                     run_id, c.size, c.spam_share, c.cohesion, c.nearest_ham_distance, summary))  # fmt: skip
    _upsert_many(conn, params)
    if use_vector:
        for dims in sorted({p["dims"] for p in params}):
            _ensure_vector_index(conn, dims)
    return len(clusters)


class RuleCentroidCache:
    """The rule patterns of the latest run, kept in ``cache_dir`` between runs.

    A rule pattern's centroid and cohesion are a function of its texts (in order), the embedding
    space and the code that embeds them: ``centroids`` maps an md5 over all of these to
    ``[centroid, cohesion]``. The texts themselves are a function of the active rules, the hits of
    shadow evaluation and the messages: ``rows`` keeps, under an md5 of those inputs' state
    (:func:`rule_rows_state`), each rule's number of texts and its centroid key, so a run whose
    inputs are unchanged reads no hit at all. Only the ``lexical`` provider is cached (stateless:
    the same text has the same vector in every process; a remote provider has its own cache in the
    warehouse, with a TTL). None as ``cache_dir``: nothing is kept, every centroid is computed."""

    FILE = "rule_patterns.json"

    def __init__(self, cache_dir: Path | None, cfg: embeddings.EmbeddingConfig):
        lexical = cache_dir is not None and cfg.provider == "lexical"
        self.path = cache_dir / self.FILE if lexical else None
        self.space = (
            f"{cfg.model_name}|{cfg.dimensions}|{embeddings.lexical_code_version()}" if lexical else ""
        )
        self.kept: dict = {"rows": {}, "centroids": {}}
        self.used: dict = {"rows": {}, "centroids": {}}
        if self.path is not None and self.path.is_file():
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict) and set(loaded) == {"rows", "centroids"}:
                    self.kept = loaded

    def key(self, texts: list[str]) -> str:
        h = hashlib.md5(self.space.encode())
        for t in texts:
            h.update(b"\x1e" + t.encode("utf-8"))
        return h.hexdigest()

    def get(self, key: str) -> list | None:
        if self.path is None or key not in self.kept["centroids"]:
            return None
        self.used["centroids"][key] = self.kept["centroids"][key]
        return self.used["centroids"][key]

    def put(self, key: str, centroid: list[float], cohesion: float) -> None:
        if self.path is not None:
            self.used["centroids"][key] = [centroid, cohesion]

    def rows(self, state: str) -> dict[str, tuple[int, list[float], float]] | None:
        """Each rule's (texts, centroid, cohesion) when the rows' input state is the kept one."""
        kept = self.kept["rows"]
        if self.path is None or kept.get("state") != f"{self.space}|{state}":
            return None
        out = {}
        for rid, (n, key) in kept["rules"].items():
            hit = self.get(key)
            if hit is None:
                return None
            out[rid] = (n, hit[0], hit[1])
        self.used["rows"] = kept
        return out

    def put_rows(self, state: str, rules: dict[str, tuple[int, str]]) -> None:
        if self.path is not None:
            rules_ = {rid: list(v) for rid, v in rules.items()}
            self.used["rows"] = {"state": f"{self.space}|{state}", "rules": rules_}  # this space's only

    def save(self) -> None:
        if self.path is None or self.used == self.kept:
            return
        with contextlib.suppress(OSError):
            reuse.write_cache_file(self.path, json.dumps(self.used, sort_keys=True))


def _rule_centroids(
    texts_by_rule: dict[str, list[str]], cfg: embeddings.EmbeddingConfig, conn: psycopg.Connection | None,
    cache: RuleCentroidCache,
) -> tuple[dict[str, tuple[list[float], float, str]], embeddings.EmbeddingReport]:  # fmt: skip
    """Each rule's (centroid rounded to 9 places, cohesion, cache key): the normalized mean of its
    texts' vectors and their mean cosine to it; from the cache when its texts and the space are
    unchanged. A lexical vector depends on its own text only, so embedding the missed rules' texts
    alone gives the vectors embedding them all would."""
    out: dict[str, tuple[list[float], float, str]] = {}
    todo: list[tuple[str, str]] = []  # (rule id, key) to compute
    for rid, texts in texts_by_rule.items():
        key = cache.key(texts) if cache.path is not None else ""
        hit = cache.get(key) if key else None
        if hit is not None:
            out[rid] = (hit[0], hit[1], key)
        else:
            todo.append((rid, key))
    texts = [t for rid, _ in todo for t in texts_by_rule[rid]]
    # Spam templates repeat: each distinct text is embedded once (a text's vector does not depend
    # on the others in the call), then every hit takes its text's row.
    distinct = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    vectors, report = embeddings.embed(list(distinct), cfg, conn)
    vectors = vectors[np.fromiter((distinct[t] for t in texts), dtype=np.intp, count=len(texts))]
    report.texts = sum(len(v) for v in texts_by_rule.values())
    start = 0
    for rid, key in todo:
        n = len(texts_by_rule[rid])
        rows = vectors[np.arange(start, start + n)]  # a copy, as indexing the whole batch gave
        start += n
        centroid = rows.mean(axis=0)
        norm = float(np.linalg.norm(centroid))
        centroid = centroid / norm if norm else centroid
        cohesion = round(float(np.mean(rows @ centroid)), 6)
        out[rid] = ([round(float(x), 9) for x in centroid], cohesion, key)
        if key and report.provider == cfg.provider and not report.warnings:
            cache.put(key, out[rid][0], cohesion)
    return out, report


RULE_ROWS_READS = ("marts.rule_hits", "intermediate.int_messages_enriched")


def rule_rows_state(conn: psycopg.Connection, per_rule: int) -> str:
    """The state of what the rule patterns' texts are read from: the active rules, the catalog
    identity of the hits and messages tables (dbt rebuilds the hits under a new oid; the messages
    grow only with the warehouse's inputs) and those inputs (python_steps.mining.reuse)."""
    active = [r[0] for r in conn.execute(
        "select rule_id from patas.rule_lifecycle where status = 'active' order by rule_id"
    )]  # fmt: skip
    payload = {
        "active": active,
        "relations": reuse.relations_state(conn, list(RULE_ROWS_READS)),
        "warehouse": reuse.warehouse_state(conn),
        "per_rule": per_rule,
        "code": reuse.code_version(),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def record_rule_patterns(
    conn: psycopg.Connection,
    run_id: str,
    cfg: embeddings.EmbeddingConfig,
    per_rule: int = 50,
    *,
    cache_dir: Path | None = None,
) -> dict:
    """Each active rule's evidence as a pattern: the centroid of (at most ``per_rule``) spam messages
    it hits in the shadow-evaluated windows (``marts.rule_hits``), in a fixed hash order.
    ``cache_dir``: where the latest run's rule patterns are kept (:class:`RuleCentroidCache`)."""
    ensure_schema(conn)
    if conn.execute("select to_regclass('marts.rule_hits') is null or to_regclass('patas.rule_lifecycle') is null").fetchone()[0]:  # fmt: skip
        return {"rule_patterns": 0}
    cache = RuleCentroidCache(cache_dir, cfg)
    state = rule_rows_state(conn, per_rule) if cache.path is not None else ""
    kept = cache.rows(state) if state else None
    if kept is not None:
        counts = {rid: n for rid, (n, _, _) in kept.items()}
        centroids = {rid: (c, cohesion) for rid, (_, c, cohesion) in kept.items()}
        report = embeddings.EmbeddingReport(
            cfg.provider, cfg.model_name, cfg.provider, texts=sum(counts.values())
        )
    else:
        # The ranking reads every spam hit of the active rules (hundreds of thousands at 1M messages):
        # planned for this statement as one hash join with the messages (the rules' few expected rows
        # would make it probe the messages' index once per hit), sorted in memory, without JIT; the
        # texts are fetched afterwards for the kept hits only.
        with planner_settings(conn, enable_nestloop="off", jit="off", work_mem="256MB"):
            ranked = conn.execute(
                """
                with hits as (
                    select l.rule_id, h.message_id,
                        row_number() over (
                            partition by l.rule_id order by md5(m.external_id), m.message_id, h.window_name
                        ) as pos
                    from patas.rule_lifecycle as l
                    inner join marts.rule_hits as h on h.rule_id = l.rule_id
                    inner join intermediate.int_messages_enriched as m on m.message_id = h.message_id
                    where l.status = 'active' and m.is_spam
                )
                select rule_id, message_id from hits where pos <= %s order by rule_id, pos
                """,
                (per_rule,),
            ).fetchall()
        text_of = dict(
            conn.execute(
                "select message_id, normalized_text from intermediate.int_messages_enriched where message_id = any(%s)",
                (sorted({mid for _, mid in ranked}),),
            ).fetchall()
        )
        texts_by_rule: dict[str, list[str]] = {}
        for rid, mid in ranked:
            texts_by_rule.setdefault(rid, []).append(text_of[mid] or "")
        computed, report = _rule_centroids(texts_by_rule, cfg, conn, cache)
        counts = {rid: len(texts) for rid, texts in texts_by_rule.items()}
        centroids = {rid: (c, cohesion) for rid, (c, cohesion, _) in computed.items()}
        if state and all(key for _, _, key in computed.values()) and not report.warnings:
            cache.put_rows(state, {rid: (counts[rid], computed[rid][2]) for rid in computed})
    cache.save()
    if not counts:
        return {"rule_patterns": 0}
    descriptions = dict(
        conn.execute(
            "select distinct on (rule_id) rule_id, description from patas.rule_drafts "
            "where rule_id = any(%s) order by rule_id, version desc",
            (sorted(counts),),
        ).fetchall()
    )
    use_vector = vector_extension(conn)
    params = []
    for rid in sorted(counts):
        centroid, cohesion = centroids[rid]
        summary = {"rule_id": rid, "description": descriptions.get(rid, "")}
        args = (report.provider, report.model, centroid, run_id, counts[rid], 1.0, cohesion, None, summary)
        params.append(_upsert_params(f"rule:{rid}", "rule", *args))
    _upsert_many(conn, params)
    if use_vector:
        for dims in sorted({p["dims"] for p in params}):
            _ensure_vector_index(conn, dims)
    return {"rule_patterns": len(counts), "embeddings": report.as_dict()}


def known_clusters(conn: psycopg.Connection, provider: str, model: str) -> list[tuple[str, np.ndarray]]:
    """(cluster id, centroid) of every cluster pattern in this embedding space, by id."""
    if not conn.execute("select to_regclass('patas.patterns') is not null").fetchone()[0]:
        return []
    rows = conn.execute(
        "select pattern_id, centroid from patas.patterns where kind = 'cluster' and provider = %s and model = %s"
        " order by pattern_id",
        (provider, model),
    ).fetchall()
    return [(pid.removeprefix("cluster:"), np.asarray(v, dtype=np.float64)) for pid, v in rows]


def _rules_of(conn: psycopg.Connection, pattern_ids: list[str]) -> dict[str, list[dict]]:
    """The rules drafted from each pattern (or, for a rule pattern, the rule), with status and
    evaluation-window precision where known."""
    out: dict[str, list[dict]] = {p: [] for p in pattern_ids}
    if not pattern_ids or conn.execute("select to_regclass('patas.rule_drafts') is null").fetchone()[0]:
        return out
    has_lifecycle = conn.execute("select to_regclass('patas.rule_lifecycle') is not null").fetchone()[0]
    has_eval = conn.execute("select to_regclass('marts.rule_evaluations') is not null").fetchone()[0]
    status = "l.status" if has_lifecycle else "null::text"
    lifecycle_join = "left join patas.rule_lifecycle as l on l.rule_id = d.rule_id" if has_lifecycle else ""
    precision = "e.precision" if has_eval else "null::float8"
    eval_join = (
        "left join marts.rule_evaluations as e on e.rule_id = d.rule_id and e.window_name = 'evaluation'"
        if has_eval
        else ""
    )
    rows = conn.execute(
        f"""
        with wanted as (select unnest(%s::text[]) as pattern_id),
        drafts as (
            select distinct on (w.pattern_id, r.rule_id) w.pattern_id, r.rule_id, r.description
            from wanted as w
            inner join patas.rule_drafts as r
                on r.pattern_id = w.pattern_id or 'rule:' || r.rule_id = w.pattern_id
            order by w.pattern_id, r.rule_id, r.version desc
        )
        select d.pattern_id, d.rule_id, d.description, {status}, {precision}
        from drafts as d {lifecycle_join} {eval_join}
        order by d.pattern_id, d.rule_id
        """,
        (pattern_ids,),
    ).fetchall()
    for pid, rid, desc, st, prec in rows:
        out[pid].append(
            {
                "rule_id": rid,
                "description": desc,
                "status": st,
                "precision": None if prec is None else float(prec),
            }
        )
    return out


_COLUMNS = ("pattern_id", "kind", "provider", "model", "version", "runs_active", "message_count", "spam_share",
            "cohesion", "nearest_ham_distance", "first_run_id", "last_run_id", "summary")  # fmt: skip


def _row_dict(row) -> dict:
    d = dict(zip(_COLUMNS, row, strict=True))
    for k in ("spam_share", "cohesion", "nearest_ham_distance"):
        d[k] = None if d[k] is None else round(float(d[k]), 6)
    return d


def list_patterns(conn: psycopg.Connection, *, kind: str | None = None, limit: int = 50) -> list[dict]:
    if not conn.execute("select to_regclass('patas.patterns') is not null").fetchone()[0]:
        return []
    rows = conn.execute(
        f"select {', '.join(_COLUMNS)} from patas.patterns where (%s::text is null or kind = %s)"
        " order by runs_active desc, message_count desc, pattern_id limit %s",
        (kind, kind, limit),
    ).fetchall()
    items = [_row_dict(r) for r in rows]
    rules = _rules_of(conn, [i["pattern_id"] for i in items])
    for i in items:
        i["rules"] = rules[i["pattern_id"]]
    return items


def show_pattern(conn: psycopg.Connection, pattern_id: str) -> dict:
    """One pattern with its versions and rules; a unique prefix of the id is enough."""
    if not conn.execute("select to_regclass('patas.patterns') is not null").fetchone()[0]:
        raise PatternNotFound(f"no pattern {pattern_id!r} (the library is empty: run `patas run` first)")
    ids = [
        r[0]
        for r in conn.execute(
            "select pattern_id from patas.patterns where pattern_id = %s or pattern_id like %s"
            " or pattern_id like %s order by pattern_id limit 3",
            (pattern_id, _like_prefix(pattern_id), "%:" + _like_prefix(pattern_id)),
        )
    ]
    if pattern_id in ids:
        ids = [pattern_id]
    if len(ids) != 1:
        what = "no pattern" if not ids else "more than one pattern starts with"
        raise PatternNotFound(f"{what} {pattern_id!r}")
    row = conn.execute(
        f"select {', '.join(_COLUMNS)} from patas.patterns where pattern_id = %s", ids
    ).fetchone()
    item = _row_dict(row)
    item["versions"] = [
        {
            "version": v,
            "run_id": r,
            "message_count": n,
            "spam_share": None if s is None else round(float(s), 6),
        }
        for v, r, n, s in conn.execute(
            "select version, run_id, message_count, spam_share from patas.pattern_versions"
            " where pattern_id = %s order by version",
            ids,
        )
    ]
    item["rules"] = _rules_of(conn, ids)[ids[0]]
    item["success"] = pattern_success(conn, ids)[ids[0]]
    return item


# The centroids of one embedding space, per database, for the exact path: reloaded only when the
# space's patterns change (their count or latest update), so a long-lived process (the HTTP
# service) does not read 10,000 vectors again for every match.
_SPACES: dict[tuple, tuple[tuple, list[str], np.ndarray]] = {}


def _space(conn: psycopg.Connection, provider: str, model: str, dims: int) -> tuple[list[str], np.ndarray]:
    """(pattern ids, unit-normalized centroid rows) of every pattern in this space, by id."""
    info = conn.info
    key = (info.host, info.port, info.dbname, provider, model, dims)
    stamp = tuple(
        conn.execute(
            "select count(*), max(updated_at) from patas.patterns"
            " where provider = %s and model = %s and dimensions = %s",
            (provider, model, dims),
        ).fetchone()
    )
    cached = _SPACES.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    with conn.cursor(binary=True) as cur:  # binary float8[]: half the time of the text form
        rows = cur.execute(
            "select pattern_id, centroid from patas.patterns"
            " where provider = %s and model = %s and dimensions = %s order by pattern_id",
            (provider, model, dims),
        ).fetchall()
    ids = [r[0] for r in rows]
    mat = np.asarray([r[1] for r in rows], dtype=np.float64).reshape(len(rows), dims)
    norms = np.linalg.norm(mat, axis=1)
    mat = mat / np.where(norms == 0, 1.0, norms)[:, None]
    _SPACES[key] = (stamp, ids, mat)
    return ids, mat


# Nearest neighbours the HNSW index hands over before the space filter (provider, model) and the
# tie-break by id: the index can only order by distance alone (a second sort key, or a cast the
# index does not hold, turns the query into a sequential scan that casts every row).
PGVECTOR_FETCH_MARGIN = 16
# The HNSW search's candidate list (pgvector's default is 40): wider finds the true nearest more
# often, at a cost that stays in milliseconds at 10,000 patterns. Set for the current transaction.
PGVECTOR_EF_SEARCH = 200


def pgvector_nearest_sql(dims: int) -> str:
    """The nearest-neighbour query of the pgvector path for ``dims``-dimension centroids (bound
    parameters: q, provider, model, fetch, k). The inner query orders by the indexed expression's
    distance alone, so the partial HNSW index of :func:`_ensure_vector_index` serves it."""
    dims = int(dims)
    return f"""
        select pattern_id, 1 - distance as similarity
        from (
            select pattern_id, centroid::vector({dims}) <=> %(q)s::vector({dims}) as distance
            from patas.patterns
            where dimensions = {dims} and provider = %(provider)s and model = %(model)s
            order by centroid::vector({dims}) <=> %(q)s::vector({dims})
            limit %(fetch)s
        ) as nearest
        order by distance, pattern_id
        limit %(k)s
        """


def _nearest_pgvector(
    conn: psycopg.Connection, query: list[float], provider: str, model: str, k: int
) -> list[tuple[float, str]] | None:
    """(similarity, pattern id) of the ``k`` nearest patterns of the space through the HNSW index
    (approximate: the index's search), ties by id; None when the index's candidates held fewer than
    ``k`` patterns of this space while the space has more (the caller answers exactly)."""
    dims = len(query)
    literal = "[" + ",".join(repr(float(x)) for x in query) + "]"
    conn.execute("select set_config('hnsw.ef_search', %s, true)", (str(PGVECTOR_EF_SEARCH),))
    rows = conn.execute(
        pgvector_nearest_sql(dims),
        {"q": literal, "provider": provider, "model": model, "k": k, "fetch": k + PGVECTOR_FETCH_MARGIN},
    ).fetchall()
    if len(rows) < k:
        size = conn.execute(
            "select count(*) from patas.patterns where dimensions = %s and provider = %s and model = %s",
            (dims, provider, model),
        ).fetchone()[0]
        if len(rows) < min(k, size):
            return None
    return [(float(s), pid) for pid, s in rows]


def _like_prefix(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def match(
    conn: psycopg.Connection,
    text: str,
    cfg: embeddings.EmbeddingConfig,
    *,
    k: int = 5,
    method: str = "auto",
    min_similarity: float = 0.0,
) -> dict:
    """The ``k`` known patterns nearest to ``text`` (normalized by PATAS's normalizer) in the
    provider's space, by cosine similarity, with their rules. ``method``: auto (pgvector when the
    database has it, else exact), pgvector, exact."""
    from python_steps.text.normalize import normalize_text

    if method not in ("auto", "pgvector", "exact"):
        raise ValueError("method must be auto, pgvector or exact")
    normalized = normalize_text(text) or ""
    vectors, report = embeddings.embed([normalized], cfg, conn)
    query = [float(x) for x in vectors[0]]
    out = {"provider": report.provider, "model": report.model, "warnings": report.warnings, "matches": []}
    if not conn.execute("select to_regclass('patas.patterns') is not null").fetchone()[0]:
        out["method"] = "exact"
        return out
    use_vector = method == "pgvector" or (method == "auto" and vector_extension(conn, create=False))
    if method == "pgvector" and not vector_extension(conn, create=False):
        raise ValueError("the database has no pgvector extension")
    dims = len(query)
    scored = None
    if use_vector:
        scored = _nearest_pgvector(conn, query, report.provider, report.model, k)
        if scored is None:  # the index's candidates held too few of this space: answer exactly
            use_vector = False
    if not use_vector:
        ids, mat = _space(conn, report.provider, report.model, dims)
        if ids:
            sims = mat @ np.asarray(query)
            top = np.argsort(-sims, kind="stable")[: max(k, 0) + 64]  # ids are sorted: ties by id
            scored = sorted(((float(sims[i]), ids[i]) for i in top), key=lambda t: (-t[0], t[1]))[:k]
        else:
            scored = []
    out["method"] = "pgvector" if use_vector else "exact"
    scored = [(s, pid) for s, pid in scored if s >= min_similarity]
    if not scored:
        return out
    ids = [pid for _, pid in scored]
    details = {
        r[0]: _row_dict(r)
        for r in conn.execute(
            f"select {', '.join(_COLUMNS)} from patas.patterns where pattern_id = any(%s)", (ids,)
        )
    }
    rules = _rules_of(conn, ids)
    out["matches"] = [{"similarity": round(s, 6), **details[pid], "rules": rules[pid]} for s, pid in scored]
    return out


# -- a returning campaign re-uses its old rules --------------------------------------------------
REUSE_THRESHOLD = 0.80  # centroid cosine similarity at which a new cluster re-uses a pattern's rules


def library_matches(
    conn: psycopg.Connection, clusters, provider: str, model: str, threshold: float = REUSE_THRESHOLD
) -> list[dict]:
    """The rules a returning campaign re-uses: each new cluster (``clustering.Cluster`` objects,
    centroids in the ``provider``/``model`` space) is compared, exactly, with every known pattern of
    that space (clusters and promoted rules' evidence); the rules derived from each pattern at or
    above ``threshold`` are re-used. One row per rule (the most similar pattern wins; ties by cluster
    and pattern id): cluster id, pattern id, similarity, rule id, the rule's status and reason now.

    Called at the start of stage 2, before this run's clusters enter the library, so a cluster
    is only matched with what earlier runs learned."""
    wanted = [c for c in clusters if c.centroid]
    if not wanted or not conn.execute("select to_regclass('patas.patterns') is not null").fetchone()[0]:
        return []
    ids, known = _space(conn, provider, model, len(wanted[0].centroid))
    if not ids:
        return []
    new = np.asarray([c.centroid for c in wanted], dtype=np.float64)
    sims = new @ known.T
    pairs = sorted(
        (-round(float(sims[i, j]), 6), wanted[i].cluster_id, ids[j])
        for i, j in zip(*np.nonzero(sims >= threshold), strict=True)
    )
    if not pairs:
        return []
    rules = _rules_of(conn, sorted({p for _, _, p in pairs}))
    reasons = _status_reasons(conn, sorted({r["rule_id"] for rs in rules.values() for r in rs}))
    out: dict[str, dict] = {}
    for neg, cid, pid in pairs:
        for r in rules[pid]:
            if r["rule_id"] not in out:
                out[r["rule_id"]] = {
                    "cluster_id": cid,
                    "pattern_id": pid,
                    "similarity": -neg,
                    "rule_id": r["rule_id"],
                    "status": r["status"],
                    "status_reason": reasons.get(r["rule_id"]),
                }
    return [out[k] for k in sorted(out)]


def _status_reasons(conn: psycopg.Connection, rule_ids: list[str]) -> dict[str, str]:
    if not rule_ids or conn.execute("select to_regclass('patas.rule_lifecycle') is null").fetchone()[0]:
        return {}
    return dict(
        conn.execute(
            "select rule_id, status_reason from patas.rule_lifecycle where rule_id = any(%s)", (rule_ids,)
        ).fetchall()
    )


def returning_rules(conn: psycopg.Connection, run_id: str) -> dict[str, dict]:
    """The rules stage 2 of ``run_id`` re-used for a returning campaign (its recorded library
    matches), by rule id."""
    if conn.execute("select to_regclass('patas.stage2_runs') is null").fetchone()[0]:
        return {}
    row = conn.execute("select record from patas.stage2_runs where run_id = %s", (run_id,)).fetchone()
    if row is None:
        return {}
    return {m["rule_id"]: m for m in row[0].get("library_matches", [])}


def record_pattern_stats(conn: psycopg.Connection, run_id: str) -> dict:
    """This run's success figures of every library pattern with rules (``patas.pattern_stats``):
    the distinct evaluation-window messages its rules hit (spam, ham), how many rules were derived
    from it, how many are active, and how many stage 2 re-used for a returning campaign. Rules of a
    pattern: drafted from it (any version), the rule of a ``rule:`` pattern, and the rules a
    returning campaign re-used through it in this run. Re-running a run replaces its rows."""
    ensure_schema(conn)
    missing = conn.execute(
        "select to_regclass('patas.rule_drafts') is null or to_regclass('marts.rule_hits') is null"
        " or to_regclass('patas.rule_lifecycle') is null"
    ).fetchone()[0]
    if missing:
        return {"pattern_stats": 0}
    reused = returning_rules(conn, run_id)
    reused_pairs = sorted({(m["pattern_id"], rid) for rid, m in reused.items()})
    rows = conn.execute(
        """
        with links as (
            select distinct d.pattern_id, d.rule_id, false as reused
            from patas.rule_drafts as d inner join patas.patterns as p using (pattern_id)
            union
            select p.pattern_id, substr(p.pattern_id, 6), false
            from patas.patterns as p where p.kind = 'rule'
            union
            select r.pattern_id, r.rule_id, true
            from unnest(%(pids)s::text[], %(rids)s::text[]) as r (pattern_id, rule_id)
        ),
        per_rule as (
            select pattern_id, rule_id, bool_or(reused) as reused from links group by pattern_id, rule_id
        ),
        hits as (
            select pr.pattern_id, count(distinct h.message_id) filter (where m.is_spam) as spam,
                count(distinct h.message_id) filter (where m.is_spam is false) as ham,
                count(distinct h.message_id) as hits
            from per_rule as pr
            inner join marts.rule_hits as h on h.rule_id = pr.rule_id and h.window_name = 'evaluation'
            inner join intermediate.int_messages_enriched as m on m.message_id = h.message_id
            group by pr.pattern_id
        )
        select pr.pattern_id, coalesce(max(h.hits), 0), coalesce(max(h.spam), 0), coalesce(max(h.ham), 0),
            count(*), count(*) filter (where l.status = 'active'), count(*) filter (where pr.reused)
        from per_rule as pr
        left join hits as h using (pattern_id)
        left join patas.rule_lifecycle as l on l.rule_id = pr.rule_id
        group by pr.pattern_id
        order by pr.pattern_id
        """,
        {"pids": [p for p, _ in reused_pairs], "rids": [r for _, r in reused_pairs]},
    ).fetchall()
    conn.execute("delete from patas.pattern_stats where run_id = %s", (run_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into patas.pattern_stats (pattern_id, run_id, hits, spam_hits, ham_hits, rules_derived,"
            " rules_active, rules_reused) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(pid, run_id, *figures) for pid, *figures in rows],
        )
    return {"pattern_stats": len(rows)}


def pattern_success(conn: psycopg.Connection, pattern_ids: list[str]) -> dict[str, dict]:
    """Each pattern's success over runs: hits (spam, ham) of its rules summed over the runs,
    precision (spam hits / labelled hits), nights active (runs whose rules hit), nights seen (runs
    whose stage 2 saw the pattern), rules derived and active (latest run), runs that re-used them."""
    out = {
        p: {"hits": 0, "spam_hits": 0, "ham_hits": 0, "precision": None, "nights_active": 0,
            "rules_derived": 0, "rules_active": 0, "runs_reused": 0, "runs_measured": 0}
        for p in pattern_ids
    }  # fmt: skip
    if not pattern_ids or conn.execute("select to_regclass('patas.pattern_stats') is null").fetchone()[0]:
        return out
    for pid, hits, spam, ham, nights, runs, reused, derived, active in conn.execute(
        """
        select pattern_id, sum(hits), sum(spam_hits), sum(ham_hits), count(*) filter (where hits > 0),
            count(*), count(*) filter (where rules_reused > 0),
            (array_agg(rules_derived order by recorded_at desc, run_id desc))[1],
            (array_agg(rules_active order by recorded_at desc, run_id desc))[1]
        from patas.pattern_stats where pattern_id = any(%s) group by pattern_id
        """,
        (pattern_ids,),
    ).fetchall():
        out[pid] = {
            "hits": int(hits),
            "spam_hits": int(spam),
            "ham_hits": int(ham),
            "precision": round(int(spam) / (int(spam) + int(ham)), 6) if spam + ham else None,
            "nights_active": int(nights),
            "rules_derived": int(derived),
            "rules_active": int(active),
            "runs_reused": int(reused),
            "runs_measured": int(runs),
        }
    return out
