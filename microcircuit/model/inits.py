"""Weight initialisations, registered by name: how a projection's initial weights are drawn.

An initialisation is one registered class: :meth:`Init.draw` and, in ``Params``, the type of its value
in a spec (``{uniform: 1.0}``: 1.0); one without ``Params`` is written as its bare name (``zeros``). The
spec schema's ``init`` choice is built from this registry, the class docstring documents the choice
in docs/spec.md. Weights read from a file (``{file: ..., key: ...}``,
:class:`~microcircuit.spec.schema.FileInit`) are read, not drawn (:mod:`microcircuit.spec.data_files`).

Each circuit draws from its own numpy generator, in float64; numpy only (no torch).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from microcircuit.params import NonNegFloat
from microcircuit.registry import Registry

INITS: Registry[type[Init]] = Registry("weight initialisation")


class Init:
    """A weight initialisation."""

    name: ClassVar[str]
    #: the type of the value the spec gives the initialisation (None: it takes none)
    Params: ClassVar[Any] = None

    @staticmethod
    def draw(value: Any, shape: tuple[int, ...], gen: np.random.Generator) -> np.ndarray:
        """Weights of ``shape`` ([post, pre], or a kernel), float64, drawn from ``gen``; ``value``: the
        spec's value (None for an initialisation without ``Params``)."""
        raise NotImplementedError


@INITS.register("zeros")
class Zeros(Init):
    """Every weight 0."""

    name = "zeros"

    @staticmethod
    def draw(value, shape, gen):
        return np.zeros(shape)


@INITS.register("self_predicting")
class SelfPredicting(Zeros):
    """The self-predicting state of interneuron projections (model.md sec. 4): W_pi = -W_down, W_ip the
    analytic value from the area above. Drawn as zeros (:class:`Zeros`), then set by
    :meth:`~microcircuit.circuit.Circuit.apply_self_predicting`."""

    name = "self_predicting"


@INITS.register("uniform")
class Uniform(Init):
    """Weights uniform in [-uniform, uniform]."""

    name = "uniform"
    Params = NonNegFloat

    @staticmethod
    def draw(value, shape, gen):
        return gen.uniform(-value, value, shape)


@INITS.register("normal")
class Normal(Init):
    """Weights normal with mean 0 and standard deviation ``normal``."""

    name = "normal"
    Params = NonNegFloat

    @staticmethod
    def draw(value, shape, gen):
        return gen.normal(0.0, value, shape)


@INITS.register("constant")
class Constant(Init):
    """Every weight ``constant``."""

    name = "constant"
    Params = float

    @staticmethod
    def draw(value, shape, gen):
        return np.full(shape, value)
