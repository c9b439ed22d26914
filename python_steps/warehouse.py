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
