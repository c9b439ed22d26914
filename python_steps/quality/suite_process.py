"""great-expectations' suites in a helper process, whose import overlaps the start of a run.

Importing great-expectations costs 2-3 s of one core (its data context, every expectation class,
scipy and pandas), and the first data-quality gate needs it within a second or two of a run's
start, while the run's own process is busy importing Dagster and dbt and parsing the project. A
run (``patas run``, the HTTP API's runs) therefore starts one helper process as it starts
(:func:`started`): a fresh interpreter that imports great-expectations on the machine's other core
and then runs, one at a time, the suites the gates hand it (:func:`call`). The suites and their
results are plain data (expectation bounds from the warehouse's profiles, the gates' results, the
data-docs HTML); nothing but the call's arguments and result crosses, and the helper never touches
the warehouse.

Without a helper (the Dagster UI's runs, library use, a process that has imported
great-expectations already) or when it has gone (killed, crashed), :func:`call` runs the suite in
this process, exactly as the helper would: the helper is a head start, never a dependency. The
helper reads its calls from a pipe and exits when the pipe closes, so it cannot outlive the run
that started it by more than its import.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Pipe
from typing import IO, Any

_lock = threading.Lock()
_helper: _Helper | None = None


class _Helper:
    def __init__(self, log: IO | None) -> None:
        ours, theirs = Pipe()
        self.conn = ours
        fd = theirs.fileno()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(fd)],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=log or subprocess.DEVNULL,
        )
        theirs.close()

    def call(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        self.conn.send((fn, args, kwargs))
        ok, value = self.conn.recv()
        if ok:
            return value
        raise value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def started(log: IO | None = None) -> Iterator[None]:
    """A helper for the length of the block (one at a time; nested blocks share the outer one),
    unless this process has imported great-expectations already (the test suite imports it once;
    a process that ran a suite itself): its suites then run here at no import cost. ``log``: a file for the helper's own
    output (great-expectations' progress bars and warnings)."""
    global _helper
    with _lock:
        mine = _helper is None and "great_expectations" not in sys.modules
        if mine:
            _helper = _Helper(log)
    try:
        yield
    finally:
        if mine:
            with _lock:
                helper, _helper = _helper, None
            if helper is not None:
                helper.close()


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the helper when one is running, else here. ``fn`` must be a
    module-level function; its arguments and result are pickled. An error ``fn`` raises in the helper
    is raised here (as a RuntimeError with the helper's traceback when it cannot be pickled)."""
    global _helper
    with _lock:
        helper = _helper
        if helper is not None:
            try:
                return helper.call(fn, args, kwargs)
            except (EOFError, OSError):  # the helper is gone: run here from now on
                _helper = None
                helper.close()
    return fn(*args, **kwargs)


def _serve(conn: Connection) -> None:
    import pickle

    import great_expectations  # noqa: F401  the head start this process exists for

    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller
            reply = (False, exc)
        try:
            pickle.dumps(reply)
        except Exception:
            text = "".join(traceback.format_exception(reply[1])) if not reply[0] else "unpicklable result"
            reply = (False, RuntimeError(f"great-expectations helper: {text}"))
        conn.send(reply)


def helper_pid() -> int | None:
    """The running helper's process id (tests and diagnostics)."""
    helper = _helper
    return helper.proc.pid if helper is not None else None


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
    sys.exit(0)
