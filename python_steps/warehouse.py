"""The warehouse connection and the advisory locks that serialize PATAS's writers.

The URL always comes from the caller (the application layer resolves ``PATAS_DATABASE_URL`` or
starts the embedded server: :mod:`patas.embedded`); this module never starts a server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg


class WarehouseError(RuntimeError):
    pass


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit)


# One advisory-lock key for "a PATAS run is writing": two runs at once cannot interleave.
RUN_LOCK_KEY = 0x5A7A5


@contextlib.contextmanager
def run_lock(conn: psycopg.Connection, *, wait: bool = True) -> Iterator[None]:
    """Hold the PATAS session advisory lock for the duration of the block."""
    if wait:
        conn.execute("select pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
    else:
        got = conn.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()[0]
        if not got:
            raise WarehouseError("another PATAS run holds the warehouse lock; try again when it finishes")
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))


# Planner settings a statement may change for itself (the names are fixed here; values are bound).
PLANNER_SETTINGS = frozenset(
    {"enable_nestloop", "enable_mergejoin", "jit", "work_mem", "parallel_tuple_cost"}
)


@contextlib.contextmanager
def planner_settings(conn: psycopg.Connection, **settings: str) -> Iterator[None]:
    """Planner settings for the statements of the block, local to the transaction
    (``set_config(..., is_local => true)``; on an autocommit connection the block is one
    transaction); each is put back to the value it had before the block, so a session's own
    settings survive. Used where the planner misjudges a statement (a view's CASE or a temp table
    hides the rows) and would probe an index per row or spill a hash to disk."""
    unknown = set(settings) - PLANNER_SETTINGS
    if unknown:
        raise ValueError(f"not a planner setting PATAS changes: {sorted(unknown)}")
    with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        before = {
            name: conn.execute("select current_setting(%s)", (name,)).fetchone()[0] for name in settings
        }
        for name, value in settings.items():
            conn.execute("select set_config(%s, %s, true)", (name, value))
        try:
            yield
        finally:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                for name, value in before.items():
                    conn.execute("select set_config(%s, %s, true)", (name, value))
