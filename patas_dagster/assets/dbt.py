"""The dbt project as Dagster assets: one translator owns asset keys and groups."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from patas_dagster.dbt_inprocess import InProcessDbtResource
from patas_dagster.project import patas_dbt_project
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps import runs

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
    context.log.info(f"windows: {windows.describe()}")
    yield from dbt.build(
        ["build", "--vars", json.dumps(spec.dbt_vars(windows, context.run_id))], context=context
    )


PYTHON_TABLE_KINDS = {"python", "postgres"}  # the kinds of a Python step writing a Postgres table


def model_key(name: str) -> dg.AssetKey:
    """The asset key of the dbt model ``name`` (a Python step's input)."""
    return get_asset_key_for_model([patas_dbt_models], name)
