"""A pipeline run started by the API, in a process of its own (``python -m patas.service.worker``).

The API process starts this worker and reads ONE line from its stdout: ``{"status": "started"}``
once the worker holds the PATAS run lock (``python_steps.warehouse.run_lock``) or
``{"status": "busy"}`` when another run holds it. The worker then runs the Dagster job on the
persistent instance (so the run shows in ``patas ui``) under the run id the API chose, tagged with
the caller's key name, and records the outcome in ``patas.api_runs``. Everything after the
handshake goes to the log file the API gave as stderr.

Kinds: ``mine`` (the whole graph: stage 1, drafting, shadow evaluation, lifecycle, exports),
``eval_shadow`` (the graph from the drafted rules on: shadow evaluation, lifecycle, active_rules,
exports, report; stage 1 and drafting are not re-run) and ``analyze`` (as ``mine``; the API waits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from patas.service.db import ensure_schema
from python_steps.settings import load_settings
from python_steps.warehouse import WarehouseError, database_url, run_lock

KINDS = ("mine", "eval_shadow", "analyze")
# The assets eval_shadow starts from: everything downstream of these, not these.
EVAL_ROOTS = (("patas", "rule_drafts"), ("patas", "rule_signal_clauses"), ("patas", "rule_counterexamples"))


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    # From here on stdout is the log file: the API reads only the handshake line.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


@contextlib.contextmanager
def _dagster_run_identity(run_id: str, tags: dict[str, str], eval_only: bool):
    """Run the job under ``run_id`` with ``tags`` (and, for eval_shadow, on the evaluation subset).

    The pipeline runner builds the job's config and calls ``execute_in_process``; it takes no run id
    or selection, so this wraps that one call for the duration of the block (this process runs
    nothing else)."""
    import dagster as dg

    original = dg.JobDefinition.execute_in_process

    def execute(self, run_config=None, **kwargs):
        kwargs.setdefault("run_id", run_id)
        kwargs["tags"] = {**tags, **(kwargs.get("tags") or {})}
        if eval_only:
            from patas_dagster.definitions import defs

            graph = defs.resolve_asset_graph()
            roots = [dg.AssetKey(list(k)) for k in EVAL_ROOTS]
            roots_sel = dg.AssetSelection.assets(*roots)
            keys = (roots_sel.downstream(include_self=False) - roots_sel).resolve(graph)
            kwargs["asset_selection"] = sorted(keys, key=lambda k: k.to_user_string())
            subset = self.get_subset(asset_selection=set(keys))
            ops = {n.name for n in subset.graph.node_defs} if hasattr(subset, "graph") else None
            if run_config and ops is not None:
                run_config = {**run_config, "ops": {k: v for k, v in run_config["ops"].items() if k in ops}}
        return original(self, run_config=run_config, **kwargs)

    dg.JobDefinition.execute_in_process = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        dg.JobDefinition.execute_in_process = original  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m patas.service.worker")
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--kind", choices=KINDS, required=True)
    ap.add_argument("--requested-by", required=True)
    ap.add_argument("--params", default="{}", help="JSON: run options (profile, split, windows)")
    args = ap.parse_args(argv)
    params = json.loads(args.params)

    settings = load_settings()
    url = database_url(settings)
    conn = psycopg.connect(url, autocommit=True)
    lock = run_lock(conn, wait=False)
    try:
        lock.__enter__()
    except WarehouseError as exc:
        _say({"status": "busy", "detail": str(exc)})
        conn.close()
        return 3
    try:
        ensure_schema(conn)
        conn.execute(
            "insert into patas.api_runs (run_id, kind, requested_by, params, status, pid) "
            "values (%s, %s, %s, %s, 'running', %s)",
            (args.run_id, args.kind, args.requested_by, Jsonb(params), os.getpid()),
        )
        _say({"status": "started", "run_id": args.run_id})
        status, summary, error = "failure", None, None
        try:
            from patas_dagster.runner import run_pipeline

            tags = {
                "patas/source": "api",
                "patas/api_kind": args.kind,
                "patas/requested_by": args.requested_by,
            }
            with _dagster_run_identity(args.run_id, tags, eval_only=args.kind == "eval_shadow"):
                summary = run_pipeline(settings, url, **_run_kwargs(params))
            status = "success" if summary.get("success") else "failure"
            if status == "failure":
                error = "; ".join(summary.get("failures") or ["the run failed"])[:4000]
        except BaseException as exc:  # recorded for GET /runs/{id}; the traceback goes to the log
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"[:4000]
        conn.execute(
            "update patas.api_runs set status = %s, finished_at = now(), summary = %s, error = %s "
            "where run_id = %s",
            (
                status,
                Jsonb(json.loads(json.dumps(summary, default=str))) if summary else None,
                error,
                args.run_id,
            ),
        )
        return 0 if status == "success" else 1
    finally:
        with contextlib.suppress(psycopg.Error):
            lock.__exit__(None, None, None)
        conn.close()


RUN_OPTIONS = (
    "split",
    "mining_start",
    "mining_end",
    "evaluation_start",
    "evaluation_end",
    "evaluation_share",
    "profile",
)


def _run_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in RUN_OPTIONS if params.get(k) is not None}


if __name__ == "__main__":
    sys.exit(main())
