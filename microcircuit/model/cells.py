"""Cell types: which compartments a population has and which conductances set its soma.

Torch-free so that the spec validator can use it. Conductance names follow model.md:
g_l leak, g_b basal, g_a apical, g_d interneuron dendrite (all 1/ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from microcircuit.registry import Registry

CELL_TYPES: Registry[type[CellType]] = Registry("cell type")


@dataclass(frozen=True)
class CellType:
    """A cell type: a soma (leaky integrator) plus dendrites coupled to it.

    ``dendrites`` maps a dendritic compartment name to the conductance that couples
    it to the soma. Dendritic potentials are instantaneous weighted sums of rates.
    """

    name: ClassVar[str]
    dendrites: ClassVar[dict[str, str]] = {}
    has_soma: ClassVar[bool] = True

    @classmethod
    def compartments(cls) -> list[str]:
        return (["soma"] if cls.has_soma else []) + list(cls.dendrites)

    @classmethod
    def conductance_names(cls) -> list[str]:
        return (["g_l"] if cls.has_soma else []) + list(cls.dendrites.values())

    @classmethod
    def variables(cls, compartment: str) -> list[str]:
        """Recordable variables of a compartment."""
        if compartment == "soma":
            return ["u", "u_breve", "rate"] if cls.has_soma else ["rate"]
        return ["v"]


@CELL_TYPES.register("input")
class InputCell(CellType):
    """A rate source: its rate is the (low-pass filtered) stimulus; no dynamics."""

    name = "input"
    has_soma = False

    @classmethod
    def compartments(cls) -> list[str]:
        return ["soma"]


@CELL_TYPES.register("pyramidal")
class PyramidalCell(CellType):
    """Hidden-area pyramidal neuron: soma, basal (bottom-up) and apical (top-down) dendrites."""

    name = "pyramidal"
    dendrites = {"basal": "g_b", "apical": "g_a"}


@CELL_TYPES.register("output_pyramidal")
class OutputPyramidalCell(CellType):
    """Output-area pyramidal neuron: soma and basal dendrite; nudged by the teacher."""

    name = "output_pyramidal"
    dendrites = {"basal": "g_b"}


@CELL_TYPES.register("interneuron")
class InterneuronCell(CellType):
    """SST-like interneuron: soma and one dendrite; nudged by the pyramidal area above."""

    name = "interneuron"
    dendrites = {"dendrite": "g_d"}


@CELL_TYPES.register("prospective")
class ProspectiveCell(CellType):
    """A neuron of a prospective (Latent Equilibrium) network (model.md sec. 10): one soma with time
    constant tau_m, driven by its basal input W r and by the error e sent down from the area above (or
    by the teacher at the output). It has no conductances; it cannot be part of a microcircuit."""

    name = "prospective"

    @classmethod
    def compartments(cls) -> list[str]:
        return ["soma", "basal"]

    @classmethod
    def conductance_names(cls) -> list[str]:
        return []

    @classmethod
    def variables(cls, compartment: str) -> list[str]:
        return ["u", "u_breve", "rate", "error"] if compartment == "soma" else ["v"]
