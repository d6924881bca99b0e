"""Activation functions phi (model.md sec. 2), registered by name.

Each maps a potential tensor to a rate tensor of the same shape, elementwise. Each has its
analytic derivative phi' in :data:`DERIVATIVES` under the same name (the prospective networks of
model.md sec. 10 send their errors down through phi'; a test checks every one against autograd).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microcircuit.lazy import lazy_import
from microcircuit.registry import Registry

torch = lazy_import("torch")  # loaded when a method first computes (the spec layer reads the classes only)

#: potential tensor -> rate tensor of the same shape (written as strings: reading torch.Tensor here would load torch)
Activation = Callable[["torch.Tensor"], "torch.Tensor"]
ACTIVATIONS: Registry[Activation] = Registry("activation")
#: phi' by the name of phi (at kinks, relu and hard_sigmoid take the one-sided value 0)
DERIVATIVES: Registry[Activation] = Registry("activation derivative")


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


@DERIVATIVES.register("soft_relu")
def soft_relu_derivative(u: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(u)


@DERIVATIVES.register("sigmoid")
def sigmoid_derivative(u: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(u)
    return s * (1.0 - s)


@DERIVATIVES.register("tanh")
def tanh_derivative(u: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(u).square()


@DERIVATIVES.register("relu")
def relu_derivative(u: torch.Tensor) -> torch.Tensor:
    return (u > 0.0).to(u.dtype)


@DERIVATIVES.register("linear")
def linear_derivative(u: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(u)


@DERIVATIVES.register("hard_sigmoid")
def hard_sigmoid_derivative(u: torch.Tensor) -> torch.Tensor:
    return ((u > 0.0) & (u < 1.0)).to(u.dtype)


def numpy_activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The same phi on numpy arrays (float64), for tasks that need it without torch state."""
    phi = ACTIVATIONS.get(name)
    return lambda x: phi(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()
