"""The backprop reference (model.md sec. 5): the equivalent feedforward network on the circuit's weights.

The network is :func:`microcircuit.reference.feedforward.feedforward` along the circuit's forward chain
(input -> ... -> output, the basal projections W^up_k):

    y_k = c_k W^up_k r_{k-1},   r_k = phi_k(y_k),   r_0 = the input rates,

with c_k = g_B / (g_l + g_B + g_A) the basal attenuation of area k. y_N is the output potential.

The loss is the one whose gradient the microcircuit follows in the weak-nudging limit. Dendritic
prediction at the output changes W^up_N by (phi(u_N) - phi(y_N)) r^T ~ phi'(y_N) (u_tgt - y_N) r^T,
i.e. by the gradient of the gain-weighted squared error

    L = 1/2 sum_i phi'(y_N,i) (u_tgt,i - y_N,i)^2      (the gains phi'(y_N) are not differentiated),

(``loss="gain_weighted"``, the default; ``loss="mse"`` drops the gains: L = 1/2 |u_tgt - y_N|^2).
torch autograd then gives, per area, delta_k = -dL/dy_k (what the somatic rate error
r_k - phi(c_k v^B_k) should carry), the backpropagated error -dL/dr_k that the apical dendrite
of area k should carry, and the weight gradients -dL/dW^up_k (batch mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from microcircuit.circuit import Circuit
from microcircuit.reference.feedforward import feedforward
from microcircuit.reference.network import chain_constants, chain_products


@dataclass
class BackpropReference:
    """Backprop quantities on the circuit's weights. Per-population tensors are [circuit, batch, neuron]."""

    potentials: dict[str, torch.Tensor]  # y_k
    rates: dict[str, torch.Tensor]  # r_k = phi(y_k)
    deltas: dict[str, torch.Tensor]  # -dL/dy_k
    rate_errors: dict[str, torch.Tensor]  # -dL/dr_k (hidden areas)
    gradients: dict[str, torch.Tensor]  # -dL/dW^up_k, [circuit, post, pre], batch mean
    loss: torch.Tensor  # [circuit], batch mean


def backprop_reference(
    circuit: Circuit,
    weights: dict[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss: str = "gain_weighted",
    attenuation: Sequence[float | torch.Tensor] | None = None,
) -> BackpropReference:
    """Forward and backward pass of the equivalent feedforward network.

    Args:
        circuit: the circuit (its forward chain, attenuations and activations).
        weights: the circuit's weights by projection, [circuit, post, pre].
        inputs: input rates r_0, [circuit, batch, n_in].
        targets: target output potentials u_tgt, [circuit, batch, n_out].
        loss: ``gain_weighted`` (default) or ``mse``.
        attenuation: c_1..c_N, each one value or [circuit, 1, 1] (a batch of circuits with their own
            conductances); default: the circuit's.
    """
    if loss not in ("gain_weighted", "mse"):
        raise ValueError(f"unknown loss '{loss}' (valid: gain_weighted, mse)")
    chain = circuit.forward_chain
    names, own, phis = chain_constants(circuit)
    attenuation = own if attenuation is None else list(attenuation)
    leaves = {name: weights[name].detach().clone().requires_grad_(True) for name in names}
    with torch.enable_grad():
        ys, rs = feedforward(inputs.detach(), [leaves[n] for n in names], attenuation, phis, chain_products(circuit))
        for tensor in ys + rs:
            tensor.retain_grad()
        potentials = {q.target: y for q, y in zip(chain, ys, strict=True)}
        rates = {q.target: r for q, r in zip(chain[:-1], rs, strict=True)}
        y_out = ys[-1]
        error = targets.detach() - y_out
        if loss == "gain_weighted":
            phi_out = phis[-1]
            y_probe = y_out.detach().clone().requires_grad_(True)
            (gain,) = torch.autograd.grad(phi_out(y_probe).sum(), y_probe)
            per_sample = 0.5 * (gain * error.square()).sum(dim=-1)
        else:
            per_sample = 0.5 * error.square().sum(dim=-1)
        total = per_sample.mean(dim=1)  # [circuit]
        total.sum().backward()
    n_batch = inputs.shape[1]
    return BackpropReference(
        potentials={k: v.detach() for k, v in potentials.items()},
        rates={k: v.detach() for k, v in rates.items()},
        # .grad of a batch-mean loss is 1/batch of the per-sample gradient: undo that for per-sample deltas
        deltas={k: -v.grad.detach() * n_batch for k, v in potentials.items()},
        rate_errors={k: -v.grad.detach() * n_batch for k, v in rates.items()},
        gradients={k: -v.grad.detach() for k, v in leaves.items()},
        loss=total.detach(),
    )


def cosine(a: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...] = (-1,)) -> torch.Tensor:
    """Cosine similarity over ``dims``; 0 where either vector is zero."""
    dot = (a * b).sum(dim=dims)
    norm = a.square().sum(dim=dims).sqrt() * b.square().sum(dim=dims).sqrt()
    return torch.where(norm > 0, dot / norm.clamp_min(torch.finfo(a.dtype).tiny), torch.zeros_like(dot))


def angle_degrees(cos: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
