"""The simulation engine: forward-Euler time steps of a batched microcircuit.

Shapes: every state tensor is [circuit, batch, neuron]. ``circuit`` indexes independent
circuits (seeds, sweep points) with their own weights [circuit, post, pre]; ``batch``
indexes stimuli presented in parallel to one circuit, whose plasticity is averaged
(model.md sec. 8). Time in ms, conductances in 1/ms.

Everything that changes while a circuit runs lives in one :class:`State` (sliceable and
joinable along circuits); what a phase asks for arrives as an immutable :class:`PhasePlan`.
:meth:`Simulator.step` is the readable eager reference path; :meth:`Simulator.present_many`
runs whole presentations on the engine chosen at construction (``eager``, or ``compiled``:
the fused kernel of :mod:`microcircuit.fused`, tested against the eager path).

One step (model.md sec. 1-3), for every non-input population in update order:

    v_c      = sum_proj W r_pre                          dendritic potentials (basal, apical, dendrite)
    I        = sum_c g_c v_c + sum_nudge g_som u_src (+ g_som u_tgt at the output, teacher on)
               (u_src is the source's rate potential: u_breve in LE, u in orig; model.md writes
               u^P_{k+1}, and in LE every transmitted signal is prospective)
    g_tot    = g_l + sum_c g_c + sum_nudge g_som (+ g_som at the output, teacher on)   (CellType.soma_conductance)
    du/dt    = I - g_tot u                               (capacitance 1)
    u'       = u + dt du/dt + sigma sqrt(dt) xi          forward Euler(-Maruyama)
    r        = phi(rate potential)                       orig: u'; LE: u_breve = u + tau_r du/dt

then every plastic projection: W += dt eta dW/dt (low-pass tau_w, clipped at w_max).

Schedules (model.md sec. 7): ``reference`` - every population reads the rates and
potentials of the previous step (one dt of delay per area); ``propagating`` - populations
are updated bottom-up and read the newest values, so a stimulus crosses all areas in one step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from microcircuit.circuit import Circuit, tagged
from microcircuit.fused import choose_engine, present_fused
from microcircuit.model.activations import ACTIVATIONS, Activation
from microcircuit.model.dynamics import Dynamics, LatentEquilibrium, make_dynamics
from microcircuit.model.rules import RULES
from microcircuit.prospective.layers import operator_of
from microcircuit.seeds import derive_seed, rng
from microcircuit.spec.conventions import resolve_conventions
from microcircuit.state import PhasePlan, PlasticPlan, Presented, Probe, State, as_phase_plan

__all__ = ["Diverged", "PhasePlan", "PlasticPlan", "Presented", "Probe", "Simulator", "State", "as_phase_plan"]

#: |u| above this bound (dimensionless potential) counts as runaway.
POTENTIAL_BOUND = 1e4
#: |w| above this bound counts as runaway (w_max, where set, is far below).
WEIGHT_BOUND = 1e4


class Diverged(RuntimeError):
    """The simulation produced NaN/Inf or runaway values; ``diagnosis`` says where."""

    def __init__(self, diagnosis: str):
        super().__init__(diagnosis)
        self.diagnosis = diagnosis


#: a conductance in 1/ms: one value for all circuits, or [circuit, 1, 1] where they differ
Conductance = float | torch.Tensor


@dataclass
class DendritePlan:
    compartment: str
    g: Conductance  # coupling conductance g_c, 1/ms
    attenuation: Conductance  # c = g_c / (g_l + sum of dendritic g)
    projections: list[str]


@dataclass
class SomaPlan:
    """Everything the step needs about one non-input population, precomputed."""

    name: str
    size: int
    # The conductances, 1/ms: one value for all circuits, or [circuit, 1, 1] where the circuits of one
    # simulation differ in them (a sweep over g_som or over the leak and dendritic conductances)
    g_dendritic: Conductance  # g_l + sum of dendritic g
    dendrites: list[DendritePlan]
    nudges: list[tuple[str, Conductance]]  # (source population, g_som)
    teacher_g: Conductance  # g_som of the teacher (output only; 0 elsewhere)
    g_tot: Conductance  # g_l + sum of dendritic g + sum of nudging g_som (teacher off)
    g_tot_teacher: Conductance  # the same with the teacher's g_som (= g_tot where the teacher does not nudge)
    taught: bool  # whether the teacher nudges this soma (in any circuit)
    phi: Activation
    dynamics: Dynamics
    noise: tuple[float, ...]  # per circuit: sigma of the somatic noise, potential / sqrt(ms)
    rate_noise: tuple[float, ...]  # per circuit: standard deviation of the rate-potential noise per step
    #: [circuit, 1, 1] bool: the orig circuits of an LE soma batched with orig ones (their rate potential
    #: is u(t + dt)); None where every circuit has ``dynamics``
    orig_circuits: torch.Tensor | None = None


def add_scaled_(x: torch.Tensor, y: torch.Tensor, g: Conductance) -> torch.Tensor:
    """x += g y in place; g a conductance (1/ms), one value or [circuit, 1, 1]."""
    return x.add_(y, alpha=g) if not isinstance(g, torch.Tensor) else x.addcmul_(y, g)


def minus_scaled(x: torch.Tensor, y: torch.Tensor, g: Conductance) -> torch.Tensor:
    """x - g y; g a conductance (1/ms), one value or [circuit, 1, 1]."""
    return torch.sub(x, y, alpha=g) if not isinstance(g, torch.Tensor) else torch.addcmul(x, y, g, value=-1.0)


def check_per_circuit(dynamics: dict[str, list[str]], noise: dict[str, list[float]],
                      tau_r: dict[str, list[float | None]], n_circuits: int) -> None:
    """Raise ValueError unless each per-circuit value list has one entry per circuit: dynamics names (orig or
    latent_equilibrium where they differ), noise levels >= 0, fixed tau_r > 0 ms or None (a simulator's
    ``*_per_circuit`` arguments)."""
    for key, names in dynamics.items():
        if len(names) != n_circuits or (len(set(names)) > 1 and not set(names) <= {"orig", "latent_equilibrium"}):
            raise ValueError(f"dynamics_per_circuit['{key}']: one name per circuit ({n_circuits}), "
                             f"orig or latent_equilibrium where they differ; got {names}")
    for key, levels in noise.items():
        if len(levels) != n_circuits or min(levels) < 0.0:
            raise ValueError(f"noise_per_circuit['{key}']: one level >= 0 per circuit ({n_circuits}); got {levels}")
    for key, values in tau_r.items():
        if len(values) != n_circuits or any(v is not None and not v > 0.0 for v in values):
            raise ValueError(f"tau_r_per_circuit['{key}']: one tau_r > 0 ms (or None) per circuit "
                             f"({n_circuits}); got {values}")


def circuit_noise(generators: list[torch.Generator], levels: tuple[float, ...], scale: float,
                  shape: tuple[int, int, int]) -> torch.Tensor | None:
    """White noise [step, circuit, batch, neuron] float64 for ``shape`` = (steps, batch, neuron): circuit c's
    standard normal draws from its own generator times ``levels[c] * scale``; a circuit whose level is 0 draws
    nothing (its entries are 0), so that its stream stays that of the circuit alone. None where every level is 0."""
    if max(levels) == 0.0:
        return None
    return torch.stack([
        level * scale * torch.randn(*shape, generator=g, dtype=torch.float64) if level > 0.0
        else torch.zeros(*shape, dtype=torch.float64)
        for g, level in zip(generators, levels, strict=True)
    ], dim=1)


@dataclass
class SynapsePlan:
    """What happens to a projection's presynaptic rate before the weights: delay, then low-pass."""

    delays: torch.Tensor | None  # [circuit] int64 steps, None = no delay
    length: int  # ring buffer length, max delay + 1
    tau_s: float  # ms, 0 = none


