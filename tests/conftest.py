"""Shared test helpers: small circuits built from YAML text through the real spec loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

torch.set_num_threads(1)  # tests share machines

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = ROOT / "circuits"


def chain_spec(depth: int, dynamics: str = "latent_equilibrium", schedule: str = "reference",
               sizes: int = 4, dtype: str = "float64", activation: str = "soft_relu", **extra) -> dict:
    """A feedforward chain x -> h1 -> ... -> out of ``depth`` areas (no interneurons, silent apicals),
    with the haider2021 conductances and a teacher task; protocol: one test phase."""
    pops = {"x": {"cell": "input", "size": sizes}}
    projections = {}
    previous = "x"
    for k in range(1, depth):
        pops[f"h{k}"] = {"cell": "pyramidal", "size": sizes}
        projections[f"up_{k}"] = {"source": previous, "target": f"h{k}.basal"}
        previous = f"h{k}"
    pops["out"] = {"cell": "output_pyramidal", "size": 2}
    projections[f"up_{depth}"] = {"source": previous, "target": "out.basal"}
    spec = {
        "schema": "microcircuit/1",
        "name": f"chain{depth}",
        "preset": "haider2021",
        "dtype": dtype,
        "schedule": schedule,
        "defaults": {
            "population": {"dynamics": dynamics, "activation": activation},
            "projection": {"init": {"uniform": 1.0}},
        },
        "populations": pops,
        "projections": projections,
        "task": {"teacher": {"train": 4, "test": 4}},
        "inputs": {"stimulus": {"target": "x"}, "teacher": {"target": "out.soma", "conductance": "$g_som"}},
        "protocol": [{"phase": "test", "data": "test", "t_pres": 10}],
    }
    spec.update(extra)
    return spec


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
