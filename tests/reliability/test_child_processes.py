"""dbt dies with the run that started it. The pipeline runs dbt in-process (tests/dagster/
test_dbt_inprocess.py); a dbt subprocess (the manifest's ``dbt parse``) starts as ``patas-dbt``, which
binds its process to its parent's life."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patas_dagster.project import dbt_executable

CHILD = """
import time
from patas_dagster.dbt_child import bind_to_parent
assert bind_to_parent()
print("bound", flush=True)
time.sleep(120)
"""
PARENT = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "bound"
print(child.pid, flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_bound_child_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid), "the child outlived its killed parent"


def test_dbt_subprocesses_start_through_the_bound_launcher():
    exe = Path(dbt_executable())
    assert exe.name == "patas-dbt"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "installed" in out.stdout
