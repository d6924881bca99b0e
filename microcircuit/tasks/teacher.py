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

import numpy as np

from microcircuit.spec.schema import TeacherTask
from microcircuit.tasks.base import TASKS, Architecture, Split, Task


def teacher_forward(weights: list[np.ndarray], architecture: Architecture, inputs: np.ndarray) -> np.ndarray:
    """Output potentials u_N [n_samples, sizes[-1]] of the feedforward network.

    ``inputs``: [n_samples, sizes[0]] rates r_0; ``weights``: W_1..W_N, each [sizes[k], sizes[k-1]].
    """
    r = inputs
    last = len(weights) - 1
    for k, (w, c) in enumerate(zip(weights, architecture.attenuation, strict=True)):
        u = c * (r @ w.T)
        if k == last:
            return np.asarray(u, dtype=np.float64)
        r = np.asarray(architecture.activation(u), dtype=np.float64)
    raise ValueError("teacher network has no weights")


@TASKS.register("teacher")
class Teacher(Task):
    """Regression onto a fixed random teacher of the circuit's own architecture (any sizes)."""

    name = "teacher"
    classification = False
    params: TeacherTask

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
