"""Cell types: which compartments a population has and which conductances set its soma.

Torch-free so that the spec validator can use it. Conductance names follow model.md:
g_l leak, g_b basal, g_a apical, g_d interneuron dendrite (all 1/ms). The conductances of a
soma are summed here only (:meth:`CellType.dendritic_conductance`, :meth:`CellType.soma_conductance`,
:meth:`CellType.attenuation`): the spec's checks, the circuit's derived constants and the engine's
step use these, and tests/test_circuit_constants.py checks that they agree on every shipped circuit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

    @classmethod
    def dendritic_conductance(cls, conductances: Mapping[str, float]) -> float:
        """g_l + the sum of the dendrites' couplings (1/ms): the soma's conductance without nudging.

        ``conductances`` maps every name of :meth:`conductance_names` to its value (1/ms).
        """
        return conductances["g_l"] + sum(conductances[g] for g in cls.dendrites.values())

    @classmethod
    def soma_conductance(cls, conductances: Mapping[str, float], nudging: Iterable[float] = (),
                         teacher: float = 0.0) -> float:
        """g_tot = g_l + sum_c g_c + sum of the nudging g_som + the teacher's g_som (1/ms), the total
        conductance of the soma in du/dt = I - g_tot u; tau_eff = 1 / g_tot.

        Args:
            conductances: the population's conductances by name (1/ms), as for :meth:`dendritic_conductance`.
            nudging: the conductances of the projections that nudge the soma (interneurons), 1/ms.
            teacher: the teacher's conductance while it nudges the soma (the output), else 0, 1/ms.
        """
        total = cls.dendritic_conductance(conductances)
        for g in nudging:  # one at a time, in order, as the compiled engine's kernel adds them
            total += g
        return total + teacher

    @classmethod
    def attenuation(cls, conductances: Mapping[str, float], compartment: str) -> float:
        """c = g_c / (g_l + sum of dendritic g) of a dendrite at the soma (dimensionless): vhat = c v is the
        dendritic prediction. c_k = g_B / (g_l + g_B + g_A) of model.md for a basal dendrite."""
        return conductances[cls.dendrites[compartment]] / cls.dendritic_conductance(conductances)


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
