"""The code location never depends on the set-up scripts: ``infra_scripts`` imports the shared
names from ``car_rental_platform.aws_names`` and ``car_rental_platform.code_bundle``, not the
other way round (a deployment of the code location needs no set-up code)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RUNTIME_PACKAGES = ("car_rental_platform", "spark_jobs")
FORBIDDEN = "infra_scripts"


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, wherever it stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _runtime_files() -> list[Path]:
    return sorted(p for package in RUNTIME_PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _runtime_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_runtime_module_imports_the_setup_scripts(path: Path) -> None:
    modules = imported_modules(path.read_text())
    assert sorted(m for m in modules if m.split(".")[0] == FORBIDDEN) == []


def test_the_scan_sees_imports_anywhere_in_a_module() -> None:
    source = "def f():\n    from infra_scripts.iam import x\n\nimport infra_scripts.glue as g\n"
    assert imported_modules(source) == {"infra_scripts.iam", "infra_scripts.glue"}


def test_loading_the_definitions_loads_no_setup_script() -> None:
    """In a fresh interpreter, as a deployment loads the code location."""
    probe = (
        "import sys, car_rental_platform.definitions, car_rental_platform.resources.aws;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {FORBIDDEN!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
