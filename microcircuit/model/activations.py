"""Activation functions phi (model.md sec. 2), registered by name.

Each maps a potential tensor to a rate tensor of the same shape, elementwise.
phi' is only needed by the backprop analyses, which use torch autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from microcircuit.registry import Registry

Activation = Callable[[torch.Tensor], torch.Tensor]
ACTIVATIONS: Registry[Activation] = Registry("activation")


@ACTIVATIONS.register("soft_relu")
def soft_relu(u: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(u)), the reference choice of Haider et al. 2021."""
    return torch.nn.functional.softplus(u)


@ACTIVATIONS.register("sigmoid")
def sigmoid(u: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(u)


@ACTIVATIONS.register("tanh")
def tanh(u: torch.Tensor) -> torch.Tensor:
    return torch.tanh(u)


@ACTIVATIONS.register("relu")
def relu(u: torch.Tensor) -> torch.Tensor:
    return torch.relu(u)


@ACTIVATIONS.register("linear")
def linear(u: torch.Tensor) -> torch.Tensor:
    return u


@ACTIVATIONS.register("hard_sigmoid")
def hard_sigmoid(u: torch.Tensor) -> torch.Tensor:
    """clip(u, 0, 1)."""
    return torch.clamp(u, 0.0, 1.0)


def numpy_activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The same phi on numpy arrays (float64), for tasks that need it without torch state."""
    phi = ACTIVATIONS.get(name)
    return lambda x: phi(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()
