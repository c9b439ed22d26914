"""python_steps is the logic layer: it must import (and work) without Dagster installed or loaded."""

import pkgutil
import subprocess
import sys

import python_steps


def test_every_python_steps_module_imports_without_dagster():
    modules = sorted(m.name for m in pkgutil.walk_packages(python_steps.__path__, "python_steps."))
    assert "python_steps.cli" in modules
    # A meta-path hook makes any import of dagster (or dagster_dbt) fail in the child process.
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "dagster" or name.startswith(("dagster.", "dagster_")):
            raise ImportError("dagster is blocked in this test: " + name)
        return None
sys.meta_path.insert(0, Block())
import importlib
for m in {modules!r}:
    importlib.import_module(m)
print("imported", len({modules!r}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"imported {len(modules)}" in res.stdout
