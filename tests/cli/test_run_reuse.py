"""A run with nothing new re-uses the earlier results of stage 1, drafting, shadow evaluation and the
batch gates, and says so; new data, a manual rule edit or a verdict makes it compute them again.

Typed as a user types it: real ``patas`` processes, a real Postgres, assertions on output and exit
code, and on the rule tables the skipped step would have written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg

from patas.bench.harness import fresh_database

PATAS = str(Path(sys.executable).parent / "patas")
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DRAFT_TABLES = {
    "rule_drafts": "select rule_id, version, rule_canonical, sql_expression, regex, drafted_run_id"
    " from patas.rule_drafts order by 1, 2",
    "clauses": "select * from patas.rule_signal_clauses order by 1, 2, 3, 4",
    # Ordered by the row itself ("order by 1::text" would order by the constant '1': heap order,
    # which the re-stamping update of a re-used evaluation may change).
    "counterexamples": "select to_jsonb(t) - 'run_id' from patas.rule_counterexamples as t"
    " order by (to_jsonb(t) - 'run_id')::text",
    "evaluations": "select to_jsonb(t) - 'evaluated_run_id' from marts.rule_evaluations as t"
    " order by (to_jsonb(t) - 'evaluated_run_id')::text",
}


def _patas(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([PATAS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{args} -> {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return res


def _run_id(out: str) -> str:
    return re.search(rf"run time:.*\(run ({RUN_ID})\)", out).group(1)


def _tables(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in DRAFT_TABLES.items()}


def _rol_patterns(tmp_path: Path) -> list[tuple[str, str]]:
    doc = json.loads((tmp_path / "home" / "exports" / "rules.rol.json").read_text())
    return [(r["id"], r["pattern"]) for r in doc["rules"]]


def test_a_second_run_with_nothing_new_skips_drafting_and_a_new_batch_does_not(
    server_url: str, tmp_path: Path
):
    corpus = tmp_path / "corpus.jsonl"
    with fresh_database(server_url, f"patas_runreuse_{os.getpid()}") as url:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(tmp_path / "home"),
               "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}  # fmt: skip
        env.pop("PATAS_PROFILE", None)
        _patas(env, tmp_path, "generate", "--rows", "3000", "--seed", "7", "--out", str(corpus))
        lines = corpus.read_text().splitlines(keepends=True)
        first, later = tmp_path / "first.jsonl", tmp_path / "later.jsonl"
        first.write_text("".join(lines[:2400]))
        later.write_text("".join(lines[2400:]))
        _patas(env, tmp_path, "ingest", str(first))

        run1 = _patas(env, tmp_path, "run").stdout
        assert "drafting:        computed (no earlier run computed it)" in run1, run1
        after1 = _tables(url)
        rol1 = _rol_patterns(tmp_path)
        assert after1["rule_drafts"] and after1["evaluations"]

        run2 = _patas(env, tmp_path, "run").stdout
        line = (
            f"drafting:        skipped, earlier result re-used (inputs unchanged since run {_run_id(run1)})"
        )
        assert line in run2, run2
        # The blocking audit of the stored drafts: the same drafts and code as run 1 audited and passed.
        audit = (
            f"drafts audit:    skipped, earlier result re-used (inputs unchanged since run {_run_id(run1)})"
        )
        assert audit in run2, run2
        # The batch gates: the same batch, history and thresholds; the stored results are this run's.
        assert "quality gates:   skipped, earlier result re-used (batch 1 validated in an earlier run" in run2
        assert re.search(r"^quality gates:   batch 1: \d+ passed", run2, re.M), run2
        assert (
            f"stage 1:         skipped, earlier result re-used (inputs unchanged since run {_run_id(run1)})"
            in run2
        )
        assert (
            f"shadow evaluation: skipped, earlier result re-used (inputs unchanged since run {_run_id(run1)})"
            in run2
        ), run2
        assert _tables(url) == after1  # the same drafts and the same shadow evaluation
        with psycopg.connect(url) as conn:  # re-stamped: promotion reads this run's evaluation
            stamped = conn.execute("select distinct evaluated_run_id from marts.rule_evaluations").fetchall()
        assert stamped == [(_run_id(run2),)]
        # The raw-text regexes of the second run's ROL export came from the file kept by code version.
        assert _rol_patterns(tmp_path) == rol1 and rol1
        assert list(
            (tmp_path / "home" / "cache").glob("raw_regex-*.json")
        )  # the patterns kept by code version
        # Dagster sees the re-use: the skipped dbt step's models carry skipped/skip_reason.
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        for key in (["intermediate", "int_messages_normalized"], ["marts", "rule_evaluations"]):
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event.run_id == _run_id(run2), key
            assert event.asset_materialization.metadata["skipped"].value is True, key
        assert "evaluation gates: computed (validated)" in run2, run2  # compared with run 1's baseline
        # A third run with nothing new: the same figures and baseline, the gates' verdicts re-used.
        run2b = _patas(env, tmp_path, "run").stdout
        assert "evaluation gates: skipped, earlier result re-used (the same figures and baseline" in run2b, (
            run2b
        )
        with psycopg.connect(url) as conn:
            gate_runs = conn.execute(
                "select distinct run_id from patas.quality_gate_results where gate in ('evaluation_window', 'active_precision')"
            ).fetchall()
        assert gate_runs == [(_run_id(run2b),)]

        assert re.search(r"^rules drafted:\s+" + re.escape(f"{len({r[0] for r in after1['rule_drafts']}):,}"),
                         run2, re.M), run2  # fmt: skip

        # A new batch: drafting runs again, and says what changed.
        _patas(env, tmp_path, "ingest", str(later))
        run3 = _patas(env, tmp_path, "run").stdout
        assert f"drafting:        computed (inputs changed since run {_run_id(run1)})" in run3, run3
        assert "quality gates:   computed (batch 2 validated)" in run3, run3
        assert f"stage 1:         computed (inputs changed since run {_run_id(run1)})" in run3, run3
        assert f"shadow evaluation: computed (inputs changed since run {_run_id(run1)})" in run3, run3

        # A manual edit of a drafted rule between two runs: nothing is re-used over it.
        with psycopg.connect(url) as conn:
            conn.execute(
                "insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description,"
                " sql_expression, regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)"
                " select rule_id, version + 1, rule_json, rule_canonical, description || ' (edited)',"
                " sql_expression, regex, origin, pattern_id, evaluation_kind, complexity, 'manual'"
                " from patas.rule_drafts order by rule_id, version desc limit 1"
            )
        run4 = _patas(env, tmp_path, "run").stdout
        assert f"drafting:        computed (its tables changed since run {_run_id(run3)})" in run4, run4
        # Stage 1 does not read the drafts; shadow evaluation does.
        assert (
            f"stage 1:         skipped, earlier result re-used (inputs unchanged since run {_run_id(run3)})"
            in run4
        )
        assert f"shadow evaluation: computed (inputs changed since run {_run_id(run3)})" in run4, run4
        run5 = _patas(env, tmp_path, "run").stdout
        assert f"skipped, earlier result re-used (inputs unchanged since run {_run_id(run4)})" in run5, run5
        assert (
            f"shadow evaluation: skipped, earlier result re-used (inputs unchanged since run {_run_id(run4)})"
            in run5
        )

        # A verdict on a message: stage 1 (the effective labels) and shadow evaluation compute again.
        with psycopg.connect(url) as conn:
            message_id = conn.execute("select min(external_id) from raw.messages").fetchone()[0]
        _patas(env, tmp_path, "feedback", str(message_id), "--verdict", "ham")
        run6 = _patas(env, tmp_path, "run").stdout
        assert f"stage 1:         computed (inputs changed since run {_run_id(run3)})" in run6, run6
        assert f"shadow evaluation: computed (inputs changed since run {_run_id(run4)})" in run6, run6
