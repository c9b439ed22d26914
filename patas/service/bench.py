"""Measure a running ``patas serve``: ``/rules/match`` latency and throughput, API ingest speed.

    python -m patas.service.bench --base http://127.0.0.1:8000 --key "$KEY" --corpus corpus.jsonl

Single messages: ``--single`` sequential requests on one keep-alive connection, each a random text
of the corpus; p50 / p99 / max of the client-side wall time. Batches: ``--batches`` requests of
``--batch-size`` texts; messages per second (client wall time) and the server's own matching time.
With ``--ingest N``: N requests of 5,000 new messages (ids made unique) to ``/messages/ingest``.
Not a test: numbers depend on the machine; ``docs/benchmarks.md`` records them with the command.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import time
import uuid
from urllib.parse import urlsplit


def _conn(base: str) -> http.client.HTTPConnection:
    u = urlsplit(base)
    return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=600)


def _post(conn: http.client.HTTPConnection, path: str, key: str, body: dict) -> dict:
    data = json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"X-API-Key": key, "Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    if resp.status != 200:
        raise SystemExit(f"{path}: HTTP {resp.status}: {payload}")
    return payload


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m patas.service.bench")
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--key", required=True)
    ap.add_argument("--corpus", required=True, help="JSONL with a text field per line")
    ap.add_argument("--single", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--ingest", type=int, default=0, help="ingest requests of 5,000 messages")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    with open(args.corpus, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    texts = [r["text"] for r in rows]
    rng = random.Random(args.seed)
    conn = _conn(args.base)
    path = "/api/v1/rules/match"
    first = _post(conn, path, args.key, {"text": texts[0]})  # loads the rule set
    out: dict = {
        "active_rules": first["ruleset"]["rule_count"],
        "skipped_rules": len(first["ruleset"]["skipped"]),
    }

    lat, server, hits = [], [], 0
    for _ in range(args.single):
        t0 = time.perf_counter()
        r = _post(conn, path, args.key, {"text": rng.choice(texts)})
        lat.append(time.perf_counter() - t0)
        server.append(r["seconds"])
        hits += bool(r["results"][0]["matched"])
    out["single"] = {
        "requests": args.single,
        "p50_ms": round(1000 * statistics.median(lat), 2),
        "p99_ms": round(1000 * _pct(lat, 0.99), 2),
        "max_ms": round(1000 * max(lat), 2),
        "server_match_p50_ms": round(1000 * statistics.median(server), 2),
        "matched_share": round(hits / args.single, 3),
    }

    wall, server_s, n = 0.0, 0.0, 0
    for _ in range(args.batches):
        batch = [rng.choice(texts) for _ in range(args.batch_size)]
        t0 = time.perf_counter()
        r = _post(conn, path, args.key, {"messages": batch})
        wall += time.perf_counter() - t0
        server_s += r["seconds"]
        n += len(batch)
    out["batch"] = {
        "requests": args.batches,
        "batch_size": args.batch_size,
        "messages_per_second": round(n / wall, 1),
        "server_match_messages_per_second": round(n / server_s, 1),
    }

    if args.ingest:
        wall, loaded = 0.0, 0
        for _ in range(args.ingest):
            tag = uuid.uuid4().hex[:8]
            batch = [
                {**r, "id": f"bench-{tag}-{i}"} for i, r in enumerate(rng.sample(rows, min(5000, len(rows))))
            ]
            t0 = time.perf_counter()
            r = _post(conn, "/api/v1/messages/ingest", args.key, {"messages": batch})
            wall += time.perf_counter() - t0
            loaded += r["loaded"]
        out["ingest"] = {"requests": args.ingest, "messages_per_second": round(loaded / wall, 1)}
    print(json.dumps(out, indent=2))
    conn.close()
    return out


if __name__ == "__main__":
    main()
