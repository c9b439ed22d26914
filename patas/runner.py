"""`patas run`: materialize the whole graph in-process on a persistent Dagster instance.

The run is configured by one :class:`~python_steps.runspec.RunSpec`, handed to Dagster as the
``run_spec`` resource's config. One run at a time: the runner holds the warehouse run lock (a
Postgres advisory lock) for the whole run, and a second run fails at once with a clear message.
The terminal gets one line per stage (``progress``); Dagster's and dbt's full log goes to
``$PATAS_HOME/logs/run-<id>.log``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.event

from patas.manifest import ensure_manifest
from patas.nothing_new import code_version
from patas_dagster.sqlite_storage import event_log_storage_yaml, synchronous_normal
from python_steps import run_state, tables
from python_steps.publish import report
from python_steps.quality import suite_process
from python_steps.runspec import RunSpec
from python_steps.settings import Settings, dbt_env, dbt_profile_vars
from python_steps.warehouse import WarehouseError, connect, run_lock

# Dagster step key -> the stage a user reads (the dbt multi-asset runs as several steps).
STAGE_NAMES = {
    "raw_messages": "ingest",
    "patas__semantic_clusters": "stage 2 (clusters)",
    "rule_drafts": "drafting",
    "rule_lifecycle": "promotion",
    "patas__rule_exports": "exports",
    "patas__run_report": "run report",
}
CHECKS = "data-quality checks"  # every other step is an asset check
# The instance PATAS creates: no telemetry, and one run at a time (runs the daemon launches, e.g. the
# inbox sensor's, queue behind each other; `patas run` also holds the warehouse run lock); its event
# log is Dagster's SQLite one with kept connections (patas_dagster/sqlite_storage.py).
DAGSTER_YAML = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n"


def dagster_yaml(home: Path) -> str:
    return DAGSTER_YAML + event_log_storage_yaml(str(home.resolve()))


def _written_by_patas(text: str) -> bool:
    """A ``dagster.yaml`` PATAS wrote, for any home: ``DAGSTER_YAML`` alone (before the event log
    kept connections) or with the event log's section for some directory."""
    head, sep, tail = text.partition("    base_dir: ")
    ours = dagster_yaml(Path("/")).partition("    base_dir: ")[0]
    return text == DAGSTER_YAML or (head == ours and bool(sep) and tail.count("\n") == 1)


