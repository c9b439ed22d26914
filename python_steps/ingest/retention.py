"""Retention: archive old messages to compressed JSONL, then delete them and their derived rows.

"Old" is relative to the data, not the wall clock: a message with an event time is old when it is
more than ``keep_days`` before the newest event time; one without, when it was ingested more than
``keep_days`` before the newest ingestion of such messages (the two clocks are never compared);
``as_of`` replaces both references. A
message that rule evidence points at (``patas.rule_counterexamples``) is kept, so rule cards keep
their examples; the audit trail, rule metrics history, batch records and profiles hold no message
rows and stay whole.

One transaction: the messages to purge are chosen, written to ``<archive_dir>/<name>.jsonl.gz``
(the ingest contract, so ``patas ingest`` can load them again) and deleted from ``raw.messages``
and from the batch-incremental dbt tables ``int_messages_normalized`` and ``int_messages_enriched``.
``int_message_signals_extracted`` is emptied instead: its n-gram vocabulary only grows (an n-gram
kept because of purged spam would stay), so the next run extracts the signals of what remains
again, from scratch. The stored input states of the stage-1 marts are cleared, so the next run
rebuilds them too: an incremental run after a purge equals a full refresh on what remains. The
archive file gets its final name only after the commit; a failure leaves at most a ``.partial``
file and no deletion. The caller holds the PATAS run lock (no run sees half a purge).
"""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from python_steps import tables

DERIVED = (tables.MESSAGES_ENRICHED, tables.MESSAGES_NORMALIZED)
INPUT_STATES = ("intermediate.model_input_states", "marts.model_input_states")


class RetentionError(ValueError):
    pass


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def apply_retention(
    conn: psycopg.Connection,
    *,
    keep_days: int,
    archive_dir: Path,
    dry_run: bool = False,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Archive and delete the messages older than ``keep_days`` (see the module docstring).

    Returns the cutoffs (``cutoff`` on event time, ``ingest_cutoff`` for messages without one), the counts (``purged``, ``kept_as_evidence``, ``remaining``) and the archive
    path (None when nothing was purged or on ``dry_run``). ``conn`` must not be in a transaction.
    """
    if not conn.autocommit:
        raise RetentionError(
            "apply_retention needs an autocommit connection (it commits, then names the archive)"
        )
    if not isinstance(keep_days, int) or keep_days < 1:
        raise RetentionError(f"keep-days must be a whole number of days, at least 1 (not {keep_days!r})")
    if not _exists(conn, tables.RAW_MESSAGES):
        raise RetentionError("no messages yet: raw.messages does not exist")
    with conn.transaction():
        # Two clocks, never mixed: messages with an event time age against the newest event time;
        # messages without one against the newest ingestion of such messages.
        newest_event, newest_ingest = conn.execute(
            "select max(event_at), max(ingested_at) filter (where event_at is null) from raw.messages"
        ).fetchone()
        if as_of is not None:
            newest_event = newest_ingest = as_of
        cutoff = newest_event - timedelta(days=keep_days) if newest_event else None
        ingest_cutoff = newest_ingest - timedelta(days=keep_days) if newest_ingest else None
        old = (
            "((m.event_at is not null and m.event_at < %(cutoff)s)"
            " or (m.event_at is null and m.ingested_at < %(ingest_cutoff)s))"
        )
        params = {"cutoff": cutoff, "ingest_cutoff": ingest_cutoff}
        evidence = _exists(conn, tables.RULE_COUNTEREXAMPLES)
        conn.execute("create temporary table retention_purge (message_id bigint primary key) on commit drop")
        conn.execute(
            f"insert into retention_purge select m.message_id from raw.messages as m where {old}"
            + (
                " and not exists (select 1 from patas.rule_counterexamples as c where c.message_id = m.message_id)"
                if evidence
                else ""
            ),
            params,
        )
        purged = conn.execute("select count(*) from retention_purge").fetchone()[0]
        kept = (
            conn.execute(f"select count(*) from raw.messages as m where {old}", params).fetchone()[0] - purged
        )
        total = conn.execute("select count(*) from raw.messages").fetchone()[0]
        result: dict[str, Any] = {
            "cutoff": cutoff.isoformat() if cutoff else None,
            "ingest_cutoff": ingest_cutoff.isoformat() if ingest_cutoff else None,
            "purged": purged,
            "kept_as_evidence": kept,
            "remaining": total - purged,
            "archive": None,
        }
        if dry_run or purged == 0:
            return result
        archive_dir.mkdir(parents=True, exist_ok=True)
        final = archive_dir / f"messages_before_{(cutoff or ingest_cutoff):%Y%m%dT%H%M%SZ}_{purged}.jsonl.gz"
        partial = final.with_name(final.name + ".partial")
        _write_archive(conn, partial)
        if _exists(conn, tables.MESSAGE_SIGNALS):
            conn.execute(f"truncate {tables.MESSAGE_SIGNALS}")
        for relation in DERIVED:
            if _exists(conn, relation):
                # relation: a fixed name from python_steps.tables, not user text
                conn.execute(
                    f"delete from {relation} where message_id in (select message_id from retention_purge)"
                )
        conn.execute("delete from raw.messages where message_id in (select message_id from retention_purge)")
        for relation in INPUT_STATES:
            if _exists(conn, relation):
                conn.execute(f"delete from {relation}")
    os.replace(partial, final)  # after the commit: the archive holds exactly what was deleted
    result["archive"] = str(final)
    return result


def _write_archive(conn: psycopg.Connection, path: Path) -> None:
    """The purged messages in the ingest contract, one JSON object a line, by message id."""
    with gzip.open(path, "wb") as fh:
        cur = conn.cursor(name="retention_archive")
        cur.execute(
            """
            select m.external_id, m.event_at, m.text, m.is_spam, m.meta, m.tas_action, m.user_complaint, m.unbanned
            from raw.messages as m join retention_purge using (message_id)
            order by m.message_id
            """
        )
        for ext, event_at, text, is_spam, meta, action, complaint, unbanned in cur:
            row = {"id": ext, "timestamp": event_at.isoformat() if event_at else None, "text": text,
                   "is_spam": is_spam, "meta": meta, "tas_action": action, "user_complaint": complaint,
                   "unbanned": unbanned}  # fmt: skip
            fh.write(orjson.dumps(row) + b"\n")
        cur.close()
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
