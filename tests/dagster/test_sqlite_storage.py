"""The instance's event log (patas_dagster/sqlite_storage.py): Dagster's SQLite files, kept connections."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage

from patas.runner import DAGSTER_YAML, dagster_yaml, ensure_dagster_yaml
from patas_dagster.sqlite_storage import KEPT_SHARDS, KeptSqliteEventLogStorage


@dg.asset
def numbers() -> int:
    return 3


@dg.asset_check(asset=numbers)
def numbers_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([numbers, numbers_positive], instance=instance)
    assert result.success
    return result.run_id


def test_the_instance_patas_writes_keeps_connections_in_dagsters_own_files(tmp_path):
    home = tmp_path / "dagster"
    ensure_dagster_yaml(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert type(storage) is KeptSqliteEventLogStorage
        run_id = _materialize(instance)
        ours = [e.dagster_event_type for e in instance.all_logs(run_id)]
        # Writes commit without an fsync each; the connection is the one kept for the run's shard.
        with storage.run_connection(run_id) as conn:
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL
            first = conn.connection.dbapi_connection
        with storage.run_connection(run_id) as again:
            assert again.connection.dbapi_connection is first
    # Dagster's own class (what `dagster dev` uses on an instance of its own) reads the same files.
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        assert [e.dagster_event_type for e in plain.get_logs_for_run(run_id)] == ours
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in ours
        record = plain.get_latest_materialization_events([dg.AssetKey("numbers")])[dg.AssetKey("numbers")]
        assert record is not None and record.run_id == run_id
        check_key = dg.AssetCheckKey(dg.AssetKey("numbers"), "numbers_positive")
        executions = plain.get_asset_check_execution_history(check_key, limit=5)
        assert [e.run_id for e in executions] == [run_id]
    finally:
        plain.dispose()


def test_connections_are_kept_for_the_index_and_the_latest_runs_only(tmp_path):
    home = tmp_path / "dagster"
    ensure_dagster_yaml(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        run_ids = [_materialize(instance) for _ in range(KEPT_SHARDS + 2)]
        kept = list(storage._engines)
        assert len(kept) == KEPT_SHARDS
        assert run_ids[0] not in kept and run_ids[-1] in kept
        # A run whose connection was let go is still read (a connection is opened again).
        assert any(
            e.dagster_event_type == dg.DagsterEventType.RUN_SUCCESS for e in instance.all_logs(run_ids[0])
        )
        # Dagster's wipe deletes the runs' files: their kept connections go first, the index's stays.
        instance.wipe()
        assert list(storage._engines) == [INDEX_SHARD_NAME]
        assert not list((home / "history" / "runs").glob(f"{run_ids[-1]}.db*"))
        after = _materialize(instance)
        assert dg.DagsterEventType.RUN_SUCCESS in [e.dagster_event_type for e in instance.all_logs(after)]


def test_dagster_yaml_is_written_once_and_a_users_own_file_is_left_alone(tmp_path):
    home = tmp_path / "dagster"
    config = ensure_dagster_yaml(home)
    assert config.read_text() == dagster_yaml(home)
    assert "class: KeptSqliteEventLogStorage" in config.read_text()
    assert f'base_dir: "{home.resolve()}/history/runs/"' in config.read_text()
    config.write_text(DAGSTER_YAML)  # what PATAS wrote before: replaced
    assert ensure_dagster_yaml(home).read_text() == dagster_yaml(home)
    config.write_text(dagster_yaml(tmp_path / "moved_from"))  # a home copied from elsewhere: this one's
    assert ensure_dagster_yaml(home).read_text() == dagster_yaml(home)
    edited = dagster_yaml(home) + "run_monitoring:\n  enabled: true\n"  # the user's edit: kept
    config.write_text(edited)
    assert ensure_dagster_yaml(home).read_text() == edited
    own = "telemetry:\n  enabled: true\n"
    config.write_text(own)
    assert ensure_dagster_yaml(home).read_text() == own
