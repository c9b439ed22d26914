"""Re-use of a step's previous result when nothing it reads has changed (a run with an empty delta).

A step's *input state* is an md5 over everything its result depends on:

- the warehouse's inputs: the messages (count, largest message id and batch id), the ingestion
  batches (id and status) and the label feedback (every row);
- the run's parameters (the dbt vars without the run id, the drafting configuration);
- this stage's own upstream output that is not determined by the above (stage 2's clusters, which
  also depend on the pattern library);
- the code version: an md5 over the Python logic and the dbt project's files.

The state, and the state of the tables the step writes as it left them, are recorded per run in
``patas.run_step_states``. A step may re-use its previous result when its input state equals the
one recorded by the latest run that computed it and its tables still hold what that run left
(each rule id's latest version, clauses and counter-examples: a manual edit in between counts). Wall-clock time is no input: PATAS's steps do not
read the clock. Deterministic (same inputs, same state).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from python_steps import tables

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_GLOBS = (
    ("python_steps", "**/*.py"),
    ("python_steps", "**/*.toml"),
    ("python_steps", "**/*.json"),
    ("models", "**/*"),
    ("macros", "**/*"),
    ("seeds", "**/*"),
)
CODE_FILES = ("dbt_project.yml",)


# What the batch-incremental stage-1 models compute for a message: their SQL and the text and
# extraction macros they call (dbt var patas_stage1_code; macro rebuild_when_code_changes rebuilds
# them when it changes, so a warehouse never holds two extractions side by side).
STAGE1_CODE_GLOBS = (("macros/text", "*.sql"), ("macros/extraction", "*.sql"))
STAGE1_CODE_FILES = (
    "models/staging/stg_raw__messages.sql",
    "models/intermediate/int_messages_normalized.sql",
    "models/intermediate/int_message_signals_extracted.sql",
    "models/intermediate/int_messages_enriched.sql",
)


def code_version(
    root: Path = PROJECT_ROOT,
    globs: tuple[tuple[str, str], ...] = CODE_GLOBS,
    files: tuple[str, ...] = CODE_FILES,
) -> str:
    """An md5 over the logic's source files and the dbt project (paths and contents, sorted)."""
    paths = sorted(
        {p for folder, pattern in globs for p in (root / folder).glob(pattern) if p.is_file()}
        | {root / f for f in files if (root / f).is_file()}
    )
    h = hashlib.md5()
    for p in paths:
        if "__pycache__" in p.parts:
            continue
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def stage1_code_version(root: Path = PROJECT_ROOT) -> str:
    """The code version of the batch-incremental stage-1 models (STAGE1_CODE_GLOBS, STAGE1_CODE_FILES)."""
    return code_version(root, STAGE1_CODE_GLOBS, STAGE1_CODE_FILES)


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _digest(conn: psycopg.Connection, relation: str, row_expression: str, order: str) -> str:
    """md5 of a small table's rows (``row_expression`` over alias ``t``, in ``order``), '' when absent."""
    if not _exists(conn, relation):
        return ""
    sql = (
        f"select md5(coalesce(string_agg(({row_expression})::text, chr(30) order by {order}), ''))"
        f" from {relation} as t"
    )
    return conn.execute(sql).fetchone()[0]


def rule_state(conn: psycopg.Connection) -> str:
    """The rule tables drafting writes: each rule id's latest version, its clauses and counter-examples."""
    return "|".join(
        (
            _digest(conn, tables.RULE_DRAFTS, "t.rule_id || ':' || t.version", "t.rule_id, t.version"),
            _digest(
                conn, tables.RULE_SIGNAL_CLAUSES, "t", "t.rule_id, t.clause_no, t.signal_kind, t.signal_value"
            ),
            _digest(
                conn, tables.RULE_COUNTEREXAMPLES, "to_jsonb(t) - 'run_id'", "(to_jsonb(t) - 'run_id')::text"
            ),
        )
    )