class Simulator:
    """A batched circuit that can be stepped.

    The simulator holds constants (the circuit, per-population plans, noise streams) and one
    :class:`State`; phase settings arrive with every call as a :class:`PhasePlan`.

    Args:
        circuit: the assembled circuit.
        seeds: one seed per independent circuit.
        n_batch: stimuli presented in parallel to each circuit.
        dtype, device: torch dtype and device of every tensor.
        engine: ``eager`` (the readable reference path, step by step in torch), ``compiled`` (fused
            presentations, :mod:`microcircuit.fused`) or ``auto`` (compiled where it is supported and
            pays). :attr:`engine` and :attr:`engine_reason` say what was chosen and why.
        dynamics_per_circuit: population -> the dynamics of each circuit, ``orig`` or
            ``latent_equilibrium`` (one name per seed), where the circuits of one simulation differ in it
            (a sweep batches LE and orig runs; model.md sec. 2): each circuit's soma takes its own rate
            potential and its output its own teacher delay. An LE population's parameters are the
            circuit's; default: the circuit's dynamics for every circuit.
        noise_per_circuit: the noise level of each circuit where they differ, keyed as :meth:`draw_noise`'s
            result: ``<population>`` the somatic sigma, ``<population>.rate`` the rate noise; each circuit
            draws from its own stream only where its level is above 0, as it does alone.
        tau_r_per_circuit: LE population -> each circuit's fixed base tau_r in ms (None: tau_eff), where the
            circuits of one simulation differ in it (a sweep batches LE runs with different ``tau_r``).
        nudging_per_circuit: each circuit's somatic nudging conductance g_som in 1/ms, keyed by the name of
            the projection that nudges (``target: <population>.soma``) or ``teacher`` for the teacher's,
            where the circuits of one simulation differ in them (a sweep over g_som).
        delays_per_circuit: each circuit's transmission delay of a weighted projection as (steps, jitter) in
            steps of dt, keyed by the projection's name, where the circuits of one simulation differ in them (a
            sweep over ``delay``); each circuit draws its jitter from its own stream, as it does alone.
        precision_per_circuit: each circuit's weight precision of a weighted projection (a ``PrecisionSpec``
            or None for float weights), keyed by the projection's name, where the circuits of one simulation
            differ in it (a sweep over ``precision``).
        conductances_per_circuit: population -> each circuit's leak and dendritic conductances (1/ms, the
            population's ``conductances`` mapping: g_l, g_b, g_a or g_l, g_d), where the circuits of one
            simulation differ in them (a sweep over g_a): each soma relaxes at its circuit's g_tot and each
            plasticity rule predicts with its circuit's attenuation c.
        initial_weights: each circuit's initial weights by projection, [circuit, post, pre] (default: the
            circuit's :meth:`~microcircuit.circuit.Circuit.init_weights` for ``seeds``); a sweep's batch passes
            each run's own, whose self-predicting weights follow that run's conductances. Rounded to the
            precision like drawn weights.
    """

    def __init__(
        self,
        circuit: Circuit,
        seeds: list[int],
        n_batch: int = 1,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        engine: str = "eager",
        dynamics_per_circuit: dict[str, list[str]] | None = None,
        noise_per_circuit: dict[str, list[float]] | None = None,
        tau_r_per_circuit: dict[str, list[float | None]] | None = None,
        nudging_per_circuit: dict[str, list[float]] | None = None,
        delays_per_circuit: dict[str, list[tuple[int, int]]] | None = None,
        precision_per_circuit: dict[str, list] | None = None,
        conductances_per_circuit: dict[str, list[dict[str, float]]] | None = None,
        initial_weights: dict[str, torch.Tensor] | None = None,
    ):
        self.circuit = circuit
        self.seeds = list(seeds)
        self.n_circuits = len(seeds)
        self.n_batch = n_batch
        self.dtype = dtype
        self.device = torch.device(device)
        self.dt = float(circuit.spec.dt)
        self.propagating = circuit.spec.schedule == "propagating"
        self.input = circuit.input_population
        self.output = circuit.output_population
        self.input_tau_0 = circuit.populations[self.input].tau_0
        teacher = circuit.spec.inputs.teacher
        self.teacher_tau_0 = float(teacher.tau_0)
        self.dynamics_per_circuit = self._dynamics_per_circuit(dynamics_per_circuit or {})
        self.noise_per_circuit = dict(noise_per_circuit or {})
        self.tau_r_per_circuit = dict(tau_r_per_circuit or {})
        check_per_circuit(self.dynamics_per_circuit, self.noise_per_circuit, self.tau_r_per_circuit, self.n_circuits)
        self.nudging_per_circuit = dict(nudging_per_circuit or {})
        nudging = {q.name for q in circuit.projections.values() if q.compartment == "soma"} | {"teacher"}
        for key, values in self.nudging_per_circuit.items():
            if key not in nudging or len(values) != self.n_circuits or min(values) < 0.0:
                raise ValueError(f"nudging_per_circuit['{key}']: one g_som >= 0 per circuit ({self.n_circuits}) "
                                 f"of a nudging projection or the teacher ({', '.join(sorted(nudging))}); got {values}")
        self.delays_per_circuit = dict(delays_per_circuit or {})
        weighted = {q.name for q in circuit.projections.values() if q.compartment != "soma"}
        for key, values in self.delays_per_circuit.items():
            if (key not in weighted or len(values) != self.n_circuits
                    or any(int(s) < 0 or int(j) < 0 for s, j in values)):
                raise ValueError(f"delays_per_circuit['{key}']: one (steps >= 0, jitter >= 0) per circuit "
                                 f"({self.n_circuits}) of a weighted projection; got {values}")
        #: population -> each circuit's leak and dendritic conductances (1/ms), for every population with a soma
        self.conductances = self._conductances_per_circuit(conductances_per_circuit or {})
        self.somas = [self._soma_plan(name) for name in circuit.update_order()]
        self.noise_generators = [
            torch.Generator().manual_seed(derive_seed(s, "noise")) for s in self.seeds
        ]
        self.circuit_index = torch.arange(self.n_circuits, device=self.device)
        self.synapses = self._synapse_plans()
        #: the convolutional projections' operators (model.md sec. 10); the others are dense products
        self.operators = {name: operator_of(circuit, name)[0] for name, q in circuit.projections.items()
                          if q.conv is not None}
        self.conventions = resolve_conventions(circuit.spec)
        #: whether the output soma is LE (its rate potential is the prospective u_breve)
        self.output_is_le = tagged(circuit.populations[circuit.output_population].dynamics)[0] == "latent_equilibrium"
        #: with the teacher off, the output relaxes at g_l + g_B + g_som (reference convention D3)
        self.relax_with_teacher = self.conventions.teacher_off_relaxation == "with_teacher"
        self.target_delays = self._target_delays(teacher.delay)
        self.target_delay = int(self.target_delays.max())  # the longest, steps
        self._uniform_target_delay = bool((self.target_delays == self.target_delay).all())
        self.state = State()
        self.state.weights = (circuit.init_weights(self.seeds, dtype, self.device) if initial_weights is None else
                              self._given_weights(initial_weights))
        for key, values in (precision_per_circuit or {}).items():
            if key not in weighted or len(values) != self.n_circuits:
                raise ValueError(f"precision_per_circuit['{key}']: one precision (or None) per circuit "
                                 f"({self.n_circuits}) of a weighted projection; got {values}")
        #: projection -> each circuit's precision (None: float weights), for the projections that have one
        precisions = {n: list((precision_per_circuit or {}).get(n, [q.precision] * self.n_circuits))
                      for n, q in circuit.projections.items()}
        self.quantized = {n: values for n, values in precisions.items() if any(v is not None for v in values)}
        self.rounding_generators = [
            torch.Generator().manual_seed(derive_seed(s, "rounding")) for s in self.seeds
        ]
        for name in self.quantized:
            self.quantize_(name, self.state.weights[name])
        for soma in self.somas:
            factor = soma.dynamics.initial_factor()
            if factor is not None:
                self.state.tau_r_factor[soma.name] = factor.to(self.device, self.dtype)
        self.reset_neurons()
        self.engine, self.engine_reason = choose_engine(self, engine)
        self.fused_layout = None  # the compiled engine's index tables, built on its first call

    # ------------------------------------------------------------------ set-up
    def _dynamics_per_circuit(self, given: dict[str, list[str]]) -> dict[str, list[str]]:
        """Every soma's dynamics name per circuit: ``given``'s, else the circuit's for all circuits."""
        out = {}
        for name, p in self.circuit.populations.items():
            if not p.cell.has_soma or name == self.input:
                continue
            out[name] = list(given.get(name, [tagged(p.dynamics)[0]] * self.n_circuits))
        return out

    def _conductances_per_circuit(self, given: dict[str, list[dict[str, float]]]) -> dict[str, list[dict[str, float]]]:
        """Every soma's conductances per circuit: ``given``'s, else the circuit's for all circuits."""
        out = {}
        for name, p in self.circuit.populations.items():
            if not p.cell.has_soma:
                continue
            values = [dict(g) for g in given.get(name, [p.conductances] * self.n_circuits)]
            if (len(values) != self.n_circuits or any(set(g) != set(p.conductances) for g in values)
                    or any(min(g.values(), default=0.0) < 0.0 for g in values)):
                raise ValueError(f"conductances_per_circuit['{name}']: one mapping of {', '.join(p.conductances)} "
                                 f"(each >= 0, 1/ms) per circuit ({self.n_circuits}); got {values}")
            out[name] = values
        unknown = set(given) - set(out)
        if unknown:
            raise ValueError(f"conductances_per_circuit: {', '.join(sorted(unknown))} is not a population with a soma")
        return out

    def _given_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``initial_weights``, checked against the circuit's projections and shapes, as this simulator's tensors."""
        expected = {n: (self.n_circuits, *self.circuit.weight_shape(n))
                    for n, q in self.circuit.projections.items() if q.kind == "weighted"}
        shapes = {n: tuple(w.shape) for n, w in weights.items()}
        if shapes != expected:
            raise ValueError(f"initial_weights: expected the shapes {expected}, got {shapes}")
        return {n: w.to(self.device, self.dtype).clone() for n, w in weights.items()}

    def attenuation(self, population: str, compartment: str) -> Conductance:
        """c = g_c / (g_l + sum of dendritic g) of a dendrite at the soma (model.md sec. 1), per circuit: one
        value, or [circuit, 1, 1] where the circuits' conductances differ."""
        cell = self.circuit.populations[population].cell
        return self._conductance([cell.attenuation(g, compartment) for g in self.conductances[population]])

    def _target_delays(self, delay) -> torch.Tensor:
        """Steps by which each circuit's teacher target lags its stimulus, [circuit] int64.

        ``auto``: the steps the stimulus needs to reach the output - one per area after the first
        under the reference schedule when the output is LE (model.md sec. 7), plus the transmission
        delays of the bottom-up chain (drawn per circuit); 0 for an ``orig`` output, which lags anyway.
        """
        if delay != "auto":
            return torch.full((self.n_circuits,), int(delay), dtype=torch.int64, device=self.device)
        total = torch.zeros(self.n_circuits, dtype=torch.int64, device=self.device)
        if self.conventions.teacher_delay == "one_step":  # the reference program's (model.md sec. 9)
            total += 1
        elif not self.propagating:
            total += self.circuit.depth - 1
        for q in self.circuit.forward_chain:
            plan = self.synapses.get(q.name)
            if plan is not None and plan.delays is not None:
                total += plan.delays
        le_output = torch.tensor([d == "latent_equilibrium" for d in self.dynamics_per_circuit[self.output]],
                                 device=self.device)
        return torch.where(le_output, total, torch.zeros_like(total))

    def _soma_plan(self, name: str) -> SomaPlan:
        c = self.circuit
        p = c.populations[name]
        own = self.conductances[name]  # each circuit's g_l, g_b, ...
        dendrites = [
            DendritePlan(comp, self._conductance([g_c[g] for g_c in own]), self.attenuation(name, comp),
                         [q.name for q in c.into(name, comp)])
            for comp, g in p.cell.dendrites.items()
        ]
        nudging = [self.nudging_per_circuit.get(q.name, [q.conductance] * self.n_circuits)
                   for q in c.into(name, "soma")]
        teacher = (self.nudging_per_circuit.get("teacher", [c.teacher_conductance] * self.n_circuits)
                   if name == self.output else [0.0] * self.n_circuits)
        # g_tot per circuit, teacher off and on, each summed as the circuit alone sums it
        g_tot = [p.cell.soma_conductance(own[k], [g[k] for g in nudging], 0.0) for k in range(self.n_circuits)]
        g_tot_teacher = [p.cell.soma_conductance(own[k], [g[k] for g in nudging], teacher[k])
                         for k in range(self.n_circuits)]
        nudges = [(q.source, self._conductance(g)) for q, g in zip(c.into(name, "soma"), nudging, strict=True)]
        mismatch_rngs = [rng(s, f"mismatch/{name}") for s in self.seeds]
        names = self.dynamics_per_circuit[name]
        dynamics, orig_circuits = p.dynamics, None
        if len(set(names)) > 1:  # LE and orig circuits: the LE equations, orig's rate potential where it applies
            dynamics = p.dynamics if tagged(p.dynamics)[0] == "latent_equilibrium" else "latent_equilibrium"
            orig_circuits = torch.tensor([n == "orig" for n in names], device=self.device).view(-1, 1, 1)
        elif names[0] != tagged(p.dynamics)[0]:
            dynamics = names[0]
        soma_dynamics = make_dynamics(dynamics, p.size, mismatch_rngs)
        tau_r = self.tau_r_per_circuit.get(name)
        if tau_r is not None and isinstance(soma_dynamics, LatentEquilibrium):
            if len(set(tau_r)) == 1:
                soma_dynamics.tau_r = tau_r[0]
            else:
                soma_dynamics.tau_r_circuits = torch.tensor(
                    [math.nan if v is None else v for v in tau_r], dtype=self.dtype, device=self.device).view(-1, 1, 1)
        return SomaPlan(
            name=name,
            size=p.size,
            g_dendritic=self._conductance([p.cell.dendritic_conductance(g_c) for g_c in own]),
            dendrites=dendrites,
            nudges=nudges,
            teacher_g=self._conductance(teacher),
            g_tot=self._conductance(g_tot),
            g_tot_teacher=self._conductance(g_tot_teacher),
            taught=max(teacher) > 0.0,
            phi=ACTIVATIONS.get(p.activation),
            dynamics=soma_dynamics,
            noise=tuple(self.noise_per_circuit.get(name, [p.noise] * self.n_circuits)),
            rate_noise=tuple(self.noise_per_circuit.get(f"{name}.rate", [p.rate_noise] * self.n_circuits)),
            orig_circuits=orig_circuits,
        )

    def _conductance(self, values: list[float]) -> Conductance:
        """One conductance per circuit (1/ms) as the step takes it: a float where all circuits have the same,
        else [circuit, 1, 1]."""
        if len(set(values)) == 1:
            return float(values[0])
        return torch.tensor(values, dtype=self.dtype, device=self.device).view(-1, 1, 1)

    def _synapse_plans(self) -> dict[str, SynapsePlan]:
        """Delay and synaptic filter of every weighted projection that has one."""
        plans = {}
        for q in self.circuit.projections.values():
            delays = None
            own = self.delays_per_circuit.get(q.name, [(q.delay_steps, q.delay_jitter)] * self.n_circuits)
            if any(steps or jitter for steps, jitter in own):
                draws = [max(0, int(steps) + (int(rng(s, f"delay/{q.name}").integers(-jitter, jitter + 1))
                                              if jitter else 0))
                         for s, (steps, jitter) in zip(self.seeds, own, strict=True)]
                delays = torch.as_tensor(draws, dtype=torch.int64, device=self.device)
            if delays is not None or q.tau_s > 0.0:
                length = int(delays.max()) + 1 if delays is not None else 1
                plans[q.name] = SynapsePlan(delays, length, q.tau_s)
        return plans

    def load_state(self, flat: dict[str, torch.Tensor]) -> None:
        """Replace the whole state by a checkpoint's :meth:`State.tensors` mapping."""
        self.state.load_tensors(flat)
        self.n_batch = next(iter(self.state.u.values())).shape[1]

    @property
    def has_noise(self) -> bool:
        return any(max(s.noise) > 0.0 or max(s.rate_noise) > 0.0 for s in self.somas)

    def plastic_plan(self, learning: dict[str, float | torch.Tensor],
                     tau_r_eta: float | torch.Tensor = 0.0) -> PhasePlan:
        """The :class:`PhasePlan` of a phase in which the projections ``learning`` learn.

        ``learning`` maps projection name -> eta in 1/ms: a float, or a tensor [circuit] with one
        learning rate per circuit (sweeps over learning rates or presentation times in one batch).
        ``tau_r_eta``: learning rate of the LE prospective time constants (1/ms, 0 = fixed): a float, or a
        tensor [circuit] with one per circuit.
        """
        plans = []
        for name, eta in learning.items():
            q = self.circuit.projections[name]
            rule = RULES.get(q.rule)(q.rule_params)
            if isinstance(eta, torch.Tensor):
                eta = eta.to(self.device, self.dtype).reshape(self.n_circuits, 1, 1)
            if not rule.learns or (not isinstance(eta, torch.Tensor) and eta == 0.0):
                continue
            post = self.circuit.populations[q.target]
            predicted_from = rule.prediction_from or q.compartment
            plan = PlasticPlan(
                name=name,
                source=q.source,
                target=q.target,
                compartment=q.compartment,
                predicted_from=predicted_from,
                rule=rule,
                attenuation=self.attenuation(q.target, predicted_from),
                phi_post=ACTIVATIONS.get(post.activation),
                tau_w=q.tau_w,
                w_max=q.w_max,
            )
            plans.append((plan, eta if isinstance(eta, torch.Tensor) else float(eta)))
        if isinstance(tau_r_eta, torch.Tensor):
            tau_r_eta = tau_r_eta.to(self.device, self.dtype).reshape(self.n_circuits, 1, 1)
        return PhasePlan(tuple(plans), tau_r_eta if isinstance(tau_r_eta, torch.Tensor) else float(tau_r_eta))

    def zeros(self, size: int) -> torch.Tensor:
        return torch.zeros(self.n_circuits, self.n_batch, size, dtype=self.dtype, device=self.device)

    def reset_neurons(self, n_batch: int | None = None) -> None:
        """Set potentials, rates, filters and rule filters to rest (weights and tau_r factors are kept)."""
        if n_batch is not None:
            self.n_batch = n_batch
        st = self.state
        for p in self.circuit.populations.values():
            st.rate[p.name] = self.zeros(p.size)
            if p.cell.has_soma:
                st.rate[p.name] = ACTIVATIONS.get(p.activation)(st.rate[p.name])  # at rest, u = 0
                st.u[p.name] = self.zeros(p.size)
                st.u_breve[p.name] = self.zeros(p.size)
                for comp in p.cell.dendrites:
                    st.v[f"{p.name}.{comp}"] = self.zeros(p.size)
        st.target = None
        st.last_target = None
        st.applied_target = None
        st.last_teacher = None
        st.dw_filtered.clear()
        st.rule_memory.clear()
        st.clock = torch.zeros((), dtype=torch.int64)
        for name, plan in self.synapses.items():
            rest = st.rate[self.circuit.projections[name].source]
            if plan.delays is not None:
                st.delay_buffer[name] = rest.expand(plan.length, *rest.shape).clone()
            if plan.tau_s > 0.0:
                st.synaptic[name] = rest.clone()

    def start_phase(self) -> None:
        """A new phase begins: the plasticity rules' own filters start afresh."""
        self.state.rule_memory.clear()

    def quantize_(self, name: str, weights: torch.Tensor) -> None:
        """Round projection ``name``'s weights [circuit, post, pre] in place, each circuit to its precision."""
        precisions = self.quantized[name]
        uniform = None
        if any(p is not None and p.rounding == "stochastic" for p in precisions):
            uniform = torch.stack([torch.rand(weights.shape[1:], generator=g, dtype=torch.float64)
                                   for g in self.rounding_generators]).to(weights.device, weights.dtype)
        if all(p == precisions[0] for p in precisions):
            quantize_(weights, precisions[0], uniform)
            return
        for c, precision in enumerate(precisions):
            if precision is not None:
                own = uniform[c:c + 1] if precision.rounding == "stochastic" else None
                quantize_(weights[c:c + 1], precision, own)

    # ------------------------------------------------------------------ stepping
    def draw_noise(self, steps: int) -> dict[str, torch.Tensor]:
        """Noise for ``steps`` steps, [step, circuit, batch, neuron], one stream per circuit: somatic
        sigma sqrt(dt) xi under the population's name, rate-potential noise under ``<name>.rate``. A circuit
        whose level is 0 draws nothing (its entries are 0), so that its stream stays that of the circuit alone."""
        noise = {}
        for soma in self.somas:
            for key, levels, scale in ((soma.name, soma.noise, math.sqrt(self.dt)),
                                       (f"{soma.name}.rate", soma.rate_noise, 1.0)):
                xi = circuit_noise(self.noise_generators, levels, scale, (steps, self.n_batch, soma.size))
                if xi is not None:
                    noise[key] = xi.to(self.device, self.dtype)
        return noise

    def step(
        self,
        stimulus: torch.Tensor,
        target: torch.Tensor | None,
        plan: PhasePlan | list = (),
        noise: dict[str, torch.Tensor] | None = None,
        teacher_on: torch.Tensor | None = None,
    ) -> None:
        """Advance every population by one dt (the eager reference path).

        Args:
            stimulus: input rates [circuit, batch, n_in] for this step.
            target: teacher target potential [circuit, batch, n_out], or None (teacher off).
            plan: the phase's :class:`PhasePlan` (or a list of (PlasticPlan, eta) pairs).
            noise: this step's noise per population, [circuit, batch, neuron].
            teacher_on: [circuit] bool, the circuits the ``target`` nudges where that is not all of them
                (the delayed teacher switch with per-circuit target delays); None: all. A circuit left out
                integrates as with the teacher off, its teacher filter kept (set to 0 if no circuit's was set).
        """
        plan = as_phase_plan(plan)
        st, dt = self.state, self.dt
        if self.input_tau_0 > 0.0:
            st.rate[self.input] = st.rate[self.input] + dt / self.input_tau_0 * (stimulus - st.rate[self.input])
        else:
            st.rate[self.input] = stimulus
        on = None if teacher_on is None or target is None else teacher_on.view(-1, 1, 1)
        if target is not None and self.teacher_tau_0 > 0.0:
            filtered = target if st.target is None else st.target + dt / self.teacher_tau_0 * (target - st.target)
            if on is not None:  # the circuits the teacher does not nudge keep their filter
                filtered = torch.where(on, filtered, torch.zeros_like(target) if st.target is None else st.target)
            st.target = filtered
            target = st.target
        rates, pots, sent = st.rate, st.u, st.u_breve
        read_rate, read_sent = (rates, sent) if self.propagating else (dict(rates), dict(sent))
        learns_tau_r = plan.learns_tau_r
        weights = st.weights
        carried: dict[str, torch.Tensor] = {}
        for soma in self.somas:
            g_tot = soma.g_tot
            current = None
            for d in soma.dendrites:
                v = None
                for proj in d.projections:
                    r_pre = read_rate[self.circuit.projections[proj].source]
                    if proj in self.synapses:
                        r_pre = self.presynaptic(proj, r_pre)
                    carried[proj] = r_pre
                    if proj in self.operators:  # a (transposed) convolution with a shared kernel
                        term = self.operators[proj].forward(weights[proj], r_pre)
                        v = term if v is None else v + term
                        continue
                    w_t = weights[proj].transpose(1, 2)
                    v = torch.bmm(r_pre, w_t) if v is None else torch.baddbmm(v, r_pre, w_t)
                if v is None:
                    v = self.zeros(soma.size)
                st.v[f"{soma.name}.{d.compartment}"] = v
                current = torch.mul(v, d.g) if current is None else add_scaled_(current, v, d.g)
            for source, g in soma.nudges:
                current = add_scaled_(current, read_sent[source], g)
            g_rate = None
            u = pots[soma.name]
            taught = soma.taught
            if taught and target is not None and on is not None:  # the teacher nudges some circuits
                current, du, g_tot, g_rate = self._partly_nudged(soma, current, u, target, on)
            else:
                if taught and target is not None:
                    current = add_scaled_(current, target, soma.teacher_g)
                    g_tot = soma.g_tot_teacher
                elif taught and self.relax_with_teacher:
                    g_rate = soma.g_tot_teacher  # teacher off, reference convention (model.md sec. 9)
                du = minus_scaled(current, u, g_tot)  # du/dt = sum_x g_x (v_x - u) - g_l u = current - g_tot u
                if g_rate is not None:  # du/dt = g_rate (I / g_tot - u): same fixed point, relaxed at g_rate
                    du = du.mul_(g_rate / g_tot)
            u_next = torch.add(u, du, alpha=dt)  # forward Euler
            if noise and soma.name in noise:
                u_next = u_next + noise[soma.name]
            factor = st.tau_r_factor.get(soma.name)
            u_rate = soma.dynamics.rate_potential(u, du, u_next, g_tot if g_rate is None else g_rate, factor)
            if soma.orig_circuits is not None:  # orig circuits batched with LE ones: r = phi(u(t + dt))
                u_rate = torch.where(soma.orig_circuits, u_next, u_rate)
            if learns_tau_r and factor is not None:
                eta = plan.tau_r_eta
                if soma.orig_circuits is not None:  # an orig circuit among LE ones has no tau_r to learn
                    eta = torch.where(soma.orig_circuits, 0.0,
                                      torch.as_tensor(eta, dtype=self.dtype, device=self.device))
                soma.dynamics.learn(factor, u_rate, current, du, g_tot, eta, dt)
            if noise and f"{soma.name}.rate" in noise:
                u_rate = u_rate + noise[f"{soma.name}.rate"]
            pots[soma.name] = u_next
            sent[soma.name] = u_rate
            rates[soma.name] = soma.phi(u_rate)
        for plastic, eta in plan.plastic:
            dendrite = st.v[f"{plastic.target}.{plastic.compartment}"]
            predictor = st.v[f"{plastic.target}.{plastic.predicted_from}"]
            prediction = plastic.phi_post(plastic.attenuation * predictor)
            if plastic.name in self.operators:  # a shared kernel sums the local updates of all positions
                post = plastic.rule.post_factor(rates[plastic.target], prediction, dendrite)
                dw = self.operators[plastic.name].weight_update(post, carried[plastic.name])
            else:
                if plastic.tau_w == 0.0 and not isinstance(eta, torch.Tensor):
                    post = plastic.rule.post_factor(rates[plastic.target], prediction, dendrite)
                    if post is not None:  # W += dt eta mean_b post^T r_pre, one fused in-place product
                        pre = carried[plastic.name]
                        w = weights[plastic.name].baddbmm_(post.transpose(1, 2), pre, alpha=dt * eta / pre.shape[1])
                        self._constrain(plastic, w)
                        continue
                memory = st.rule_memory.setdefault(plastic.name, {}) if plastic.rule.memory_names else {}
                extra = {}
                if plastic.rule.reads_noise:  # pal: the target's own rate noise of this step (model.md sec. 3a)
                    extra["noise"] = noise.get(f"{plastic.target}.rate") if noise else None
                dw = plastic.rule.direction(rates[plastic.target], prediction, dendrite, carried[plastic.name],
                                            weights[plastic.name], dt, memory, **extra)
            if plastic.tau_w > 0.0:
                filt = st.dw_filtered.get(plastic.name)
                filt = dw * (dt / plastic.tau_w) if filt is None else filt + (dt / plastic.tau_w) * (dw - filt)
                st.dw_filtered[plastic.name] = filt
                dw = filt
            if isinstance(eta, torch.Tensor):  # one learning rate per circuit, [circuit, 1, 1(, 1, 1)]
                w = weights[plastic.name].add_(dw * (dt * eta.view(-1, *([1] * (dw.dim() - 1)))))
            else:
                w = weights[plastic.name].add_(dw, alpha=dt * eta)
            self._constrain(plastic, w)
        if plan.plastic and self.circuit.tied_pairs:
            self.circuit.apply_tied(weights)
        if self.synapses:
            st.clock += 1

    def _constrain(self, plan: PlasticPlan, weights: torch.Tensor) -> None:
        """After an update: clip at w_max, then round to the projection's precision (in place)."""
        if plan.w_max is not None:
            weights.clamp_(-plan.w_max, plan.w_max)
        if plan.name in self.quantized:
            self.quantize_(plan.name, weights)

    def presynaptic(self, name: str, rate: torch.Tensor) -> torch.Tensor:
        """The rate a projection's synapses see: delayed by its delay (per circuit), low-passed by tau_s."""
        plan, st = self.synapses[name], self.state
        if plan.delays is not None:
            buffer = st.delay_buffer[name]
            position = int(st.clock) % plan.length
            buffer[position] = rate
            rate = buffer[(position - plan.delays) % plan.length, self.circuit_index]
        if plan.tau_s > 0.0:
            rate = st.synaptic[name] + (self.dt / plan.tau_s) * (rate - st.synaptic[name])
            st.synaptic[name] = rate
        return rate

    def present(
        self,
        stimulus: torch.Tensor,
        target: torch.Tensor | None,
        steps: int,
        plan: PhasePlan | list = (),
        observers: list[tuple[int, callable]] = (),
        step_offset: int = 0,
        apical: list[str] = (),
        teacher: bool = True,
        average_from: int | Sequence[int] = 0,
    ) -> dict[str, torch.Tensor]:
        """Present one stimulus for ``steps`` steps (eager, step by step).

        The teacher target lags the stimulus by ``target_delays`` steps (model.md sec. 7; per circuit):
        during the first steps of a presentation the previous presentation's target applies.

        Args:
            stimulus: [circuit, batch, n_in]. target: the task's target [circuit, batch, n_out] or None.
            plan: the phase's :class:`PhasePlan` (or a list of (PlasticPlan, eta) pairs).
            teacher: whether the target nudges the output (else it is only recorded as ``target``).
            average_from: steps into the presentation after which the output is averaged; one for all
                circuits or one per circuit.
            observers: (every, callback(global_step)) pairs called after every ``every``-th step.
            step_offset: global index of the first step (for observer cadence).
            apical: populations whose mean |v_apical| is accumulated.

        Under the reference conventions (model.md sec. 9) the delayed target before a run's first
        presentation is zero (``initial_target``), and the teacher's on/off flag lags with the target
        (``teacher_switch``), for each circuit during its own ``target_delays`` steps.

        Returns:
            ``output``: the output's rate potential (u_breve in LE, u in orig: what the output
            transmits) averaged over the presentation from step ``average_from`` on, [circuit, batch, n_out];
            ``apical/<pop>``: mean |v_apical| over the presentation, [circuit].
        """
        plan = as_phase_plan(plan)
        st = self.state
        noise = self.draw_noise(steps) if self.has_noise else None
        previous = st.last_target
        if previous is None and target is not None:
            previous = torch.zeros_like(target) if self.conventions.initial_target == "zero" else target
        previous_teacher = teacher
        if self.conventions.teacher_switch == "delayed" and st.last_teacher is not None:
            previous_teacher = bool(st.last_teacher)
        out_sum = self.zeros(self.circuit.populations[self.output].size)
        windows = self.output_windows(average_from)
        first = int(windows[0])
        in_window = None if bool((windows == first).all()) else windows.to(self.device).view(-1, 1, 1)
        apical_sum = {p: torch.zeros(self.n_circuits, dtype=self.dtype, device=self.device) for p in apical}
        for i in range(steps):
            tgt, nudged, teacher_on = target, teacher, None
            if target is not None and i < self.target_delay:
                delayed = i < self.target_delays
                tgt = previous if self._uniform_target_delay else torch.where(delayed.view(-1, 1, 1), previous, target)
                if previous_teacher != teacher:  # the delayed switch: the earlier flag while a circuit's target lags
                    nudged = previous_teacher if self._uniform_target_delay else True
                    if not self._uniform_target_delay:
                        teacher_on = delayed if previous_teacher else ~delayed
            self.step(stimulus, tgt if nudged else None, plan,
                      {k: n[i] for k, n in noise.items()} if noise else None, teacher_on)
            st.applied_target = tgt
            if in_window is not None:
                out_sum += torch.where(in_window <= i, st.u_breve[self.output], 0.0)
            elif i >= first:
                out_sum += st.u_breve[self.output]
            for p in apical:
                apical_sum[p] += st.v[f"{p}.apical"].abs().mean(dim=(1, 2))
            for every, callback in observers:
                if (step_offset + i + 1) % every == 0:
                    callback(step_offset + i + 1)
        st.last_target = target
        st.last_teacher = torch.tensor(bool(teacher))
        result = {"output": out_sum / (steps - first if in_window is None else
                                       (steps - in_window).to(self.dtype))}
        result.update({f"apical/{p}": s / steps for p, s in apical_sum.items()})
        return result

    def _partly_nudged(self, soma: SomaPlan, current: torch.Tensor, u: torch.Tensor, target: torch.Tensor,
                       on: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Conductance | None]:
        """The output soma's current I, du/dt and g_tot [circuit, 1, 1] and g_rate (1/ms, None: g_tot) where the
        teacher nudges the circuits ``on`` [circuit, 1, 1] and not the others: each circuit's terms as alone."""
        current = torch.where(on, add_scaled_(current.clone(), target, soma.teacher_g), current)
        du_on = minus_scaled(current, u, soma.g_tot_teacher)
        du_off = minus_scaled(current, u, soma.g_tot)
        g_on, g_off = (torch.as_tensor(g, dtype=self.dtype, device=self.device)
                       for g in (soma.g_tot_teacher, soma.g_tot))
        g_rate = None
        if self.relax_with_teacher:  # teacher off: relaxed at g_tot_teacher (model.md sec. 9), as the others
            du_off = du_off.mul_(soma.g_tot_teacher / soma.g_tot)
            g_rate = soma.g_tot_teacher
        return current, torch.where(on, du_on, du_off), torch.where(on, g_on, g_off), g_rate

    def output_le_circuits(self) -> list[bool]:
        """Whether each circuit's output soma is LE (its rate potential the prospective u_breve), [circuit]."""
        return [d == "latent_equilibrium" for d in self.dynamics_per_circuit[self.output]]

    def output_windows(self, average_from: int | Sequence[int]) -> torch.Tensor:
        """The step of a presentation from which each circuit's output is averaged, [circuit] int64."""
        windows = torch.as_tensor(average_from, dtype=torch.int64).reshape(-1)
        if windows.numel() == 1:
            return windows.expand(self.n_circuits).clone()
        if windows.shape != (self.n_circuits,):
            raise ValueError(f"average_from: one step per circuit ({self.n_circuits}), got {windows.tolist()}")
        return windows

    def read_probe(self, probe: Probe) -> torch.Tensor:
        """The current value of a probe's variable, reduced: [circuit, batch] or [circuit, batch, neuron]."""
        st = self.state
        if probe.group == "target":
            value = st.applied_target
            if value is None:
                value = torch.full((self.n_circuits, self.n_batch, self.circuit.populations[self.output].size),
                                   float("nan"), dtype=self.dtype, device=self.device)
        else:
            value = getattr(st, probe.group)[probe.key]
        return reduce_probe(value, probe.reduce)

    def present_many(
        self,
        stimuli: torch.Tensor,
        targets: torch.Tensor | None,
        steps: int,
        plan: PhasePlan,
        probes: list[Probe] = (),
        step_offset: int = 0,
        apical: list[str] = (),
        teacher: bool = True,
        average_from: int | Sequence[int] = 0,
    ) -> Presented:
        """Present ``stimuli`` one after the other, ``steps`` steps each, on the chosen engine.

        Args:
            stimuli: [presentation, circuit, batch, n_in]; targets: [presentation, circuit, batch, n_out]
                or None; the other arguments as for :meth:`present`.
            probes: variables to sample (global step cadence from ``step_offset``).

        Returns:
            a :class:`Presented` with the presentation-averaged outputs, the apical means and the
            probe samples; the compiled path gives the same numbers as the eager one (tests).
        """
        if self.engine == "compiled":
            return present_fused(self, stimuli, targets, steps, plan, probes, step_offset, apical, teacher,
                                 average_from)
        observers, samples, sample_steps = probe_observers(probes, self.read_probe)
        outputs, apical_means = [], []
        for j in range(stimuli.shape[0]):
            res = self.present(stimuli[j], None if targets is None else targets[j], steps, plan, observers,
                               step_offset + j * steps, apical, teacher, average_from)
            outputs.append(res["output"])
            apical_means.append(torch.stack([res[f"apical/{p}"] for p in apical], dim=-1) if apical
                                else torch.zeros(self.n_circuits, 0, dtype=self.dtype, device=self.device))
        return Presented(torch.stack(outputs), torch.stack(apical_means), stack_samples(samples), sample_steps)

    # ------------------------------------------------------------------ checks
    def check_finite(self, where: str) -> None:
        """Raise :class:`Diverged` naming the projection or population with NaN/Inf or runaway values.

        Weights are checked first: a runaway weight is usually the cause, the potentials the symptom.
        """
        check_bounds(where, self.seeds, (("weights of projection", self.state.weights, WEIGHT_BOUND),
                                         ("somatic potential of population", self.state.u, POTENTIAL_BOUND)))


