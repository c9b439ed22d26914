"""Pipeline runs started through the API: launch the worker, report a run's state.

``start_run`` starts ``python -m patas.service.worker`` and returns once the worker holds the run
lock (or raises :class:`RunBusy` when another run holds it). The worker outlives a restart of the
server (own session); its log is ``$PATAS_HOME/api_runs/<run_id>.log``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from patas.service.db import run_lock_held
from python_steps.settings import Settings


class RunBusy(RuntimeError):
    """Another run holds the PATAS run lock."""


class RunStartError(RuntimeError):
    pass


HANDSHAKE_SECONDS = 120.0


def start_run(
    kind: str, *, requested_by: str, params: dict[str, Any], settings: Settings, url: str, force: bool = False
) -> tuple[str, subprocess.Popen]:
    """Start a worker; return (run id, process) once it holds the run lock (the Dagster run's id),
    or once it has recorded a run with nothing new (``force``: run the graph all the same)."""
    log_dir = settings.home / "api_runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.log"
    env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(settings.home)}
    cmd = [
        sys.executable,
        "-m",
        "patas.service.worker",
        "--kind",
        kind,
        "--requested-by",
        requested_by,
        "--params",
        json.dumps(params),
        *(["--force"] if force else []),
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
    assert proc.stdout is not None
    line = _read_line(proc, HANDSHAKE_SECONDS)
    proc.stdout.close()
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    try:
        answer = json.loads(line) if line else {}
    except json.JSONDecodeError:
        answer = {}
    if answer.get("status") == "busy":
        raise RunBusy(answer.get("detail") or "another PATAS run holds the warehouse lock")
    if answer.get("status") != "started" or not answer.get("run_id"):
        raise RunStartError(f"the run worker did not start (log: {log_path.name})")
    return answer["run_id"], proc


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            return ""
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace")


def run_state(
    conn: psycopg.Connection, run_id: str, settings: Settings, *, ask_dagster: bool = True
) -> dict[str, Any] | None:
    """A run's state: from ``patas.api_runs`` for API runs; else the run register and the Dagster
    instance (runs started by ``patas run`` or the UI). None when no one knows the id."""
    out: dict[str, Any] | None = None
    if conn.execute("select to_regclass('patas.api_runs') is not null").fetchone()[0]:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "select run_id, kind, requested_by, params, status, started_at, finished_at, summary, error, pid "
                "from patas.api_runs where run_id = %s",
                (run_id,),
            ).fetchone()
        if row is not None:
            out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "pid"}
            out["source"] = "api"
            if out["status"] == "running" and not _worker_alive(row["pid"], conn):
                out["status"] = "failure"
                out["error"] = "the run worker ended without recording a result (killed?)"
    if conn.execute("select to_regclass('patas.runs') is not null").fetchone()[0]:
        row = conn.execute(
            "select split_mode, windows, started_at from patas.runs where run_id = %s", (run_id,)
        ).fetchone()
        if row is not None:
            out = out or {"run_id": run_id, "source": "pipeline"}
            out["windows"] = row[1]
            out.setdefault("started_at", row[2].isoformat())
    dagster_status = _dagster_status(run_id, settings) if ask_dagster else None
    if dagster_status is not None:
        out = out or {"run_id": run_id, "source": "dagster"}
        out["dagster_status"] = dagster_status
        if out.get("source") != "api":
            out["status"] = {"SUCCESS": "success", "FAILURE": "failure", "CANCELED": "failure"}.get(
                dagster_status, "running"
            )
    return out


def _worker_alive(pid: int | None, conn: psycopg.Connection) -> bool:
    """Whether a run's worker process is still there (without /proc: whether some run holds the lock)."""
    proc = Path("/proc")
    if pid is None or not proc.is_dir():
        return run_lock_held(conn)
    try:
        cmdline = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"patas.service.worker" in cmdline


def _dagster_status(run_id: str, settings: Settings) -> str | None:
    """The run's status on the Dagster instance ``patas ui`` shows (None: not there)."""
    try:
        uuid.UUID(run_id)
    except ValueError:
        return None
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    if not (home / "dagster.yaml").exists():
        return None
    try:
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = instance.get_run_by_id(run_id)
            return None if run is None else run.status.value
    except Exception:  # the instance is a convenience here; the API's own table is the record
        return None
