"""The great-expectations helper process (python_steps.quality.suite_process): the gates' suites
give the same verdicts and data docs there as in this process, its errors come back, a helper that
died is replaced by this process, and no helper outlives its block."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psycopg
import pytest

from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.quality import gates, suite_process

pytestmark = [pytest.mark.integration]


@pytest.fixture()
def no_ge_here(monkeypatch):
    """This process as a fresh `patas run` sees it: great-expectations not imported yet (the test
    session imports it once, tests/conftest.py), so started() starts a helper."""
    monkeypatch.delitem(sys.modules, "great_expectations")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" in status.read_text()


def test_a_call_runs_in_the_helper_and_the_helper_ends_with_the_block(no_ge_here, tmp_path):
    with (tmp_path / "helper.log").open("a") as log, suite_process.started(log):
        pid = suite_process.helper_pid()
        assert pid is not None and pid != os.getpid()
        assert suite_process.call(os.getpid) == pid
        assert suite_process.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        with pytest.raises(ZeroDivisionError):
            suite_process.call(divmod, 1, 0)
    assert suite_process.helper_pid() is None
    assert _gone(pid)
    assert suite_process.call(os.getpid) == os.getpid(), "no helper: the call runs here"


def test_a_helper_that_died_is_replaced_by_this_process(no_ge_here, tmp_path):
    with (tmp_path / "helper.log").open("a") as log, suite_process.started(log):
        pid = suite_process.helper_pid()
        os.kill(pid, 9)
        assert suite_process.call(os.getpid) == os.getpid()
        assert suite_process.helper_pid() is None


def test_no_helper_when_great_expectations_is_here_already():
    assert "great_expectations" in sys.modules
    with suite_process.started():
        assert suite_process.helper_pid() is None


def test_the_batch_gates_give_the_same_results_in_the_helper(fresh_db, tmp_path, monkeypatch):
    corpus = tmp_path / "c.jsonl"
    generate_corpus(5000, 3, corpus, days=35)
    lines = corpus.read_text().splitlines()
    for i in range(5):  # a history, then a batch with future timestamps (one gate fails)
        rows = [json.loads(x) for x in lines[i * 1000 : (i + 1) * 1000]]
        if i == 4:
            rows = [
                {**r, "timestamp": "2099-01-01T00:00:00Z"} if j % 50 == 0 else r for j, r in enumerate(rows)
            ]
        (tmp_path / f"b{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ingest_file(fresh_db, tmp_path / f"b{i}.jsonl")
    with psycopg.connect(fresh_db) as conn:
        here = gates.validate_newest_batch(conn)
        conn.rollback()
    monkeypatch.delitem(sys.modules, "great_expectations")
    calls = []
    real = suite_process._Helper.call
    monkeypatch.setattr(suite_process._Helper, "call", lambda self, *a: calls.append(a[0]) or real(self, *a))
    with (
        (tmp_path / "helper.log").open("a") as log,
        suite_process.started(log),
        psycopg.connect(fresh_db) as conn,
    ):
        there = gates.validate_newest_batch(conn)
        conn.rollback()
    assert calls == [gates._suite_with_docs], "the suite ran in the helper"
    assert there.results == here.results
    assert {r.gate for r in there.results if r.status == "failed"} == {"future_timestamps"}
    assert set(there.data_docs) == set(here.data_docs) and all(there.data_docs.values())
