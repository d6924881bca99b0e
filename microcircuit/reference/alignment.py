"""Dendritic errors against backprop, measured during a run (model.md sec. 5).

At the end of every presentation with the teacher on, :class:`AlignmentProbe` compares, per
hidden area k and per stimulus, on the circuit's current weights:

- ``angle_apical_bp/<pop>``: the apical potential v^A_k against the backpropagated error -dL/dr_k;
- ``angle_error_bp/<pop>``: the somatic rate error r_k - phi(c_k v^B_k) against delta_k = -dL/dy_k
  (output included);
- ``angle_dW_bp/<proj>``: the change of W^up_k over the presentation against -dL/dW^up_k (plastic
  projections only);
- ``angle_Wdown_WupT/<proj>``: the top-down weights W^down_k against (W^up_{k+1})^T.

Angles in degrees (0 = same direction, 90 = orthogonal); ``cos_*`` twins hold the cosines. Values
are averaged over the presentations of an epoch, per circuit.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from microcircuit.engine import Simulator
from microcircuit.model.activations import ACTIVATIONS
from microcircuit.reference.backprop import angle_degrees, backprop_reference, cosine


def top_down_pairs(circuit) -> list[tuple[str, str]]:
    """(W^down projection, W^up projection it should mirror) for every pyramidal->apical projection."""
    pairs = []
    for q in circuit.projections.values():
        if q.kind != "weighted" or q.compartment != "apical":
            continue
        if circuit.populations[q.source].cell.name == "interneuron":
            continue
        ups = [u.name for u in circuit.into(q.source, "basal") if u.source == q.target]
        if ups:
            pairs.append((q.name, ups[0]))
    return pairs


class AlignmentProbe:
    """Accumulates alignment metrics of one simulator over an epoch."""

    def __init__(self, sim: Simulator, loss: str = "gain_weighted"):
        self.sim = sim
        self.circuit = sim.circuit
        self.loss = loss
        chain = self.circuit.forward_chain
        self.areas = [q.target for q in chain]
        self.hidden = [p for p in self.areas if "apical" in self.circuit.populations[p].cell.dendrites]
        self.up_of = {q.target: q.name for q in chain}
        self.pairs = top_down_pairs(self.circuit)
        self.before: dict[str, torch.Tensor] = {}
        self.sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(sim.n_circuits, dtype=torch.float64))
        self.count = 0

    def start(self, plastic_names: list[str]) -> None:
        """Call before a presentation: remembers the forward weights that may change."""
        self.before = {n: self.sim.state.weights[n].clone() for n in self.up_of.values() if n in plastic_names}

    def _add(self, name: str, cos: torch.Tensor) -> None:
        """cos: [circuit] or [circuit, batch] -> batch mean, accumulated as angle and cosine."""
        if cos.dim() == 2:
            angle, cos = angle_degrees(cos).mean(dim=1), cos.mean(dim=1)
        else:
            angle = angle_degrees(cos)
        self.sums[f"angle_{name}"] += angle.detach().to("cpu", torch.float64)
        self.sums[f"cos_{name}"] += cos.detach().to("cpu", torch.float64)

    def finish(self, targets: torch.Tensor) -> None:
        """Call after a presentation with the teacher on; ``targets`` [circuit, batch, n_out]."""
        st, c = self.sim.state, self.circuit
        attenuation = {pop: self.sim.attenuation(pop, "basal") for pop in self.areas}  # per circuit where it differs
        ref = backprop_reference(c, st.weights, st.rate[c.input_population], targets, self.loss,
                                 [attenuation[pop] for pop in self.areas])
        for pop in self.areas:
            phi = ACTIVATIONS.get(c.populations[pop].activation)
            error = st.rate[pop] - phi(attenuation[pop] * st.v[f"{pop}.basal"])
            self._add(f"error_bp/{pop}", cosine(error, ref.deltas[pop]))
        for pop in self.hidden:
            self._add(f"apical_bp/{pop}", cosine(st.v[f"{pop}.apical"], ref.rate_errors[pop]))
        for name, w0 in self.before.items():
            self._add(f"dW_bp/{name}", cosine(st.weights[name] - w0, ref.gradients[name], dims=(1, 2)))
        for down, up in self.pairs:
            self._add(f"Wdown_WupT/{down}", cosine(st.weights[down], st.weights[up].transpose(1, 2), dims=(1, 2)))
        self.count += 1

    def rows(self, phase: str, epoch: int, seeds: list[int]) -> list[tuple]:
        """Epoch means as metric rows, then reset."""
        rows = []
        if self.count:
            for metric, total in sorted(self.sums.items()):
                for i, seed in enumerate(seeds):
                    rows.append((phase, epoch, seed, metric, float(total[i]) / self.count))
        self.sums.clear()
        self.count = 0
        return rows
