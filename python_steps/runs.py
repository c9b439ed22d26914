"""The run register: every run states its windows and the normalizer version it used."""

from __future__ import annotations

import psycopg

from python_steps import tables
from python_steps.mining.windows import RunWindows


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def record_run(conn: psycopg.Connection, run_id: str, windows: RunWindows) -> None:
    """Record (idempotently) the windows a run used; the first record of a run id wins."""
    ensure_schema(conn)
    conn.execute(
        """
        insert into patas.runs (run_id, split_mode, windows)
        values (%s, %s, %s::jsonb)
        on conflict (run_id) do nothing
        """,
        (run_id, windows.split_mode, windows.to_json()),
    )
    conn.commit()
