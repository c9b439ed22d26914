"""Shared fixtures: a real Postgres database per test session (no mocks).

The server is ``PATAS_DATABASE_URL`` when set, else the embedded one. Each session works in a
database of its own (``patas_test_<pid>``), dropped at the end, so parallel sessions and the
user's own data never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Imported once for the whole session, as a long-lived process has it: runs in this process then
# validate their suites here instead of starting a great-expectations helper process each
# (python_steps.quality.suite_process; tests/integration/test_suite_process.py covers the helper).
import great_expectations  # noqa: F401
import pytest

from patas.bench.harness import fresh_database
from patas.embedded import database_url

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "uci_sms_spam.jsonl"


@pytest.fixture(scope="session")
def server_url() -> str:
    return database_url()


@pytest.fixture(scope="session")
def warehouse_url(server_url: str) -> Iterator[str]:
    """A fresh, empty database for this test session."""
    with fresh_database(server_url, f"patas_test_{os.getpid()}") as url:
        yield url


@pytest.fixture()
def fresh_db(server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for one test (for tests that need isolation)."""
    name = f"patas_t_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    with fresh_database(server_url, name) as url:
        yield url


@pytest.fixture(scope="session")
def shared_dataset() -> Path:
    if not SHARED_DATASET.exists():
        pytest.skip(
            f"shared dataset not present at {SHARED_DATASET} (it lives beside the repo, in ../shared)"
        )
    return SHARED_DATASET
