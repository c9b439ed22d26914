"""Dagster resources: the warehouse connection and the dbt CLI, both from python_steps.settings."""

import os
from contextlib import contextmanager

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource

from patas_dagster.project import dbt_executable, patas_dbt_project
from python_steps import warehouse
from python_steps.settings import dbt_env, load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse. ``database_url`` defaults to PATAS_DATABASE_URL, else the embedded server."""

    database_url: str | None = None

    def url(self) -> str:
        return self.database_url or warehouse.database_url(load_settings())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # dbt (run by DbtCliResource in a subprocess) reads its profile from these variables.
        os.environ.update(
            {k: v for k, v in dbt_env(self.url()).items() if k.startswith(("PATAS_PG_", "DBT_"))}
        )

    @contextmanager
    def connect(self):
        with psycopg.connect(self.url()) as conn:
            yield conn


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=patas_dbt_project, dbt_executable=dbt_executable())
