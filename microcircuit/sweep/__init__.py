"""Sweeps: many runs of one circuit spec, batched where the engine allows, on Dask, into one table.

Above the experiment and run-directory layers, below the command line; nothing below imports it.

Example::

    from microcircuit.sweep import execute, load_sweep, plan

    p = plan(load_sweep("circuits/sweeps/tpres_bars.yaml", axes=["t_pres=10,100"], seeds=2))
    table = execute(p, "sweeps/tpres_bars")     # pandas DataFrame of results.csv

See :mod:`microcircuit.sweep.spec` (the file format), :mod:`microcircuit.sweep.grouping` (what batches),
:mod:`microcircuit.sweep.worker` (a simulation) and :mod:`microcircuit.sweep.runner` (executors, tables).
Names are imported on first use, so that the command line's parser does not start torch.
"""

from __future__ import annotations

import importlib

_NAMES = {"SCHEMA": "spec", "SweepFile": "spec", "load_sweep": "spec", "SweepPlan": "runner", "collect": "runner",
          "describe": "runner", "execute": "runner", "plan": "runner", "plan_runs": "runner",
          "status_counts": "runner", "Run": "spec"}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"microcircuit.sweep.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'microcircuit.sweep' has no attribute '{name}'")
