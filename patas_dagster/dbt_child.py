"""``patas-dbt``: dbt, bound to the life of the process that started it.

Dagster runs dbt as a child process. If ``patas run`` is killed (``kill -9``, an OOM kill), a plain
child would be re-parented and go on writing to the warehouse after its run is gone. This
launcher asks Linux to send the child SIGKILL when its parent dies (``PR_SET_PDEATHSIG``, kept
across ``exec``), then replaces itself with the environment's dbt. Elsewhere it just runs dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def bind_to_parent() -> bool:
    """Ask the kernel to kill this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The parent may have died before prctl took effect: then we are orphaned already.
    return os.getppid() != 1


def main() -> None:
    dbt = str(Path(sys.executable).parent / "dbt")
    if not bind_to_parent() and sys.platform.startswith("linux") and os.getppid() == 1:
        sys.exit("patas-dbt: the process that started dbt is gone; not starting")
    os.execv(dbt, [dbt, *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    main()
