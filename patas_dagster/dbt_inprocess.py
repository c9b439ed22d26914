"""dbt in the step's own process: one parse per code version, no dbt start-up per dbt step.

A run materializes the dbt project in several Dagster steps (dbt -> Python -> dbt -> Python -> dbt).
Run as a CLI subprocess, every step paid a Python start-up, dbt's imports, a (partial) parse of the
project and the adapter set-up before its first model: seconds per step, whatever the data. Here
dbt runs through its programmatic runner (``dbtRunner``) in the process that executes the step:

- the project is parsed once per process and code version (``parsed_manifest``: cached on the
  project's ``target/manifest.json``, which ``patas run`` keeps current, and on the profile's
  environment), with the project's default vars, so the parse reuses ``target/partial_parse.msgpack``
  across processes; every ``build`` gets that manifest and parses nothing. The run's ``--vars`` are
  read when the SQL is rendered, not when the project is parsed: no model's config, hooks or refs
  depend on them (``tests/dagster/test_dbt_inprocess.py`` checks it); nor does the database: a
  parse saved for one database is reused for another (``_partial_parse_across_databases``);
- Dagster still selects the step's models and tests (dagster-dbt's own subset selection) and gets
  the same events: dbt's result events become Outputs and asset check results through dagster-dbt's
  ``DbtCoreCliEventMessage``, as they did from the CLI's JSON log;
- dbt cannot outlive its run: it is a thread of the step's process (``patas run`` itself, or the
  step worker Dagster starts), so a killed run takes dbt with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import pprint
import queue
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt.asset_utils import (
    get_manifest_and_translator_from_dbt_assets,
    get_subset_selection_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.errors import DagsterDbtCliRuntimeError

# dbt's events that carry a node's result (dagster-dbt turns exactly these into Dagster events).
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
# The profile's connection (and so every node's database) comes from these variables.
PROFILE_ENV_PREFIXES = ("PATAS_PG_", "DBT_")
PROFILE_DATABASE = "PATAS_PG_DBNAME"  # profiles/profiles.yml: the target's database

_manifests: dict[tuple, Any] = {}
_manifests_lock = threading.Lock()


def _common_args(project_dir: str, profiles_dir: str) -> list[str]:
    return [
        "--project-dir",
        project_dir,
        "--profiles-dir",
        profiles_dir,
        "--no-send-anonymous-usage-stats",
        "--no-use-colors",  # dbt's lines go to the run's log file
    ]


def manifest_cache_key(project_dir: str, profiles_dir: str) -> tuple:
    """What a parsed manifest depends on: the project's code version (``target/manifest.json``,
    re-parsed by ``patas run`` whenever a model, macro, seed or test changes) and the profile."""
    stamp: tuple[int, int] | None = None
    manifest_json = Path(project_dir) / "target" / "manifest.json"
    if manifest_json.exists():
        st = manifest_json.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PROFILE_ENV_PREFIXES)))
    return (str(project_dir), str(profiles_dir), stamp, env)


@contextlib.contextmanager
def _partial_parse_across_databases() -> Iterator[None]:
    """dbt's partial parsing, kept when only the profile's database changed.

    dbt re-parses the whole project (seconds) when the profile's connection settings differ from
    those of the parse it saved in ``target/partial_parse.msgpack``, the database name included,
    so every other database cost a full parse (a new warehouse, a staging and a production one,
    each test and benchmark database). The project's parse does not depend on the database: no
    model, macro or config reads it at parse time; only the nodes' ``database`` and
    ``relation_name`` carry it, and :func:`_in_database` sets those to the run's database. For
    the parse of this process only, the saved connection settings are compared without the
    database (a parse dbt saved by itself, ``patas dbt`` or the manifest's ``dbt parse``, counts
    for its own database); any other difference (host, port, user, schema, ...) still re-parses
    everything."""
    try:
        from dbt.contracts.files import FileHash
        from dbt.parser.manifest import ManifestLoader
    except ImportError:  # another dbt layout: a full parse, as dbt does it
        yield
        return
    original_check = ManifestLoader.build_manifest_state_check
    original_parsable = ManifestLoader.is_partial_parsable

    def profile_hash(loader: Any, *, with_database: bool) -> Any:  # dbt's own hash, with_database
        keys = loader.root_project.credentials.connection_info()
        return FileHash.from_contents(
            pprint.pformat(sorted(kv for kv in keys if with_database or kv[0] != "database"))
        )

    def build_manifest_state_check(self: Any) -> Any:
        state = original_check(self)
        state.profile_hash = profile_hash(self, with_database=False)
        return state

    def is_partial_parsable(self: Any, manifest: Any) -> Any:
        # A parse saved by dbt itself (`patas dbt`, ...) for this very database is as good.
        if manifest.state_check.profile_hash == profile_hash(self, with_database=True):
            manifest.state_check.profile_hash = self.manifest.state_check.profile_hash
        return original_parsable(self, manifest)

    ManifestLoader.build_manifest_state_check = build_manifest_state_check
    ManifestLoader.is_partial_parsable = is_partial_parsable
    try:
        yield
    finally:
        ManifestLoader.build_manifest_state_check = original_check
        ManifestLoader.is_partial_parsable = original_parsable


def _in_database(manifest: Any, database: str) -> Any:
    """The manifest's nodes and sources in ``database`` (see :func:`_partial_parse_across_databases`)."""
    nodes = [*manifest.nodes.values(), *manifest.sources.values(), *manifest.unit_tests.values()]
    nodes += list(getattr(manifest, "functions", {}).values())
    nodes += [n for disabled in manifest.disabled.values() for n in disabled]
    for node in nodes:
        old = getattr(node, "database", None)
        if old is None or old == database:
            continue
        node.database = database
        name = getattr(node, "relation_name", None)
        if name and name.startswith(f'"{old}".'):
            node.relation_name = f'"{database}".' + name[len(old) + 3 :]
    return manifest


