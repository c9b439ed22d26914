"""Embedding providers for stage 2, behind one interface, with a cache in the warehouse.

``lexical`` (the offline default) embeds the normalized text by its character n-grams: n-grams of
3–5 characters hashed into 2^18 buckets, sublinear term frequency, L2-normalized, then a fixed,
seeded sparse sign projection to 256 dimensions (L2-normalized again). It is stateless: a text
has the same vector in every run and on every machine, so cluster centroids of different nights,
the pattern library and a new text can be compared (a TF-IDF + SVD fitted per run gives every run
its own coordinates, which is what stage 2 used before). Cosine similarities survive the projection
closely (Johnson–Lindenstrauss), which is all DBSCAN and the library need.

``openai`` calls any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, TGI,
LiteLLM) through the ``openai`` package: batches of at most 2,048 texts, a timeout, retries with
exponential backoff on connection errors, timeouts, 429 and 5xx. Its vectors are cached in
``patas.embedding_cache`` by (provider, model, sha256 of the normalized text) for a TTL (7 days by
default), so a rerun on unchanged data sends nothing. The cache is an optimisation: when it cannot
be read or written the provider is called directly and the failure is recorded.

:func:`embed` returns the vectors and an :class:`EmbeddingReport` (calls, cache hits, fallbacks);
a remote provider that fails degrades to ``lexical`` with a warning, never an exception.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from python_steps import tables

PROVIDERS = ("lexical", "openai")
LEXICAL_MODEL = "char3-5-hash18-rp256-v1"
MAX_BATCH = 2048


class EmbeddingUnavailable(RuntimeError):
    """The provider could not embed (endpoint down, bad answer) after its retries."""


@dataclass(frozen=True)
class EmbeddingConfig:
    provider: str = "lexical"
    model: str | None = None  # None: the provider's default
    base_url: str | None = None
    api_key: str | None = None
    batch_size: int = MAX_BATCH
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5  # first retry waits this long, then twice as long each time
    cache_ttl_days: float = 7.0
    dimensions: int = 256  # lexical only

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(
                f"embedding provider must be one of {', '.join(PROVIDERS)}, not {self.provider!r}"
            )
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"embedding batch size must be between 1 and {MAX_BATCH}")

    @property
    def model_name(self) -> str:
        if self.provider == "lexical":
            return LEXICAL_MODEL
        return self.model or "text-embedding-3-small"

    @classmethod
    def from_settings(cls, settings) -> EmbeddingConfig:
        return cls(
            provider=settings.embeddings_provider,
            model=settings.embeddings_model,
            base_url=settings.embeddings_base_url,
            api_key=settings.embeddings_api_key,
            batch_size=settings.embeddings_batch_size,
            timeout_s=settings.embeddings_timeout_s,
            max_retries=settings.embeddings_max_retries,
            cache_ttl_days=settings.embeddings_cache_ttl_days,
        )


@dataclass
class EmbeddingReport:
    provider: str  # the provider whose vectors were used
    model: str
    requested_provider: str
    texts: int = 0
    calls: int = 0  # requests sent to a remote provider (retries included)
    cache_hits: int = 0
    cache_misses: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "provider": self.provider,
            "model": self.model,
            "requested_provider": self.requested_provider,
            "texts": self.texts,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "warnings": list(self.warnings),
        }


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- lexical -------------------------------------------------------------------------------------
_PROJECTIONS: dict[int, object] = {}
_HASH_FEATURES = 2**18


def _projection(dimensions: int):
    """A fixed sparse sign projection (hash bucket -> 4 of the output dimensions, signs +-1/2),
    generated from a constant seed: the same matrix in every process."""
    if dimensions not in _PROJECTIONS:
        from scipy import sparse

        per_row = 4
        rng = np.random.default_rng(20261205)
        cols = rng.integers(0, dimensions, size=(_HASH_FEATURES, per_row))
        signs = rng.choice(np.array([-0.5, 0.5]), size=(_HASH_FEATURES, per_row))
        rows = np.repeat(np.arange(_HASH_FEATURES), per_row)
        _PROJECTIONS[dimensions] = sparse.csr_matrix(
            (signs.ravel(), (rows, cols.ravel())), shape=(_HASH_FEATURES, dimensions)
        )
    return _PROJECTIONS[dimensions]


@functools.lru_cache(maxsize=1)
def lexical_code_version() -> str:
    """What a lexical vector depends on besides its text and dimensions: this module's source and
    the versions of the libraries that hash, weigh and project the n-grams."""
    from importlib.metadata import version  # not the libraries themselves: their import costs seconds

    versions = "|".join([*(version(d) for d in ("numpy", "scipy", "scikit-learn")), LEXICAL_MODEL])
    return hashlib.md5(versions.encode() + b"\0" + Path(__file__).read_bytes()).hexdigest()


def lexical_embed(texts: list[str], dimensions: int = 256) -> np.ndarray:
    """Stateless character n-gram vectors (float64, L2-normalized rows; zero rows for empty texts)."""
    if not texts:
        return np.zeros((0, dimensions))
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        hv = HashingVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), n_features=_HASH_FEATURES, alternate_sign=False,
            norm=None, dtype=np.float64,
        )  # fmt: skip
        x = hv.transform(texts)
        x.data = 1.0 + np.log(x.data)  # sublinear tf: a repeated n-gram does not dominate
        x = normalize(x)
        emb = np.asarray((x @ _projection(dimensions)).todense(), dtype=np.float64)
        return normalize(emb)


# -- openai-compatible ---------------------------------------------------------------------------
class OpenAIEmbedder:
    """Batches, timeout and retries with exponential backoff against ``/v1/embeddings``."""

    def __init__(self, cfg: EmbeddingConfig, report: EmbeddingReport):
        self.cfg, self.report = cfg, report
        self._client = None

    def _call(self, batch: list[str]) -> list[list[float]]:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(
                base_url=self.cfg.base_url, api_key=self.cfg.api_key or "none", max_retries=0,
                timeout=self.cfg.timeout_s,
            )  # fmt: skip
        retryable = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                     openai.InternalServerError)  # fmt: skip
        attempt = 0
        while True:
            self.report.calls += 1
            try:
                resp = self._client.embeddings.create(
                    model=self.cfg.model_name, input=batch, encoding_format="float"
                )
                break
            except retryable as exc:
                if attempt >= self.cfg.max_retries:
                    raise EmbeddingUnavailable(f"{type(exc).__name__}: {exc}") from None
                time.sleep(self.cfg.backoff_s * 2**attempt)
                attempt += 1
            except openai.OpenAIError as exc:  # 4xx other than 429: retrying will not help
                raise EmbeddingUnavailable(f"{type(exc).__name__}: {exc}") from None
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbeddingUnavailable(f"asked for {len(batch)} embeddings, got {len(data)}")
        return [list(map(float, d.embedding)) for d in data]

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.cfg.batch_size):
            out.extend(self._call(texts[i : i + self.cfg.batch_size]))
        return out


# -- cache ---------------------------------------------------------------------------------------
def _cache_read(conn, cfg: EmbeddingConfig, hashes: list[str]) -> dict[str, list[float]]:
    with conn.transaction():
        rows = conn.execute(
            f"""
            select text_hash, embedding from {tables.EMBEDDING_CACHE}
            where provider = %s and model = %s and text_hash = any(%s)
              and created_at >= now() - make_interval(secs => %s)
            """,
            (cfg.provider, cfg.model_name, hashes, cfg.cache_ttl_days * 86400.0),
        ).fetchall()
    return dict(rows)


def _cache_write(conn, cfg: EmbeddingConfig, items: list[tuple[str, list[float]]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            f"""
            insert into {tables.EMBEDDING_CACHE} (provider, model, text_hash, dimensions, embedding)
            values (%s, %s, %s, %s, %s)
            on conflict (provider, model, text_hash)
            do update set embedding = excluded.embedding, dimensions = excluded.dimensions, created_at = now()
            """,
            [(cfg.provider, cfg.model_name, h, len(v), v) for h, v in items],
        )


def embed(
    texts: list[str], cfg: EmbeddingConfig, conn: psycopg.Connection | None = None
) -> tuple[np.ndarray, EmbeddingReport]:
    """L2-normalized vectors for ``texts`` (normalized texts), in order, and what it took.

    A remote provider goes through the cache (when ``conn`` is given); any failure of the provider
    degrades the whole call to ``lexical`` (one space per run) with a warning in the report."""
    report = EmbeddingReport(cfg.provider, cfg.model_name, cfg.provider, texts=len(texts))
    if cfg.provider == "lexical" or not texts:
        return lexical_embed(texts, cfg.dimensions), report
    hashes = [text_hash(t) for t in texts]
    cached: dict[str, list[float]] = {}
    if conn is not None:
        try:
            tables.ensure_all(conn)
            cached = _cache_read(conn, cfg, sorted(set(hashes)))
        except psycopg.Error as exc:
            report.warnings.append(
                f"embedding cache unavailable, calling the provider directly: {exc}".strip()
            )
            conn = None
    todo: dict[str, str] = {}
    for h, t in zip(hashes, texts, strict=True):
        if h not in cached and h not in todo:
            todo[h] = t
    report.cache_hits = len(set(hashes)) - len(todo)
    report.cache_misses = len(todo)
    if todo:
        try:
            fresh = OpenAIEmbedder(cfg, report).embed(list(todo.values()))
        except EmbeddingUnavailable as exc:
            report.warnings.append(f"embeddings provider {cfg.provider!r} unavailable, used lexical: {exc}")
            report.provider, report.model = "lexical", LEXICAL_MODEL
            return lexical_embed(texts, cfg.dimensions), report
        new = dict(zip(todo, fresh, strict=True))
        cached.update(new)
        if conn is not None:
            try:
                _cache_write(conn, cfg, sorted(new.items()))
            except psycopg.Error as exc:
                report.warnings.append(f"embedding cache not written: {exc}".strip())
    vectors = np.asarray([cached[h] for h in hashes], dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms), report
