"""Parameter presets of the published models (``preset: haider2021``).

A preset fills the ``parameters`` keys a spec does not set, and ``dt`` if the spec does
not set it; anything written in the spec (or given with ``--set``) wins. Conductances in
1/ms, dt in ms.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from microcircuit.spec.errors import Problem, did_you_mean, listing
from microcircuit.spec.loader import SourceMap


@dataclass(frozen=True)
class Preset:
    """Default parameters and time step of a published model."""

    description: str
    parameters: dict[str, float] = field(default_factory=dict)
    dt: float | None = None


PRESETS: dict[str, Preset] = {
    "haider2021": Preset(
        "Latent Equilibrium reference code (Haider et al. 2021): tau_eff = 1/0.19 ms",
        {"g_l": 0.03, "g_b": 0.1, "g_a": 0.06, "g_d": 0.1, "g_som": 0.06},
        dt=0.1,
    ),
    "sacramento2018": Preset(
        "Dendritic cortical microcircuits (Sacramento et al. 2018)",
        {"g_l": 0.1, "g_b": 1.0, "g_a": 0.8, "g_d": 1.0, "g_som": 0.8},
        dt=0.1,
    ),
}


def apply_preset(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Fill ``parameters`` and ``dt`` of ``data`` in place from its ``preset``, if any.

    Filled values are located at the ``preset`` key, so a message about one of them
    points at the line that chose the preset.
    """
    name = data.get("preset")
    if name is None:
        return []
    problems = []
    if not isinstance(name, str) or name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1) if isinstance(name, str) else []
        problems.append(smap.problem(("preset",), f"unknown preset {name!r} (valid: {listing(PRESETS)})",
                                     did_you_mean(name, PRESETS)))
        if not close:
            return problems
        name = close[0]  # go on with the evident intent, so that checking continues without a cascade
    preset = PRESETS[name]
    where = smap.positions.get(("preset",))
    parameters = data.setdefault("parameters", {})
    if not isinstance(parameters, dict):
        return problems  # the structural pass reports the wrong type
    for key, value in preset.parameters.items():
        if key not in parameters:
            parameters[key] = value
            if where is not None:
                smap.positions[("parameters", key)] = where
    if preset.dt is not None and "dt" not in data:
        data["dt"] = preset.dt
        if where is not None:
            smap.positions[("dt",)] = where
    return problems
