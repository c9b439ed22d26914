"""Cost of one Dagster event on the instance's SQLite event log: Dagster's class against PATAS's.

    .venv/bin/python benchmarks/dagster_event_log.py .patas/dagster [ROUNDS]

(the Dagster instance of the default PATAS_HOME; `$PATAS_HOME/dagster` for another). Replays the
events of the newest run there that logged any (a `patas run` or `patas demo` leaves one) into
fresh directories, once per storage class and round, with the run's `synchronous=NORMAL` hook on,
and prints milliseconds per event (median of the rounds):
Dagster's ``SqliteEventLogStorage`` (a connection is kept open to each file after the first event,
as ``patas.runner._SqliteKeeper`` does during a run) and ``KeptSqliteEventLogStorage``.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy
import sqlalchemy.event
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from patas_dagster.sqlite_storage import KeptSqliteEventLogStorage, synchronous_normal


def main(dagster_home: str, rounds: int = 3) -> dict:
    runs = Path(dagster_home) / "history" / "runs"
    shards = sorted((p for p in runs.glob("*.db") if p.stem != "index"), key=lambda p: p.stat().st_mtime)
    if not shards:
        print(f"error: no Dagster run under {runs} (run `patas demo` or `patas run` first)", file=sys.stderr)
        sys.exit(2)
    source = SqliteEventLogStorage(str(runs))
    events: list = []
    for shard in reversed(shards):  # the newest run that logged anything (a run can leave an empty shard)
        events = list(source.get_logs_for_run(shard.stem))
        if events:
            break
    source.dispose()
    if not events:
        print(
            f"error: no Dagster run with events under {runs} (run `patas demo` or `patas run` first)",
            file=sys.stderr,
        )
        sys.exit(2)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", synchronous_normal)
    ms: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for cls in (SqliteEventLogStorage, KeptSqliteEventLogStorage):
                base = Path(tmp) / f"{cls.__name__}_{r}"
                storage = cls(str(base))
                kept: list[sqlite3.Connection] = []
                t0 = time.perf_counter()
                for i, event in enumerate(events):
                    storage.store_event(event)
                    if i == 0 and cls is SqliteEventLogStorage:
                        kept = [sqlite3.connect(p) for p in base.glob("*.db")]
                ms.setdefault(cls.__name__, []).append((time.perf_counter() - t0) / len(events) * 1000)
                for conn in kept:
                    conn.close()
                storage.dispose()
    result = {
        "events": len(events),
        "ms_per_event": {k: [round(x, 2) for x in v] for k, v in ms.items()},
        "median_ms_per_event": {k: round(statistics.median(v), 2) for k, v in ms.items()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    rounds_arg = sys.argv[2] if len(sys.argv) == 3 else "3"
    if len(sys.argv) not in (2, 3) or not rounds_arg.isdigit() or int(rounds_arg) < 1:
        print("usage: dagster_event_log.py DAGSTER_HOME [ROUNDS >= 1]", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], int(rounds_arg))
