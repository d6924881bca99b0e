"""Shared test helpers: small circuits built from YAML text through the real spec loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from microcircuit.analysis.chains import chain_spec  # noqa: F401 (re-exported for the tests)

torch.set_num_threads(1)  # tests share machines

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = ROOT / "circuits"


def build(spec: dict | str | Path, overrides: tuple[str, ...] = ()):
    """Load a spec (dict, YAML text or file) through the spec layer; return the validated Spec."""
    from microcircuit.spec import load_spec, load_spec_text

    if isinstance(spec, Path):
        return load_spec(spec, list(overrides))[0]
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    return load_spec_text(text, "test.yaml", list(overrides))[0]


@pytest.fixture
def bars_le():
    return build(CIRCUITS / "bars_le.yaml")
