"""Warehouse access for the service: a small connection pool, the service's tables, the run lock state.

The service's tables (``patas.api_keys``, ``patas.api_runs``) are defined with the others in
:mod:`python_steps.tables` (``SERVICE_DDL``).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

import psycopg

from python_steps import tables
from python_steps.warehouse import RUN_LOCK_KEY


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def run_lock_held(conn: psycopg.Connection) -> bool:
    """Whether some session holds the PATAS run lock (python_steps.warehouse.run_lock) right now."""
    return conn.execute(
        """
        select exists (
            select 1 from pg_locks
            where locktype = 'advisory' and granted
              and database = (select oid from pg_database where datname = current_database())
              and classid = %s and objid = %s and objsubid = 1
        )
        """,
        (RUN_LOCK_KEY >> 32, RUN_LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()[0]


class Pool:
    """A few autocommit connections reused across requests (psycopg_pool is not a dependency).

    A connection comes back idle: an open transaction is rolled back, a broken one is dropped.
    """

    def __init__(self, url: str, size: int = 8, connect_timeout: int = 5) -> None:
        self.url = url
        self._size = size
        self._timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._closed = False

    def _new(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=self._timeout)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._new()
        if conn.closed or conn.broken:
            conn = self._new()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection) -> None:
        if not conn.closed and not conn.broken:
            try:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()
            except psycopg.Error:
                conn.close()
        if conn.closed or conn.broken or self._closed or self._idle.qsize() >= self._size:
            with contextlib.suppress(psycopg.Error):
                conn.close()
            return
        self._idle.put(conn)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(psycopg.Error):
                conn.close()
