"""Stage-1 speed benchmark: generated corpus -> ingest -> stage-1 dbt models, then one extra day.

    .venv/bin/python -m patas.bench.stage1 --rows 100000 1000000

For each size: a fresh database on the PATAS server (PATAS_DATABASE_URL or the embedded one),
``generate_corpus(rows, seed, ...)`` over 30 days, ``ingest_file``, ``dbt seed`` of the reference
seeds, then the timed part: ``dbt run`` of the stage-1 models (staging -> intermediate -> stage-1
marts; data tests not included), then one extra day of data (rows / 30 messages, another seed)
ingested and the incremental ``dbt run`` timed, then a re-run on unchanged data. Peak memory:
the largest peak RSS (VmHWM, includes the shared buffers a backend touched) of the database's
server processes (backends and parallel workers), sampled while dbt runs, and the peak RSS of
this Python process and of its children (dbt). Prints a JSON summary and writes it to
benchmarks/results/stage1.json (--out). --unique-texts appends a numbered reference to every
text (the worst case for staging's and the n-gram probe's deduplication); --keep-database
leaves the database for profiling single models.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg

from patas.embedded import database_url
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.settings import PROJECT_ROOT as ROOT
from python_steps.settings import dbt_env, url_parts

STAGE1_MODELS = (
    "stg_raw__messages",
    "int_messages_normalized",
    "int_message_signals_extracted",
    "int_hosts_resolved",
    "int_messages_enriched",
    "int_messages_windowed",
    "signal_label_counts",
    "stage1_candidates",
    "stage1_uncovered_spam",
)
SEEDS = ("public_suffixes", "stop_words", "link_shorteners")


def _db_url(server_url: str, name: str) -> str:
    p = url_parts(server_url)
    auth = p.user + (f":{p.password}" if p.password else "")
    return f"postgresql://{auth}@{p.host}:{p.port}/{name}"


class BackendMemory:
    """Samples the peak RSS of the server processes serving one database."""

    def __init__(self, url: str, dbname: str) -> None:
        self.url, self.dbname = url, dbname
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                pids = [
                    r[0]
                    for r in conn.execute(
                        "select pid from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                        (self.dbname,),
                    )
                ]
                for pid in pids:
                    try:
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                            if line.startswith("VmHWM:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                    except OSError:
                        pass
                time.sleep(0.2)


def _dbt(url: str, workdir: Path, *args: str) -> dict:
    target = workdir / "target"
    res = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--target-path",
            str(target),
            "--log-path",
            str(workdir / "logs"),
        ],
        cwd=ROOT,
        env=dbt_env(url),
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{res.stdout[-5000:]}\n{res.stderr[-2000:]}")
    return json.loads((target / "run_results.json").read_text())


def _model_times(results: dict) -> dict[str, float]:
    return {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results["results"]}


def _make_texts_unique(path: Path, start: int) -> int:
    """Append ' ref <n // 1000>,<n % 1000>' to every text (n counts on from ``start``): every raw
    text and token array unique, template signatures unchanged (numbers are masked), and no
    phone, short code or money entity added. Returns the next n."""
    lines = path.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as fh:
        for n, line in enumerate(lines, start):
            obj = json.loads(line)
            obj["text"] = f"{obj['text']} ref {n // 1000},{n % 1000:03d}"
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return start + len(lines)


def bench(
    rows: int,
    seed: int,
    server_url: str,
    workdir: Path,
    keep_database: bool = False,
    unique_texts: bool = False,
) -> dict:
    name = f"patas_bench_stage1_{rows}"
    admin = _db_url(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f"create database \"{name}\" template template0 encoding 'UTF8' locale 'C'")
    url = _db_url(server_url, name)
    out: dict = {"rows": rows, "unique_texts": unique_texts}
    corpus = workdir / f"corpus_{rows}.jsonl"
    extra = workdir / f"extra_day_{rows}.jsonl"
    t = time.perf_counter()
    generate_corpus(rows, seed, corpus, start="2026-01-01", days=30)
    generate_corpus(max(rows // 30, 1), seed + 1, extra, start="2026-01-31", days=1)
    if unique_texts:
        _make_texts_unique(extra, _make_texts_unique(corpus, 0))
    out["generate_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    ingest_file(url, corpus)
    out["ingest_s"] = round(time.perf_counter() - t, 2)
    _dbt(url, workdir, "seed", "--select", *SEEDS)

    with BackendMemory(admin, name) as mem:
        t = time.perf_counter()
        full = _dbt(url, workdir, "run", "--select", *STAGE1_MODELS)
        out["stage1_full_s"] = round(time.perf_counter() - t, 2)
    out["stage1_full_models_s"] = _model_times(full)
    out["stage1_full_backend_peak_rss_mb"] = round(mem.peak_kb / 1024, 1)

    ingest_file(url, extra)
    with BackendMemory(admin, name) as mem:
        t = time.perf_counter()
        inc = _dbt(url, workdir, "run", "--select", *STAGE1_MODELS)
        out["incremental_extra_day_s"] = round(time.perf_counter() - t, 2)
    out["incremental_models_s"] = _model_times(inc)
    out["incremental_backend_peak_rss_mb"] = round(mem.peak_kb / 1024, 1)

    t = time.perf_counter()
    rerun = _dbt(url, workdir, "run", "--select", *STAGE1_MODELS)
    out["rerun_unchanged_s"] = round(time.perf_counter() - t, 2)
    out["rerun_models_s"] = _model_times(rerun)

    with psycopg.connect(url) as conn:
        out["signal_rows"] = conn.execute(
            "select count(*) from intermediate.int_message_signals_extracted"
        ).fetchone()[0]
        out["signals"] = conn.execute("select count(*) from marts.signal_label_counts").fetchone()[0]
        out["candidates"] = conn.execute("select count(*) from marts.stage1_candidates").fetchone()[0]
    if keep_database:
        out["kept_database"] = name
    else:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'drop database if exists "{name}" with (force)')
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Stage-1 speed benchmark")
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the benchmark database in place (for profiling single models afterwards)",
    )
    ap.add_argument(
        "--unique-texts",
        action="store_true",
        help="make every message text unique (a numbered suffix): the worst case for deduplication",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stage1.json")
    args = ap.parse_args(argv)
    server_url = database_url()
    results = []
    with tempfile.TemporaryDirectory(prefix="patas_bench_stage1_") as tmp:
        for rows in args.rows:
            r = bench(rows, args.seed, server_url, Path(tmp), args.keep_database, args.unique_texts)
            results.append(r)
            print(json.dumps(r), flush=True)
    summary = {
        "results": results,
        "cpu_count": os.cpu_count(),
        "python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "machine_memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    if len(results) >= 2:
        a, b = results[0], results[-1]
        summary["growth"] = round(b["stage1_full_s"] / a["stage1_full_s"], 2)
        summary["rows_ratio"] = round(b["rows"] / a["rows"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
