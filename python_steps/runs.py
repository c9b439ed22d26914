"""The run register: every run states its windows and the normalizer version it used."""

from __future__ import annotations

import psycopg

from python_steps.windows import RunWindows

DDL = """
create schema if not exists patas;
create table if not exists patas.runs (
    run_id text primary key,
    split_mode text not null,
    windows jsonb not null,
    started_at timestamptz not null default now()
);
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    conn.execute(DDL)


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