def _parse(project_dir: str, profiles_dir: str, *, write_json: bool) -> Any:
    from dbt.cli.main import dbtRunner

    # Default vars, as every parse of the project: the partial-parse state one parse leaves in
    # target/ is reused by the next, in this process or another. dbt's own lines are kept for
    # the error (the run's log has them too when the parse runs inside a step).
    args = ["parse", *([] if write_json else ["--no-write-json"]), *_common_args(project_dir, profiles_dir)]
    out = io.StringIO()
    with _partial_parse_across_databases(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        res = dbtRunner().invoke(args)
    if not res.success:
        detail = res.exception or out.getvalue().strip()[-2000:] or "see the log"
        raise DagsterDbtCliRuntimeError(description=f"dbt parse failed: {detail}")
    return _in_database(res.result, os.environ[PROFILE_DATABASE])


def parsed_manifest(project_dir: str, profiles_dir: str) -> Any:
    """dbt's parsed ``Manifest`` of the project, parsed once per process and code version."""
    key = manifest_cache_key(project_dir, profiles_dir)
    with _manifests_lock:
        if key not in _manifests:
            manifest = _parse(project_dir, profiles_dir, write_json=False)
            _manifests.clear()  # one code version at a time
            _manifests[key] = manifest
        return _manifests[key]


def write_manifest(project_dir: str, profiles_dir: str) -> Path:
    """Parse the project in this process and write ``target/manifest.json`` (what ``dbt parse``
    does); the parsed manifest is kept for this process's dbt steps (:func:`parsed_manifest`), so
    a run that finds the project changed parses it once, not once to write the file and again
    to run. The profile's variables must be in ``os.environ``."""
    with _manifests_lock:
        manifest = _parse(project_dir, profiles_dir, write_json=True)
        _manifests.clear()
        _manifests[manifest_cache_key(project_dir, profiles_dir)] = manifest
    return Path(project_dir) / "target" / "manifest.json"


STEP_DIR = re.compile(r"^patas_dbt_models(?:_\d+)?-([0-9a-f]{7})-[0-9a-f]{7}$")
KEEP_RUNS = 5


def prune_step_dirs(root: Path, *, keep_run: str, keep_runs: int = KEEP_RUNS) -> list[Path]:
    """Remove the dbt step directories (compiled SQL, dbt.log) of all but the ``keep_runs`` latest
    runs under ``root`` (``keep_run``'s are always kept): every dbt step writes one, and a warehouse
    run every few minutes would otherwise fill the disk. Returns the directories removed."""
    if not root.is_dir():
        return []
    runs: dict[str, list[Path]] = {}
    for path in root.iterdir():
        m = STEP_DIR.match(path.name)
        if m and path.is_dir():
            runs.setdefault(m.group(1), []).append(path)

    def newest(run: str) -> float:
        return max((p.stat().st_mtime for p in runs[run] if p.exists()), default=0.0)

    order = sorted((r for r in runs if r != keep_run), key=newest, reverse=True)
    removed = [p for run in order[max(keep_runs - 1, 0) :] for p in runs[run]]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


class InProcessDbtResource(dg.ConfigurableResource):
    """Runs dbt commands in this process with a manifest parsed once (see the module docstring)."""

    project_dir: str
    profiles_dir: str

    def build(
        self,
        args: Sequence[str],
        *,
        context: dg.AssetExecutionContext,
        target_root: Path | None = None,
        node_statuses: dict[str, str] | None = None,
    ) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckResult]:
        """Run ``dbt <args>`` on the step's selection; yield its Dagster events as nodes finish.

        ``node_statuses``, when given, gets each node's outcome (unique id -> 'success', 'pass',
        'warn', 'fail', 'error', ...). Raises after the last event when dbt failed (a model error, a
        failing error-severity test)."""
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        manifest_json, translator, project = get_manifest_and_translator_from_dbt_assets([context.assets_def])
        selection, indirect = get_subset_selection_for_context(
            context=context,
            manifest=manifest_json,
            select=None,
            exclude=None,
            selector=None,
            dagster_dbt_translator=translator,
            current_dbt_indirect_selection_env=os.environ.get("DBT_INDIRECT_SELECTION"),
        )
        root = target_root or Path(self.project_dir) / "target"
        target = root / f"{context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
        prune_step_dirs(root, keep_run=context.run.run_id[:7])
        argv = [
            *args,
            *_common_args(self.project_dir, self.profiles_dir),
            # No manifest.json and run_results.json per step (3 MB, written after the last node):
            # Dagster gets the results as events, and the run's log has every node's time.
            "--no-write-json",
            "--target-path",
            str(target),
            "--log-path",
            str(target),
            *selection,
            *(["--indirect-selection", indirect] if indirect else []),
        ]
        manifest = parsed_manifest(self.project_dir, self.profiles_dir)
        events: queue.Queue = queue.Queue()
        errors: list[str] = []
        done = object()

        def on_event(msg: Any) -> None:
            if msg.info.name in RESULT_EVENTS:
                events.put(msg_to_dict(msg))
            elif msg.info.level == "error":
                errors.append(msg.info.msg)

        outcome: dict[str, Any] = {}

        def invoke() -> None:
            try:
                outcome["result"] = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(argv)
            except BaseException as exc:  # handed to the step's thread, raised there
                outcome["exception"] = exc
            finally:
                events.put(done)

        context.log.info(f"dbt (in-process): {' '.join(argv)}")
        worker = threading.Thread(target=invoke, name=f"dbt-{context.op.name}", daemon=True)
        worker.start()
        while (raw := events.get()) is not done:
            if node_statuses is not None:
                data = raw.get("data", {})
                info = data.get("node_info", {})
                status = info.get("node_status") or str(data.get("status", ""))
                node_statuses[info.get("unique_id", "")] = status.lower()
            event = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
            yield from event.to_default_asset_events(
                manifest=manifest_json,
                dagster_dbt_translator=translator,
                context=context,
                target_path=target,
                project=project,
            )
        worker.join()
        if "exception" in outcome:
            raise outcome["exception"]
        result = outcome["result"]
        if not result.success:
            detail = "\n".join(["", "Errors from dbt:", *errors]) if errors else ""
            cause = f" ({type(result.exception).__name__}: {result.exception})" if result.exception else ""
            raise DagsterDbtCliRuntimeError(
                description=f"dbt {' '.join(args[:1])} failed{cause}; the run log has dbt's output.{detail}"
            )
