"""Thread policy: one intra-op thread per process unless asked otherwise.

The circuits this field runs most are small (a 9-30-3 step is a few thousand operations), where torch's
default of one thread per core only adds synchronisation, and several processes on one machine then
oversubscribe the cores. So every command runs with one thread; ``--threads N`` (or an explicit
``OMP_NUM_THREADS`` in the environment) overrides it. The count is recorded in the run's manifest.
"""

from __future__ import annotations

import os
import sys


def apply_thread_policy(requested: int | None = None) -> int:
    """Set the intra-op thread count: ``requested``, else ``OMP_NUM_THREADS``, else 1. Returns it.

    Before torch is imported this only sets ``OMP_NUM_THREADS`` (which torch reads when it starts), so
    commands that never simulate do not pay for importing torch; after, it also calls
    ``torch.set_num_threads``.
    """
    if requested is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        requested = int(env) if env.isdigit() and int(env) > 0 else 1
    if requested < 1:
        raise ValueError(f"--threads must be at least 1, got {requested}")
    # torch reads both when it starts; a stray MKL_NUM_THREADS (Dask sets it for its workers) would win
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(requested)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(requested)
    return requested
