"""dbt in-process: the run's vars never change the parsed project, and a dbt step starts no process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from python_steps.mining.windows import RunWindows
from python_steps.runspec import RunSpec
from python_steps.settings import PROJECT_ROOT, dbt_env

PROFILES_DIR = str(PROJECT_ROOT / "profiles")


def _parse(tmp_path: Path, name: str, dbt_vars: dict | None) -> dict:
    """The nodes of the project parsed with ``dbt_vars``: what a preloaded manifest fixes for a run."""
    from dbt.cli.main import dbtRunner

    args = ["parse", "--no-write-json", "--project-dir", str(PROJECT_ROOT), "--profiles-dir", PROFILES_DIR]
    args += ["--target-path", str(tmp_path / name), "--log-path", str(tmp_path / name)]
    if dbt_vars is not None:
        args += ["--vars", json.dumps(dbt_vars)]
    res = dbtRunner().invoke(args)
    assert res.success, res.exception
    out = {}
    for uid, node in res.result.nodes.items():
        data = node.to_dict()
        out[uid] = {
            "config": data["config"],
            # depends_on.macros is left out: it drives partial parsing and state selection, and a
            # node renders with every macro of the project at run time (a test that calls a macro
            # only under a time split records it only when parsed with one).
            "depends_on": data["depends_on"].get("nodes"),
            "refs": data.get("refs"),
            "sources": data.get("sources"),
        }
    return out


def test_the_runs_vars_do_not_change_the_parsed_project(server_url, tmp_path, monkeypatch):
    """Every build of a run reuses one manifest parsed with the project's default vars, so no
    model's config, hooks, refs or sources may depend on a var a run passes."""
    for k, v in dbt_env(server_url).items():
        if k.startswith(("PATAS_PG_", "DBT_")):
            monkeypatch.setenv(k, v)
    windows = RunWindows(
        split_mode="time",
        mining_start="2026-01-01T00:00:00+00:00",
        mining_end="2026-01-20T00:00:00+00:00",
        evaluation_start="2026-01-20T00:00:00+00:00",
        evaluation_end="2026-02-01T00:00:00+00:00",
        evaluation_share=17,
    )
    spec = RunSpec(suspiciousness_threshold=0.2, min_spam_count=7, crossfit_folds=5)
    run_vars = spec.dbt_vars(windows, "run-vars-test")
    assert run_vars["patas_shadow_windows"] == ["mining", "evaluation"]
    default_nodes = _parse(tmp_path, "default", None)
    run_nodes = _parse(tmp_path, "run", run_vars)
    assert set(default_nodes) == set(run_nodes)
    differing = sorted(uid for uid in default_nodes if default_nodes[uid] != run_nodes[uid])
    assert differing == []


