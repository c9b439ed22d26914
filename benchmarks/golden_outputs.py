#!/usr/bin/env python3
"""Golden outputs: the rules, metrics and export files one checkout's `patas run` produces.

Runs a checkout's own ``patas`` command (its ``.venv``) as a user would, on a fresh database, and
writes what the run produced as plain files: the exports of every format, and the PATAS tables that
hold rules and metrics (timestamps and run ids left out, rows sorted). Two such folders from two
checkouts are then compared file by file (``--compare A B``): the redesign keeps them byte-identical.

    python benchmarks/golden_outputs.py --checkout . --server postgresql://postgres@127.0.0.1:5432/postgres \
        --out /tmp/golden_new
    python benchmarks/golden_outputs.py --compare /tmp/golden_old /tmp/golden_new

Only the standard library and psycopg: it must run against old checkouts too.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

TABLES = (
    "patas.rule_drafts",
    "patas.rule_signal_clauses",
    "patas.rule_lifecycle",
    "patas.rule_audit",
    "patas.rule_metrics_history",
    "patas.ruleset_members",
    "marts.rule_evaluations",
    "marts.ruleset_evaluation",
    "marts.rule_overlaps",
    "marts.active_rules",
    "marts.stage1_candidates",
)
VOLATILE_COLUMN = re.compile(r"(^|_)(run_id|at|time|timestamp|seconds)$|_at$|^created|^updated|^evaluated")
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # run ids inside JSON
ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _dump_table(conn: psycopg.Connection, table: str, out: Path) -> None:
    schema, name = table.split(".")
    cols = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, name),
    ).fetchall()
    if not cols:
        out.write_text("(absent)\n")
        return
    keep = [c for c, t in cols if "timestamp" not in t and not VOLATILE_COLUMN.search(c)]
    select = ", ".join(f'"{c}"::text' for c in keep)
    rows = conn.execute(f"select {select} from {schema}.{name}").fetchall()  # names from the catalog
    lines = sorted(json.dumps(r, ensure_ascii=False) for r in rows)
    out.write_text(json.dumps(keep) + "\n" + "\n".join(lines) + "\n")


def capture(checkout: Path, server: str, data: Path | None, out: Path, dbname: str, runs: int = 1) -> None:
    patas = checkout / ".venv" / "bin" / "patas"
    out.mkdir(parents=True, exist_ok=True)
    admin = _with_db(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{dbname}" with (force)')
        c.execute(f"create database \"{dbname}\" template template0 encoding 'UTF8'")
    url = _with_db(server, dbname)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": home}
        env.pop("PATAS_PROFILE", None)

        def patas_cmd(*args: str) -> str:
            r = subprocess.run([str(patas), *args], env=env, cwd=checkout, capture_output=True, text=True)
            if r.returncode not in (0,):
                sys.exit(f"patas {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
            return r.stdout

        if data is None:
            data = Path(home) / "corpus.jsonl"
            patas_cmd("generate", "--rows", "20000", "--seed", "7", "--out", str(data))
        patas_cmd("ingest", str(data))
        for _ in range(runs):  # runs after the first: nothing new ingested (re-used or recomputed steps)
            patas_cmd("run")
        for fmt in ("sql", "rol", "json"):
            text = patas_cmd("rules", "export", "--format", fmt)
            (out / f"export.{fmt}").write_text(ISO_TS.sub("<ts>", text))
    with psycopg.connect(url) as conn:
        for table in TABLES:
            _dump_table(conn, table, out / f"{table}.jsonl")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{dbname}" with (force)')


def _stable(path: Path) -> list[str]:
    """A capture's lines with run ids and timestamps masked (they differ between any two runs)."""
    return ISO_TS.sub("<ts>", RUN_ID.sub("<run>", path.read_text())).splitlines(keepends=True)


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    differ = []
    for n in names:
        same = (a / n).exists() and (b / n).exists() and _stable(a / n) == _stable(b / n)
        print(f"{'same   ' if same else 'DIFFERS'}  {n}")
        if not same:
            differ.append(n)
            if (a / n).exists() and (b / n).exists():
                sys.stdout.writelines(
                    list(difflib.unified_diff(_stable(a / n), _stable(b / n), str(a / n), str(b / n)))[:40]
                )
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, default=Path("."))
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--data", type=Path, default=None, help="A message file; default: generated 20k, seed 7.")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dbname", default="patas_golden")
    ap.add_argument("--runs", type=int, default=1, help="`patas run` this many times (after one ingest).")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        ap.error("--out is required")
    capture(args.checkout.resolve(), args.server, args.data, args.out, args.dbname, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