def ensure_dagster_yaml(home: Path) -> Path:
    """Write the instance's ``dagster.yaml`` under ``home`` unless the user has one of their own. One
    PATAS wrote is rewritten when it is not this home's (an older one; a home moved or copied
    elsewhere, whose file would keep the events in the old place)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = config.read_text() if config.exists() else ""
    if not text.strip() or (_written_by_patas(text) and text != dagster_yaml(home)):
        config.write_text(dagster_yaml(home))
    return config


@dataclass(frozen=True)
class StageEvent:
    step_key: str
    stage: str
    status: str  # 'started' | 'done' | 'failed'
    seconds: float | None = None


def stage_name(step_key: str, dbt_steps_seen: int) -> str:
    if step_key.startswith("patas_dbt_models"):
        return ("stage 1", "shadow evaluation", "active rules")[min(dbt_steps_seen, 2)]
    return STAGE_NAMES.get(step_key, CHECKS)


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance under $PATAS_HOME/dagster (telemetry off unless the user configured it)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    ensure_dagster_yaml(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


class _SqliteKeeper:
    """One idle connection to each of the Dagster instance's SQLite files for the length of a run.

    Dagster's SQLite storage opens and closes a connection per write; when the last connection to a
    database in WAL mode closes, SQLite checkpoints the log and deletes it, so every event paid a
    checkpoint and two file creations (15 ms an event on a loaded machine, a few hundred events a
    run; ~2 ms with one connection kept open). The event log PATAS configures keeps its own
    connections (patas_dagster/sqlite_storage.py); this keeper still serves the run storage
    (runs.db) and an instance whose dagster.yaml the user wrote. Only files in WAL mode are kept (Dagster
    creates a run's shard at its first event and sets the mode then); nothing is read or written
    through these connections. Instances on other storage have no such files: nothing is kept."""

    def __init__(self, paths: Sequence[Path]):
        self.waiting = list(paths)
        self.kept: list[sqlite3.Connection] = []

    def poll(self) -> None:
        for path in list(self.waiting):
            if not path.is_file():
                continue
            with contextlib.suppress(sqlite3.Error):
                conn = sqlite3.connect(path, check_same_thread=False)
                if conn.execute("pragma journal_mode").fetchone()[0] == "wal":
                    self.kept.append(conn)
                    self.waiting.remove(path)
                else:
                    conn.close()

    def close(self) -> None:
        for conn in self.kept:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self.kept = []


def _dagster_sqlite_files(instance: dg.DagsterInstance, run_id: str) -> list[Path]:
    """The SQLite files a run writes on the default instance storage (under DAGSTER_HOME)."""
    history = Path(instance.root_directory) / "history"
    return [history / "runs.db", history / "runs" / "index.db", history / "runs" / f"{run_id}.db"]


class _StageWatcher(threading.Thread):
    """Polls the run's event log and reports step starts and ends as they happen."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        progress: Callable[[StageEvent], None],
        keeper: _SqliteKeeper | None = None,
    ):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.progress, self.keeper = instance, run_id, progress, keeper
        self.stop = threading.Event()
        self.cursor: str | None = None
        self.started: dict[str, float] = {}
        self.names: dict[str, str] = {}
        self.dbt_steps = 0

    def poll(self) -> None:
        """Read the step events logged since the last poll (a cursor: never the whole log again)."""
        kinds = {
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        }
        while True:
            page = self.instance.get_records_for_run(
                self.run_id, cursor=self.cursor, of_type=kinds, limit=100
            )
            for record in page.records:
                self._report(record.event_log_entry)
            self.cursor = page.cursor
            if not page.has_more:
                return

    def _report(self, entry) -> None:
        event = entry.dagster_event
        if event is None or not event.step_key:
            return
        key = event.step_key
        if event.event_type_value == "STEP_START":
            self.names[key] = stage_name(key, self.dbt_steps)
            if key.startswith("patas_dbt_models"):
                self.dbt_steps += 1
            self.started[key] = entry.timestamp
            self.progress(StageEvent(key, self.names[key], "started"))
        else:
            seconds = entry.timestamp - self.started.get(key, entry.timestamp)
            status = "done" if event.event_type_value == "STEP_SUCCESS" else "failed"
            self.progress(StageEvent(key, self.names.get(key, key), status, round(seconds, 1)))

    def run(self) -> None:
        while not self.stop.wait(1.0):
            with contextlib.suppress(Exception):  # the watcher only reports; the run is unaffected
                if self.keeper is not None:
                    self.keeper.poll()
                self.poll()


def run_pipeline(
    settings: Settings,
    url: str,
    spec: RunSpec | None = None,
    *,
    progress: Callable[[StageEvent], None] | None = None,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    on_locked: Callable[[str], None] | None = None,
) -> dict:
    """Run the whole graph once with ``spec``; returns the run summary (``success`` says how it went).

    ``tags`` go on the Dagster run; ``asset_selection`` runs only those assets (the HTTP API's
    shadow re-evaluation); ``on_locked(run_id)`` is called once the run lock is held, before the
    job starts (the HTTP API answers with the run id then)."""
    run_id = str(uuid.uuid4())
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / f"run-{run_id}.log"
    # great-expectations is imported by a helper process on the other core while this one sets
    # the run up; the data-quality gates run their suites there (python_steps.quality.suite_process).
    try:
        with log_path.open("a", encoding="utf-8") as helper_log, suite_process.started(helper_log):
            return _run_pipeline(
                settings, url, spec or RunSpec(), run_id, log_path,
                progress=progress, tags=tags, asset_selection=asset_selection, on_locked=on_locked,
            )  # fmt: skip
    except BaseException:
        # A run that stopped before writing a line (the run lock held by another run, a database
        # that does not answer) leaves no empty log behind; its error reaches the caller.
        with contextlib.suppress(OSError):
            if log_path.stat().st_size == 0:
                log_path.unlink()
        raise


