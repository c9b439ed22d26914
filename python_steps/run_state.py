"""A run with nothing new: is the warehouse exactly as the latest run left it?

The steps of a run re-use their results one by one when their inputs are unchanged
(:mod:`python_steps.mining.reuse`), but a run that re-uses every step still starts Dagster and
dbt and records a few hundred events. This module lets ``patas run`` skip the graph altogether
when a run could change nothing: the *run state* now equals the one the latest complete run
recorded as it finished.

The run state (:func:`run_state`) is an md5 over

- the warehouse's inputs (:func:`python_steps.mining.reuse.warehouse_state`: the messages, the
  ingestion batches, the label feedback);
- the identity, as the catalog has it, of every relation in PATAS's schemas (a dbt rebuild, a
  truncate, a dropped or added table all change it), and which unlogged tables hold no row (a
  Postgres crash empties them and keeps their identity; docs/contracts.md "Incremental stage 1");
- every row of the tables a person edits between runs (the lifecycle: statuses, pins; the drafts
  and their clauses, manual rules included; the would-be rulesets; the pattern library; the audit
  trail) and the row count of every other PATAS table (the run's own write-once logs);
- the run's parameters (the run specification), the settings and every ``PATAS_*`` and ``DBT_*``
  environment variable, the configuration files in ``$PATAS_HOME`` (``*.toml``), the exports a run
  leaves in ``$PATAS_HOME/exports``, and the code version (the caller's: the logic, the dbt
  project and the layers above, which wire and run it).

A run records its state at its end (step ``run`` in ``patas.run_step_states``), unless the inputs
it cannot change itself (:func:`external_state`: the warehouse's inputs, the manual actions) moved
while it ran: a label feedback that arrived after the run read the labels must not look processed.
Wall-clock time is no input (no step reads the clock). Never skipped: a run whose profile
deprecates idle rules while an active rule has no hit on the evaluation window
(:func:`python_steps.lifecycle.replay.active_rules_without_a_hit`: each run counts one more idle
run, so a run with nothing new still changes the lifecycle).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from python_steps import tables
from python_steps.mining import reuse

STEP = "run"
SCHEMAS = ("raw", "reference", "staging", "intermediate", "marts", "patas")
# The tables a person changes between runs (the CLI, the HTTP API): digested row by row.
EDITED = {
    tables.RULE_LIFECYCLE: "to_jsonb(t)",
    tables.RULE_DRAFTS: "to_jsonb(t)",
    tables.RULE_SIGNAL_CLAUSES: "to_jsonb(t)",
    tables.RULESET_MEMBERS: "to_jsonb(t)",
    tables.PATTERNS: "to_jsonb(t)",
    tables.PATTERN_VERSIONS: "to_jsonb(t)",
}
# Not part of the state: what the run writes after its state is taken (this record), and the
# service's own bookkeeping (API keys' last use, the API's run requests), which no step reads.
UNCOUNTED = frozenset({tables.RUN_STEP_STATES, tables.API_KEYS, tables.API_RUNS})


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _relations(conn: psycopg.Connection) -> list[tuple[str, str, str, int, int]]:
    return conn.execute(
        """
        select n.nspname::text, c.relname::text, c.relkind::text, c.oid::int8, c.relfilenode::int8
        from pg_class as c inner join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
        order by 1, 2
        """,
        (list(SCHEMAS),),
    ).fetchall()


def _empty_unlogged(conn: psycopg.Connection) -> list[str]:
    """The unlogged tables of PATAS's schemas that hold no row, in name order."""
    names = conn.execute(
        """
        select n.nspname::text, c.relname::text
        from pg_class as c inner join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind = 'r' and c.relpersistence = 'u'
        order by 1, 2
        """,
        (list(SCHEMAS),),
    ).fetchall()
    empty = []
    for schema, name in names:
        query = psycopg.sql.SQL("select not exists (select 1 from {})").format(
            psycopg.sql.Identifier(schema, name)
        )
        if conn.execute(query).fetchone()[0]:
            empty.append(f"{schema}.{name}")
    return empty


def external_state(conn: psycopg.Connection) -> str:
    """What a run reads and never writes itself: the warehouse's inputs and the manual actions
    (the audit rows without a run, the pins)."""
    manual = ""
    if _exists(conn, tables.RULE_AUDIT):
        manual = str(
            conn.execute(
                "select count(*), max(audit_id) from patas.rule_audit where run_id is null"
            ).fetchone()
        )
    pins = ""
    if _exists(conn, tables.RULE_LIFECYCLE):  # the pinned rules (a run adds rules, never pins)
        pins = conn.execute(
            "select md5(coalesce(string_agg(rule_id, ',' order by rule_id), ''))"
            " from patas.rule_lifecycle where is_pinned"
        ).fetchone()[0]
    payload = {"warehouse": reuse.warehouse_state(conn), "manual": manual, "pins": pins}
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _files(folder: Path, pattern: str) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern)) if p.is_file()
    }


def run_state(
    conn: psycopg.Connection,
    *,
    spec: Mapping[str, Any],
    settings: Any,
    home: Path,
    environ: Mapping[str, str],
    code: str,
    external: str | None = None,
) -> str:
    """The run state (module docstring) of the warehouse behind ``conn`` for a run of ``spec`` by
    ``code`` (the version of everything that runs: the logic, the dbt project, the wiring; the caller
    knows it), ``external``: :func:`external_state`, when the caller has just taken it."""
    relations = _relations(conn)
    counts = {}
    for schema, name, kind, _oid, _node in relations:
        rel = f"{schema}.{name}"
        if schema == "patas" and kind in ("r", "p") and rel not in UNCOUNTED and rel not in EDITED:
            query = psycopg.sql.SQL("select count(*) from {}").format(psycopg.sql.Identifier(schema, name))
            counts[rel] = conn.execute(query).fetchone()[0]
    audit = (
        conn.execute("select count(*), max(audit_id) from patas.rule_audit").fetchone()
        if _exists(conn, tables.RULE_AUDIT)
        else None
    )
    payload = {
        "external": external if external is not None else external_state(conn),
        "relations": [list(r) for r in relations if f"{r[0]}.{r[1]}" not in UNCOUNTED],
        "empty_unlogged": _empty_unlogged(conn),
        "edited": {rel: reuse.table_digest(conn, rel, expr) for rel, expr in sorted(EDITED.items())},
        "audit": audit,
        "counts": counts,
        "spec": dict(spec),
        "settings": repr(settings),
        "environ": {k: v for k, v in sorted(environ.items()) if k.startswith(("PATAS_", "DBT_"))},
        "config_files": _files(home, "*.toml"),
        "exports": _files(home / "exports", "*"),
        "code": code,
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def record(conn: psycopg.Connection, run_id: str, state: str) -> None:
    """The state run ``run_id`` left (it completed every step)."""
    tables.write_step_state(
        conn, run_id, STEP, state, "", skipped=False, reason="the warehouse as this run left it"
    )


def unchanged_since(conn: psycopg.Connection, state: str) -> str | None:
    """The id of the latest run when it recorded ``state`` as the state it left and no run started
    after it; else None."""
    row = tables.latest_computed_step_state(conn, STEP)
    if row is None or row[1] != state:
        return None
    latest = conn.execute(
        "select run_id from patas.runs order by started_at desc, run_id desc limit 1"
    ).fetchone()
    return row[0] if latest is not None and latest[0] == row[0] else None