def drafts_audit_state(conn: psycopg.Connection) -> str:
    """What the audit of the stored drafts reads (drafting.audit_stored_drafts): every stored draft's
    rule and SQL, and the code that recompiles and validates them."""
    drafts = _digest(
        conn,
        tables.RULE_DRAFTS,
        "concat_ws(chr(31), t.rule_id, t.version, t.rule_json::text, t.sql_expression)",
        "t.rule_id, t.version",
    )
    return hashlib.md5(f"{drafts}|{code_version()}".encode()).hexdigest()


def warehouse_state(conn: psycopg.Connection) -> dict[str, Any]:
    """The inputs every stage-1 table derives from (raw messages, batches, label feedback)."""
    state: dict[str, Any] = {}
    if _exists(conn, tables.RAW_MESSAGES):
        count, max_id, max_batch = conn.execute(
            "select count(*), max(message_id), max(batch_id) from raw.messages"
        ).fetchone()
        state["messages"] = [count, max_id, max_batch]
    state["batches"] = _digest(conn, tables.RAW_INGEST_BATCHES, "t.batch_id || ':' || t.status", "t.batch_id")
    state["label_feedback"] = _digest(conn, tables.LABEL_FEEDBACK, "t", "t.feedback_id")
    return state


def clusters_state(conn: psycopg.Connection) -> str:
    """Stage 2's clusters and members as drafting reads them: the run id and the similarity to a
    known cluster left out (a second run over the same data matches its own earlier clusters;
    drafting reads their members, phrases and entities, not the match)."""
    return "|".join(
        (
            _digest(
                conn,
                tables.SEMANTIC_CLUSTERS,
                "to_jsonb(t) - 'run_id' - 'matched_similarity'",
                "t.cluster_id",
            ),
            _digest(conn, tables.SEMANTIC_CLUSTER_MEMBERS, "t", "t.cluster_id, t.message_id"),
        )
    )


