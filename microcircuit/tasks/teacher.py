"""Teacher ("mimic") task (Haider et al. 2021, Fig. 5; model.md sec. 6).

A fixed random teacher network with the student's architecture defines the targets. From
``np.random.default_rng(seed)`` are drawn, in this order: the forward weights W_1..W_N
(shape [sizes[k], sizes[k-1]], uniform in [-weight_scale, weight_scale]), the train inputs
[train, n_in], the test inputs [test, n_in] and the validation inputs [test, n_in], all
inputs uniform in [input_low, input_high].

Targets are the teacher's output somatic potential in the self-predicting steady state with
no nudging: r_0 = input, r_k = phi(c_k W_k r_{k-1}) for hidden areas k < N, and
u_N = c_N W_N r_{N-1} (a potential, no phi at the output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import PositiveFloat, PositiveInt

from microcircuit.params import Strict
from microcircuit.reference.feedforward import feedforward
from microcircuit.tasks.base import TASKS, Architecture, Split, Task

#: Largest output potential the teacher may be able to produce: beyond it targets may overflow to inf.
TARGET_LIMIT = 1e300


def output_bound(sizes: Sequence[int], input_low: float, input_high: float, weight_scale: float) -> float:
    """An upper bound of |u_N| over all teachers and inputs of these parameters (inf on overflow).

    Uses |c_k| <= 1, |w| <= weight_scale and |phi(u)| <= |u| + 1, true of every activation
    (soft_relu <= max(u, 0) + log 2; relu, linear <= |u|; sigmoid, tanh, hard_sigmoid <= 1).
    """
    rate = max(abs(input_low), abs(input_high))
    potential = 0.0
    for k in range(1, len(sizes)):
        potential = float(sizes[k - 1]) * weight_scale * rate
        rate = potential + 1.0
    return potential


def teacher_forward(weights: list[np.ndarray], architecture: Architecture, inputs: np.ndarray) -> np.ndarray:
    """Output potentials u_N [n_samples, sizes[-1]] of the feedforward network
    (:func:`microcircuit.reference.feedforward.feedforward`, in float64).

    ``inputs``: [n_samples, sizes[0]] rates r_0; ``weights``: W_1..W_N, each [sizes[k], sizes[k-1]].
    """
    def phi(u: np.ndarray) -> np.ndarray:
        return np.asarray(architecture.activation(u), dtype=np.float64)

    potentials, _ = feedforward(inputs, weights, architecture.attenuation, phi)
    return np.asarray(potentials[-1], dtype=np.float64)


class TeacherTask(Strict):
    """Mimic a fixed random teacher network of the circuit's own architecture.

    Inputs uniform in [input_low, input_high]; the teacher's forward weights are
    uniform in [-weight_scale, weight_scale], drawn from ``seed``.
    """

    train: PositiveInt = 10
    test: PositiveInt = 10
    seed: int = 12345
    input_low: float = 0.0
    input_high: float = 1.0
    weight_scale: PositiveFloat = 1.0


@TASKS.register("teacher")
class Teacher(Task):
    """Regression onto a fixed random teacher of the circuit's own architecture (any sizes)."""

    name = "teacher"
    Params = TeacherTask
    classification = False
    params: TeacherTask

    def split_sizes(self) -> dict[str, int]:
        """Validation has as many inputs as test (drawn after them)."""
        return {"train": self.params.train, "validation": self.params.test, "test": self.params.test}

    def check_params(self, sizes: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """Input range ordered and finite, seed >= 0 (numpy's default_rng), and, for the circuit's
        ``sizes``, targets that cannot overflow."""
        p = self.params
        problems = [(key, message) for key, message in super().check_params(sizes)
                    if key != "validation"]  # the validation split is sized by 'test', reported there
        if p.input_high < p.input_low:
            problems.append(("input_high", f"input_high ({p.input_high:g}) is below input_low ({p.input_low:g})"))
        elif not math.isfinite(p.input_high - p.input_low):
            problems.append(("input_high", f"the input range [{p.input_low:g}, {p.input_high:g}] overflows"))
        if not math.isfinite(2.0 * p.weight_scale):
            problems.append(("weight_scale", f"the weight range [-{p.weight_scale:g}, {p.weight_scale:g}] overflows"))
        elif sizes and not output_bound(sizes, p.input_low, p.input_high, p.weight_scale) < TARGET_LIMIT:
            problems.append(("weight_scale", f"with weight_scale {p.weight_scale:g}, inputs up to "
                             f"{max(abs(p.input_low), abs(p.input_high)):g} and sizes {list(sizes)}, the teacher's "
                             f"targets could exceed {TARGET_LIMIT:g} (or overflow to inf)"))
        if p.seed < 0:
            problems.append(("seed", f"seed {p.seed} is negative (numpy seeds are >= 0)"))
        return problems

    def _draw(self, architecture: Architecture) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        architecture.check()
        p = self.params
        if p.input_high < p.input_low:
            raise ValueError(f"teacher task: input_high ({p.input_high}) is below input_low ({p.input_low})")
        rng = np.random.default_rng(p.seed)
        sizes = [int(s) for s in architecture.sizes]
        weights = [
            rng.uniform(-p.weight_scale, p.weight_scale, size=(sizes[k], sizes[k - 1]))
            for k in range(1, len(sizes))
        ]
        inputs = {}
        for split, n in (("train", p.train), ("test", p.test), ("validation", p.test)):
            inputs[split] = rng.uniform(p.input_low, p.input_high, size=(n, sizes[0]))
        return weights, inputs

    def teacher_weights(self, architecture: Architecture) -> list[np.ndarray]:
        """The teacher's forward weights W_1..W_N, each [sizes[k], sizes[k-1]] (float64)."""
        return self._draw(architecture)[0]

    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        weights, inputs = self._draw(architecture)
        return {
            name: Split(x, teacher_forward(weights, architecture, x), None)
            for name, x in inputs.items()
        }
