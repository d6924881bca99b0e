"""The benchmark scripts still run (smallest settings; they print timings, which no test checks)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import ROOT


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, argv", [
    ("throughput", ["--circuits", "9-30-3", "--batches", "1", "--min-time", "0.01"]),
    ("engines", ["--circuits", "1", "--repeats", "1", "--steps", "16", "--eager-steps", "8", "--no-compile-time"]),
    ("prospective", ["--circuits", "fashion_mnist_le_mlp", "--batch", "2", "--steps", "1", "--repeats", "1"]),
])
def test_a_benchmark_runs(name, argv, capsys):
    assert load(name).main(argv) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
@pytest.mark.parametrize("argv", [[], ["--readme-command"]])
def test_against_reference_runs_ours_without_a_checkout(argv, capsys):
    """Without ``--reference`` the script times ours alone (a fresh process with its own empty kernel cache) and
    compares with the recorded figure; ``--readme-command`` runs the README's first command as written."""
    assert load("against_reference").main(["--epochs", "1", "--repeats", "1", *argv]) == 0
    out = capsys.readouterr().out
    assert "the reference was NOT measured here" in out
    assert ("validation" in out) == bool(argv)
