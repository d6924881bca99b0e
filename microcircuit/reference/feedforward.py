"""The equivalent feedforward network of a circuit's forward chain (model.md sec. 5), one definition.

Along the forward chain input -> area 1 -> ... -> area N (the basal projections W^up_k):

    y_k = c_k W^up_k r_{k-1},   r_k = phi_k(y_k) for k < N,   r_0 = the input rates,

with c_k = g_B / (g_l + g_B + g_A) the basal attenuation of area k (g_A = 0 at the output). The
output y_N is a potential (no phi): the self-predicting steady state of the circuit without nudging.

Works on numpy arrays and on torch tensors alike (only ``@``, ``swapaxes`` and the activations are
used), batched over any leading dimensions: inputs [..., n_0], weights W_k [..., n_k, n_{k-1}].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def feedforward(inputs: Any, weights: Sequence[Any], attenuation: Sequence[float],
                activations: Sequence[Callable[[Any], Any]] | Callable[[Any], Any],
                products: Sequence[Callable[[Any, Any], Any] | None] | None = None) -> tuple[list[Any], list[Any]]:
    """Potentials y_1..y_N and rates r_1..r_{N-1} of the feedforward network.

    Args:
        inputs: input rates r_0, [..., n_0].
        weights: W^up_1..W^up_N, each [..., n_k, n_{k-1}] (leading dimensions broadcast with ``inputs``'s:
            [circuit, post, pre] with inputs [circuit, batch, n_0] gives per-circuit outputs).
        attenuation: c_1..c_N (dimensionless).
        activations: phi_1..phi_{N-1} (one per hidden area, a list of N is accepted and its last entry
            ignored), or one callable for every area.
        products: per area, how its weights act on the rates below, ``product(W, r) -> W r`` (a
            convolution's operator, model.md sec. 10); None (or a None entry): the matrix product.

    Returns:
        (potentials [y_1, ..., y_N], rates [r_1, ..., r_{N-1}]), each [..., n_k]; y_N is the output.
    """
    if not weights:
        raise ValueError("the feedforward network has no weights")
    if len(attenuation) != len(weights):
        raise ValueError(f"{len(weights)} weight matrices but {len(attenuation)} attenuations")
    phis = [activations] * len(weights) if callable(activations) else list(activations)
    potentials, rates = [], []
    r = inputs
    products = list(products) if products is not None else [None] * len(weights)
    for k, (w, c, product) in enumerate(zip(weights, attenuation, products, strict=True)):
        y = c * (r @ w.swapaxes(-1, -2) if product is None else product(w, r))
        potentials.append(y)
        if k < len(weights) - 1:
            r = phis[k](y)
            rates.append(r)
    return potentials, rates


__all__ = ["feedforward"]
