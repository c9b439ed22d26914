"""The HTTP service under test: a real `patas serve` process on 127.0.0.1 over a real warehouse.

One server per session, on a database of its own (``patas_svc_<pid>``) and a PATAS_HOME in a temp
folder (Dagster instance, exports, API ingest files and run logs). Keys are created with the CLI,
as a user would. ``mined`` ingests a generated corpus through the API and runs the pipeline through
``POST /patterns/mine``: the later tests read the rules that run produced.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from svc_harness import MAX_BODY_MB, PATAS, Service

from patas.bench.harness import fresh_database
from python_steps.bench.generate import generate_corpus

CORPUS_ROWS = 6000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def service(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("patas_home")
    with fresh_database(server_url, f"patas_svc_{os.getpid()}") as url:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update(
            PATAS_DATABASE_URL=url, PATAS_HOME=str(home), PATAS_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1"
        )
        port = _free_port()
        svc = Service(f"http://127.0.0.1:{port}", url, home, env, home / "serve.log")
        for role in ("reader", "operator", "admin"):
            svc.keys[role] = svc.cli("apikey", "create", f"test-{role}", "--role", role).stdout.strip()
        with open(svc.log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    PATAS,
                    "serve",
                    "--port",
                    str(port),
                    "--max-body-mb",
                    str(MAX_BODY_MB),
                    "--match-reload-seconds",
                    "0",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if svc.call("GET", "/api/v1/health", timeout=5).status == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("patas serve did not start:\n" + svc.log_path.read_text()[-3000:])
                time.sleep(0.3)
            yield svc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            _wait_for_workers(url)


def _wait_for_workers(url: str) -> None:
    """Let a run worker started by a test finish before its database is dropped."""
    import psycopg

    from patas.service.db import run_lock_held

    deadline = time.monotonic() + 600
    with psycopg.connect(url, autocommit=True) as conn:
        while run_lock_held(conn) and time.monotonic() < deadline:
            time.sleep(1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    generate_corpus(CORPUS_ROWS, 23, path)
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def mined(service: Service, corpus: list[dict]) -> dict:
    """The corpus ingested through the API and one pipeline run through POST /patterns/mine."""
    for start in range(0, len(corpus), 2000):
        r = service.call(
            "POST",
            "/api/v1/messages/ingest",
            role="operator",
            json_body={"messages": corpus[start : start + 2000]},
        )
        assert r.status == 200, r.body
        assert r.body["loaded"] == len(corpus[start : start + 2000]), r.body
    r = service.call("POST", "/api/v1/patterns/mine", role="operator")
    assert r.status == 202, r.body
    run_id = r.body["run_id"]
    # While the run holds the run lock, another run is refused.
    busy = service.call("POST", "/api/v1/patterns/mine", role="operator")
    assert busy.status == 409 and busy.body["error"] == "run_in_progress", busy.body
    state = service.wait_run(run_id)
    assert state["status"] == "success", state
    return state
