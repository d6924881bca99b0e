"""Recordings: which state variable, every how many steps, reduced how; buffered and written in chunks.

A variable is named ``population.compartment.variable``:
``<pop>.soma.u`` somatic potential, ``<pop>.soma.u_breve`` the potential that set the rate
(prospective potential in LE), ``<pop>.soma.rate``, ``<pop>.<dendrite>.v`` dendritic potential,
``<pop>.soma.error`` the error input e of a prospective cell (model.md sec. 10),
or ``target`` (the task target of the current stimulus, delayed like the teacher, recorded
also when the teacher is off). ``*`` as population expands to every
population that has the compartment. Reductions over neurons: ``none`` (keep all),
``mean``, ``norm`` (root mean square), ``mean_abs`` (mean |x|).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from microcircuit.engine import Presented, Probe, Simulator
from microcircuit.spec.schema import Recording

UNITS = {"u": "potential (dimensionless)", "u_breve": "potential (dimensionless)",
         "rate": "rate (dimensionless)", "v": "potential (dimensionless)", "target": "potential (dimensionless)",
         "error": "potential (dimensionless)"}


@dataclass
class Channel:
    var: str
    probe: Probe
    phases: list[str] | None
    samples: list[torch.Tensor] = field(default_factory=list)  # [sample, circuit, batch(, neuron)] per engine call
    steps: list[int] = field(default_factory=list)  # the step count of each sample since the run began


def expand(var: str, sim: Simulator) -> list[str]:
    """Expand a ``*`` population wildcard into concrete variable names."""
    if var == "target" or not var.startswith("*."):
        return [var]
    _, comp, name = var.split(".")
    return [f"{p.name}.{comp}.{name}" for p in sim.circuit.populations.values()
            if comp in p.cell.compartments() and name in p.cell.variables(comp)]


def probe_of(var: str, every: int, reduce: str) -> Probe:
    """The engine probe that samples ``var`` (``pop.compartment.variable`` or ``target``)."""
    if var == "target":
        return Probe("target", "", every, reduce)
    pop, comp, name = var.split(".")
    if name == "v":
        return Probe("v", f"{pop}.{comp}", every, reduce)
    return Probe(name, pop, every, reduce)


class Recorder:
    """Buffers the spec's recordings during a run and hands out whole chunks."""

    def __init__(self, recordings: list[Recording], sim: Simulator):
        self.sim = sim
        self.channels: list[Channel] = []
        for rec in recordings:
            for var in expand(rec.var, sim):
                self.channels.append(Channel(var, probe_of(var, rec.every, rec.reduce), rec.phases))

    def index(self) -> dict:
        return {
            "seeds": self.sim.seeds,
            "variables": {
                c.var: {"every": c.probe.every, "reduce": c.probe.reduce, "phases": c.phases,
                        "units": UNITS[c.var.split(".")[-1]],
                        "dims": ["sample", "circuit", "batch"] + (["neuron"] if c.probe.reduce == "none" else [])}
                for c in self.channels
            },
        }

    def active(self, phase: str) -> list[Channel]:
        """The channels that record in ``phase``."""
        return [c for c in self.channels if c.phases is None or phase in c.phases]

    def add(self, channels: list[Channel], presented: Presented) -> None:
        """Keep the samples that :meth:`Simulator.present_many` took for ``channels`` (in that order)."""
        for channel, samples, steps in zip(channels, presented.samples, presented.sample_steps, strict=True):
            if samples is None:
                continue
            channel.samples.append(samples.detach().clone())
            channel.steps.extend(int(step) for step in steps)

    def take_chunk(self, epochs: list[tuple[int, int]] | None = None) -> dict[str, np.ndarray]:
        """Everything buffered since the last chunk, as float32 arrays with the sample times ``<var>.t`` in ms;
        empties the buffers. ``epochs``: (label, last step) of each epoch the chunk spans, in order, for a chunk
        of several epochs: then ``<var>.epoch`` labels each sample with its epoch."""
        arrays = {}
        for c in self.channels:
            if not c.samples:
                continue
            steps = np.asarray(c.steps, dtype=np.int64)
            arrays[c.var] = torch.cat(c.samples).to("cpu", torch.float32).numpy()
            arrays[f"{c.var}.t"] = steps * self.sim.dt
            if epochs:
                labels, ends = zip(*epochs, strict=True)
                index = np.minimum(np.searchsorted(np.asarray(ends), steps, side="left"), len(ends) - 1)
                arrays[f"{c.var}.epoch"] = np.asarray(labels, dtype=np.int64)[index]
            c.samples.clear()
            c.steps.clear()
        return arrays
