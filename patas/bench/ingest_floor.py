"""Ingestion throughput next to its floor: a bare COPY of the same rows into an unindexed table.

    .venv/bin/python -m patas.bench.ingest_floor --rows 1000000 --seed 42 [--repeat 2] [--keep]

Generates ``--rows`` messages, creates a fresh database on the warehouse server, then times
``ingest_file`` (parse, quarantine checks, COPY into ``raw.messages`` with its indexes, batch
bookkeeping) and a bare ``COPY`` of the same rows, already formatted, into an unindexed table with
the same columns (created beforehand, like ``raw.messages``). Also times a re-ingest of the same
file (every row a duplicate: the staging path). Prints JSON; ``--out`` also writes it to a file.
With ``--repeat N`` each timing is the best of N (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from patas.embedded import database_url
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.ingest.parsing import DEFAULT_MAPPER, _open_source, _parse_jsonl
from python_steps.settings import url_parts

FLOOR_TABLE = """
create table floor_messages (
    source_line bigint, external_id text, event_at timestamptz, text text, is_spam boolean, meta jsonb,
    tas_action text, user_complaint boolean, unbanned boolean, batch_id bigint
)
"""
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value).translate(_ESCAPES)


def write_copy_file(jsonl: Path, out: Path) -> tuple[int, int]:
    """The rows ingestion would load, as COPY text (the floor's input). Returns (rows, text bytes)."""
    rows = text_bytes = 0
    with open(out, "w", encoding="utf-8") as fh:

        def emit(row: tuple[Any, ...] | None, *_: Any) -> None:
            nonlocal rows, text_bytes
            if row is not None:
                fh.write("\t".join(_copy_text(v) for v in (*row, 1)) + "\n")
                rows += 1
                text_bytes += len(row[3].encode())

        source = _open_source(jsonl)
        try:
            _parse_jsonl(source, emit, DEFAULT_MAPPER, 65536)
        finally:
            source.close()
    return rows, text_bytes


def _with_db(url: str, dbname: str) -> str:
    p = url_parts(url)
    auth = p.user + (f":{p.password}" if p.password else "")
    return f"postgresql://{auth}@{p.host}:{p.port}/{dbname}"


def time_floor(url: str, copy_file: Path) -> float:
    with psycopg.connect(url) as conn:
        conn.execute("drop table if exists floor_messages")
        conn.execute(FLOOR_TABLE)
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("copy floor_messages from stdin") as cp, open(copy_file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                cp.write(chunk)
        conn.commit()
        return time.perf_counter() - start


def time_ingest(url: str, jsonl: Path) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists raw cascade")
        # the schema-version record too, or the next ingest would take raw for migrated already
        conn.execute("drop table if exists patas.schema_migrations")
    start = time.perf_counter()
    first = ingest_file(url, jsonl)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    again = ingest_file(url, jsonl)
    reingest_s = time.perf_counter() - start
    assert first.loaded == first.read and again.loaded == 0 and again.duplicate == first.read, (first, again)
    return ingest_s, reingest_s


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files and the database")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)

    server = database_url()
    dbname = f"patas_bench_{os.getpid()}"
    admin = _with_db(server, "postgres")
    workdir = Path(tempfile.mkdtemp(prefix="patas_bench_"))
    jsonl, copy_file = workdir / "corpus.jsonl", workdir / "rows.copy"

    start = time.perf_counter()
    generate_corpus(args.rows, args.seed, jsonl)
    generate_s = time.perf_counter() - start
    rows, text_bytes = write_copy_file(jsonl, copy_file)

    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{dbname}" with (force)')
        c.execute(f"create database \"{dbname}\" template template0 encoding 'UTF8'")
    url = _with_db(server, dbname)
    try:
        floors, ingests, reingests = [], [], []
        for _ in range(args.repeat):
            floors.append(time_floor(url, copy_file))
            ingest_s, reingest_s = time_ingest(url, jsonl)
            ingests.append(ingest_s)
            reingests.append(reingest_s)
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'drop database if exists "{dbname}" with (force)')
            jsonl.unlink(missing_ok=True)
            copy_file.unlink(missing_ok=True)
            workdir.rmdir()

    ingest_s, floor_s = min(ingests), min(floors)
    result = {
        "rows": rows,
        "ingest_s": round(ingest_s, 2),
        "copy_floor_s": round(floor_s, 2),
        "ratio": round(ingest_s / floor_s, 2),
        "rows_per_s": round(rows / ingest_s),
        "reingest_s": round(min(reingests), 2),
        "generate_s": round(generate_s, 2),
        "file_bytes": jsonl.stat().st_size if args.keep else None,
        "avg_text_bytes": round(text_bytes / max(rows, 1), 1),
        "cpus": os.cpu_count(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.keep:
        print(f"kept {workdir} and database {dbname}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