def reduce_probe(value: torch.Tensor, reduce: str) -> torch.Tensor:
    """A probe's reduction over neurons (the last dimension): ``none``, ``mean``, ``norm`` (root mean
    square) or ``mean_abs`` (mean |x|, the measure of the apical_norm metric, per step)."""
    if reduce == "mean":
        return value.mean(dim=-1)
    if reduce == "norm":
        return value.square().mean(dim=-1).sqrt()
    if reduce == "mean_abs":
        return value.abs().mean(dim=-1)
    return value


def probe_observers(probes, read) -> tuple[list, list[list[torch.Tensor]], list[list[int]]]:
    """(observers, samples, sample steps) for ``present``: each observer ``(every, callback(step))`` keeps
    ``read(probe)`` and the global step in its probe's lists."""
    samples: list[list[torch.Tensor]] = [[] for _ in probes]
    sample_steps: list[list[int]] = [[] for _ in probes]

    def sampler(k: int):
        def sample(step: int) -> None:
            samples[k].append(read(probes[k]).clone())
            sample_steps[k].append(step)
        return sample

    return [(p.every, sampler(k)) for k, p in enumerate(probes)], samples, sample_steps


def stack_samples(samples: list[list[torch.Tensor]]) -> list[torch.Tensor | None]:
    """Each probe's samples as one tensor [sample, ...], None where it sampled nothing."""
    return [torch.stack(s) if s else None for s in samples]


