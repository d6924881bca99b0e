"""Recordings: which state variable, every how many steps, reduced how; buffered and written in chunks.

A variable is named ``population.compartment.variable``:
``<pop>.soma.u`` somatic potential, ``<pop>.soma.u_breve`` the potential that set the rate
(prospective potential in LE), ``<pop>.soma.rate``, ``<pop>.<dendrite>.v`` dendritic potential,
or ``target`` (the task target of the current stimulus, delayed like the teacher, recorded
also when the teacher is off). ``*`` as population expands to every
population that has the compartment. Reductions over neurons: ``none`` (keep all),
``mean``, ``norm`` (root mean square).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from microcircuit.engine import Simulator
from microcircuit.spec.schema import Recording

UNITS = {"u": "potential (dimensionless)", "u_breve": "potential (dimensionless)",
         "rate": "rate (dimensionless)", "v": "potential (dimensionless)", "target": "potential (dimensionless)"}


@dataclass
class Channel:
    var: str
    every: int
    reduce: str
    phases: list[str] | None
    read: Callable[[], torch.Tensor | None]
    samples: list[torch.Tensor] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


def expand(var: str, sim: Simulator) -> list[str]:
    """Expand a ``*`` population wildcard into concrete variable names."""
    if var == "target" or not var.startswith("*."):
        return [var]
    _, comp, name = var.split(".")
    return [f"{p.name}.{comp}.{name}" for p in sim.circuit.populations.values()
            if comp in p.cell.compartments() and name in p.cell.variables(comp)]


def reader(var: str, sim: Simulator) -> Callable[[], torch.Tensor | None]:
    st = sim.state
    if var == "target":
        return lambda: sim.applied_target
    pop, comp, name = var.split(".")
    if name == "v":
        return lambda: st.v[f"{pop}.{comp}"]
    return lambda: getattr(st, name)[pop]


class Recorder:
    """Buffers the spec's recordings during a run and hands out whole chunks."""

    def __init__(self, recordings: list[Recording], sim: Simulator):
        self.sim = sim
        self.channels: list[Channel] = []
        for rec in recordings:
            for var in expand(rec.var, sim):
                self.channels.append(Channel(var, rec.every, rec.reduce, rec.phases, reader(var, sim)))

    def index(self) -> dict:
        return {
            "seeds": self.sim.seeds,
            "variables": {
                c.var: {"every": c.every, "reduce": c.reduce, "phases": c.phases,
                        "units": UNITS[c.var.split(".")[-1]],
                        "dims": ["sample", "circuit", "batch"] + (["neuron"] if c.reduce == "none" else [])}
                for c in self.channels
            },
        }

    def observers(self, phase: str) -> list[tuple[int, Callable[[int], None]]]:
        """(every, callback(global_step)) for the channels active in ``phase``."""
        return [(c.every, self._sampler(c)) for c in self.channels if c.phases is None or phase in c.phases]

    def _sampler(self, channel: Channel) -> Callable[[int], None]:
        dt = self.sim.dt

        def sample(step: int) -> None:
            value = channel.read()
            if value is None:
                size = self.sim.circuit.populations[self.sim.output].size
                value = torch.full((self.sim.n_circuits, self.sim.n_batch, size), float("nan"))
            if channel.reduce == "mean":
                value = value.mean(dim=-1)
            elif channel.reduce == "norm":
                value = value.square().mean(dim=-1).sqrt()
            channel.samples.append(value.detach().clone())
            channel.times.append(step * dt)

        return sample

    def take_chunk(self) -> dict[str, np.ndarray]:
        """Everything buffered since the last chunk, as float32 arrays; empties the buffers."""
        arrays = {}
        for c in self.channels:
            if c.samples:
                arrays[c.var] = torch.stack(c.samples).to("cpu", torch.float32).numpy()
                arrays[f"{c.var}.t"] = np.asarray(c.times)
                c.samples.clear()
                c.times.clear()
        return arrays
