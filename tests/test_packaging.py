"""The package as installed: every subpackage and the shipped circuits are in the wheel's file list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from microcircuit.shipped import DEFAULT_SPEC, circuits_dir, shipped_circuit, shipped_circuits

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is in the standard library from 3.11")
def test_every_subpackage_is_listed_in_pyproject():
    """setuptools' package list is explicit (circuits/ is mapped into the package), so a new
    subpackage that is not listed would be missing from the wheel: this test names it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "microcircuit").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    on_disk.add("microcircuit.circuits")
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "pyproject.toml lists packages that do not exist"


def test_shipped_circuits_are_the_top_level_folder_files():
    names = shipped_circuits()
    on_disk = sorted(p.relative_to(ROOT / "circuits").as_posix() for p in (ROOT / "circuits").rglob("*.yaml"))
    assert names == on_disk
    assert DEFAULT_SPEC == shipped_circuit("bars_le.yaml") and DEFAULT_SPEC.is_file()
    assert circuits_dir().is_dir()


def test_unknown_shipped_circuit_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="bars_le.yaml"):
        shipped_circuit("bars.yaml")


def test_shipped_spec_extends_a_file_beside_it():
    """bars_orig.yaml extends bars_le.yaml by a name relative to itself: it resolves in the package too."""
    from microcircuit.spec import load_spec

    spec = load_spec(shipped_circuit("bars_orig.yaml"))[0]
    assert spec.name


def test_no_module_finds_files_through_its_own_location():
    """Circuits are package data: no module looks them up through ``__file__`` of the source tree."""
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "microcircuit").rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if ("__file__" in line and "parents[" in line) or '/ "circuits"' in line]
    assert offenders == []


def test_every_slow_tier_name_is_a_test():
    """conftest.SLOW names tests by file and function: a renamed test must not fall out of the slow tier
    into the default one unnoticed."""
    import ast

    from tests.conftest import SLOW

    for name in SLOW:
        file, _, function = name.partition("::")
        tree = ast.parse((ROOT / "tests" / file).read_text())
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert function in functions, f"conftest.SLOW names {name}, which does not exist"


def test_spec_tests_run_without_torch():
    """conftest.py does not import torch, so the spec layer's tests run where torch is not installed."""
    import subprocess

    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now fails
            "import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_spec.py']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