def check_bounds(where: str, seeds: list[int], groups) -> None:
    """Raise :class:`Diverged` at the first tensor of ``groups`` ((what, {name: tensor [circuit, ...]},
    bound) triples, checked in order) that holds NaN, Inf or a value beyond its bound, naming the seeds."""
    for what, tensors, bound in groups:
        for name, x in tensors.items():
            bad = ~(x.abs() <= bound)  # NaN compares false: NaN, Inf and runaway values in one pass
            if bad.any():
                circuits = sorted({int(i) for i in torch.nonzero(bad)[:, 0]})
                raise Diverged(f"{where}: {what} '{name}' is NaN/Inf or exceeds {bound:g} in circuit(s) "
                               f"with seed {[seeds[c] for c in circuits]}")


def quantize_(weights: torch.Tensor, precision, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """Round weights in place to 2^bits levels evenly spaced in [-range, range].

    With ``uniform`` (draws in [0, 1), the shape of ``weights``) the rounding is stochastic:
    floor(x + uniform) in level units, unbiased, E[rounded] = x. Without it, to the nearest level.
    """
    step = 2.0 * precision.range / (2**precision.bits - 1)
    weights.clamp_(-precision.range, precision.range)
    levels = weights.add_(precision.range).div_(step)
    if uniform is None:
        levels.round_()
    else:
        levels.add_(uniform).floor_().clamp_(max=2**precision.bits - 1)
    return levels.mul_(step).sub_(precision.range)