def drafting_input_state(conn: psycopg.Connection, params: dict[str, Any], code: str | None = None) -> str:
    """The input state of drafting: warehouse inputs, clusters, parameters, code. The rule tables
    drafting writes are compared separately (:func:`check`): drafting over unchanged inputs leaves
    them as it found them, so they must equal what the previous drafting left."""
    payload = {
        "warehouse": warehouse_state(conn),
        "clusters": clusters_state(conn),
        "params": params,
        "code": code if code is not None else code_version(),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Reuse:
    """Whether a step may re-use the result of ``previous_run_id`` (and why, or why not)."""

    reusable: bool
    reason: str
    previous_run_id: str | None = None


def check(conn: psycopg.Connection, step: str, input_state: str, output_state: str | None = None) -> Reuse:
    """May ``step`` re-use its latest computed result? Only when its input state is unchanged and
    the tables it writes still hold what that run left (``output_state``; drafting's rule tables
    when not given)."""
    tables.ensure_all(conn)
    row = tables.latest_computed_step_state(conn, step)
    if row is None:
        return Reuse(False, "no earlier run computed it")
    run_id, previous_state, previous_output = row
    if previous_state != input_state:
        return Reuse(False, f"inputs changed since run {run_id}", run_id)
    if previous_output != (rule_state(conn) if output_state is None else output_state):
        return Reuse(False, f"its tables changed since run {run_id}", run_id)
    return Reuse(True, f"inputs unchanged since run {run_id}", run_id)


def record(
    conn: psycopg.Connection,
    run_id: str,
    step: str,
    input_state: str,
    *,
    skipped: bool,
    reason: str,
    output_state: str | None = None,
) -> None:
    """Record a step's input state and the state of the tables it left (``output_state``; drafting's
    rule tables when not given), idempotent per run and step."""
    tables.ensure_all(conn)
    output = rule_state(conn) if output_state is None else output_state
    tables.write_step_state(conn, run_id, step, input_state, output, skipped=skipped, reason=reason)


# ---- dbt steps -----------------------------------------------------------------------------------
# A dbt step (stage 1, shadow evaluation) is a function of the sources its models derive from, the
# run's vars without the run id, the code and the nodes it builds. Sources other than these are read
# nowhere in a re-usable step: a step whose models derive from any other source always runs.
SOURCES_IN_WAREHOUSE_STATE = frozenset(
    {tables.RAW_MESSAGES, tables.RAW_INGEST_BATCHES, tables.LABEL_FEEDBACK}
)
# The sources digested row by row (every row, as JSON in text order), with the columns left out
# that no stored table of a dbt step derives from: the run id promotion stamps on every would-be
# ruleset member each run (ruleset_evaluation reads the members, not who wrote them).
SOURCES_DIGESTED = {
    tables.RULE_DRAFTS: "to_jsonb(t)",
    tables.RULE_SIGNAL_CLAUSES: "to_jsonb(t)",
    tables.RULE_LIFECYCLE: "to_jsonb(t)",
    tables.RULESET_MEMBERS: "to_jsonb(t) - 'run_id'",
}
REUSABLE_SOURCES = SOURCES_IN_WAREHOUSE_STATE | frozenset(SOURCES_DIGESTED)
# Sources a dbt step reads only through views (nothing of them is stored by the step, a view reads
# them live): not part of the step's input state. Promotion appends to the metrics history every
# run; the tests on the view over it (rule_history: unique and not null on rule, run and window)
# hold by the table's own primary key. A step storing a table derived from one of these always runs.
LIVE_SOURCES = frozenset({tables.RULE_METRICS_HISTORY})
# The column a dbt model fills with the run id (var patas_run_id): re-stamped on re-use, so the
# re-used rows say this run measured them, as a recompute would.
RUN_ID_COLUMN = "evaluated_run_id"


def table_digest(conn: psycopg.Connection, relation: str, row_expression: str = "to_jsonb(t)") -> str:
    """md5 over every row of a small table (``row_expression``, JSON, in text order), '' when it
    does not exist."""
    return _digest(conn, relation, row_expression, f"({row_expression})::text")


def dbt_step_input_state(
    conn: psycopg.Connection,
    nodes: list[str],
    sources: list[str],
    dbt_vars: dict[str, Any],
    code: str | None = None,
) -> str | None:
    """The input state of a dbt step building ``nodes`` (dbt unique ids) from ``sources`` (the
    relations its models derive from, transitively); None when a source is not one whose state is
    known here (the step then always runs)."""
    if not set(sources) <= REUSABLE_SOURCES:
        return None
    payload = {
        "warehouse": warehouse_state(conn),
        "sources": {
            s: table_digest(conn, s, SOURCES_DIGESTED[s])
            for s in sorted(set(sources) & set(SOURCES_DIGESTED))
        },
        "nodes": sorted(nodes),
        "dbt_vars": {k: v for k, v in dbt_vars.items() if k != "patas_run_id"},
        "code": code if code is not None else code_version(),
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def relations_state(conn: psycopg.Connection, relations: list[str]) -> str:
    """Each relation's identity as the catalog has it (oid and file node): dbt rebuilds a table or
    view under a new oid, a truncate gives a new file node; an absent relation counts too. An
    incremental model's rows are not read: only a dbt build appends to them."""
    out = []
    for rel in sorted(relations):
        row = conn.execute(
            "select c.oid::int8, c.relfilenode::int8 from pg_class as c where c.oid = to_regclass(%s)", (rel,)
        ).fetchone()
        out.append(f"{rel}:{row[0]}:{row[1]}" if row else f"{rel}:absent")
    return "|".join(out)


def restamp_run_id(conn: psycopg.Connection, relations: list[str], run_id: str) -> list[str]:
    """Set the run-id column of the re-used relations that have one to ``run_id``; return them."""
    stamped = []
    for rel in sorted(relations):
        has = conn.execute(
            "select 1 from pg_attribute where attrelid = to_regclass(%s) and attname = %s and not attisdropped",
            (rel, RUN_ID_COLUMN),
        ).fetchone()
        if has:
            schema, name = rel.split(".", 1)
            conn.execute(
                psycopg.sql.SQL("update {} set {} = %s where {} is distinct from %s").format(
                    psycopg.sql.Identifier(schema, name),
                    psycopg.sql.Identifier(RUN_ID_COLUMN),
                    psycopg.sql.Identifier(RUN_ID_COLUMN),
                ),
                (run_id, run_id),
            )
            stamped.append(rel)
    return stamped


def write_cache_file(path: Path, text: str) -> None:
    """Replace a file of the cache directory atomically (a temporary file of this process renamed
    over it): a run that stops half-way leaves the previous file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
