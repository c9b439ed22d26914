"""Pattern-library match latency with N stored patterns (default 10,000), on a throw-away database.

    .venv/bin/python benchmarks/library_match_latency.py --patterns 10000 --queries 200 \
        --out benchmarks/results/library_match_10000.json

The patterns are lexical-space centroids (256 dimensions) of generated spam and ham messages (groups
of 5 consecutive messages of a 5 x N corpus), stored through the library's own writer. Timed: one
``patas patterns match TEXT`` lookup (``library.match``: normalize and embed the text, nearest k=5
with their rules), and stage 2's start (``library.library_matches``: 40 new cluster centroids
against the whole library), each call on its own. Both the exact path and, where the server has
pgvector, the indexed one. The database (PATAS_DATABASE_URL's server, a new database
``patas_bench_library_<pid>``) is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from patas.bench.harness import fresh_database
from python_steps import tables
from python_steps.bench.generate import generate_corpus
from python_steps.mining import library
from python_steps.mining.clustering import Cluster
from python_steps.mining.embeddings import LEXICAL_MODEL, EmbeddingConfig, lexical_embed
from python_steps.text.normalize import normalize_text


def _percentiles(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "calls": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
        "max_ms": round(ms[-1], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.patterns < 1 or args.queries < 1:
        ap.error("--patterns and --queries must be at least 1")
    server = os.environ.get("PATAS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "c.jsonl"
        generate_corpus(5 * args.patterns + args.queries, 11, corpus)
        texts = [normalize_text(json.loads(line)["text"]) or "" for line in corpus.open(encoding="utf-8")]
    stored, queries = texts[: 5 * args.patterns], texts[5 * args.patterns :]
    vectors = lexical_embed(stored).reshape(args.patterns, 5, -1).mean(axis=1)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    clusters = []
    for i, v in enumerate(vectors):
        c = Cluster(f"c_{i:06d}", [i])
        c.centroid = [round(float(x), 9) for x in v]
        clusters.append(c)
    cfg = EmbeddingConfig()
    result: dict = {"benchmark": "library_match", "patterns": args.patterns, "dimensions": vectors.shape[1]}
    with fresh_database(server, f"patas_bench_library_{os.getpid()}") as url, psycopg.connect(url) as conn:
        tables.ensure_all(conn)
        t0 = time.perf_counter()
        library.record_clusters(conn, clusters, "bench", "lexical", LEXICAL_MODEL)
        conn.commit()
        result["load_s"] = round(time.perf_counter() - t0, 2)
        methods = ["exact"] + (["pgvector"] if library.vector_extension(conn, create=False) else [])
        result["pgvector_available"] = "pgvector" in methods
        found: dict[str, list[list[str]]] = {}
        for method in methods:
            library.match(conn, queries[0], cfg, method=method)  # warm-up
            times = []
            found[method] = []
            for q in queries[: args.queries]:
                t = time.perf_counter()
                out = library.match(conn, q, cfg, k=5, method=method)
                times.append(time.perf_counter() - t)
                found[method].append([m["pattern_id"] for m in out["matches"]])
            result[f"match_{method}"] = _percentiles(times)
        if "pgvector" in found:  # HNSW is approximate: how many of the exact nearest 5 it returned
            shared = sum(len(set(a) & set(b)) for a, b in zip(found["exact"], found["pgvector"], strict=True))
            result["pgvector_recall_at_5"] = round(shared / max(1, sum(len(a) for a in found["exact"])), 4)
        rng = np.random.default_rng(3)
        times = []
        for _ in range(max(1, args.queries // 10)):
            picked = [
                clusters[int(i)]
                for i in rng.choice(len(clusters), size=min(40, len(clusters)), replace=False)
            ]
            t = time.perf_counter()
            library.library_matches(conn, picked, "lexical", LEXICAL_MODEL)
            times.append(time.perf_counter() - t)
        result["stage2_start_40_clusters"] = _percentiles(times)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "shared": True,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
