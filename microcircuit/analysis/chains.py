"""Feedforward chains of any depth, as YAML-equivalent spec dicts loaded through the spec layer.

A chain ``x -> h1 -> ... -> h{depth-1} -> out`` has pyramidal areas without interneurons or top-down
input (silent apical dendrites), the haider2021 conductances and a teacher task. It is the circuit of
the latency analyses: how long the output needs to answer a step input, per area.
"""

from __future__ import annotations

from typing import Any

import yaml

from microcircuit.spec import load_spec_text
from microcircuit.spec.schema import Spec


def chain_spec(depth: int, dynamics: str = "latent_equilibrium", schedule: str = "reference", sizes: int = 4,
               dtype: str = "float64", activation: str = "soft_relu", **extra: Any) -> dict[str, Any]:
    """A feedforward chain of ``depth`` areas (``depth - 1`` hidden pyramidal areas and the output).

    Args:
        depth: number of areas (weight matrices) between input and output, >= 1.
        dynamics: ``latent_equilibrium`` or ``orig`` (every population).
        schedule: ``reference`` (one dt of delay per area) or ``propagating``.
        sizes: neurons of the input and of every hidden area; the output has 2.
        dtype: ``float64`` (default, for exact timing facts) or ``float32``.
        activation: phi of every population.
        extra: top-level keys put into the spec as given (e.g. ``seed``).

    Returns:
        The spec as a dict; weights uniform in [-1, 1], protocol: one test phase.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    pops: dict[str, Any] = {"x": {"cell": "input", "size": sizes}}
    projections: dict[str, Any] = {}
    previous = "x"
    for k in range(1, depth):
        pops[f"h{k}"] = {"cell": "pyramidal", "size": sizes}
        projections[f"up_{k}"] = {"source": previous, "target": f"h{k}.basal"}
        previous = f"h{k}"
    pops["out"] = {"cell": "output_pyramidal", "size": 2}
    projections[f"up_{depth}"] = {"source": previous, "target": "out.basal"}
    spec: dict[str, Any] = {
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


def load_dict(spec: dict[str, Any], overrides: tuple[str, ...] | list[str] = ()) -> Spec:
    """Validate a spec dict through the spec layer (as YAML text, so that errors carry positions)."""
    text = yaml.safe_dump(spec, sort_keys=False)
    return load_spec_text(text, f"{spec.get('name', 'spec')}.yaml", list(overrides))[0]


def load_chain(depth: int, **kwargs: Any) -> Spec:
    """:func:`chain_spec` loaded and validated."""
    return load_dict(chain_spec(depth, **kwargs))
