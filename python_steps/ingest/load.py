"""Loading: one file is one batch in ``raw.messages``, every line accounted for.

The tables of schema ``raw`` are defined in :mod:`python_steps.tables` (see ``docs/contracts.md``).
One call of :func:`ingest_file` is one batch: a row in ``raw.ingest_batches`` and, in ONE transaction, the loaded messages, the quarantined
lines and the batch's final counts, so a fatal error (lost connection, full disk, a constraint)
never leaves half a batch; the batch row then ends as ``'failed'`` with the error text, written in
a separate transaction. For status ``'done'``: read = loaded + duplicate + quarantined.

Parsing is :mod:`python_steps.ingest.parsing`.

Speed: rows are parsed with orjson and streamed with ``COPY``. A batch first tries a direct
``COPY`` into ``raw.messages`` inside a savepoint (the common case: a new file); if any id already
exists (a re-ingest, an overlap, a duplicate inside the file) the savepoint is rolled back and the
file is read again into an unlogged staging table, followed by one ``insert ... select ... order by
source_line on conflict (external_id) do nothing``. Both paths give the same end state.

Concurrency: two ingests at once are safe (the unique ``external_id`` decides; the later one
counts the rows as duplicates). Ingestion does not take the PATAS run lock.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from python_steps import tables
from python_steps.ingest.parsing import (
    FieldMapper,
    IngestReport,
    Reject,
    _csv_header,
    _line_limit,
    _open_source,
    _parse_csv,
    _parse_jsonl,
    _Source,
    detect_format,
    quarantine_row,
)

MESSAGE_COLUMNS = (
    "source_line",
    "external_id",
    "event_at",
    "text",
    "is_spam",
    "meta",
    "tas_action",
    "user_complaint",
    "unbanned",
    "batch_id",
)
QUARANTINE_COLUMNS = ("batch_id", "line_number", "reason_code", "reason", "raw_line", "raw_bytes")
CHUNK_ROWS = 100_000  # rows per COPY statement; quarantine rows are flushed between statements
QUARANTINE_BUFFER_BYTES = 16 << 20  # quarantined lines held in memory before they are written


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create schema ``raw`` and its tables, and the label feedback table the staging models read,
    if missing: the warehouse at the latest schema version (idempotent, safe to run concurrently)."""
    tables.ensure_all(conn)


class _Loader:
    """Streams good rows into ``target`` with COPY, in chunks; quarantine rows go in between chunks."""

    def __init__(
        self, conn: psycopg.Connection, batch_id: int, target: sql.Composable, tick: Callable[[], None]
    ):
        self._cur = conn.cursor()
        self._batch_id = batch_id
        self._copy_sql = sql.SQL("copy {} ({}) from stdin").format(
            target, sql.SQL(", ").join(map(sql.Identifier, MESSAGE_COLUMNS))
        )
        self._tick = tick
        self._copy_cm: Any = None
        self._copy: Any = None
        self._boundary = 1_000  # a small first chunk: a re-ingest meets its first duplicate early
        self._pending: list[tuple[Any, ...]] = []
        self._pending_bytes = 0
        self.lines = self.good = self.quarantined = 0

    def emit(self, row: tuple[Any, ...] | None, line_no: int, raw: bytes, reject: Reject | None) -> None:
        if reject is None:
            if self._copy is None:
                self._copy_cm = self._cur.copy(self._copy_sql)
                self._copy = self._copy_cm.__enter__()
            self._copy.write_row((*row, self._batch_id))  # type: ignore[misc]
        else:
            self._pending.append(quarantine_row(self._batch_id, line_no, raw, reject))
            self._pending_bytes += len(raw)
            self.quarantined += 1
        if line_no >= self._boundary or self._pending_bytes >= QUARANTINE_BUFFER_BYTES:
            self._tick()
            self._end_copy()
            self._boundary = line_no + CHUNK_ROWS

    def finish(self, lines: int) -> None:
        self._end_copy()
        self.lines = lines
        self.good = lines - self.quarantined

    def _end_copy(self) -> None:
        if self._copy is not None:
            cm, self._copy_cm, self._copy = self._copy_cm, None, None
            cm.__exit__(None, None, None)
        if self._pending:
            target = sql.SQL("copy raw.ingest_quarantine ({}) from stdin").format(
                sql.SQL(", ").join(map(sql.Identifier, QUARANTINE_COLUMNS))
            )
            with self._cur.copy(target) as cp:
                for q in self._pending:
                    cp.write_row(q)
            self._pending.clear()
            self._pending_bytes = 0

    def abort(self, exc: BaseException) -> None:
        if self._copy is not None:
            cm, self._copy_cm, self._copy = self._copy_cm, None, None
            with contextlib.suppress(Exception):  # the original error is what the caller sees
                cm.__exit__(type(exc), exc, exc.__traceback__)