def test_a_dbt_step_runs_in_process_and_reports_models_and_checks(defs, small_warehouse, monkeypatch):
    """Stage 1's dbt step on a small corpus with process creation forbidden: it succeeds, and Dagster
    gets a materialization per model and a check result per dbt test, as from the CLI before."""

    def no_process(*args, **kwargs):
        raise AssertionError(f"a dbt step started a process: {args[:1]}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    stage1 = dg.AssetSelection.groups("stage1", "reference")
    keys = list(stage1.resolve(defs.resolve_asset_graph()))
    job = defs.resolve_job_def("patas_pipeline")
    result = job.execute_in_process(
        run_config={"resources": {"run_spec": {"config": RunSpec().as_dict()}}},
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=keys,
        raise_on_error=False,
    )
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert set(keys) <= materialized
    checks = [
        e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert checks, "the dbt tests of stage 1 reached Dagster as asset checks"
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]


@pytest.mark.parametrize("changed", ["profile", "code"])
def test_the_parsed_manifest_is_keyed_on_profile_and_code(changed, tmp_path, monkeypatch):
    from patas_dagster.dbt_inprocess import manifest_cache_key

    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    manifest = project / "target" / "manifest.json"
    manifest.write_text("{}")
    monkeypatch.setenv("PATAS_PG_DBNAME", "one")
    before = manifest_cache_key(str(project), PROFILES_DIR)
    assert manifest_cache_key(str(project), PROFILES_DIR) == before
    if changed == "profile":
        monkeypatch.setenv("PATAS_PG_DBNAME", "two")
    else:
        manifest.write_text('{"changed": true}')
        os.utime(manifest, ns=(manifest.stat().st_atime_ns, manifest.stat().st_mtime_ns + 10**9))
    assert manifest_cache_key(str(project), PROFILES_DIR) != before


def _project_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the dbt project (the real target/ is left alone), the profile's variables set for
    database db_one (dbt parses without connecting) and no parse cached in this process."""
    import shutil

    from patas_dagster import dbt_inprocess

    project = tmp_path / "project"
    for name in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(PROJECT_ROOT / name, project / name)
    shutil.copy(PROJECT_ROOT / "dbt_project.yml", project / "dbt_project.yml")
    for k, v in dbt_env("postgresql://patas@127.0.0.1:5432/db_one").items():
        if k.startswith(("PATAS_PG_", "DBT_")):
            monkeypatch.setenv(k, v)
    monkeypatch.setattr(dbt_inprocess, "_manifests", {})
    return project


def test_another_database_reuses_the_parse_and_gets_its_own_relations(tmp_path, monkeypatch):
    """A new database is no new code version: the parse saved for one database is reused for the
    next (dbt parses no file again) and every node and source names the new database; another
    host still parses everything. A copy of the project, so the real target/ is left alone; dbt
    parses without connecting, so the databases need not exist."""
    from patas_dagster import dbt_inprocess

    project = _project_copy(tmp_path, monkeypatch)

    def parse(database: str, port: str = "5432") -> tuple[object, int]:
        monkeypatch.setenv("PATAS_PG_DBNAME", database)
        monkeypatch.setenv("PATAS_PG_PORT", port)
        manifest = dbt_inprocess.parsed_manifest(str(project), PROFILES_DIR)
        perf = json.loads((project / "target" / "perf_info.json").read_text())
        return manifest, perf["parsed_path_count"]

    _, first = parse("db_one")
    assert first > 0, "no saved parse yet: dbt parses every file"
    manifest, again = parse("db_two")
    assert again == 0, "only the database changed: nothing parsed again"
    relations = [*manifest.nodes.values(), *manifest.sources.values()]
    assert relations and all(n.database == "db_two" for n in relations if n.database is not None)
    named = [n.relation_name for n in relations if getattr(n, "relation_name", None)]
    assert named and all(r.startswith('"db_two".') for r in named), named[:3]
    assert manifest.nodes["model.patas.rule_hits"].relation_name == '"db_two"."marts"."rule_hits"'
    _, other_host = parse("db_two", port="5433")
    assert other_host > 0, "another port is another profile: everything parsed again"
    # A parse dbt saved by itself (`patas dbt -- ...`) serves the same database.
    from dbt.cli.main import dbtRunner

    monkeypatch.setenv("PATAS_PG_DBNAME", "db_three")
    res = dbtRunner().invoke(["parse", "--project-dir", str(project), "--profiles-dir", PROFILES_DIR])
    assert res.success, res.exception
    manifest, after_dbt = parse("db_three", port="5433")
    assert after_dbt == 0
    assert manifest.nodes["model.patas.rule_hits"].relation_name == '"db_three"."marts"."rule_hits"'


def test_a_run_that_finds_the_project_changed_parses_it_once(tmp_path, monkeypatch):
    """`patas run` after a code change writes target/manifest.json in its own process
    (``ensure_manifest(..., in_process=True)``) and its dbt steps reuse that very parse: the
    manifest they get is the one written, no second parse. A copy of the project, as above."""
    from patas_dagster import dbt_inprocess

    project = _project_copy(tmp_path, monkeypatch)
    written = dbt_inprocess.write_manifest(str(project), PROFILES_DIR)
    assert written == project / "target" / "manifest.json"
    nodes = json.loads(written.read_text())["nodes"]
    assert "model.patas.rule_hits" in nodes
    calls: list[bool] = []
    real_parse = dbt_inprocess._parse
    monkeypatch.setattr(dbt_inprocess, "_parse", lambda *a, **k: calls.append(True) or real_parse(*a, **k))
    manifest = dbt_inprocess.parsed_manifest(str(project), PROFILES_DIR)
    assert calls == [], "the steps reuse the parse that wrote the manifest"
    assert set(manifest.nodes) == set(nodes)
    assert manifest.nodes["model.patas.rule_hits"].relation_name == '"db_one"."marts"."rule_hits"'
    # A changed manifest (another code version) is parsed again.
    os.utime(written, ns=(written.stat().st_atime_ns, written.stat().st_mtime_ns + 10**9))
    dbt_inprocess.parsed_manifest(str(project), PROFILES_DIR)
    assert calls == [True]


def test_a_broken_model_fails_the_parse_with_dbts_reason(tmp_path, monkeypatch):
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    from patas_dagster import dbt_inprocess

    project = _project_copy(tmp_path, monkeypatch)
    (project / "models" / "marts" / "broken.sql").write_text("select {{ ref('no_such_model') }}")
    with pytest.raises(DagsterDbtCliRuntimeError, match="no_such_model"):
        dbt_inprocess.write_manifest(str(project), PROFILES_DIR)


def test_only_the_latest_runs_keep_their_dbt_step_directories(tmp_path):
    """Every dbt step writes a directory under target/ (compiled SQL, dbt.log); a run prunes all but
    the five latest runs' (its own always kept), and nothing else under target/."""
    import time

    from patas_dagster.dbt_inprocess import prune_step_dirs

    runs = [f"{i:07x}" for i in range(8)]
    for n, run in enumerate(runs):
        for op in ("patas_dbt_models", "patas_dbt_models_2", "patas_dbt_models_3"):
            d = tmp_path / f"{op}-{run}-{uuid_hex(n, op)}"
            (d / "compiled").mkdir(parents=True)
            os.utime(d, (time.time() - 100 + n, time.time() - 100 + n))
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "partial_parse.msgpack").write_text("")
    (tmp_path / "patas_dbt_models-notarun").mkdir()
    removed = prune_step_dirs(tmp_path, keep_run=runs[0])
    left = {
        p.name.split("-")[1]
        for p in tmp_path.iterdir()
        if p.name.startswith("patas_dbt_models") and p.name.count("-") == 2
    }
    assert left == {runs[0], *runs[4:]}, "the current run and the four latest others"
    assert len(removed) == 3 * 3
    assert (tmp_path / "manifest.json").exists() and (tmp_path / "partial_parse.msgpack").exists()
    assert (tmp_path / "patas_dbt_models-notarun").exists()
    assert prune_step_dirs(tmp_path / "missing", keep_run=runs[0]) == []


def uuid_hex(n: int, op: str) -> str:
    return f"{(n * 31 + len(op)) % 16**7:07x}"
