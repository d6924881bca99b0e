"""Seeds: one master seed, one seed per independent circuit, one derived seed per purpose.

Circuit i of a run with master seed m has seed m + i, so circuit i of a batched run
is the same circuit as a single run with master seed m + i. Purposes (weights,
stimulus order, noise, mismatch) get independent streams derived from that seed.
"""

from __future__ import annotations

import zlib

import numpy as np

PURPOSES = ("weights", "order", "noise", "mismatch")


def circuit_seeds(master: int, n: int) -> list[int]:
    """The seeds of ``n`` independent circuits."""
    return [master + i for i in range(n)]


def derive_seed(seed: int, purpose: str) -> int:
    """A 32-bit seed for ``purpose`` derived from a circuit seed (stable across versions)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(1)[0])


def derived_seeds(seeds: list[int]) -> dict[str, list[int]]:
    """All derived seeds, by purpose, for the manifest."""
    return {purpose: [derive_seed(s, purpose) for s in seeds] for purpose in PURPOSES}


def rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose))
