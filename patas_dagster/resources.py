"""Dagster resources: the warehouse connection, dbt (in-process) and the run specification."""

import contextlib
import dataclasses
import os
from typing import Any

import dagster as dg
import psycopg
from pydantic import PrivateAttr

from patas_dagster.dbt_inprocess import InProcessDbtResource
from patas_dagster.project import patas_dbt_project
from python_steps import warehouse
from python_steps.runspec import RunSpec
from python_steps.settings import dbt_env, dbt_profile_vars, load_settings

# On a run whose caller holds the warehouse run lock itself (patas.runner: `patas run`, the API).
RUN_LOCK_TAG, RUN_LOCK_HELD = "patas/run_lock", "held by the caller"


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse: ``database_url``, else ``PATAS_DATABASE_URL``.

    The application layer (``patas run``, ``patas ui``) resolves the URL, starting the embedded
    server when needed, and passes it down in ``PATAS_DATABASE_URL``; orchestration never starts a server.
    """

    database_url: str | None = None

    def url(self) -> str:
        url = self.database_url or load_settings().database_url
        if not url:
            raise warehouse.WarehouseError(
                "PATAS_DATABASE_URL is not set: start Dagster through `patas ui` or `patas run`"
            )
        return url

    _run_lock: contextlib.ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # dbt (run in-process by InProcessDbtResource) reads its profile from these variables;
        # libpq (dbt's connections and the Python steps') its session options from PGOPTIONS.
        os.environ.update(dbt_profile_vars(dbt_env(self.url())))
        run = context.dagster_run
        if run is not None and run.tags.get(RUN_LOCK_TAG) != RUN_LOCK_HELD:
            self._run_lock = self._hold_run_lock(context)

    def _hold_run_lock(self, context: dg.InitResourceContext) -> contextlib.ExitStack:
        """The warehouse run lock for a run Dagster launched (the schedule, the inbox sensor, the
        UI): held from before its first step to after its last, so it never interleaves with
        `patas run`, an API run or another launched run. Such a run waits for the lock (a sensor's
        file must not be dropped because a run was busy); ``patas run`` and the API hold the lock
        themselves and tag their runs ``RUN_LOCK_TAG``. One run, one resource instance: the
        definitions' executor runs every step in the run's process."""
        stack = contextlib.ExitStack()
        conn = stack.enter_context(warehouse.connect(self.url(), autocommit=True))
        try:
            stack.enter_context(warehouse.run_lock(conn, wait=False))
        except warehouse.WarehouseError:
            context.log.info("another PATAS run holds the warehouse run lock: waiting for it to finish")
            stack.enter_context(warehouse.run_lock(conn, wait=True))
        return stack

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._run_lock is not None:
            self._run_lock.close()
            self._run_lock = None

    @contextlib.contextmanager
    def connect(self):
        with psycopg.connect(self.url()) as conn:
            yield conn


def dbt_resource() -> InProcessDbtResource:
    return InProcessDbtResource(
        project_dir=str(patas_dbt_project.project_dir), profiles_dir=str(patas_dbt_project.profiles_dir)
    )


def _run_spec_fields() -> dict[str, Any]:
    """RunSpec's fields as config fields, with RunSpec's own defaults (one default per setting)."""
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(RunSpec):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            annotations[f.name], defaults[f.name] = list[str], list(default)
        elif f.name == "profile" or f.name.endswith(("_start", "_end")):
            annotations[f.name], defaults[f.name] = str | None, default
        else:
            annotations[f.name], defaults[f.name] = type(default), default
    return {"__annotations__": annotations, **defaults}


def _spec(self: dg.ConfigurableResource) -> RunSpec:
    return RunSpec.from_mapping({f.name: getattr(self, f.name) for f in dataclasses.fields(RunSpec)})


# The run specification (python_steps.runspec.RunSpec) as one resource: `patas run`, the API and the
# Dagster launchpad set it per run under resources.run_spec.config; every asset reads `.spec()`.
RunSpecResource = type(
    "RunSpecResource",
    (dg.ConfigurableResource,),
    {
        "__module__": __name__,
        "__doc__": "The run's specification: windows, stage-1 and stage-2 settings, drafting limits, profile.",
        **_run_spec_fields(),
        "spec": _spec,
    },
)