@dataclass(frozen=True)
class _PassResult:
    read: int
    loaded: int
    duplicate: int
    quarantined: int
    sha256: str


def _one_pass(
    conn: psycopg.Connection,
    batch_id: int,
    path: Path,
    fmt: str,
    mapper: FieldMapper,
    max_text_bytes: int,
    *,
    direct: bool,
    progress: bool,
) -> _PassResult:
    """Read the whole file once; load straight into raw.messages (``direct``) or via staging."""
    stage = sql.Identifier("raw", f"_ingest_stage_{batch_id}")
    if not direct:
        conn.execute(
            sql.SQL(
                "create unlogged table {} (source_line bigint, external_id text, event_at timestamptz, "
                "text text, is_spam boolean, meta jsonb, tas_action text, user_complaint boolean, "
                "unbanned boolean, batch_id bigint)"
            ).format(stage)
        )
    source = _open_source(path)
    bar = _progress_bar(source, path, enabled=progress)
    loader = _Loader(conn, batch_id, sql.Identifier("raw", "messages") if direct else stage, bar.tick)
    try:
        if fmt == "jsonl":
            count = _parse_jsonl(source, loader.emit, mapper, max_text_bytes)
        else:
            header, lines = _csv_header(source, _line_limit(max_text_bytes))
            count = _parse_csv(header, lines, loader.emit, mapper, max_text_bytes) if header else 0
        loader.finish(count)
    except BaseException as exc:
        loader.abort(exc)
        raise
    finally:
        bar.close()
        source.close()
    loaded, duplicate = loader.good, 0
    if not direct:
        cols = sql.SQL(", ").join(map(sql.Identifier, MESSAGE_COLUMNS))
        cur = conn.execute(
            sql.SQL(
                "insert into raw.messages ({cols}) select {cols} from {stage} order by source_line "
                "on conflict (external_id) do nothing"
            ).format(cols=cols, stage=stage)
        )
        loaded = cur.rowcount
        duplicate = loader.good - loaded
        conn.execute(sql.SQL("drop table {}").format(stage))
    return _PassResult(loader.lines, loaded, duplicate, loader.quarantined, source.counter.sha256.hexdigest())


class _Bar:
    def __init__(self, source: _Source, bar: Any) -> None:
        self._source, self._bar, self._done = source, bar, 0

    def tick(self) -> None:
        if self._bar is not None:
            pos = self._source.counter.position
            self._bar.update(pos - self._done)
            self._done = pos

    def close(self) -> None:
        if self._bar is not None:
            self.tick()
            self._bar.render_finish()


def _progress_bar(source: _Source, path: Path, *, enabled: bool) -> _Bar:
    if not enabled:
        return _Bar(source, None)
    import click  # only for the terminal display

    bar = click.progressbar(length=max(source.size, 1), label=f"ingest {path.name}", file=sys.stderr)
    bar.__enter__()
    return _Bar(source, bar)


def _csv_header_check(path: Path, mapper: FieldMapper, max_text_bytes: int) -> None:
    source = _open_source(path)
    try:
        header, _ = _csv_header(source, _line_limit(max_text_bytes))
    finally:
        source.close()
    if header and not any(mapper.is_field(h, "text") for h in header):
        raise ValueError(
            f"{path}: the CSV header has no text column (columns: {', '.join(header)}); "
            "name it with column_map={'text': '<column>'}"
        )


# A batch being loaded holds a session advisory lock (BATCH_LOCK_NS, batch_id) from the moment its
# row exists until it ends. A 'running' batch whose lock can be taken has lost its process (killed,
# connection gone): it is marked failed at once by the next ingest, not after a timeout.
BATCH_LOCK_NS = 0x5A7A7
_STALE_BATCHES = """
update raw.ingest_batches
set status = 'failed', finished_at = now(),
    error = 'abandoned: the loading session ended before the batch finished'
where batch_id in (
    select batch_id from raw.ingest_batches
    where status = 'running' and pg_try_advisory_xact_lock(%(ns)s, batch_id::int)
    for update skip locked
)
"""


