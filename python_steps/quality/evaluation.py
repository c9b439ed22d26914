"""Evaluation gates: is this run's shadow evaluation fit to promote and deprecate on?

Checked in the lifecycle step just before :func:`python_steps.lifecycle.store.apply_lifecycle`
changes any status (which gets the critical failures as ``blocked_by``), with great-expectations
1.x like the batch gates (:mod:`.gates`):

- ``evaluation_window``: the evaluation window holds at least ``min_messages`` messages,
  ``min_spam`` spam and ``min_ham`` ham (effective labels), the mining window ``min_mining_messages``;
- ``active_precision``: the current active set's precision on this run's evaluation window has not
  dropped more than ``max_drop`` below the previous run's (both with at least ``min_hits`` labelled
  hits; the first run, or one without enough hits, skips). Measured on the labels as ingested: a
  drop there says the feed or its labelling changed under the rules; reversals by moderators and
  appeals (effective labels) are the feedback loop's to act on, and must not block it.

Each run's figures are kept in ``patas.evaluation_profiles``: ``checked_precision`` is the precision
of the active set the run started with (what the gate compared), ``active_*`` the active set as the
run left it (:func:`record_active_set`, after its decisions), which the next run compares with: the
same rules, on the next window. A blocked run leaves the active set as it was, so its figures become
the next run's baseline: a drop blocks one run (an operator looks, or changes the threshold), a level
that persists is accepted on the next one. The gates' outcome goes to ``patas.quality_gate_results`` (batch_id = the newest batch, run_id = this run). A
failed ``critical`` gate makes the lifecycle withhold every promotion and deprecation: the active set
stays unchanged, and the run report says why. :func:`check_then_apply` is that sequence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from python_steps import tables
from python_steps.quality import gates as gates_module
from python_steps.quality import suite_process
from python_steps.quality.gates import (
    EVALUATION_GATES,
    GateConfig,
    GateResult,
    _expected,
    _fmt,
    load_config,
    render_data_docs,
)


@dataclass
class EvaluationValidation:
    run_id: str
    batch_id: int
    profile: dict[str, Any]
    results: list[GateResult] = field(default_factory=list)
    data_docs: dict[str, str] = field(default_factory=dict)  # suite name -> GE's HTML page

    @property
    def critical_failures(self) -> list[GateResult]:
        return [r for r in self.results if r.status == "failed" and r.severity == "critical"]

    @property
    def warnings(self) -> list[GateResult]:
        return [r for r in self.results if r.status == "failed" and r.severity == "warning"]

    def summary(self) -> str:
        failed = [f"{r.gate} ({r.severity}): {r.detail}" for r in self.results if r.status == "failed"]
        return "; ".join(failed) if failed else "every evaluation gate passed or was skipped"


def profile_evaluation(
    conn: psycopg.Connection, run_id: str, hits_relation: str = "marts.rule_hits"
) -> dict[str, Any]:
    """Window sizes (effective labels) and the current active set's hits on the evaluation window
    (labels as ingested)."""
    windows = conn.execute(
        f"""
        select
            count(*) filter (where w.window_name = 'mining'),
            count(*) filter (where w.window_name = 'evaluation'),
            count(*) filter (where w.window_name = 'evaluation' and coalesce(o.is_spam, w.is_spam)),
            count(*) filter (where w.window_name = 'evaluation' and not coalesce(o.is_spam, w.is_spam))
        from {tables.MESSAGES_WINDOWED} as w
        left join {tables.LABELS_OVERRIDDEN} as o using (message_id)
        """
    ).fetchone()
    active = _active_hits(conn, hits_relation)
    spam_hits, ham_hits = active[1], active[2]
    batch = conn.execute("select coalesce(max(batch_id), 0) from raw.ingest_batches").fetchone()[0]
    return {
        "run_id": run_id,
        "batch_id": batch,
        "mining_messages": windows[0],
        "evaluation_messages": windows[1],
        "evaluation_spam": windows[2],
        "evaluation_ham": windows[3],
        "active_rule_count": active[0],
        "active_spam_hits": spam_hits,
        "active_ham_hits": ham_hits,
        "active_precision": spam_hits / (spam_hits + ham_hits) if spam_hits + ham_hits else None,
    }


def _active_hits(conn: psycopg.Connection, hits_relation: str) -> tuple[int, int, int]:
    row = conn.execute(
        f"""
        with active as (select rule_id from patas.rule_lifecycle where status = 'active'),
        hit as (
            select distinct h.message_id from {hits_relation} as h join active using (rule_id)
            where h.window_name = 'evaluation'
        )
        select
            (select count(*) from active),
            count(*) filter (where e.is_spam),
            count(*) filter (where not e.is_spam)
        from hit
        join {tables.MESSAGES_ENRICHED} as e using (message_id)
        """
    ).fetchone()
    return row[0], row[1], row[2]


def record_active_set(conn: psycopg.Connection, run_id: str, hits_relation: str = "marts.rule_hits") -> None:
    """After the run's decisions: the active set it leaves, on its evaluation window (next run's baseline)."""
    count, spam, ham = _active_hits(conn, hits_relation)
    conn.execute(
        """
        update patas.evaluation_profiles set active_rule_count = %s, active_spam_hits = %s,
            active_ham_hits = %s, active_precision = %s
        where run_id = %s
        """,
        (count, spam, ham, spam / (spam + ham) if spam + ham else None, run_id),
    )


def _previous(conn: psycopg.Connection, run_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select * from patas.evaluation_profiles where run_id <> %s order by recorded_at desc limit 1",
            (run_id,),
        ).fetchone()


def validate_evaluation(
    conn: psycopg.Connection,
    config: GateConfig | None = None,
    *,
    run_id: str,
    hits_relation: str = "marts.rule_hits",
) -> EvaluationValidation:
    """Profile this run's evaluation, run the evaluation gates, store profile and results."""
    config = config or load_config()
    tables.ensure_all(conn)
    profile = profile_evaluation(conn, run_id, hits_relation)
    previous = _previous(conn, run_id)
    state = _input_state(profile, previous, config)
    reused = _reuse_results(conn, profile["batch_id"], state, run_id, profile, previous, config)
    data_docs: dict[str, str] = {}
    if reused is None:
        results, data_docs = suite_process.call(_suite_with_docs, config, profile, previous)
    else:
        results = reused
    blocked = any(r.status == "failed" and r.severity == "critical" for r in results)
    with conn.transaction():
        conn.execute(
            """
            insert into patas.evaluation_profiles (run_id, batch_id, mining_messages, evaluation_messages,
                evaluation_spam, evaluation_ham, active_rule_count, active_spam_hits, active_ham_hits,
                active_precision, checked_precision, blocked)
            values (%(run_id)s, %(batch_id)s, %(mining_messages)s, %(evaluation_messages)s, %(evaluation_spam)s,
                %(evaluation_ham)s, %(active_rule_count)s, %(active_spam_hits)s, %(active_ham_hits)s,
                %(active_precision)s, %(active_precision)s, %(blocked)s)
            on conflict (run_id) do update set batch_id = excluded.batch_id,
                mining_messages = excluded.mining_messages, evaluation_messages = excluded.evaluation_messages,
                evaluation_spam = excluded.evaluation_spam, evaluation_ham = excluded.evaluation_ham,
                active_rule_count = excluded.active_rule_count, active_spam_hits = excluded.active_spam_hits,
                active_ham_hits = excluded.active_ham_hits, active_precision = excluded.active_precision,
                checked_precision = excluded.checked_precision, blocked = excluded.blocked, recorded_at = now()
            """,
            {**profile, "blocked": blocked},
        )
        if reused is None:
            conn.execute(
                "delete from patas.quality_gate_results where batch_id = %s and gate = any(%s)",
                (profile["batch_id"], list(EVALUATION_GATES)),
            )
            with conn.cursor() as c:
                c.executemany(
                    """
                    insert into patas.quality_gate_results
                        (batch_id, gate, severity, status, observed, expected, detail, run_id)
                    values (%s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    [
                        (profile["batch_id"], r.gate, r.severity, r.status,
                         None if r.observed is None else _fmt(r.observed), r.expected, r.detail, run_id)
                        for r in results
                    ],
                )  # fmt: skip
        _record_state(conn, profile["batch_id"], state, run_id, skipped=reused is not None)
    return EvaluationValidation(run_id, profile["batch_id"], profile, results, data_docs)


# -- re-use: the same figures give the same verdicts ---------------------------------------------
# The gates are a function of this run's profile, the previous run's (its baseline), the thresholds
# and this code. Recorded per run in patas.run_step_states (step 'evaluation_gates'), as the batch
# gates do: a run whose state equals the latest validating run's, with that run's results still
# stored, re-stamps them with its run id instead of running great-expectations (nor importing it).
# A run with nothing new reaches that state from its third run on (the second still compares with
# the first run's baseline, which had none).
STEP = "evaluation_gates"
# What the gates read of the previous run's profile (its run id only names it in a detail text,
# which a re-use writes anew).
PREVIOUS_FIGURES = ("active_spam_hits", "active_ham_hits", "active_precision")
_CODE = (Path(__file__), Path(gates_module.__file__), gates_module.DEFAULT_CONFIG)


def _input_state(profile: Mapping[str, Any], previous: Mapping[str, Any] | None, config: GateConfig) -> str:
    payload = {
        "profile": {k: v for k, v in profile.items() if k != "run_id"},
        "previous": None if previous is None else {k: previous[k] for k in PREVIOUS_FIGURES},
        "config": repr(config),
        "code": [hashlib.md5(p.read_bytes()).hexdigest() for p in _CODE],
    }  # fmt: skip
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _results_state(conn: psycopg.Connection, batch_id: int) -> str:
    """The stored verdicts (their detail texts name the previous run, so they are left out)."""
    return conn.execute(
        """
        select md5(coalesce(string_agg(concat_ws(chr(31), gate, severity, status, observed, expected),
                                       chr(30) order by gate), ''))
        from patas.quality_gate_results where batch_id = %s and gate = any(%s)
        """,
        (batch_id, list(EVALUATION_GATES)),
    ).fetchone()[0]


def _record_state(conn: psycopg.Connection, batch_id: int, state: str, run_id: str, *, skipped: bool) -> None:
    reason = "the same figures and baseline as an earlier run" if skipped else "validated"
    tables.write_step_state(
        conn, run_id, STEP, state, _results_state(conn, batch_id), skipped=skipped, reason=reason
    )


def _reuse_results(
    conn: psycopg.Connection,
    batch_id: int,
    state: str,
    run_id: str,
    profile: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    config: GateConfig,
) -> list[GateResult] | None:
    """The stored results of the latest validation when it had the same inputs, or None. The
    active-precision detail names this run's previous run, as a validation would."""
    row = tables.latest_computed_step_state(conn, STEP, other_than_run=run_id)
    if row is None or row[1] != state or row[2] != _results_state(conn, batch_id):
        return None
    rows = conn.execute(
        """
        update patas.quality_gate_results set run_id = %s where batch_id = %s and gate = any(%s)
        returning gate, severity, status, detail, observed, expected
        """,
        (run_id, batch_id, list(EVALUATION_GATES)),
    ).fetchall()
    results = []
    for gate, severity, status, detail, observed, expected in rows:
        if gate == "active_precision" and status != "skipped" and previous is not None:
            detail = _precision_detail(
                float(profile["active_precision"]), float(previous["active_precision"]), previous["run_id"],
                status == "passed", config.gates[gate]["max_drop"],
            )  # fmt: skip
            conn.execute(
                "update patas.quality_gate_results set detail = %s where batch_id = %s and gate = %s",
                (detail, batch_id, gate),
            )
        results.append(GateResult(gate, severity, status, detail, observed, expected))
    return sorted(results, key=lambda r: EVALUATION_GATES.index(r.gate))


def _precision_detail(observed: float, previous: float, previous_run: str, ok: bool, max_drop: Any) -> str:
    return (
        f"active-set precision {observed:.3f} on this evaluation window, previous run"
        f" {previous:.3f} ({previous_run}): " + ("within" if ok else f"dropped by more than {max_drop}")
    )


def _suite_with_docs(
    config: GateConfig, profile: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> tuple[list[GateResult], dict[str, str]]:
    """:func:`_run_suite` and its data-docs pages (what the great-expectations helper returns)."""
    data_docs: dict[str, str] = {}
    return _run_suite(config, profile, previous, data_docs), data_docs


def _run_suite(
    config: GateConfig,
    profile: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    data_docs: dict[str, str] | None = None,
) -> list[GateResult]:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations.metadata_types import FailureSeverity

    g = config.gates
    results: list[GateResult] = []
    expectations: list[Any] = []

    def sev(gate: str) -> Any:
        return FailureSeverity.CRITICAL if g[gate]["severity"] == "critical" else FailureSeverity.WARNING

    row: dict[str, float] = {}
    if g["evaluation_window"]["severity"] != "off":
        w = g["evaluation_window"]
        for column, key in (
            ("evaluation_messages", "min_messages"),
            ("evaluation_spam", "min_spam"),
            ("evaluation_ham", "min_ham"),
            ("mining_messages", "min_mining_messages"),
        ):
            row[column] = float(profile[column])
            expectations.append(gx.expectations.ExpectColumnValuesToBeBetween(
                column=column, min_value=float(w[key]), severity=sev("evaluation_window"),
                meta={"gate": "evaluation_window", "what": column}))  # fmt: skip
    if g["active_precision"]["severity"] != "off":
        a = g["active_precision"]
        min_hits = int(a["min_hits"])
        hits_now = profile["active_spam_hits"] + profile["active_ham_hits"]
        hits_before = (previous["active_spam_hits"] + previous["active_ham_hits"]) if previous else 0
        if previous is None:
            results.append(
                GateResult("active_precision", a["severity"], "skipped", "no earlier run to compare with")
            )
        elif (
            profile["active_precision"] is None
            or previous["active_precision"] is None
            or min(hits_now, hits_before) < min_hits
        ):
            results.append(GateResult("active_precision", a["severity"], "skipped",
                                      f"the active set has fewer than {min_hits} labelled hits in this run "
                                      f"({hits_now}) or the previous one ({hits_before})"))  # fmt: skip
        else:
            row["active_precision"] = float(profile["active_precision"])
            expectations.append(gx.expectations.ExpectColumnValuesToBeBetween(
                column="active_precision", min_value=float(previous["active_precision"]) - float(a["max_drop"]),
                severity=sev("active_precision"),
                meta={"gate": "active_precision", "previous": float(previous["active_precision"]),
                      "previous_run": previous["run_id"]}))  # fmt: skip
    if expectations:
        context = gx.get_context(mode="ephemeral")
        batch = (
            context.data_sources.add_pandas("patas_evaluation")
            .add_dataframe_asset("evaluation")
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": pd.DataFrame([row])})
        )
        suite = gx.ExpectationSuite(name="evaluation_gates")
        for e in expectations:
            suite.add_expectation(e)
        outcome = batch.validate(suite, result_format="SUMMARY")
        if data_docs is not None:
            data_docs[suite.name] = render_data_docs(outcome)
        by_gate: dict[str, list[tuple[bool, Mapping[str, Any], Mapping[str, Any]]]] = {}
        for r in outcome.results:
            cfg = r.expectation_config
            by_gate.setdefault(cfg.meta["gate"], []).append((bool(r.success), cfg.kwargs, cfg.meta))
        for gate, checks in by_gate.items():
            ok = all(c[0] for c in checks)
            if gate == "evaluation_window":
                parts = [
                    f"{c[2]['what'].replace('_', ' ')} {int(row[c[2]['what']])}"
                    + ("" if c[0] else f" < {int(c[1]['min_value'])}")
                    for c in checks
                ]
                detail = ("windows big enough: " if ok else "window too small: ") + ", ".join(parts)
                observed, expected = (
                    int(row["evaluation_messages"]),
                    ", ".join(f"{c[2]['what']} >= {int(c[1]['min_value'])}" for c in checks),
                )
            else:
                _, kwargs, meta = checks[0]
                observed, expected = row["active_precision"], _expected(kwargs)
                detail = _precision_detail(
                    observed, meta["previous"], meta["previous_run"], ok, g[gate]["max_drop"]
                )
            results.append(
                GateResult(
                    gate, g[gate]["severity"], "passed" if ok else "failed", detail, observed, expected
                )
            )
    return sorted(results, key=lambda r: EVALUATION_GATES.index(r.gate))


def check_then_apply(
    conn: psycopg.Connection,
    apply: Any,
    config: GateConfig | None = None,
    *,
    run_id: str,
    hits_relation: str = "marts.rule_hits",
) -> tuple[dict[str, Any], EvaluationValidation]:
    """Check the evaluation gates, call ``apply(blocked_by=[...])`` (the lifecycle), then record the
    active set the run leaves (the next run's baseline); commits. Returns (apply's result, the check)."""
    checked = validate_evaluation(conn, config, run_id=run_id, hits_relation=hits_relation)
    conn.commit()
    result = apply(blocked_by=[f"{r.gate}: {r.detail}" for r in checked.critical_failures])
    record_active_set(conn, run_id, hits_relation)
    conn.commit()
    return result, checked
