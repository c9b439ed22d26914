"""The import rules of docs/architecture.md, read from the source (every import, also inside functions).

- python_steps (the logic) imports neither dagster, patas_dagster nor the application layer ``patas``;
  each of its subpackages imports only the python_steps packages listed in ALLOWED.
- patas_dagster (orchestration) never imports the application layer.
- python_steps also *imports and works* without dagster installed (a subprocess with dagster blocked).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import python_steps

ROOT = Path(__file__).resolve().parents[2]

# python_steps package (or top-level module) -> the python_steps packages it may import.
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "warehouse": set(),
    "tables": set(),
    "metrics": set(),
    "runs": {"mining", "tables"},
    "run_state": {"mining", "tables"},
    "runspec": {"mining"},
    "text": {"settings"},
    "rules": {"settings", "text"},
    "ingest": {"tables", "settings"},
    "quality": {"tables"},
    "mining": {"metrics", "rules", "tables", "text", "warehouse", "settings"},
    "lifecycle": {"metrics", "mining", "rules", "tables", "text", "warehouse", "settings"},
    "publish": {"rules", "lifecycle", "tables", "text"},
    "bench": {"text", "settings"},
    "__init__": set(),
}
# Pure modules: no database driver either.
PURE = (
    "python_steps/lifecycle/policy.py",
    "python_steps/lifecycle/profiles.py",
    "python_steps/lifecycle/evidence.py",
    "python_steps/metrics.py",
    "python_steps/mining/privacy.py",
)
FORBIDDEN_IN_LOGIC = ("dagster", "dagster_dbt", "dagster_webserver", "patas_dagster", "patas")


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_python_steps_never_imports_orchestration_or_the_application():
    bad = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in _files("python_steps")
        for n in _imports(p)
        if _top(n) in FORBIDDEN_IN_LOGIC
    ]
    assert not bad, bad


def test_python_steps_packages_import_only_what_they_may():
    bad = []
    for p in _files("python_steps"):
        own = p.relative_to(ROOT / "python_steps").with_suffix("").parts[0]
        assert own in ALLOWED, f"{p}: add its package to ALLOWED and to docs/architecture.md"
        for n in _imports(p):
            parts = n.split(".")
            if parts[0] != "python_steps" or len(parts) < 2 or parts[1] == own:
                continue
            if parts[1] not in ALLOWED[own]:
                bad.append(f"{p.relative_to(ROOT)} imports {n}")
    assert not bad, bad


@pytest.mark.parametrize("path", PURE)
def test_pure_modules_import_no_database_driver(path: str):
    assert not [n for n in _imports(ROOT / path) if _top(n) in ("psycopg", "sqlalchemy")]


def test_orchestration_never_imports_the_application_layer():
    bad = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in _files("patas_dagster")
        for n in _imports(p)
        if _top(n) == "patas"
    ]
    assert not bad, bad


def test_the_layer_checks_see_lazy_imports(tmp_path: Path):
    """A lazy import inside a function is still an import."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from patas_dagster.runner import run_pipeline\n    import dagster\n")
    assert {_top(n) for n in _imports(f)} == {"patas_dagster", "dagster"}


def test_every_python_steps_module_imports_without_dagster():
    modules = sorted(m.name for m in pkgutil.walk_packages(python_steps.__path__, "python_steps."))
    assert "python_steps.lifecycle.policy" in modules
    # A meta-path hook makes any import of dagster (or the layers above) fail in the child process.
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dagster", "dagster_dbt", "patas_dagster", "patas"):
            raise ImportError("blocked in this test: " + name)
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
