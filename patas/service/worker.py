"""A pipeline run started by the API, in a process of its own (``python -m patas.service.worker``).

The API process starts this worker and reads ONE line from its stdout: ``{"status": "started",
"run_id": ...}`` once the runner holds the PATAS run lock (``patas.runner.run_pipeline``'s
``on_locked``), ``{"status": "busy"}`` when another run holds it, or ``{"status": "error"}``. The
run goes to the persistent Dagster instance (it shows in ``patas ui``), tagged with the caller's
key name; its outcome is recorded in ``patas.api_runs``. After the handshake, stdout is the log
file the API gave as stderr.

Kinds: ``mine`` and ``analyze`` (the whole graph: stage 1, drafting, shadow evaluation,
lifecycle, exports) and ``eval_shadow`` (the graph from the drafted rules on: shadow evaluation,
lifecycle, active_rules, exports, report; stage 1 and drafting are not re-run).

A ``mine`` or ``analyze`` run with nothing new (``patas.nothing_new``: the warehouse, settings and
code as the latest run left them) runs no step, as ``patas run`` does: the request's run is
recorded at once as a success whose summary is the latest run's, marked ``nothing_new``, and no
Dagster run is started; ``--force`` runs the graph anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from patas.service.db import ensure_schema

KINDS = ("mine", "eval_shadow", "analyze")
# The kinds that run the whole graph: skipped when nothing changed since the latest run.
WHOLE_GRAPH = ("mine", "analyze")
# eval_shadow runs everything downstream of drafting's assets, not drafting itself.
DRAFTING_ASSETS = (
    ("patas", "rule_drafts"),
    ("patas", "rule_signal_clauses"),
    ("patas", "rule_counterexamples"),
)
# ... plus the effective labels: label feedback arrives between runs, and shadow evaluation reads it.
LABEL_ASSETS = (("intermediate", "int_message_labels_overridden"),)


class _Handshake:
    def __init__(self) -> None:
        self.said = False

    def say(self, obj: dict[str, Any]) -> None:
        if self.said:
            return
        self.said = True
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
        # From here on stdout is the log file: the API reads only the handshake line.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def eval_shadow_selection() -> list:
    """The asset keys downstream of drafting (shadow evaluation and everything after it) and the
    effective labels shadow evaluation reads."""
    import dagster as dg

    from patas_dagster.definitions import defs

    drafting = dg.AssetSelection.assets(*[dg.AssetKey(list(k)) for k in DRAFTING_ASSETS])
    labels = dg.AssetSelection.assets(*[dg.AssetKey(list(k)) for k in LABEL_ASSETS])
    keys = ((drafting.downstream(include_self=False) - drafting) | labels).resolve(defs.resolve_asset_graph())
    return sorted(keys, key=lambda k: k.to_user_string())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m patas.service.worker")
    ap.add_argument("--kind", choices=KINDS, required=True)
    ap.add_argument("--requested-by", required=True)
    ap.add_argument("--params", default="{}", help="JSON: RunSpec fields (profile, split, windows)")
    ap.add_argument("--force", action="store_true", help="run the graph even when nothing changed")
    args = ap.parse_args(argv)
    hand = _Handshake()
    try:
        from patas.embedded import database_url
        from python_steps.runspec import RunSpec
        from python_steps.settings import load_settings
        from python_steps.warehouse import WarehouseError

        params = json.loads(args.params)
        spec = RunSpec(**params)
        settings = load_settings()
        url = database_url(settings)
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_schema(conn)
        selection = None
        if args.kind == "eval_shadow":
            from patas.manifest import ensure_manifest
            from python_steps.settings import dbt_env

            ensure_manifest(dbt_env(url))
            selection = eval_shadow_selection()
    except Exception as exc:
        traceback.print_exc()
        hand.say({"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        return 2

    run: dict[str, str] = {}
    conn = psycopg.connect(url, autocommit=True)
    if args.kind in WHOLE_GRAPH and not args.force:
        from patas.nothing_new import nothing_new

        unchanged = nothing_new(settings, url, spec)
        if unchanged is not None:
            run_id = str(uuid.uuid4())
            conn.execute(
                "insert into patas.api_runs (run_id, kind, requested_by, params, status, pid, finished_at, summary) "
                "values (%s, %s, %s, %s, 'success', %s, now(), %s)",
                (run_id, args.kind, args.requested_by, Jsonb(params), os.getpid(), Jsonb(unchanged)),
            )
            hand.say({"status": "started", "run_id": run_id})
            conn.close()
            return 0

    def on_locked(run_id: str) -> None:
        run["id"] = run_id
        conn.execute(
            "insert into patas.api_runs (run_id, kind, requested_by, params, status, pid) "
            "values (%s, %s, %s, %s, 'running', %s)",
            (run_id, args.kind, args.requested_by, Jsonb(params), os.getpid()),
        )
        hand.say({"status": "started", "run_id": run_id})

    status, summary, error = "failure", None, None
    try:
        tags = {"patas/source": "api", "patas/api_kind": args.kind, "patas/requested_by": args.requested_by}
        from patas.runner import run_pipeline  # Dagster's import: only for a run that runs

        summary = run_pipeline(settings, url, spec, tags=tags, asset_selection=selection, on_locked=on_locked)
        status = "success" if summary.get("success") else "failure"
        if status == "failure":
            error = "; ".join(summary.get("failures") or ["the run failed"])[:4000]
    except WarehouseError as exc:
        if not hand.said:
            hand.say({"status": "busy", "detail": str(exc)})
            conn.close()
            return 3
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"[:4000]
    except BaseException as exc:  # recorded for GET /runs/{id}; the traceback goes to the log
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"[:4000]
        if not hand.said:
            hand.say({"status": "error", "detail": error[:500]})
            conn.close()
            return 2
    with contextlib.suppress(psycopg.Error):
        conn.execute(
            "update patas.api_runs set status = %s, finished_at = now(), summary = %s, error = %s "
            "where run_id = %s",
            (
                status,
                Jsonb(json.loads(json.dumps(summary, default=str))) if summary else None,
                error,
                run["id"],
            ),
        )
    conn.close()
    return 0 if status == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
