"""Dagster's SQLite event log with its connections kept open: the storage of PATAS's instance."""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

KEPT_SHARDS = 8  # engines kept: the index shard's and the latest runs' shards


def synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    """SQLAlchemy ``connect`` hook: SQLite connections (WAL mode) commit without an fsync each
    (``synchronous=NORMAL``: a crash of the process loses nothing, a crash of the machine may lose
    the last events, the files stay consistent). Other databases are left alone. This storage's
    engines have it; ``patas run`` adds it to every engine for the length of a run (the run
    storage's too)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("pragma synchronous=NORMAL")


class KeptSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's ``SqliteEventLogStorage`` (same files, tables, schema migrations and lock), with
    one engine and one connection per shard for the life of the storage.

    Dagster's class builds a SQLAlchemy engine, connects (the dialect's first-connect queries
    included) and disposes of the engine for every read and write, and a run writes every event to
    its run's shard, asset and check events once or twice more to the index shard, and checks
    whether the index has the asset-check table before each check event: ~11 ms an event here, a few
    hundred events a run (``benchmarks/dagster_event_log.py``). Here each shard keeps an engine with a single
    connection (the parent's ``_db_lock`` already serializes every use of ``_connect``), for the
    index shard and the ``KEPT_SHARDS`` latest runs; a table found in the index is remembered.
    Commits do not wait for an fsync (``synchronous=NORMAL`` in WAL mode: a crash of the process
    loses nothing, a crash of the machine may lose the last events; the files stay consistent)."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables_seen: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> KeptSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=StaticPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", synchronous_normal)
        self._engines[shard] = engine
        while len(self._engines) > KEPT_SHARDS:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Called inside _connect too (its lock is held), so through a connection of its own.
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def wipe(self) -> None:
        # Dagster's wipe deletes the runs' files: their connections are closed first.
        with self._db_lock:
            for shard in [s for s in self._engines if s != INDEX_SHARD_NAME]:
                self._engines.pop(shard).dispose()
        super().wipe()

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


def event_log_storage_yaml(dagster_home: str) -> str:
    """The ``event_log_storage`` section of a ``dagster.yaml`` for this storage, at the place
    Dagster's default storage uses (``<DAGSTER_HOME>/history/runs``)."""
    base_dir = json.dumps(f"{dagster_home.rstrip('/')}/history/runs/")
    return (
        "event_log_storage:\n"
        f"  module: {__name__}\n"
        f"  class: {KeptSqliteEventLogStorage.__name__}\n"
        f"  config:\n    base_dir: {base_dir}\n"
    )
