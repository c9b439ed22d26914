"""Runs Dagster launches itself (the nightly schedule, the inbox sensor, the UI) hold the warehouse
run lock, as `patas run` and the API do: they never interleave with another PATAS run."""

from __future__ import annotations

import threading
import time

import dagster as dg
import psycopg

from patas_dagster.resources import RUN_LOCK_HELD, RUN_LOCK_TAG
from python_steps.runspec import RunSpec
from python_steps.warehouse import RUN_LOCK_KEY

RAW = dg.AssetKey(["raw", "messages"])
# raw_messages is one multi-asset: its three tables are selected together.
INGESTION = [RAW, dg.AssetKey(["raw", "ingest_batches"]), dg.AssetKey(["raw", "ingest_quarantine"])]


def _run(defs, tags: dict[str, str], out: dict) -> None:
    job = defs.resolve_job_def("patas_pipeline")
    out["result"] = job.execute_in_process(
        run_config={"resources": {"run_spec": {"config": RunSpec().as_dict()}}},
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=INGESTION,
        tags=tags,
        raise_on_error=False,
    )


def _lock_waiters(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select count(*) from pg_stat_activity where datname = current_database() "
        "and wait_event_type = 'Lock' and wait_event = 'advisory'"
    ).fetchone()[0]


def _lock_free(conn: psycopg.Connection) -> bool:
    got = conn.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()[0]
    if got:
        conn.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
    return got


def test_a_launched_run_waits_for_the_run_lock_and_releases_it(defs, small_warehouse):
    fresh_db = small_warehouse
    out: dict = {}
    with (
        psycopg.connect(fresh_db, autocommit=True) as holder,
        psycopg.connect(fresh_db, autocommit=True) as probe,
    ):
        holder.execute("select pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
        worker = threading.Thread(target=_run, args=(defs, {}, out))
        worker.start()
        deadline = time.monotonic() + 120
        while _lock_waiters(probe) == 0 and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _lock_waiters(probe) == 1, "the launched run waits on the run lock"
        with psycopg.connect(fresh_db) as conn:
            assert conn.execute("select count(*) from raw.ingest_batches").fetchone()[0] == 1
        assert worker.is_alive() and "result" not in out, "no step ran while another run held the lock"
        holder.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
        worker.join(300)
        assert not worker.is_alive()
        result = out["result"]
        assert result.success, [
            e.event_specific_data.error.message for e in result.all_events if e.is_step_failure
        ]
        assert RAW in {e.asset_key for e in result.get_asset_materialization_events()}
        assert _lock_free(probe), "the run released the lock when it ended"


def test_a_run_whose_caller_holds_the_lock_does_not_wait_for_it(defs, small_warehouse):
    """`patas run` and the API take the lock on their own connection and tag the run: its steps must
    not wait for a lock their own caller holds."""
    fresh_db = small_warehouse
    out: dict = {}
    with psycopg.connect(fresh_db, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
        worker = threading.Thread(target=_run, args=(defs, {RUN_LOCK_TAG: RUN_LOCK_HELD}, out))
        worker.start()
        worker.join(300)
        waited = worker.is_alive()
        holder.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))  # lets a waiting run end
        worker.join()
    assert not waited, "the run waited for the lock its caller holds"
    assert out["result"].success


def test_every_run_executes_its_steps_in_one_process(defs):
    """The lock is held by the run's warehouse resource, set up once per run: only so with the
    in-process executor, for the pipeline job and for the UI's own asset materializations."""
    assert defs.resolve_job_def("patas_pipeline").executor_def.name == "in_process"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
