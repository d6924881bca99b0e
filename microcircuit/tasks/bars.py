"""Bars task (Haider et al. 2021, Fig. 3; model.md sec. 6).

Eight 3x3 images (flattened row-major to 9 inputs), bar pixels 1.0 and background 0.0:
three horizontal bars (rows 0, 1, 2; label 0), three vertical bars (columns 0, 1, 2;
label 1) and two diagonals (main, then anti-diagonal; label 2), in that order. As in the LE
paper, train, validation and test are the same 8 patterns. Optional uniform pixel noise in
[0, noise) is drawn from a fixed seed per split, so runs are reproducible.
"""

from __future__ import annotations

import numpy as np

from microcircuit.params import NonNegFloat, Strict
from microcircuit.tasks.base import TASKS, Architecture, Split, Task, one_hot_targets

# Fixed seeds of the pixel noise, one per split (only used when noise > 0).
NOISE_SEEDS: dict[str, int] = {"train": 1001, "validation": 1002, "test": 1003}
N_CLASSES = 3


def bars_patterns() -> tuple[np.ndarray, np.ndarray]:
    """The 8 clean patterns [8, 9] (float64, row-major 3x3) and their labels [8] (int64)."""
    images = []
    for row in range(3):
        img = np.zeros((3, 3))
        img[row, :] = 1.0
        images.append(img)
    for col in range(3):
        img = np.zeros((3, 3))
        img[:, col] = 1.0
        images.append(img)
    images.append(np.eye(3))
    images.append(np.fliplr(np.eye(3)))
    patterns = np.stack([img.reshape(9) for img in images]).astype(np.float64)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2], dtype=np.int64)
    return patterns, labels


class BarsTask(Strict):
    """3x3 bars (model.md sec. 6): 8 patterns, classes horizontal/vertical/diagonal."""

    noise: NonNegFloat = 0.0
    target_low: float = 0.1
    target_high: float = 1.0


@TASKS.register("bars")
class Bars(Task):
    """3x3 bars: 9 inputs, 3 classes (horizontal, vertical, diagonal)."""

    name = "bars"
    Params = BarsTask
    classification = True
    params: BarsTask

    @property
    def n_inputs(self) -> int:
        return 9

    @property
    def n_outputs(self) -> int:
        return N_CLASSES

    def split_sizes(self) -> dict[str, int]:
        """Every split is the 8 patterns."""
        return {name: 8 for name in NOISE_SEEDS}

    def _split(self, split_name: str) -> Split:
        patterns, labels = bars_patterns()
        if self.params.noise > 0:
            noise_rng = np.random.default_rng(NOISE_SEEDS[split_name])
            patterns = patterns + noise_rng.uniform(0.0, self.params.noise, size=patterns.shape)
        targets = one_hot_targets(labels, N_CLASSES, self.params.target_low, self.params.target_high)
        return Split(patterns, targets, labels)

    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        return {name: self._split(name) for name in NOISE_SEEDS}
