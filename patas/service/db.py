"""Warehouse access for the service: a small connection pool and the service's own tables.

DDL note: ``patas.api_keys`` and ``patas.api_runs`` are owned by the service for now; they move to a
``python_steps`` table module when main grows one (then this file only imports it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

import psycopg

from python_steps.warehouse import RUN_LOCK_KEY

DDL = """
create schema if not exists patas;

-- One row per API key: only the sha256 of the token is kept; the token is shown once, at creation.
create table if not exists patas.api_keys (
    key_id bigint generated always as identity primary key,
    name text not null,
    role text not null check (role in ('reader', 'operator', 'admin')),
    token_sha256 text not null unique,
    token_prefix text not null,
    created_at timestamptz not null default now(),
    created_by text not null,
    revoked_at timestamptz,
    last_used_at timestamptz
);
create unique index if not exists api_keys__active_name on patas.api_keys (name) where revoked_at is null;

-- One row per pipeline run started through the API (mine, eval-shadow, analyze).
create table if not exists patas.api_runs (
    run_id text primary key,
    kind text not null,
    requested_by text not null,
    params jsonb not null default '{}',
    status text not null check (status in ('starting', 'running', 'success', 'failure')),
    pid integer,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    summary jsonb,
    error text
);
"""

_DDL_LOCK_KEY = 0x5A7A5 + 0x100  # serializes concurrent first starts


def ensure_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_DDL_LOCK_KEY,))
        conn.execute(DDL)


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
        self._lock = threading.Lock()
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
