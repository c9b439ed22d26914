"""What both benchmarks need: cached corpora, fresh databases, dbt calls, the machine's description."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psutil
import psycopg

from python_steps.settings import PROJECT_ROOT, dbt_env, url_parts

DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def with_database(url: str, dbname: str) -> str:
    p = url_parts(url)
    auth = p.user + (f":{p.password}" if p.password else "")
    return f"postgresql://{auth}@{p.host}:{p.port}/{dbname}"


@contextlib.contextmanager
def fresh_database(server_url: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``, dropped afterwards unless ``keep``.

    Named ``name``, prefixed by the database ``server_url`` names unless that is ``postgres``: two
    sessions (or worktrees) that point their settings at different databases of one server never
    create, or drop, each other's benchmark databases."""
    base = url_parts(server_url).dbname
    if base != "postgres":
        name = f"{base}__{name}"
    if not DB_NAME_RE.match(name):
        raise ValueError(f"not a safe database name: {name!r}")
    admin = with_database(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        # A database name cannot be a bound parameter; DB_NAME_RE above makes it a plain identifier.
        c.execute(f'drop database if exists "{name}" with (force)')
        c.execute(f"create database \"{name}\" template template0 encoding 'UTF8'")
    try:
        yield with_database(server_url, name)
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'drop database if exists "{name}" with (force)')


def server_pid(url: str) -> int | None:
    """The Postgres postmaster's pid when the server runs on this machine and is visible, else None."""
    try:
        with psycopg.connect(url) as c:
            backend = c.execute("select pg_backend_pid()").fetchone()[0]
            parent = psutil.Process(backend).ppid()  # while the backend is alive
        psutil.Process(parent).memory_full_info()
        return parent
    except (psutil.Error, psycopg.Error):
        return None


def cached_corpus(rows: int, seed: int, cache_dir: Path) -> tuple[Path, bool]:
    """A generated corpus of ``rows`` messages (seed ``seed``), written once and reused.

    Returns the path and whether it was generated now. Written to a temporary name first, so an
    interrupted generation never leaves a truncated corpus behind.
    """
    from python_steps.bench.generate import generate_corpus

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"corpus_{rows}_{seed}.jsonl"
    if path.exists():
        return path, False
    tmp = path.with_suffix(f".tmp{os.getpid()}.jsonl")
    generate_corpus(rows, seed, tmp)
    tmp.replace(path)
    return path, True


def dbt_executable() -> str:
    return str(Path(sys.executable).parent / "dbt")


def run_dbt(
    url: str, args: Sequence[str], *, work_dir: Path, dbt_vars: Mapping[str, object] | None = None
) -> float:
    """Run ``dbt <args>`` against ``url`` and return its wall time in seconds.

    dbt writes its target and logs under ``work_dir`` (not the shared ``target/``), so a benchmark
    never races another dbt invocation in the same work tree. Raises with the output's tail on failure.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dbt_env(url)
    env.update(DBT_TARGET_PATH=str(work_dir / "target"), DBT_LOG_PATH=str(work_dir / "logs"))
    cmd = [dbt_executable(), *args]
    if dbt_vars is not None:
        cmd += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-40:])
        raise RuntimeError(f"dbt {' '.join(args)} failed (exit {res.returncode}):\n{tail}")
    return elapsed


def dbt_node_timings(work_dir: Path, top: int = 5) -> dict[str, object]:
    """From the last dbt call's ``run_results.json``: dbt's own elapsed time (models and tests
    running, without start-up) and the slowest nodes."""
    path = work_dir / "target" / "run_results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text())
    nodes = sorted(results["results"], key=lambda r: (-r["execution_time"], r["unique_id"]))
    return {
        "dbt_elapsed_s": round(results["elapsed_time"], 3),
        "dbt_nodes": len(nodes),
        "slowest_nodes": [
            {"node": r["unique_id"].split(".", 2)[-1], "seconds": round(r["execution_time"], 3)}
            for r in nodes[:top]
        ],
    }


def machine_info(url: str | None = None) -> dict[str, object]:
    """CPU, memory, OS, Python and (when reachable) Postgres version, for the benchmark record."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, object] = {
        "cpu": cpu,
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    if url:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url) as c:
            info["postgres"] = c.execute("show server_version").fetchone()[0]
            settings = dict(
                c.execute(
                    "select name, current_setting(name) from pg_settings where name = any(%s)",
                    (
                        [
                            "shared_buffers",
                            "work_mem",
                            "max_parallel_workers_per_gather",
                            "synchronous_commit",
                        ],
                    ),
                ).fetchall()
            )
            info["postgres_settings"] = dict(sorted(settings.items()))
    return info


def code_version() -> dict[str, object]:
    """The commit measured, and the tracked files that differed from it (others work in this tree)."""

    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        return res.stdout.rstrip("\n")

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"git_commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted_changes": sorted(changed)}


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
