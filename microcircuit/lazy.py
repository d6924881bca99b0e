"""Lazy imports: a module that is imported when one of its attributes is first used.

The registries of :mod:`microcircuit.model` (plasticity rules, dynamics, activations) are read by the
torch-free spec layer, which takes their names and parameter models from the registered classes, while
their methods compute with torch. Those modules therefore write::

    from microcircuit.lazy import lazy_import

    torch = lazy_import("torch")

so that importing them, registering classes and reading class attributes does not load torch, and the
first ``torch.<name>`` (a method that runs) does. Nothing of such a module that runs at import time (a
decorator, a class body, a module-level statement) may use a torch attribute; annotations are not
evaluated (``from __future__ import annotations``). tests/test_spec.py checks that the spec layer
imports without torch and that the first use loads it.

:class:`importlib.util.LazyLoader` (the "Implementing lazy imports" recipe of the importlib
documentation) is not used: it must put the module into ``sys.modules`` at once, so torch would look
imported to every check of ``sys.modules`` and every other ``import torch`` would get the lazy module.
Here the module is imported the ordinary way, by :func:`importlib.import_module`, on first use.
"""

from __future__ import annotations

import importlib
import sys
import types


class LazyModule(types.ModuleType):
    """Stands for the module ``name`` until an attribute is read; then imports it and takes on its
    namespace, so that later reads are plain attribute reads (no import, no call)."""

    def __getattr__(self, attr: str):  # only for names not (yet) in this object's namespace
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy_import(name: str) -> types.ModuleType:
    """The module ``name`` if it is imported already, else a :class:`LazyModule` that imports it on first use."""
    module = sys.modules.get(name)
    return module if module is not None else LazyModule(name)
