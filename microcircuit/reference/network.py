"""The equivalent feedforward network of a circuit as a trainable torch model (the backprop baseline).

The network is :func:`microcircuit.reference.feedforward.feedforward` on the circuit's forward chain
(its attenuations c_k and activations phi_k), with one weight set per circuit: W_k [circuit, post, pre].
"""

from __future__ import annotations

import torch

from microcircuit.circuit import Circuit
from microcircuit.model.activations import ACTIVATIONS
from microcircuit.prospective.layers import operator_of
from microcircuit.reference.feedforward import feedforward

#: stimuli per forward pass when evaluating a split (bounds memory for large splits)
EVAL_CHUNK = 2048


def chain_products(circuit: Circuit) -> list:
    """Per area of the forward chain, how its weights act on the rates below: a convolution's forward map,
    or None for a dense matrix product (model.md sec. 10)."""
    return [operator_of(circuit, q.name)[0].forward if q.conv is not None else None for q in circuit.forward_chain]


def chain_constants(circuit: Circuit) -> tuple[list[str], list[float], list]:
    """(projection names W^up_1..W^up_N, attenuations c_1..c_N, activations phi_1..phi_N) of the forward chain."""
    chain = circuit.forward_chain
    return ([q.name for q in chain], [circuit.attenuation(q.target, "basal") for q in chain],
            [ACTIVATIONS.get(circuit.populations[q.target].activation) for q in chain])


class FeedforwardNet:
    """The equivalent feedforward network of a circuit, batched over independent circuits.

    Args:
        circuit: the circuit (forward chain, attenuations, activations).
        weights: initial W_k by projection name, [circuit, post, pre] (copied).
    """

    def __init__(self, circuit: Circuit, weights: dict[str, torch.Tensor]):
        self.chain, self.attenuation, self.phi = chain_constants(circuit)
        self.products = chain_products(circuit)
        self.weights = [weights[name].detach().clone() for name in self.chain]

    def forward(self, inputs: torch.Tensor, weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Output potentials y_N [circuit, batch, n_out] for input rates [circuit, batch, n_in]."""
        potentials, _ = feedforward(inputs, self.weights if weights is None else weights, self.attenuation, self.phi,
                                    self.products)
        return potentials[-1]

    def sgd_step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> None:
        """One SGD step on the batch-mean squared error of every circuit (circuits are independent:
        the sum over circuits of their losses has per-circuit gradients)."""
        leaves = [w.requires_grad_(True) for w in self.weights]
        with torch.enable_grad():
            loss = (self.forward(inputs, leaves) - targets).square().mean(dim=(1, 2)).sum()
            grads = torch.autograd.grad(loss, leaves)
        self.weights = [w.detach().sub_(lr * g) for w, g in zip(leaves, grads, strict=True)]

    def evaluate(self, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-circuit loss [circuit] and accuracy [circuit] (None without labels) on a whole split
        (:func:`evaluate_split`)."""
        return evaluate_split(self.forward, self.weights[0].shape[0], inputs, targets, labels)


@torch.no_grad()
def evaluate_split(forward, n_circuits: int, inputs: torch.Tensor, targets: torch.Tensor,
                   labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-circuit mean squared error [circuit] and accuracy [circuit] (None without labels) of a network
    ``forward`` ([circuit, batch, n_in] -> [circuit, batch, n_out]) on a whole split, in chunks of
    :data:`EVAL_CHUNK`: inputs [n, n_in], targets [n, n_out], labels [n], shared by all circuits."""
    sq_sum = torch.zeros(n_circuits, dtype=inputs.dtype, device=inputs.device)
    hits = torch.zeros(n_circuits, dtype=inputs.dtype, device=inputs.device)
    for start in range(0, inputs.shape[0], EVAL_CHUNK):
        x = inputs[start:start + EVAL_CHUNK].expand(n_circuits, -1, -1)
        out = forward(x)
        sq_sum += (out - targets[start:start + EVAL_CHUNK]).square().sum(dim=(1, 2))
        if labels is not None:
            hits += (out.argmax(dim=-1) == labels[start:start + EVAL_CHUNK]).to(inputs.dtype).sum(dim=1)
    n = inputs.shape[0]
    return sq_sum / (n * targets.shape[-1]), (hits / n if labels is not None else None)


__all__ = ["EVAL_CHUNK", "FeedforwardNet", "chain_constants", "chain_products", "evaluate_split"]
