"""The feedforward network a prospective network computes at its fixed point (model.md sec. 10).

With the errors at zero, every area of a prospective network answers r_l = phi_l(W_l P(r_{l-1}) + b_l)
at once (tau_r = tau_m). This module is that network as a trainable torch model, batched over
circuits, on the same operators as the engine (:mod:`microcircuit.prospective.layers`): it is the
backprop baseline of a prospective circuit (``microcircuit baseline``) and the reference of the tests
(the fixed point, and backprop's gradients by autograd).
"""

from __future__ import annotations

import torch

from microcircuit.circuit import Circuit
from microcircuit.model.activations import ACTIVATIONS
from microcircuit.prospective.layers import operator_of
from microcircuit.reference.network import evaluate_split


class ProspectiveFeedforwardNet:
    """The feedforward network of a prospective circuit.

    Args:
        circuit: a prospective circuit (its forward chain, operators, activations, biases).
        weights: initial weights by projection name, with the circuit first (copied).
        biases: initial biases by population name, [circuit, bias size] (copied; default zero where an
            area has biases).
    """

    def __init__(self, circuit: Circuit, weights: dict[str, torch.Tensor],
                 biases: dict[str, torch.Tensor] | None = None):
        chain = circuit.forward_chain
        self.chain = [q.name for q in chain]
        self.ops = [operator_of(circuit, q.name) for q in chain]
        self.phi = [ACTIVATIONS.get(circuit.populations[q.target].activation) for q in chain]
        self.rate_output = circuit.spec.inputs.teacher.error == "rate"
        self.weights = [weights[name].detach().clone() for name in self.chain]
        first = self.weights[0]
        biases = biases or {}
        self.biases: list[torch.Tensor | None] = []
        for q, (op, _) in zip(chain, self.ops, strict=True):
            if not circuit.populations[q.target].bias:
                self.biases.append(None)
            elif q.target in biases:
                self.biases.append(biases[q.target].detach().clone())
            else:
                self.biases.append(torch.zeros(first.shape[0], op.bias_size, dtype=first.dtype, device=first.device))

    def potentials(self, inputs: torch.Tensor, weights=None, biases=None) -> list[torch.Tensor]:
        """The potentials W_l P(r_{l-1}) + b_l of every area, [circuit, batch, n_l], for input rates
        [circuit, batch, n_in]."""
        weights = self.weights if weights is None else weights
        biases = self.biases if biases is None else biases
        rate, out = inputs, []
        for (op, pooling), phi, w, b in zip(self.ops, self.phi, weights, biases, strict=True):
            if pooling is not None:
                rate, _ = pooling.pool(rate)
            u = op.forward(w, rate)
            if b is not None:
                u = u + op.expand_bias(b)
            out.append(u)
            rate = phi(u)
        return out

    def forward(self, inputs: torch.Tensor, weights=None, biases=None) -> torch.Tensor:
        """What the output reports, [circuit, batch, n_out]: its rate (``error: rate``) or potential."""
        u = self.potentials(inputs, weights, biases)[-1]
        return self.phi[-1](u) if self.rate_output else u

    def loss_and_grads(self, inputs: torch.Tensor, targets: torch.Tensor):
        """The summed batch-mean squared error 1/2 |target - output|^2 of every circuit and its gradients
        (weights, then biases where they exist)."""
        leaves = [w.detach().requires_grad_(True) for w in self.weights]
        bias_leaves = [None if b is None else b.detach().requires_grad_(True) for b in self.biases]
        with torch.enable_grad():
            loss = 0.5 * (self.forward(inputs, leaves, bias_leaves) - targets).square().sum(dim=2).mean(dim=1).sum()
            grads = torch.autograd.grad(loss, leaves + [b for b in bias_leaves if b is not None])
        return loss, list(grads[:len(leaves)]), list(grads[len(leaves):])

    def sgd_step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> None:
        """One SGD step on the batch-mean squared error of every circuit (the mean over outputs, as the
        microcircuit baseline's loss)."""
        leaves = [w.detach().requires_grad_(True) for w in self.weights]
        bias_leaves = [None if b is None else b.detach().requires_grad_(True) for b in self.biases]
        with torch.enable_grad():
            loss = (self.forward(inputs, leaves, bias_leaves) - targets).square().mean(dim=(1, 2)).sum()
            grads = torch.autograd.grad(loss, leaves + [b for b in bias_leaves if b is not None])
        grads = list(grads)
        self.weights = [w.detach().sub_(lr * grads.pop(0)) for w in leaves]
        self.biases = [None if b is None else b.detach().sub_(lr * grads.pop(0)) for b in bias_leaves]

    def evaluate(self, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-circuit loss [circuit] and accuracy [circuit] (None without labels) on a whole split."""
        return evaluate_split(self.forward, self.weights[0].shape[0], inputs, targets, labels)
