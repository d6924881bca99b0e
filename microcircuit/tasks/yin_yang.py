"""Yin-yang data set (Kriener, Göltz, Petrovici 2022; exact algorithm in design/datasets.md).

Points (x, y) in the unit square inside a disc of radius R = 0.5 centred at (0.5, 0.5), with
3 classes: 0 "yin", 1 "yang", 2 "dot" (the two small discs of radius r = 0.1 at (0.25, 0.5)
and (0.75, 0.5)). Each split comes from its own ``np.random.RandomState(seed)``: per sample,
a goal class ``randint(3)``, then ``rand(2)`` points until one inside the disc has the goal
label, so classes are balanced to about 1/3. Features are ``[x, y, 1 - x, 1 - y]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pydantic import PositiveInt

from microcircuit.params import Strict
from microcircuit.tasks.base import TASKS, Architecture, Split, Task, one_hot_targets

R_BIG = 0.5
R_SMALL = 0.1
N_CLASSES = 3
CLASS_NAMES = ("yin", "yang", "dot")
#: np.random.RandomState takes seeds in [0, 2^32)
SEED_LIMIT = 2**32


def yin_yang_label(x: float, y: float) -> int:
    """Class of a point inside the big disc: 2 dot, 1 yang, 0 yin (datasets.md labelling)."""
    d_right = float(np.hypot(x - 1.5 * R_BIG, y - R_BIG))
    d_left = float(np.hypot(x - 0.5 * R_BIG, y - R_BIG))
    if d_right < R_SMALL or d_left < R_SMALL:
        return 2
    is_one = (
        d_right <= R_SMALL
        or (R_SMALL < d_left <= 0.5 * R_BIG)
        or (y > R_BIG and d_right > 0.5 * R_BIG)
    )
    return 1 if is_one else 0


@lru_cache(maxsize=32)
def _generate(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    points = np.empty((n_samples, 2), dtype=np.float64)
    labels = np.empty(n_samples, dtype=np.int64)
    for i in range(n_samples):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * R_BIG
            if np.hypot(x - R_BIG, y - R_BIG) > R_BIG:
                continue
            if yin_yang_label(x, y) == goal:
                break
        points[i] = (x, y)
        labels[i] = goal
    points.flags.writeable = False
    labels.flags.writeable = False
    return points, labels


def generate_yin_yang(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points [n_samples, 2] (x, y; float64) and labels [n_samples] (int64) from RandomState(seed).

    Results are cached in-process; the returned arrays are fresh copies.
    """
    points, labels = _generate(int(n_samples), int(seed))
    return points.copy(), labels.copy()


def yin_yang_features(points: np.ndarray) -> np.ndarray:
    """Mirrored features [n, 4] = [x, y, 1 - x, 1 - y] from points [n, 2]."""
    return np.concatenate([points, 1.0 - points], axis=1)


class YinYangTask(Strict):
    """Yin-yang (Kriener et al. 2022), generated from one seed per split."""

    train: PositiveInt = 5000
    validation: PositiveInt = 1000
    test: PositiveInt = 1000
    seed_train: int = 42
    seed_validation: int = 41
    seed_test: int = 40
    target_low: float = 0.1
    target_high: float = 1.0


@TASKS.register("yin_yang")
class YinYang(Task):
    """Yin-yang classification: 4 inputs, 3 classes; sizes and seeds from :class:`YinYangTask`."""

    name = "yin_yang"
    Params = YinYangTask
    classification = True
    params: YinYangTask

    @property
    def n_inputs(self) -> int:
        return 4

    @property
    def n_outputs(self) -> int:
        return N_CLASSES

    def split_sizes(self) -> dict[str, int]:
        """Samples per split, as the parameters set them."""
        return {"train": self.params.train, "validation": self.params.validation, "test": self.params.test}

    def check_params(self, sizes: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """Sample counts within the limits; seeds in [0, 2^32) (np.random.RandomState's range)."""
        problems = super().check_params(sizes)
        for key in ("seed_train", "seed_validation", "seed_test"):
            value = getattr(self.params, key)
            if not 0 <= value < SEED_LIMIT:
                problems.append((key, f"seed {value} outside [0, 2^32) (the range of np.random.RandomState)"))
        return problems

    def _split(self, n_samples: int, seed: int) -> Split:
        points, labels = generate_yin_yang(n_samples, seed)
        targets = one_hot_targets(labels, N_CLASSES, self.params.target_low, self.params.target_high)
        return Split(yin_yang_features(points), targets, labels)

    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        p = self.params
        return {
            "train": self._split(p.train, p.seed_train),
            "validation": self._split(p.validation, p.seed_validation),
            "test": self._split(p.test, p.seed_test),
        }
