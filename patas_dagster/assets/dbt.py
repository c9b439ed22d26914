"""The dbt project as Dagster assets: one translator owns asset keys and groups."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from patas_dagster.project import patas_dbt_project
from patas_dagster.resources import WarehouseResource
from python_steps import runs
from python_steps.windows import resolve_windows

GROUP_BY_FOLDER = {"staging": "stage1", "intermediate": "stage1"}


class PatasDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, relation]; groups follow the pipeline stage."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta = dbt_resource_props.get("meta", {}) or dbt_resource_props.get("config", {}).get("meta", {})
        if dbt_resource_props["resource_type"] == "source" or meta.get("dagster", {}).get("asset_key"):
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(
            [dbt_resource_props["schema"], dbt_resource_props["alias"] or dbt_resource_props["name"]]
        )

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


class WindowsConfig(dg.Config):
    """The run's mining and evaluation windows (see python_steps.windows)."""

    split: str = "auto"
    mining_start: str | None = None
    mining_end: str | None = None
    evaluation_start: str | None = None
    evaluation_end: str | None = None
    evaluation_share: int = 30


@dbt_assets(
    manifest=patas_dbt_project.manifest_path, dagster_dbt_translator=translator, name="patas_dbt_models"
)
def patas_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: WindowsConfig,
):
    with warehouse.connect() as conn:
        windows = resolve_windows(
            conn,
            split=config.split,
            mining_start=config.mining_start,
            mining_end=config.mining_end,
            evaluation_start=config.evaluation_start,
            evaluation_end=config.evaluation_end,
            evaluation_share=config.evaluation_share,
        )
        runs.record_run(conn, context.run_id, windows)
    context.log.info(f"windows: {windows.describe()}")
    yield from dbt.cli(
        ["build", "--vars", json.dumps(windows.dbt_vars(context.run_id))], context=context
    ).stream()