def mark_abandoned_batches(conn: psycopg.Connection) -> int:
    """Mark failed every 'running' batch whose loading session is gone; returns how many."""
    with conn.transaction():
        return conn.execute(_STALE_BATCHES, {"ns": BATCH_LOCK_NS}).rowcount


def ingest_file(
    url_or_conn: str | psycopg.Connection,
    path: str | Path,
    *,
    fmt: str | None = None,
    column_map: dict[str, str] | None = None,
    max_text_bytes: int = 65536,
    progress: bool = False,
) -> IngestReport:
    """Load one JSONL or CSV file (optionally gzip) as one batch; see the module docstring.

    ``url_or_conn`` is a database URL or an idle psycopg connection (this function commits on it).
    Raises FileNotFoundError for a missing file and ValueError for an unknown format or column map.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, f"input file not found: {path}", str(path))
    fmt = detect_format(path, fmt)
    mapper = FieldMapper(column_map)
    if fmt == "csv":
        _csv_header_check(path, mapper, max_text_bytes)

    own = isinstance(url_or_conn, str)
    conn = psycopg.connect(url_or_conn) if isinstance(url_or_conn, str) else url_or_conn
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise ValueError("ingest_file needs a connection without an open transaction")
        ensure_schema(conn)
        mark_abandoned_batches(conn)
        with conn.transaction():
            batch_id = conn.execute(
                "insert into raw.ingest_batches (source_path, source_format) values (%s, %s) returning batch_id",
                (str(path.resolve()), fmt),
            ).fetchone()[0]  # type: ignore[index]
            # Session-level: held past this commit, released when the load ends or its session dies.
            conn.execute("select pg_advisory_lock(%s, %s::int)", (BATCH_LOCK_NS, batch_id))
        try:
            with conn.transaction():
                conn.execute("select 1 from raw.ingest_batches where batch_id = %s for update", (batch_id,))
                result: _PassResult | None = None
                try:
                    with conn.transaction():  # savepoint: the fast path for a file of new messages
                        result = _one_pass(
                            conn, batch_id, path, fmt, mapper, max_text_bytes, direct=True, progress=progress
                        )
                except psycopg.errors.UniqueViolation:
                    result = None  # some ids exist already: read again through staging
                if result is None:
                    result = _one_pass(
                        conn, batch_id, path, fmt, mapper, max_text_bytes, direct=False, progress=progress
                    )
                conn.execute(
                    "update raw.ingest_batches set status = 'done', finished_at = clock_timestamp(), "
                    "source_sha256 = %s, read_count = %s, loaded_count = %s, duplicate_count = %s, "
                    "quarantined_count = %s where batch_id = %s",
                    (
                        result.sha256,
                        result.read,
                        result.loaded,
                        result.duplicate,
                        result.quarantined,
                        batch_id,
                    ),
                )
        except BaseException as exc:
            _mark_failed(conn, url_or_conn if isinstance(url_or_conn, str) else None, batch_id, exc)
            raise
        finally:
            if not (conn.closed or conn.broken):
                with contextlib.suppress(psycopg.Error):
                    conn.execute("select pg_advisory_unlock(%s, %s::int)", (BATCH_LOCK_NS, batch_id))
                    conn.commit()
        return IngestReport(
            batch_id, result.read, result.loaded, result.duplicate, result.quarantined, str(path)
        )
    finally:
        if own:
            conn.close()


def _mark_failed(conn: psycopg.Connection, url: str | None, batch_id: int, exc: BaseException) -> None:
    """Record the failure in its own transaction (on a new connection when this one is gone)."""
    query = "update raw.ingest_batches set status = 'failed', finished_at = clock_timestamp(), error = %s where batch_id = %s"
    params = (f"{type(exc).__name__}: {exc}"[:4000], batch_id)
    try:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("connection lost")
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error:
        if url is None:
            return  # the next ingest marks the batch failed as abandoned
        try:
            with psycopg.connect(url) as fresh:
                fresh.execute(query, params)
        except psycopg.Error:
            return
