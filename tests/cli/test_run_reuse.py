"""A run with nothing new re-uses the earlier results of stage 1, drafting, shadow evaluation and the
batch gates, and says so; new data, a manual rule edit or a verdict makes it compute them again.

Typed as a user types it: real ``patas`` processes, a real Postgres, assertions on output and exit
code, and on the rule tables the skipped step would have written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def _first_part_ingested(
    server_url: str, tmp_path: Path, database: str, *, first_lines: int
) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A fresh database with the first ``first_lines`` of a generated 3,000-message corpus ingested;
    yields its url, the environment of a user's ``patas`` and the file of the remaining lines."""
    corpus = tmp_path / "corpus.jsonl"
    with fresh_database(server_url, f"{database}_{os.getpid()}") as url:
        env = {**os.environ, "PATAS_DATABASE_URL": url, "PATAS_HOME": str(tmp_path / "home"),
               "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}  # fmt: skip
        env.pop("PATAS_PROFILE", None)
        _patas(env, tmp_path, "generate", "--rows", "3000", "--seed", "7", "--out", str(corpus))
        lines = corpus.read_text().splitlines(keepends=True)
        first, later = tmp_path / "first.jsonl", tmp_path / "later.jsonl"
        first.write_text("".join(lines[:first_lines]))
        later.write_text("".join(lines[first_lines:]))
        _patas(env, tmp_path, "ingest", str(first))
        yield url, env, later


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
    with _first_part_ingested(server_url, tmp_path, "patas_runreuse", first_lines=2400) as (url, env, later):
        run1 = _patas(env, tmp_path, "run").stdout
        assert "drafting:        computed (no earlier run computed it)" in run1, run1
        after1 = _tables(url)
        rol1 = _rol_patterns(tmp_path)
        assert after1["rule_drafts"] and after1["evaluations"]
        # Right after the first run (which promoted), nothing is new: no step runs.
        again = _patas(env, tmp_path, "run").stdout
        assert (
            f"nothing new:     the warehouse, settings and code are as run {_run_id(run1)} left them" in again
        )

        run2 = _patas(env, tmp_path, "run", "--force").stdout  # the graph, though nothing is new
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
        run2b = _patas(env, tmp_path, "run", "--force").stdout
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
        run5 = _patas(env, tmp_path, "run", "--force").stdout
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


LATER_TABLES = {
    "lifecycle": "select to_jsonb(t) from patas.rule_lifecycle as t order by rule_id",
    "evidence": "select to_jsonb(t) - 'run_id' - 'recorded_at' from patas.rule_evidence as t order by rule_id",
    "members": "select ruleset_name, rule_id from patas.ruleset_members order by 1, 2",
    "active_rules": "select to_jsonb(t) - 'evaluated_run_id' from marts.active_rules as t order by rule_id",
    "ruleset_evaluation": "select to_jsonb(t) - 'evaluated_run_id' from marts.ruleset_evaluation as t"
    " order by ruleset_name, window_name",
    "clusters": "select to_jsonb(t) - 'run_id' - 'matched_similarity' from patas.semantic_clusters as t order by cluster_id",
    "members_of_clusters": "select * from patas.semantic_cluster_members order by 1, 2",
    # the pattern library's figures (kept between runs: the rule patterns' centroids, stage 2's
    # vectors, labels and summaries), without what each run that sees a pattern bumps
    "patterns": "select to_jsonb(t) - 'version' - 'runs_active' - 'last_run_id' - 'updated_at' - 'created_at'"
    " from patas.patterns as t order by pattern_id",
}


def _later_tables(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in LATER_TABLES.items()}


def _history(url: str, run_id: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select to_jsonb(t) - 'run_id' - 'run_seq' - 'recorded_at' from patas.rule_metrics_history as t"
            " where run_id = %s order by rule_id, window_name",
            (run_id,),
        ).fetchall()


def _said(out: str, step: str, how: str, run_id: str) -> bool:
    verb = "skipped, earlier result re-used" if how == "skipped" else "computed"
    changed = "unchanged" if how == "skipped" else "changed"
    return f"{(step + ':').ljust(16)} {verb} (inputs {changed} since run {run_id})" in out


def test_nothing_new_reuses_the_slice_promotion_and_active_rules_and_a_change_computes_them(
    server_url: str, tmp_path: Path
):
    with _first_part_ingested(server_url, tmp_path, "patas_runreuse2", first_lines=2900) as (url, env, later):
        run1 = _patas(env, tmp_path, "run").stdout
        r1 = _run_id(run1)
        for step in ("stage2 slice", "promotion", "active rules"):
            assert f"{(step + ':').ljust(16)} computed (no earlier run computed it)" in run1, run1
        after1 = _later_tables(url)

        # Run 1 promoted rules: promotion's input (the lifecycle) changed, so run 2 computes it; it
        # decides nothing, so the active-rules step's inputs (the lifecycle and the would-be sets,
        # without run ids) are those of run 1.
        run2 = _patas(env, tmp_path, "run", "--force").stdout  # the graph, though nothing is new
        r2 = _run_id(run2)
        assert _said(run2, "stage2 slice", "skipped", r1), run2
        assert _said(run2, "promotion", "computed", r1), run2
        assert _said(run2, "active rules", "skipped", r1), run2
        after2 = _later_tables(url)
        assert after2 == {**after1, "lifecycle": after2["lifecycle"]}
        assert not re.search(r"^transitions:", run2, re.M), run2

        # Run 3: promotion replays run 2 (the same rows a recompute writes, with this run's id).
        run3 = _patas(env, tmp_path, "run", "--force").stdout
        r3 = _run_id(run3)
        assert _said(run3, "promotion", "skipped", r2), run3
        assert _said(run3, "active rules", "skipped", r1), run3
        assert _said(run3, "stage2 slice", "skipped", r1), run3
        assert _later_tables(url) == after2
        assert _history(url, r3) == _history(url, r2) and _history(url, r2)
        with psycopg.connect(url) as conn:
            seqs = dict(
                conn.execute("select run_id, max(run_seq) from patas.rule_metrics_history group by 1")
            )
            stamps = {
                rel: conn.execute(f"select distinct evaluated_run_id from {rel}").fetchall()
                for rel in ("marts.active_rules", "marts.ruleset_evaluation")
            }
            (evidence_runs,) = conn.execute(
                "select array_agg(distinct run_id) from patas.rule_evidence"
            ).fetchone()
            (member_runs,) = conn.execute(
                "select array_agg(distinct run_id) from patas.ruleset_members"
            ).fetchone()
            rule_id = conn.execute(
                "select rule_id from marts.active_rules order by rule_id limit 1"
            ).fetchone()[0]
        assert seqs[r3] == seqs[r2] + 1
        assert stamps == {rel: [(r3,)] for rel in stamps}
        assert evidence_runs == [r3] and member_runs == [r3]
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        event = instance.get_latest_materialization_event(dg.AssetKey(["marts", "active_rules"]))
        assert event.run_id == r3 and event.asset_materialization.metadata["skipped"].value is True
        event = instance.get_latest_materialization_event(dg.AssetKey(["patas", "rule_lifecycle"]))
        assert event.asset_materialization.metadata["skipped"].value is True
        event = instance.get_latest_materialization_event(dg.AssetKey(["patas", "semantic_clusters"]))
        assert event.asset_materialization.metadata["slice_skipped"].value is True

        # `patas run` with nothing new since run 3: no step runs, no run is recorded (in the
        # warehouse or in Dagster), and run 3's results stand.
        runs_before = len(instance.get_runs())
        with psycopg.connect(url) as conn:
            (registered,) = conn.execute("select count(*) from patas.runs").fetchone()
        nothing = _patas(env, tmp_path, "run").stdout
        assert f"nothing new:     the warehouse, settings and code are as run {r3} left them" in nothing
        assert _run_id(nothing) == r3 and not re.search(r"^promotion:", nothing, re.M), nothing
        as_json = json.loads(_patas(env, tmp_path, "run", "--json").stdout)
        assert as_json["nothing_new"] == {"since_run": r3} and as_json["success"] is True
        assert as_json["rules_by_status"] and as_json["transitions_this_run"] == {}
        assert len(dg.DagsterInstance.from_config(env["DAGSTER_HOME"]).get_runs()) == runs_before
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from patas.runs").fetchone()[0] == registered
        assert _later_tables(url) == after2
        # An export deleted by hand: the next run runs the graph, and the export is back.
        export = tmp_path / "home" / "exports" / "rules.sql"
        export.unlink()
        again = _patas(env, tmp_path, "run").stdout
        assert "nothing new:" not in again and _said(again, "promotion", "skipped", r2), again
        assert export.exists()

        # A review decision (a rule deprecated by hand): promotion and the active-rules step compute.
        _patas(env, tmp_path, "rules", "deprecate", rule_id, "--reason", "test: reviewed")
        run4 = _patas(env, tmp_path, "run").stdout
        r4 = _run_id(run4)
        assert _said(run4, "promotion", "computed", r2), run4
        assert _said(run4, "active rules", "computed", r1), run4
        assert _said(run4, "stage2 slice", "skipped", r1), run4

        # Another profile: promotion computes (the active-rules step follows what it decides).
        run5 = _patas(env, tmp_path, "run", "--profile", "aggressive").stdout
        assert _said(run5, "promotion", "computed", r4), run5

        # A verdict on a message: the slice (stage 1's labels), promotion and the active rules compute.
        with psycopg.connect(url) as conn:
            message_id = conn.execute("select min(external_id) from raw.messages").fetchone()[0]
        _patas(env, tmp_path, "feedback", str(message_id), "--verdict", "ham")
        run6 = _patas(env, tmp_path, "run", "--profile", "aggressive").stdout
        assert re.search(r"^stage2 slice:\s+computed \(inputs changed since run", run6, re.M), run6
        assert re.search(r"^promotion:\s+computed \(inputs changed since run", run6, re.M), run6
        assert re.search(r"^active rules:\s+computed \(inputs changed since run", run6, re.M), run6

        # New messages: the slice computes again.
        _patas(env, tmp_path, "ingest", str(later))
        run7 = _patas(env, tmp_path, "run", "--profile", "aggressive").stdout
        assert _said(run7, "stage2 slice", "computed", _run_id(run6)), run7
        assert re.search(r"^promotion:\s+computed \(inputs changed since run", run7, re.M), run7
