"""The warehouse stopped under a running ``patas run``: one clear error line and a non-zero exit; a
command started while it is down: one line, exit 2; restarted, the same command succeeds and leaves
a consistent warehouse.

The server is a throwaway embedded Postgres (``patas db start`` in a temporary PATAS_HOME: initdb with
the machine's or pgserver's binaries, as an unprivileged user when the test runs as root), so the
test can stop it without touching the shared server.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from patas_processes import (
    KILL_POINTS,
    Patas,
    consistency_problems,
    input_lines,
    record_figure,
    run_log,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 2000


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture()
def home() -> Iterator[Path]:
    """A PATAS_HOME outside pytest's temporary root: when running as root the server runs as another
    user, and every new pytest session on the machine resets /tmp/pytest-of-root to mode 0700."""
    path = Path(tempfile.mkdtemp(prefix="patas_pg_restart_"))
    path.chmod(0o755)
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


def test_postgres_stopped_mid_run_then_restarted(home: Path, tmp_path: Path):
    patas = Patas("", home)  # PATAS_DATABASE_URL unset: the embedded server of this home
    started = patas("db", "start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    run = None
    try:
        corpus = tmp_path / "corpus.jsonl"
        assert patas("generate", "--rows", str(ROWS), "--seed", "3", "--out", str(corpus)).returncode == 0
        assert patas("ingest", str(corpus)).returncode == 0

        before = set((patas.home / "logs").glob("run-*.log"))
        run = patas.start("run")

        def in_stage_1() -> bool:
            log = run_log(patas.home, before)
            return run.poll() is not None or (log is not None and KILL_POINTS["stage 1"](log.read_text()))

        wait_until(in_stage_1, 600)
        assert run.poll() is None, "the run ended before stage 1 was under way"
        stop = patas("db", "stop")
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr
        t0 = time.monotonic()
        _, stderr = run.communicate(timeout=600)
        failed_after = time.monotonic() - t0
        assert run.returncode != 0
        assert "Traceback" not in stderr, stderr[-3000:]
        errors = _error_lines(stderr)
        assert len(errors) == 1, stderr[-3000:]
        assert "warehouse" in errors[0] or "connection" in errors[0], errors

        # started while the server is down: one line, exit 2 (nothing starts it: the URL is explicit)
        down = Patas(url, patas.home)("rules", "list")
        assert down.returncode == 2 and _error_lines(down.stderr) == down.stderr.strip().splitlines()
        assert "cannot reach the warehouse" in down.stderr

        t0 = time.monotonic()
        restarted = patas("db", "start")
        assert restarted.returncode == 0, restarted.stderr
        url = restarted.stdout.strip().splitlines()[-1]  # a free port again: maybe another one
        restart_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        rerun = patas("run")
        rerun_seconds = time.monotonic() - t0
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        assert consistency_problems(url, patas.home) == []
        with psycopg.connect(url) as conn:
            batches = conn.execute("select status, read_count from raw.ingest_batches").fetchall()
        assert batches == [("done", input_lines(corpus))]
        record_figure(
            "Postgres stopped mid-run (stage 1), restarted, rerun",
            runs=2,
            outcome=f"exit {run.returncode}, one line: {errors[0][:80]!r}; rerun success",
            run_ended_after_stop_s=round(failed_after, 1),
            restart_s=round(restart_seconds, 1),
            rerun_s=round(rerun_seconds, 1),
        )
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.communicate()
        patas("db", "stop")
