"""What the engine works on: the state of a batched circuit, the plan of a phase, probes and results.

Below the engine and its backends (:mod:`microcircuit.engine`, :mod:`microcircuit.fused`), so that
both use the same definitions. Tensors are [circuit, batch, neuron] unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from microcircuit.model.activations import Activation
from microcircuit.model.rules import Rule


@dataclass
class PlasticPlan:
    name: str
    source: str
    target: str
    compartment: str
    predicted_from: str  # dendrite whose attenuated potential predicts the rate (usually the target)
    rule: Rule
    attenuation: float | torch.Tensor  # c of the predicting dendrite: one value, or [circuit, 1, 1] where it differs
    phi_post: Activation
    tau_w: float
    w_max: float | None


@dataclass(frozen=True)
class PhasePlan:
    """What one phase asks of the engine, resolved once: the projections that learn (each with its
    learning rate, a float or one per circuit [circuit, 1, 1]) and the learning rate of the LE
    prospective time constants (1/ms; 0 = tau_r fixed; a float or one per circuit [circuit, 1, 1]).
    Immutable: the engine never stores phase settings on itself."""

    plastic: tuple[tuple[PlasticPlan, float | torch.Tensor], ...] = ()
    tau_r_eta: float | torch.Tensor = 0.0

    @property
    def learns(self) -> bool:
        return bool(self.plastic)

    @property
    def learns_tau_r(self) -> bool:
        """Whether the LE prospective time constants learn (in any circuit)."""
        eta = self.tau_r_eta
        return bool((eta > 0.0).any()) if isinstance(eta, torch.Tensor) else eta > 0.0


def as_phase_plan(plan: PhasePlan | list | tuple) -> PhasePlan:
    """A PhasePlan, or a sequence of (PlasticPlan, eta) pairs read as one without tau_r learning."""
    return plan if isinstance(plan, PhasePlan) else PhasePlan(tuple(plan))


@dataclass(frozen=True)
class Probe:
    """One recorded variable: ``group`` is a state group (``u``, ``u_breve``, ``rate``, ``v``) or
    ``target`` (the delayed task target of the step, NaN without one); ``key`` the population (or
    ``pop.compartment`` for ``v``); sampled after every ``every``-th step (global step count),
    reduced over neurons by ``reduce`` (``none``, ``mean``, ``norm`` = root mean square, ``mean_abs`` = mean |x|)."""

    group: str
    key: str
    every: int
    reduce: str = "none"


@dataclass
class State:
    """Everything that changes while a batched circuit runs. Tensors are [circuit, batch, neuron]
    unless stated; every tensor has the circuit as its first dimension except the delay buffers
    (second) and the shared 0-d step clock, so a state can be sliced (:meth:`select`) and joined
    (:meth:`concat`) along circuits. Checkpoints save :meth:`tensors` whole."""

    u: dict[str, torch.Tensor] = field(default_factory=dict)  # somatic potentials
    u_breve: dict[str, torch.Tensor] = field(default_factory=dict)  # potential that set the rate
    rate: dict[str, torch.Tensor] = field(default_factory=dict)  # rates (input: filtered stimulus)
    v: dict[str, torch.Tensor] = field(default_factory=dict)  # dendrites, key "pop.compartment"
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # [circuit, post, pre]
    dw_filtered: dict[str, torch.Tensor] = field(default_factory=dict)  # tau_w low-pass of dW/dt
    synaptic: dict[str, torch.Tensor] = field(default_factory=dict)  # tau_s low-pass of a projection's input
    delay_buffer: dict[str, torch.Tensor] = field(default_factory=dict)  # [delay + 1, circuit, batch, pre]
    tau_r_factor: dict[str, torch.Tensor] = field(default_factory=dict)  # LE tau_r / base, [circuit, 1, neuron]
    rule_memory: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # projection -> rule filters
    error: dict[str, torch.Tensor] = field(default_factory=dict)  # prospective networks: error input e
    bias: dict[str, torch.Tensor] = field(default_factory=dict)  # prospective networks: biases [circuit, n]
    clock: torch.Tensor | None = None  # steps taken (0-d int64), the delay buffers' write position
    target: torch.Tensor | None = None  # filtered teacher target [circuit, batch, n_out]
    last_target: torch.Tensor | None = None  # target of the previous presentation (for the delay)
    applied_target: torch.Tensor | None = None  # the (delayed) task target of the last step
    last_teacher: torch.Tensor | None = None  # 0-d bool: the teacher was on in the previous presentation

    GROUPS = ("u", "u_breve", "rate", "v", "weights", "dw_filtered", "synaptic", "delay_buffer", "tau_r_factor",
              "error", "bias")
    SINGLES = ("clock", "target", "last_target", "applied_target", "last_teacher")

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat name -> tensor mapping (for checkpoints): ``group/key``, ``rule_memory/proj/name``, singles."""
        flat = {}
        for group in self.GROUPS:
            for key, value in getattr(self, group).items():
                flat[f"{group}/{key}"] = value
        for proj, memory in self.rule_memory.items():
            for key, value in memory.items():
                flat[f"rule_memory/{proj}/{key}"] = value
        for key in self.SINGLES:
            if getattr(self, key) is not None:
                flat[key] = getattr(self, key)
        return flat

    def load_tensors(self, flat: dict[str, torch.Tensor]) -> None:
        """Replace everything by a :meth:`tensors` mapping."""
        for group in self.GROUPS:
            getattr(self, group).clear()
        self.rule_memory.clear()
        for key in self.SINGLES:
            setattr(self, key, None)
        for name, value in flat.items():
            if name.startswith("rule_memory/"):
                _, proj, key = name.split("/", 2)
                self.rule_memory.setdefault(proj, {})[key] = value
            elif "/" in name:
                group, key = name.split("/", 1)
                getattr(self, group)[key] = value
            else:
                setattr(self, name, value)

    @staticmethod
    def circuit_dim(name: str) -> int | None:
        """The circuit dimension of flat tensor ``name`` (None: shared, the clock and the teacher flag)."""
        if name in ("clock", "last_teacher"):
            return None
        return 1 if name.startswith("delay_buffer/") else 0

    def select(self, index: list[int] | torch.Tensor) -> State:
        """A new state of the circuits ``index`` (copies)."""
        flat = {}
        for name, value in self.tensors().items():
            dim = self.circuit_dim(name)
            if dim is None:
                flat[name] = value.clone()
            else:
                idx = torch.as_tensor(index, dtype=torch.int64, device=value.device)
                flat[name] = value.index_select(dim, idx)
        new = State()
        new.load_tensors(flat)
        return new

    @classmethod
    def concat(cls, states: list[State]) -> State:
        """One state holding the circuits of ``states`` in order. They must come from the same circuit
        structure, with the same batch size, the same entries and (with delay buffers) the same clock."""
        flats = [s.tensors() for s in states]
        names = list(flats[0])
        for other in flats[1:]:
            if list(other) != names:
                missing = sorted(set(names) ^ set(other))
                raise ValueError(f"states to join hold different entries: {', '.join(missing)}")
        flat = {}
        for name in names:
            dim = cls.circuit_dim(name)
            if dim is None:
                clocks = {int(f[name]) for f in flats}
                if len(clocks) > 1 and any(n.startswith("delay_buffer/") for n in names):
                    raise ValueError(f"states with delay buffers must share the step clock (got {sorted(clocks)})")
                flat[name] = flats[0][name].clone()
            else:
                flat[name] = torch.cat([f[name] for f in flats], dim=dim)
        new = cls()
        new.load_tensors(flat)
        return new


@dataclass
class Presented:
    """What :meth:`Simulator.present_many` returns.

    ``outputs``: presentation-averaged output rate potential, [presentation, circuit, batch, n_out];
    ``apical``: mean |v_apical| per presentation, [presentation, circuit, apical population];
    ``samples``: per probe, [sample, circuit, batch(, neuron)] or None when it sampled nothing;
    ``sample_steps``: per probe, the global step count after which each sample was taken.
    """

    outputs: torch.Tensor
    apical: torch.Tensor
    samples: list[torch.Tensor | None]
    sample_steps: list[list[int]]
