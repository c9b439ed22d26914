"""The dbt project as Dagster assets: one translator owns asset keys and groups."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

from patas_dagster.dbt_inprocess import InProcessDbtResource
from patas_dagster.project import patas_dbt_project
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps import runs
from python_steps.mining import reuse

GROUP_BY_FOLDER = {"staging": "stage1", "intermediate": "stage1"}
RAW_MESSAGES = dg.AssetKey(["raw", "messages"])
WITH_STAGE1 = frozenset({"model.patas.stg_patas__label_feedback"})  # reads patas.label_feedback only


class PatasDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, relation]; groups follow the pipeline stage."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta = dbt_resource_props.get("meta", {}) or dbt_resource_props.get("config", {}).get("meta", {})
        if dbt_resource_props["resource_type"] == "source" or meta.get("dagster", {}).get("asset_key"):
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(
            [dbt_resource_props["schema"], dbt_resource_props["alias"] or dbt_resource_props["name"]]
        )

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.startswith("seed.") or unique_id in WITH_STAGE1:
            # Scheduling only: the reference seeds and the models that read only tables written
            # outside runs load in the same dbt step as stage 1. Without an upstream asset in the
            # run, Dagster gives them a dbt step of their own (one more dbt invocation per run).
            spec = spec.merge_attributes(deps=[RAW_MESSAGES])
        return spec

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        configured = super().get_group_name(dbt_resource_props)
        if configured:
            return configured
        fqn = dbt_resource_props.get("fqn", [])
        folder = fqn[1] if len(fqn) > 2 else ""
        if folder in GROUP_BY_FOLDER:
            return GROUP_BY_FOLDER[folder]
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return "rules"


translator = PatasDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=patas_dbt_project.manifest_path, dagster_dbt_translator=translator, name="patas_dbt_models"
)
def patas_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: InProcessDbtResource,
    warehouse: WarehouseResource,
    run_spec: RunSpecResource,
):
    spec = run_spec.spec()
    with warehouse.connect() as conn:
        windows = spec.resolve_windows(conn)
        runs.record_run(conn, context.run_id, windows)
        dbt_vars = spec.dbt_vars(windows, context.run_id)
        step = _reusable_step(context, conn, dbt_vars)
        if step is not None and step.previous.reusable:
            reuse.restamp_run_id(conn, step.relations, context.run_id)
            reuse.record(conn, context.run_id, step.name, step.input_state, skipped=True,
                         reason=step.previous.reason, output_state=step.output_state)  # fmt: skip
            conn.commit()
            yield from _reused_step(context, step)
            return
    context.log.info(f"windows: {windows.describe()}")
    statuses: dict[str, str] = {}
    # dbt's unit tests check the models' code, not the data, and the code is a run's constant:
    # they run in the test suite (tests/integration/test_dbt_unit_tests.py), not in every run.
    args = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(dbt_vars)]
    yield from dbt.build(args, context=context, node_statuses=statuses)
    if step is not None:
        failed = sorted(uid for uid, status in statuses.items() if status in NOT_OK_STATUSES)
        with warehouse.connect() as conn:
            # A step whose data tests warned is computed again next time (its checks must run).
            reuse.record(conn, context.run_id, step.name, "" if failed else step.input_state, skipped=False,
                         reason=step.previous.reason, output_state=reuse.relations_state(conn, step.relations))  # fmt: skip
        context.log.info(
            f"{step.name}: computed ({step.previous.reason})"
            + (f"; not re-usable, these nodes did not pass: {', '.join(failed)}" if failed else "")
        )


# The dbt steps a run may re-use, named (in patas.run_step_states and the run summary) by a model
# each builds. The step's input state covers the sources its models derive from
# (python_steps.mining.reuse.REUSABLE_SOURCES; the active-rules step's include the lifecycle and
# the would-be rulesets that promotion writes, unchanged when promotion changed nothing); a step
# storing a table derived from any other source always runs.
REUSABLE_STEPS = {
    "model.patas.stg_raw__messages": "stage_1",
    "model.patas.rule_hits": "shadow_evaluation",
    "model.patas.active_rules": "active_rules",
}
NOT_OK_STATUSES = frozenset({"warn", "fail", "error", "runtime error", "skipped", "partial success"})


@dataclass(frozen=True)
class _Step:
    name: str
    input_state: str
    output_state: str
    relations: list[str]
    keys: list[dg.AssetKey]  # parents first
    previous: reuse.Reuse


def _reusable_step(context: dg.AssetExecutionContext, conn, dbt_vars: dict[str, Any]) -> _Step | None:
    """The step's re-use record when it is one of REUSABLE_STEPS and its inputs' state is known."""
    manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    selected = context.selected_asset_keys
    nodes = {
        uid: f"{props['schema']}.{props['alias'] or props['name']}"
        for uid, props in manifest["nodes"].items()
        if props["resource_type"] in ("model", "seed") and translator.get_asset_key(props) in selected
    }
    names = [REUSABLE_STEPS[uid] for uid in REUSABLE_STEPS if uid in nodes]
    if len(names) != 1:
        return None
    parents = manifest["parent_map"]
    stored = [uid for uid in nodes if manifest["nodes"][uid]["config"].get("materialized") != "view"]
    sources, stored_sources = _sources(manifest, nodes), _sources(manifest, stored)
    if stored_sources & reuse.LIVE_SOURCES:
        return None
    state = reuse.dbt_step_input_state(conn, sorted(nodes), sorted(sources - reuse.LIVE_SOURCES), dbt_vars)
    if state is None:
        return None
    relations = sorted(nodes.values())
    output = reuse.relations_state(conn, relations)
    keys = [translator.get_asset_key(manifest["nodes"][uid]) for uid in _topological(nodes, parents)]
    return _Step(names[0], state, output, relations, keys, reuse.check(conn, names[0], state, output))


def _sources(manifest: Mapping[str, Any], uids: Any) -> set[str]:
    """The relations of the dbt sources ``uids`` derive from, transitively."""
    parents, todo = manifest["parent_map"], list(uids)
    seen = set(todo)
    while todo:
        for parent in parents.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return {
        f"{manifest['sources'][uid]['schema']}.{manifest['sources'][uid]['identifier']}"
        for uid in seen
        if uid.startswith("source.")
    }


def _topological(nodes: Mapping[str, str], parents: Mapping[str, list[str]]) -> list[str]:
    """``nodes`` ordered parents first (Dagster takes a multi-asset's outputs in that order)."""
    order: list[str] = []
    placed: set[str] = set()

    def visit(uid: str) -> None:
        if uid in placed:
            return
        placed.add(uid)
        for parent in sorted(parents.get(uid, [])):
            if parent in nodes:
                visit(parent)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return order


def _reused_step(context: dg.AssetExecutionContext, step: _Step):
    """A dbt step skipped: its tables and its tests' results are those of the run that computed them."""
    context.log.info(f"{step.name}: skipped, the stored tables re-used ({step.previous.reason})")
    meta = {"skipped": True, "skip_reason": step.previous.reason}
    for key in step.keys:
        yield dg.MaterializeResult(asset_key=key, metadata=meta)
    for check in sorted(context.selected_asset_check_keys, key=str):
        yield dg.AssetCheckResult(
            asset_key=check.asset_key, check_name=check.name, passed=True, metadata={"reused": True, **meta}
        )


PYTHON_TABLE_KINDS = {"python", "postgres"}  # the kinds of a Python step writing a Postgres table


def model_key(name: str) -> dg.AssetKey:
    """The asset key of the dbt model ``name`` (a Python step's input)."""
    return get_asset_key_for_model([patas_dbt_models], name)