def _run_pipeline(
    settings: Settings,
    url: str,
    spec: RunSpec,
    run_id: str,
    log_path: Path,
    *,
    progress: Callable[[StageEvent], None] | None,
    tags: Mapping[str, str] | None,
    asset_selection: Sequence[dg.AssetKey] | None,
    on_locked: Callable[[str], None] | None,
) -> dict:
    environ = dict(os.environ)  # the user's, before the run adds dbt's connection settings
    env = dbt_env(url)
    os.environ.update(dbt_profile_vars(env))
    os.environ["PATAS_DATABASE_URL"] = url
    ensure_manifest(env, in_process=True)
    from patas_dagster.definitions import defs  # needs target/manifest.json
    from patas_dagster.resources import RUN_LOCK_HELD, RUN_LOCK_TAG

    run_config = {
        "loggers": {
            "console": {"config": {"log_level": settings.log_level}},
            "file": {"config": {"path": str(log_path), "log_level": "DEBUG"}},
        },
        "resources": {"run_spec": {"config": spec.as_dict()}},
    }
    instance = dagster_instance(settings)
    job = defs.resolve_job_def("patas_pipeline")
    stage_seconds: dict[str, float] = {}

    def record(event: StageEvent) -> None:
        if event.seconds is not None:
            stage_seconds[event.stage] = round(stage_seconds.get(event.stage, 0.0) + event.seconds, 1)
        if progress:
            progress(event)

    with connect(url, autocommit=True) as lock_conn, run_lock(lock_conn, wait=False):
        with connect(url) as conn:
            tables.migrate(conn)  # the PATAS-owned tables at the latest schema version, before any step
            external = run_state.external_state(conn)
            conn.commit()
        if on_locked:
            on_locked(run_id)
        keeper = _SqliteKeeper(_dagster_sqlite_files(instance, run_id))
        keeper.poll()
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", synchronous_normal)
        watcher = _StageWatcher(instance, run_id, record, keeper)
        watcher.start()
        t0 = time.perf_counter()
        try:
            # dbt's output, Dagster's warnings and library progress bars go to the run's log file;
            # the terminal gets the stage lines (``progress``) and the summary.
            with (
                log_path.open("a", encoding="utf-8") as log,
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
            ):
                result = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags={**(tags or {}), RUN_LOCK_TAG: RUN_LOCK_HELD},  # held above
                    asset_selection=list(asset_selection) if asset_selection is not None else None,
                )
        finally:
            watcher.stop.set()
            watcher.join()
            watcher.poll()  # the last events
            keeper.close()
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", synchronous_normal)
        elapsed = time.perf_counter() - t0
        if result.success and asset_selection is None:
            # What this run leaves: a later `patas run` that finds it unchanged runs no step.
            with connect(url) as conn:
                if run_state.external_state(conn) == external:  # no input moved while it ran
                    state = run_state.run_state(
                        conn, spec=spec.as_dict(), settings=settings, home=settings.home,
                        environ=environ, code=code_version(), external=external,
                    )  # fmt: skip
                    run_state.record(conn, result.run_id, state)
                    conn.commit()
    with connect(url) as conn:
        summary = report.build_summary(conn, result.run_id)
    summary.update(
        success=result.success,
        run_seconds=round(elapsed, 1),
        run_id=result.run_id,
        stage_seconds=stage_seconds,
        log_file=str(log_path),
        report_file=str(settings.home / "reports" / f"run_{run_id}.json"),
        run_spec=spec.as_dict(),
    )
    if not result.success:
        summary["failures"] = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()[:500]}"
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
    # The run report holds the whole summary (stage times, failures); a run stopped by a blocking
    # check never reaches the run_report asset, so the runner writes it in every case.
    with contextlib.suppress(OSError):
        report.write_report(summary, settings.home / "reports")
    # The figures GET /metrics serves, as a textfile for setups without the service.
    from patas.service.metrics import write_textfile

    with contextlib.suppress(OSError, psycopg.Error):
        summary["metrics_file"] = str(
            write_textfile(url, settings.home / "reports", settings.home / "metrics" / "patas.prom")
        )
    return summary


__all__ = ["RunSpec", "StageEvent", "WarehouseError", "dagster_instance", "run_pipeline"]
