"""The engine of prospective (Latent Equilibrium) networks, model.md sec. 10, batched over circuits.

A prospective network is a chain of areas l = 1..N of ``prospective`` cells above an input area 0.
Each area integrates its basal input and the error sent down from the area above:

    basal_l  = W_l S(P(r_{l-1})) + b_l                   basal input (P: pooling, S: synaptic low-pass
                                                         with tau_s, each if the projection has one)
    du_l/dt  = (basal_l - u_l + e_l) / tau_m             membrane dynamics
    u_breve  = u_l + tau_r du_l/dt                       prospective potential (tau_r = m tau_m, m = 1
                                                         without mismatch); ``orig``: u_l(t + dt)
    r_l      = phi(u_breve_l)                            rate

and, from the values of the step, the errors of the next step:

    e_N      = beta phi'(u_breve_N) (target - r_N)        output error, ``error: rate``
               beta (target - u_breve_N)                  ``error: potential``;  0 with the teacher off
    e_{l-1}  = phi'(u_breve_{l-1}) . P^T B_l^T (u_breve_m,l - basal_l)
                                                         error sent down; u_breve_m = u + tau_m du/dt,
                                                         so u_breve_m,l - basal_l = e_l (B_l = W_l, or a
                                                         fixed random matrix: feedback alignment)

Plasticity, at every step of a learning phase:

    dW_l/dt  = eta_l (u_breve_m,l - basal_l) P(r_{l-1})^T = eta_l e_l P(r_{l-1})^T     (``prospective_error``)
    db_l/dt  = eta_l e_l                                  (biases, where the area has them)
    dm/dt    = -(tau_r_eta / tau_m) (u_breve - u_breve_m) du/dt = -(tau_r_eta / tau_m) (m - 1) tau_m (du/dt)^2

(the last, with ``tau_r_eta`` > 0, learns each neuron's tau_r towards tau_m from its own trajectory).
Schedules (model.md sec. 7): ``reference``, every area reads the rates of the previous step (one step
of delay per area, the teacher target lags by depth - 1 steps for an LE output); ``propagating``, the
areas are updated bottom-up and read the newest rates. Errors travel down one area per step in both.

The simulator has the interface of :class:`microcircuit.engine.Simulator` that experiments use
(``present_many``, ``plastic_plan``, ``reset_neurons``, ``read_probe``, ``check_finite``, ``state``);
it runs the eager torch path (one grouped convolution or batched product per projection and step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from microcircuit.circuit import Circuit, draw_init, tagged
from microcircuit.engine import (
    POTENTIAL_BOUND,
    WEIGHT_BOUND,
    check_bounds,
    check_per_circuit,
    circuit_noise,
    probe_observers,
    reduce_probe,
    stack_samples,
)
from microcircuit.model.activations import ACTIVATIONS, DERIVATIVES, Activation
from microcircuit.model.dynamics import make_dynamics
from microcircuit.model.rules import RULES
from microcircuit.prospective.layers import Operator, Pooling, operator_of
from microcircuit.seeds import derive_seed, rng
from microcircuit.state import PhasePlan, PlasticPlan, Presented, Probe, State


@dataclass
class Area:
    """One area of the chain with its bottom-up projection, precomputed."""

    name: str
    size: int
    source: str  # the area below (or the input)
    projection: str  # the bottom-up projection into this area
    op: Operator
    pooling: Pooling | None
    tau_m: float  # ms
    tau_r: float | torch.Tensor  # base tau_r, ms (tau_m unless the dynamics sets one); [circuit, 1, 1] where it differs
    le: bool  # prospective rates (latent_equilibrium) in some circuit, else r = phi(u(t + dt)) (orig) in all
    orig_circuits: torch.Tensor | None  # [circuit, 1, 1] bool, True where that circuit's area is orig (None: none is)
    phi: Activation
    phi_prime: Activation
    bias: bool
    noise: tuple[float, ...]  # sigma of the somatic white noise per circuit, potential / sqrt(ms)
    rate_noise: tuple[float, ...]  # standard deviation of the rate-potential noise per step, per circuit
    tau_s: float  # synaptic low-pass of the projection's (pooled) presynaptic rates, ms (0 = none)


class ProspectiveSimulator:
    """A batched prospective network that can be stepped (see the module docstring).

    Args:
        circuit: the assembled circuit (every non-input population ``prospective``).
        seeds: one seed per independent circuit.
        n_batch: stimuli presented in parallel to each circuit.
        dtype, device: torch dtype and device of every tensor.
        engine: accepted for the interface of :class:`~microcircuit.engine.Simulator`; only ``eager`` runs.
        dynamics_per_circuit: area -> each circuit's dynamics, ``orig`` or ``latent_equilibrium``, where the
            circuits of one simulation differ in it (a sweep batches LE and orig runs): each circuit takes its
            own rate potential, its own teacher delay and, where the spec averages from the reference lag, its
            own output window; an orig circuit learns no tau_r. Default: the circuit's dynamics for all.
        noise_per_circuit: each circuit's noise level where they differ, keyed ``<area>`` (somatic sigma) or
            ``<area>.rate`` (rate noise); each circuit draws from its own stream only where its level is above
            0, as it does alone.
        tau_r_per_circuit: area -> each circuit's fixed base tau_r in ms (None: tau_m), where they differ.
    """

    def __init__(self, circuit: Circuit, seeds: list[int], n_batch: int = 1, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", engine: str = "eager",
                 dynamics_per_circuit: dict[str, list[str]] | None = None,
                 noise_per_circuit: dict[str, list[float]] | None = None,
                 tau_r_per_circuit: dict[str, list[float | None]] | None = None):
        self.circuit = circuit
        self.seeds = list(seeds)
        self.n_circuits = len(self.seeds)
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
        self.beta = float(teacher.beta or 0.0)
        self.rate_error = teacher.error == "rate"
        check_per_circuit(dynamics_per_circuit or {}, noise_per_circuit or {}, tau_r_per_circuit or {}, self.n_circuits)
        self.areas = [self._area(q.name, dynamics_per_circuit or {}, noise_per_circuit or {}, tau_r_per_circuit or {})
                      for q in circuit.forward_chain]
        self.engine = "eager"
        self.engine_reason = ("asked for" if engine == "eager" else
                              "prospective networks run on the eager torch path (batched products and "
                              "grouped convolutions per step)")
        self.noise_generators = [torch.Generator().manual_seed(derive_seed(s, "noise")) for s in self.seeds]
        self.rounding_generators: list[torch.Generator] = []
        if teacher.delay == "auto":  # the steps an LE output needs under the reference schedule; 0 for orig
            lag = 0 if self.propagating else len(self.areas) - 1
            delays = [lag if le else 0 for le in self.output_le_circuits()]
        else:
            delays = [int(teacher.delay)] * self.n_circuits
        #: steps by which each circuit's teacher target lags its stimulus, [circuit] int64, and the longest
        self.target_delays = torch.tensor(delays, dtype=torch.int64, device=self.device)
        self.target_delay = max(delays)
        self._uniform_target_delay = len(set(delays)) == 1
        self.state = State()
        self.state.weights = circuit.init_weights(self.seeds, dtype, self.device)
        self.feedback = self._feedback_weights()
        for area in self.areas:
            if area.bias:
                self.state.bias[area.name] = torch.zeros(self.n_circuits, area.op.bias_size, dtype=dtype,
                                                         device=self.device)
            self.state.tau_r_factor[area.name] = self._mismatch(area).to(self.device, dtype)
        self.reset_neurons()

    # ------------------------------------------------------------------ set-up
    def output_le_circuits(self) -> list[bool]:
        """Whether each circuit's output area is LE (its rate potential the prospective u_breve), [circuit]."""
        out = self.areas[-1]
        if out.orig_circuits is None:
            return [out.le] * self.n_circuits
        return [not orig for orig in out.orig_circuits.reshape(-1).tolist()]

    def _area(self, projection: str, dynamics_per_circuit: dict[str, list[str]],
              noise_per_circuit: dict[str, list[float]], tau_r_per_circuit: dict[str, list[float | None]]) -> Area:
        c = self.circuit
        q = c.projections[projection]
        p = c.populations[q.target]
        dynamics, params = tagged(p.dynamics)
        names = list(dynamics_per_circuit.get(p.name, [dynamics] * self.n_circuits))
        orig_circuits = None
        if len(set(names)) > 1:
            orig_circuits = torch.tensor([n == "orig" for n in names], device=self.device).view(-1, 1, 1)
        tau_r = [v or p.tau_m for v in tau_r_per_circuit.get(p.name, [params.get("tau_r")] * self.n_circuits)]
        levels = {key: tuple(float(v) for v in noise_per_circuit.get(key, [own] * self.n_circuits))
                  for key, own in ((p.name, p.noise), (f"{p.name}.rate", p.rate_noise))}
        op, pooling = operator_of(c, projection)
        return Area(name=p.name, size=p.size, source=q.source, projection=projection, op=op, pooling=pooling,
                    tau_m=p.tau_m, tau_r=float(tau_r[0]) if len(set(tau_r)) == 1 else
                    torch.tensor(tau_r, dtype=self.dtype, device=self.device).view(-1, 1, 1),
                    le="latent_equilibrium" in names, orig_circuits=orig_circuits,
                    phi=ACTIVATIONS.get(p.activation), phi_prime=DERIVATIVES.get(p.activation), bias=p.bias,
                    noise=levels[p.name], rate_noise=levels[f"{p.name}.rate"], tau_s=q.tau_s)

    def _mismatch(self, area: Area) -> torch.Tensor:
        """Per-neuron factors m (tau_r = m tau_r base), [circuit, 1, neuron] float64, drawn as for a
        microcircuit's LE soma (:class:`~microcircuit.model.dynamics.LatentEquilibrium`; m = 1 for orig, and for
        the orig circuits of an area that is LE in others)."""
        ones = torch.ones(self.n_circuits, 1, area.size, dtype=torch.float64)
        if not area.le:
            return ones
        dynamics = self.circuit.populations[area.name].dynamics
        if tagged(dynamics)[0] != "latent_equilibrium":  # LE in some circuits only: their own draws come later
            dynamics = "latent_equilibrium"
        rngs = [rng(seed, f"mismatch/{area.name}") for seed in self.seeds]
        factor = make_dynamics(dynamics, area.size, rngs).initial_factor()
        return factor if area.orig_circuits is None else torch.where(area.orig_circuits.cpu(), ones, factor)

    def _feedback_weights(self) -> dict[str, torch.Tensor]:
        """Fixed random matrices B (W's shape, drawn like W's init) of ``feedback: random`` projections."""
        fixed = {}
        for area in self.areas:
            q = self.circuit.projections[area.projection]
            if q.feedback == "random":
                init = q.init if not isinstance(q.init, str) else {"uniform": 1.0}
                draws = [draw_init(init, area.op.weight_shape, rng(seed, f"feedback/{q.name}")) for seed in self.seeds]
                fixed[q.name] = torch.as_tensor(np.stack(draws), dtype=self.dtype, device=self.device)
        return fixed

    def load_state(self, flat: dict[str, torch.Tensor]) -> None:
        """Replace the whole state by a checkpoint's :meth:`State.tensors` mapping."""
        self.state.load_tensors(flat)
        self.n_batch = next(iter(self.state.u.values())).shape[1]

    @property
    def has_noise(self) -> bool:
        return any(max(a.noise) > 0.0 or max(a.rate_noise) > 0.0 for a in self.areas)

    def plastic_plan(self, learning: dict[str, float | torch.Tensor],
                     tau_r_eta: float | torch.Tensor = 0.0) -> PhasePlan:
        """The :class:`PhasePlan` of a phase: ``learning`` maps projection -> eta (1/ms; a float or a
        tensor [circuit]); ``tau_r_eta`` (1/ms; a float or a tensor [circuit]) learns the tau_r factors."""
        plans = []
        for name, eta in learning.items():
            q = self.circuit.projections[name]
            rule = RULES.get(q.rule)(q.rule_params)
            if isinstance(eta, torch.Tensor):
                eta = eta.to(self.device, self.dtype).reshape(self.n_circuits)
            if not rule.learns or (not isinstance(eta, torch.Tensor) and eta == 0.0):
                continue
            post = self.circuit.populations[q.target]
            plan = PlasticPlan(name=name, source=q.source, target=q.target, compartment=q.compartment,
                               predicted_from=q.compartment, rule=rule, attenuation=1.0,
                               phi_post=ACTIVATIONS.get(post.activation), tau_w=q.tau_w, w_max=q.w_max)
            plans.append((plan, eta if isinstance(eta, torch.Tensor) else float(eta)))
        if isinstance(tau_r_eta, torch.Tensor):
            tau_r_eta = tau_r_eta.to(self.device, torch.float64).reshape(self.n_circuits, 1, 1)
        return PhasePlan(tuple(plans), tau_r_eta if isinstance(tau_r_eta, torch.Tensor) else float(tau_r_eta))

    def zeros(self, size: int) -> torch.Tensor:
        return torch.zeros(self.n_circuits, self.n_batch, size, dtype=self.dtype, device=self.device)

    def reset_neurons(self, n_batch: int | None = None) -> None:
        """Potentials, rates and errors to rest (weights, biases and tau_r factors are kept)."""
        if n_batch is not None:
            self.n_batch = n_batch
        st = self.state
        st.rate[self.input] = self.zeros(self.circuit.populations[self.input].size)
        for a in self.areas:
            st.u[a.name] = self.zeros(a.size)
            st.u_breve[a.name] = self.zeros(a.size)
            st.rate[a.name] = a.phi(self.zeros(a.size))
            st.error[a.name] = self.zeros(a.size)
            st.v[f"{a.name}.basal"] = self.zeros(a.size)
        st.target = None
        st.last_target = None
        st.applied_target = None
        st.last_teacher = None
        st.dw_filtered.clear()
        st.rule_memory.clear()
        st.synaptic.clear()
        for a in self.areas:  # the synaptic filters start at the (pooled) rest rates
            if a.tau_s > 0.0:
                rest = st.rate[a.source]
                st.synaptic[a.projection] = (a.pooling.pool(rest)[0] if a.pooling is not None else rest).clone()
        st.clock = torch.zeros((), dtype=torch.int64)

    def start_phase(self) -> None:
        """A new phase begins (prospective rules keep no filters of their own)."""
        self.state.rule_memory.clear()

    def draw_noise(self, steps: int) -> dict[str, torch.Tensor]:
        """[step, circuit, batch, neuron] noise, one stream per circuit: somatic sigma sqrt(dt) xi under the
        area's name, rate-potential noise under ``<name>.rate``; a circuit whose level is 0 draws nothing
        (zeros), as it does alone."""
        noise = {}
        for a in self.areas:
            for key, levels, scale in ((a.name, a.noise, math.sqrt(self.dt)), (f"{a.name}.rate", a.rate_noise, 1.0)):
                xi = circuit_noise(self.noise_generators, levels, scale, (steps, self.n_batch, a.size))
                if xi is not None:
                    noise[key] = xi.to(self.device, self.dtype)
        return noise

    # ------------------------------------------------------------------ stepping
    def step(self, stimulus: torch.Tensor, target: torch.Tensor | None, plan: PhasePlan,
             noise: dict[str, torch.Tensor] | None = None) -> None:
        """One forward-Euler step of every area, then the errors and the plasticity (module docstring).

        Args:
            stimulus: input rates [circuit, batch, n_in]. target: the (delayed) target, or None with the
                teacher off. plan: the phase's learning rates. noise: this step's draws (:meth:`draw_noise`).
        """
        st, dt = self.state, self.dt
        if target is not None and self.teacher_tau_0 > 0.0:  # the teacher's low-pass, as for microcircuits
            st.target = target if st.target is None else st.target + (dt / self.teacher_tau_0) * (target - st.target)
            target = st.target
        if self.input_tau_0 > 0.0:
            stimulus = st.rate[self.input] + (dt / self.input_tau_0) * (stimulus - st.rate[self.input])
        previous = dict(st.rate)
        st.rate[self.input] = stimulus
        rates = st.rate if self.propagating else previous
        if not self.propagating:
            previous[self.input] = stimulus  # the first area reads the stimulus of the step
        inputs, selections, slopes = {}, {}, {}
        for a in self.areas:
            pre = rates[a.source]
            indices = None
            if a.pooling is not None:
                pre, indices = a.pooling.pool(pre)
            if a.tau_s > 0.0:  # synaptic low-pass
                pre = st.synaptic[a.projection] + (dt / a.tau_s) * (pre - st.synaptic[a.projection])
                st.synaptic[a.projection] = pre
            basal = a.op.forward(st.weights[a.projection], pre)
            if a.bias:
                basal = basal + a.op.expand_bias(st.bias[a.name])
            u, e = st.u[a.name], st.error[a.name]
            du = (basal - u + e) / a.tau_m  # membrane dynamics
            u_next = u + dt * du
            if noise is not None and a.name in noise:
                u_next = u_next + noise[a.name]
            u_breve = u + (a.tau_r * st.tau_r_factor[a.name]) * du if a.le else u_next
            if a.orig_circuits is not None:  # orig circuits among LE ones: their rate potential is u(t + dt)
                u_breve = torch.where(a.orig_circuits, u_next, u_breve)
            if noise is not None and f"{a.name}.rate" in noise:
                u_breve = u_breve + noise[f"{a.name}.rate"]
            st.u[a.name], st.u_breve[a.name], st.v[f"{a.name}.basal"] = u_next, u_breve, basal
            st.rate[a.name] = a.phi(u_breve)
            inputs[a.name], selections[a.name], slopes[a.name] = pre, indices, du
        self._learn(plan, inputs, slopes)
        self._send_errors(target, selections)
        st.clock = st.clock + 1

    def _send_errors(self, target: torch.Tensor | None, selections: dict[str, torch.Tensor | None]) -> None:
        """The errors of the next step: the output's from the target, below from the area above (through
        the transpose of the pooling the area above read this step with, ``selections``)."""
        st = self.state
        new = {}
        out = self.areas[-1]
        if target is None or self.beta == 0.0:
            new[out.name] = torch.zeros_like(st.error[out.name])
        elif self.rate_error:
            new[out.name] = self.beta * out.phi_prime(st.u_breve[out.name]) * (target - st.rate[out.name])
        else:
            new[out.name] = self.beta * (target - st.u_breve[out.name])
        for upper, lower in zip(self.areas[:0:-1], self.areas[-2::-1], strict=True):
            feedback = self.feedback.get(upper.projection, st.weights[upper.projection])
            carried = upper.op.backward(feedback, st.error[upper.name])  # u_breve_m - basal = e of the step
            if upper.pooling is not None:
                carried = upper.pooling.unpool(carried, selections[upper.name])
            new[lower.name] = lower.phi_prime(st.u_breve[lower.name]) * carried
        st.error.update(new)

    def _learn(self, plan: PhasePlan, inputs: dict[str, torch.Tensor], slopes: dict[str, torch.Tensor]) -> None:
        st, dt = self.state, self.dt
        by_name = {a.projection: a for a in self.areas}
        for p, eta in plan.plastic:
            a = by_name.get(p.name)
            if a is None:
                continue
            factor = p.rule.error_factor(st.error[a.name])  # u_breve_m - basal, the error of the step
            dw = a.op.weight_update(factor, inputs[a.name])
            rate = eta if not isinstance(eta, torch.Tensor) else eta.view(-1, *([1] * (dw.dim() - 1)))
            if p.tau_w > 0.0:
                filtered = st.dw_filtered.get(p.name)
                filtered = dw.clone() if filtered is None else filtered + (dt / p.tau_w) * (dw - filtered)
                st.dw_filtered[p.name] = filtered
                dw = filtered
            w = st.weights[p.name]
            w.add_(dt * rate * dw)
            if p.w_max is not None:
                w.clamp_(-p.w_max, p.w_max)
            if a.bias:
                db = a.op.bias_update(factor)
                st.bias[a.name].add_(dt * (rate if not isinstance(rate, torch.Tensor) else rate.view(-1, 1)) * db)
        if plan.learns_tau_r:
            eta = plan.tau_r_eta
            for a in self.areas:
                if a.le:
                    du = slopes[a.name]
                    mismatch = (a.tau_r * st.tau_r_factor[a.name] - a.tau_m) * du  # u_breve - u_breve_m
                    factor = st.tau_r_factor[a.name]
                    change = (mismatch * du).mean(dim=1, keepdim=True)
                    if not isinstance(eta, torch.Tensor) and a.orig_circuits is None:
                        factor.add_(change, alpha=-dt * eta / a.tau_m)
                        factor.clamp_(min=0.0)
                        continue
                    # per circuit: each its own rate; a circuit with none, or orig there, keeps its factors
                    learning = torch.as_tensor(eta, device=factor.device) > 0.0
                    if a.orig_circuits is not None:
                        learning = learning & ~a.orig_circuits
                    learned = (factor + (-dt * eta / a.tau_m) * change).clamp_(min=0.0)
                    factor.copy_(torch.where(learning, learned, factor))

    def output_value(self) -> torch.Tensor:
        """What the output reports: its rate (``error: rate``) or its prospective potential (``potential``)."""
        out = self.areas[-1].name
        return self.state.rate[out] if self.rate_error else self.state.u_breve[out]

    def present(self, stimulus: torch.Tensor, target: torch.Tensor | None, steps: int, plan: PhasePlan,
                observers=(), step_offset: int = 0, teacher: bool = True,
                average_from: int | Sequence[int] = 0) -> torch.Tensor:
        """Present one stimulus [circuit, batch, n_in] for ``steps`` steps; each circuit's target lags it by
        its :attr:`target_delays` steps (the previous presentation's target applies before). Returns the
        output (:meth:`output_value`) averaged from step ``average_from`` on (one step, or one per circuit),
        [circuit, batch, n_out]."""
        st = self.state
        noise = self.draw_noise(steps) if self.has_noise else None
        previous = st.last_target if st.last_target is not None else target
        total = torch.zeros_like(self.output_value())
        windows = torch.as_tensor(average_from, dtype=torch.int64).reshape(-1)
        if windows.numel() == 1:
            first, windows = int(windows[0]), None
        else:  # each circuit's own first step (LE and orig outputs under the reference lag)
            first, windows = int(windows.min()), windows.to(self.device).view(-1, 1, 1)
        for i in range(steps):
            tgt = target
            if target is not None and i < self.target_delay:
                tgt = (previous if self._uniform_target_delay else
                       torch.where((i < self.target_delays).view(-1, 1, 1), previous, target))
            self.step(stimulus, tgt if teacher else None, plan, {k: n[i] for k, n in noise.items()} if noise else None)
            st.applied_target = tgt
            if i >= first:
                value = self.output_value()
                total += value if windows is None else torch.where(i >= windows, value, torch.zeros_like(value))
            for every, callback in observers:
                if (step_offset + i + 1) % every == 0:
                    callback(step_offset + i + 1)
        st.last_target = target
        st.last_teacher = torch.tensor(bool(teacher))
        return total / (steps - (first if windows is None else windows))

    def read_probe(self, probe: Probe) -> torch.Tensor:
        """The current value of a probe's variable, reduced: [circuit, batch] or [circuit, batch, neuron]."""
        st = self.state
        if probe.group == "target":
            value = st.applied_target
            if value is None:
                value = torch.full((self.n_circuits, self.n_batch, self.areas[-1].size), float("nan"),
                                   dtype=self.dtype, device=self.device)
        else:
            value = getattr(st, probe.group)[probe.key]
        return reduce_probe(value, probe.reduce)

    def present_many(self, stimuli: torch.Tensor, targets: torch.Tensor | None, steps: int, plan: PhasePlan,
                     probes: list[Probe] = (), step_offset: int = 0, apical: list[str] = (), teacher: bool = True,
                     average_from: int | Sequence[int] = 0) -> Presented:
        """Present ``stimuli`` [presentation, circuit, batch, n_in] one after the other (as
        :meth:`microcircuit.engine.Simulator.present_many`; a prospective network has no apical compartments)."""
        observers, samples, sample_steps = probe_observers(probes, self.read_probe)
        outputs = [self.present(stimuli[j], None if targets is None else targets[j], steps, plan, observers,
                                step_offset + j * steps, teacher, average_from) for j in range(stimuli.shape[0])]
        apical_means = torch.zeros(stimuli.shape[0], self.n_circuits, 0, dtype=self.dtype, device=self.device)
        return Presented(torch.stack(outputs), apical_means, stack_samples(samples), sample_steps)

    def check_finite(self, where: str) -> None:
        """Raise :class:`~microcircuit.engine.Diverged` naming the projection or area with NaN/Inf or runaway values."""
        check_bounds(where, self.seeds, (("weights of projection", self.state.weights, WEIGHT_BOUND),
                                         ("biases of population", self.state.bias, WEIGHT_BOUND),
                                         ("somatic potential of population", self.state.u, POTENTIAL_BOUND)))
