"""The labelled mining window as a sparse matrix (messages x signals), read in one pass.

Drafting counts co-occurrences: the partners of its conjunction bases, the signals typical of a
rule's spam hits, the ham nearest to them. Each of those read the signal rows of some messages
again (a scan of the signal table, or index probes that touch most of its pages, per question);
at 1M messages that was most of drafting's time. Here the signal rows of the labelled mining
window are read once, as (message, signal number) pairs, and every count is a sparse product in
memory.

Signals are numbered from stage 1's aggregate (``marts.signal_label_counts``: one row per signal
seen in the mining window, with its spam and ham counts), in code-point order of (kind, value), so
a lower number breaks a tie as ``order by signal_kind collate "C", signal_value collate "C"`` does.
A signal row of the window without a number (stage 1 built on other windows or data) is an error,
never a silently missing count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from python_steps.warehouse import planner_settings

SIGNALS = "intermediate.int_message_signals_extracted"
WINDOWED = "intermediate.int_messages_windowed"
SIGNAL_COUNTS = "marts.signal_label_counts"

# The pairs travel as a few bytea values of 12-byte records (int8 message id, int4 signal number),
# one per block of 65,536 message ids: a row per pair cost more in the client than the query did.
_BLOCK_BITS = 16


@dataclass(frozen=True)
class MiningSignals:
    message_ids: Any  # int64[n_messages], ascending: message number -> message id
    is_spam: Any  # bool[n_messages]
    names: list[tuple[str, str]]  # signal number -> (kind, value), code-point order
    numbers: dict[tuple[str, str], int]
    matrix: Any  # scipy csr (messages x signals), 1 where the message carries the signal

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.names]


def _pairs(conn: psycopg.Connection, sql: str) -> tuple[Any, Any]:
    """The two non-null columns (int8, int4) of ``sql`` as int64 arrays, in no particular order."""
    import numpy as np

    packed = f"""
        select string_agg(int8send(p.a) || int4send(p.b), ''::bytea)
        from ({sql}) as p (a, b)
        group by p.a >> {_BLOCK_BITS}
    """
    with conn.cursor(binary=True) as cur:
        blocks = [bytes(b) for (b,) in cur.execute(packed)]
    rows = np.frombuffer(b"".join(blocks), dtype=np.dtype([("a", ">i8"), ("b", ">i4")]))
    return rows["a"].astype(np.int64), rows["b"].astype(np.int64)


def load(conn: psycopg.Connection) -> MiningSignals:
    """The labelled mining window's messages (ascending id) and their signal rows."""
    import numpy as np
    from scipy import sparse

    names = sorted(
        (k, v)
        for k, v in conn.execute(
            f"select signal_kind, signal_value from {SIGNAL_COUNTS} where spam_count + ham_count > 0"
        ).fetchall()
    )
    numbers = {n: i for i, n in enumerate(names)}
    conn.execute("drop table if exists pg_temp.sm_signal_nos, pg_temp.sm_messages")
    conn.execute("create temp table sm_signal_nos (signal_kind text, signal_value text, signal_no int)")
    with (
        conn.cursor() as cur,
        cur.copy("copy sm_signal_nos (signal_kind, signal_value, signal_no) from stdin") as cp,
    ):
        for i, (k, v) in enumerate(names):
            cp.write_row((k, v, i))
    conn.execute(
        f"""
        create temp table sm_messages as
        select m.message_id::int8 as message_id, m.is_spam::int as is_spam
        from {WINDOWED} as m
        where m.window_name = 'mining' and m.is_spam is not null
        """
    )
    for sql in ("create unique index on sm_signal_nos (signal_kind, signal_value)", "analyze sm_signal_nos",
                "analyze sm_messages"):  # fmt: skip
        conn.execute(sql)
    # The window's signal rows (millions at 1M messages) join its messages by a hash of hundreds of
    # thousands of ids: with the default work_mem that hash spilled to disk in batches, and JIT
    # compiled for a statement that runs once (figures: docs/benchmarks.md).
    with planner_settings(conn, work_mem="256MB", jit="off"):
        message_ids, spam = _pairs(conn, "select message_id, is_spam from sm_messages")
        order = np.argsort(message_ids)
        message_ids, spam = message_ids[order], spam[order]
        row_messages, row_signals = _pairs(
            conn,
            f"""
            select s.message_id::int8, coalesce(n.signal_no, -1)::int4
            from {SIGNALS} as s
            inner join sm_messages as m on m.message_id = s.message_id
            left join sm_signal_nos as n on n.signal_kind = s.signal_kind and n.signal_value = s.signal_value
            """,
        )
    conn.execute("drop table if exists pg_temp.sm_signal_nos, pg_temp.sm_messages")
    if (row_signals < 0).any():
        raise RuntimeError(
            f"{SIGNAL_COUNTS} lacks signals of the mining window: stage 1 was built on other windows or data"
        )
    message_nos = np.searchsorted(message_ids, row_messages)
    matrix = sparse.csr_matrix(
        (np.ones(len(message_nos), dtype=np.int64), (message_nos, row_signals)),
        shape=(len(message_ids), len(names)),
    )  # duplicate rows would add up, as join rows counted (the signal key is unique)
    return MiningSignals(message_ids, spam.astype(bool), names, numbers, matrix)
