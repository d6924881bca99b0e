"""Which runs of a sweep share one batched simulation.

What the engine carries per circuit today (microcircuit/state.py, engine.py, fused.py), and so what may
differ between the runs of one simulation:

- the **seeds** (weights, stimulus order, noise, mismatch draws and delays are drawn per circuit);
- the **learning rates**: a :class:`~microcircuit.state.PhasePlan` takes one eta per projection and circuit,
  so the rules' ``eta`` (``projections.*.rule.*.eta``, ``defaults.projection.rule.*.eta``), a phase's
  ``eta`` overrides and its ``eta_scale`` batch;
- the **mismatch** of the LE prospective time constants (``dynamics: {latent_equilibrium: {mismatch: ...}}``,
  spread and distribution): it only sets the initial tau_r factors, which live in the state per circuit;
- the fixed LE **tau_r** (``dynamics: {latent_equilibrium: {tau_r: ...}}``; without it tau_eff in a microcircuit,
  tau_m in a prospective network): the simulator takes each circuit's own base of tau_r;
- a microcircuit's somatic **nudging** conductances g_som (of the projections into a soma and of the teacher,
  ``inputs.teacher.conductance``): each soma sums each circuit's own, and sweeps over ``parameters.g_som`` batch
  (the ``parameters`` block itself is left out of the comparison: its values reach the circuit where they are
  referenced);
- the **dynamics**, ``orig`` or ``latent_equilibrium``, of a microcircuit's somas and of a prospective
  network's areas: the simulator takes the rate potential of each circuit's own choice (u(t + dt) or u_breve,
  model.md sec. 2 and 10), its teacher delay (in a microcircuit with the delayed teacher switch of the reference
  conventions during that circuit's own delay) and its output's averaging window (``average_from:
  reference_lag`` follows the dynamics); an orig circuit learns no tau_r;
- a phase's **tau_r learning rate** ``tau_r_eta`` (one per circuit in the phase plan);
- the **noise levels** of the somas and areas (``noise``, ``rate_noise``): the simulator scales each
  circuit's own draws by its level and draws nothing where it is 0, as the circuit alone does;
- a microcircuit's **transmission delays** of the weighted projections (``delay``, jitter included): each
  circuit reads its own delay from the ring buffers, draws its jitter from its own stream and, with the
  teacher's ``delay: auto``, lags its target by its own delays;
- a microcircuit's **weight precision** (``precision``: bits, range, nearest or stochastic rounding, or none):
  each circuit rounds its own weights to its own levels, and the circuits that round stochastically draw from
  their own streams;
- a microcircuit's **leak and dendritic conductances** (a population's ``conductances``: g_l, g_b, g_a, g_d, and
  the ``parameters`` they come from): each soma relaxes at its circuit's g_tot, each rule predicts with its
  circuit's attenuation c, each run's self-predicting weights follow its own conductances and the alignment
  with backprop uses each circuit's c; except with the ``teacher`` task, whose targets (a teacher network with
  the same attenuations) are one data set for all circuits;
- keys that do not reach the simulation (``name``, ``description``, ``checkpoint_every``).

Everything else makes separate simulations, because the engine holds it once for all circuits: the
presentation time (``present_many`` takes one ``steps``; a short and a long one in one simulation would
leave the short one idle for most of the steps), the dynamics other than plain orig and LE, the conductances
with the teacher task, sizes, schedule, rules, epochs, the task, dtype and engine.

A group is cut into simulations of at most ``max_circuits`` circuits and an estimated ``memory_mb``.
Runs that compare with backprop (``compare_backprop``) batch too: the alignment probe's rows are labelled
by circuit like the others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from microcircuit.spec.schema import Spec
from microcircuit.sweep.spec import Run

#: what may differ between the runs of one simulation (for messages and the docs)
BATCHED_KEYS = ("seed", "projections.*.rule.*.eta", "defaults.projection.rule.*.eta", "protocol.*.eta",
                "protocol.*.eta_scale", "*.dynamics.latent_equilibrium.mismatch", "*.dynamics (orig or LE)",
                "*.dynamics.latent_equilibrium.tau_r", "projections.<nudging>.conductance",
                "inputs.teacher.conductance", "protocol.*.tau_r_eta", "*.noise", "*.rate_noise",
                "projections.*.delay", "defaults.projection.delay", "projections.*.precision",
                "defaults.projection.precision", "populations.*.conductances",
                "name", "description", "checkpoint_every")
#: what a microcircuit soma's dynamics is blanked to where orig and plain LE can share a simulation
EITHER_DYNAMICS = "orig|latent_equilibrium"


def run_id(run: Run, device: str) -> str:
    """A stable name of a run: a hash of its resolved circuit, seeds and device (12 hex digits)."""
    text = yaml.safe_dump(run.resolved, sort_keys=True) + json.dumps(run.seeds) + device
    return "run-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def structure_key(spec: Spec) -> str:
    """The spec with every per-circuit value blanked: runs with the same key can share a simulation."""
    return json.dumps(structure(spec), sort_keys=True)


def separating_keys(specs: list[Spec]) -> list[str]:
    """The dotted keys (``protocol.0.t_pres``) in which the structures of ``specs`` differ: what keeps their runs
    in separate simulations."""
    flat = [_flatten(structure(s)) for s in specs]
    keys = sorted(set().union(*flat))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as {dotted key: leaf value}."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
    if items is None:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out if out else {prefix: value}


def structure(spec: Spec) -> dict:
    """The spec as a mapping with every per-circuit value blanked (see the module docstring)."""
    data = spec.model_dump(mode="json", by_alias=True)
    for key in ("seed", "name", "description", "checkpoint_every", "parameters"):
        data.pop(key, None)

    def blank_rule(rule: Any) -> None:
        if isinstance(rule, dict):
            for params in rule.values():
                if isinstance(params, dict) and "eta" in params:
                    params["eta"] = None

    microcircuit = not is_prospective(spec)  # a prospective network has no nudging, delays or precision

    def plain_dynamics(value: Any) -> Any:
        """LE without what the simulator takes per circuit (the mismatch, drawn into the state per circuit, and
        the fixed tau_r); no params left: the plain name."""
        if isinstance(value, dict) and isinstance(value.get("latent_equilibrium"), dict):
            params = {k: v for k, v in value["latent_equilibrium"].items()
                      if k not in ("mismatch", "tau_r") and v is not None}
            return {"latent_equilibrium": params} if params else "latent_equilibrium"
        return value

    def blank_dynamics(value: Any) -> Any:
        value = plain_dynamics(value)
        return EITHER_DYNAMICS if value in ("orig", "latent_equilibrium") else value

    population_defaults = (data.get("defaults") or {}).get("population") or {}
    default_dynamics = population_defaults.get("dynamics")
    for population in data.get("populations", {}).values():  # the dynamics each population has
        own = population.get("dynamics")
        population["dynamics"] = blank_dynamics(default_dynamics if own is None else own)
    population_defaults["dynamics"] = blank_dynamics(default_dynamics)
    for group in (*data.get("populations", {}).values(), population_defaults):  # noise levels, per circuit
        group["noise"] = group["rate_noise"] = None
    if microcircuit:  # nudging, delays and weight precision are per circuit in a microcircuit's simulation
        for projection in data.get("projections", {}).values():
            if str(projection.get("target", "")).endswith(".soma"):
                projection["conductance"] = None
        (data.get("inputs") or {}).get("teacher", {})["conductance"] = None
        for group in (*data.get("projections", {}).values(), (data.get("defaults") or {}).get("projection") or {}):
            group["delay"] = group["precision"] = None  # transmission delays and weight precision, per circuit
        if (data.get("task") or {}).get("teacher") is None:  # a teacher network's targets follow the attenuations
            for group in (*data.get("populations", {}).values(), population_defaults):
                group["conductances"] = None  # leak and dendritic conductances, per circuit
    for projection in data.get("projections", {}).values():
        blank_rule(projection.get("rule"))
    blank_rule(((data.get("defaults") or {}).get("projection") or {}).get("rule"))
    for phase in data.get("protocol", []):
        phase["eta"] = None
        phase["eta_scale"] = None
        phase["tau_r_eta"] = None
    return data


def is_prospective(spec: Spec) -> bool:
    """Whether ``spec`` is a prospective network (model.md sec. 10), simulated by its own engine."""
    return any(p.cell == "prospective" for p in spec.populations.values())


def circuit_bytes(spec: Spec) -> int:
    """Estimated bytes of one circuit's simulation: weights (with their filters), neuron states of the
    largest batch and delay buffers."""
    size = 8 if spec.dtype == "float64" else 4
    pops = {name: p.size for name, p in spec.populations.items()}
    batch = max(p.batch for p in spec.protocol)
    weights = delays = 0
    for projection in spec.projections.values():
        target = projection.target.split(".")[0]
        source = projection.source.split(".")[0]
        if projection.target.endswith(".soma"):
            continue
        weights += pops.get(target, 0) * pops.get(source, 0)
        if projection.delay is not None:
            delays += (int(getattr(projection.delay, "steps", 0) or 0) + int(getattr(projection.delay, "jitter", 0)
                                                                               or 0) + 1) * batch * pops.get(source, 0)
    neurons = sum(pops.values())
    return size * (3 * weights + 12 * batch * neurons + delays) + 4096


@dataclass
class Task:
    """One batched simulation: the runs it holds (their circuits in order) and where to write them."""

    number: int
    runs: list[Run]
    ids: list[str]
    device: str
    save_weights: bool = False
    sweep_dir: str = ""
    batched_over: list[str] = field(default_factory=list)
    divergence: str = "run"  # or "circuit" (microcircuit.sweep.worker)

    @property
    def n_circuits(self) -> int:
        return sum(len(r.seeds) for r in self.runs)

    @property
    def cost(self) -> float:
        """Relative cost: steps of one circuit times circuits (for ordering and the time estimate)."""
        spec = self.runs[0].spec
        steps = sum(p.epochs * p.t_pres * (1 + (p.epochs // p.validate_every if p.validate_every else 0))
                    for p in spec.protocol)
        return float(steps * self.n_circuits)


def differing(runs: list[Run]) -> list[str]:
    """The axis columns whose values differ between ``runs`` (what a simulation batches over), plus seed."""
    columns = [c for c in runs[0].axes if len({json.dumps(r.axes[c], sort_keys=True) for r in runs}) > 1]
    return ["seed", *columns]


def group(runs: list[Run], ids: list[str], device: str, max_circuits: int, memory_mb: float,
          save_weights: bool = False, divergence: str = "run") -> list[Task]:
    """Runs into simulations: same structure key, at most ``max_circuits`` circuits and ``memory_mb``
    (at least one run each); numbered in the order of their first run."""
    groups: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        groups.setdefault(structure_key(run.spec), []).append(k)
    tasks: list[Task] = []
    for members in groups.values():
        limit = max(1, min(max_circuits, int(memory_mb * 2**20 // circuit_bytes(runs[members[0]].spec))))
        current: list[int] = []
        for k in members:
            if current and sum(len(runs[j].seeds) for j in current) + len(runs[k].seeds) > limit:
                tasks.append(Task(0, [runs[j] for j in current], [ids[j] for j in current], device, save_weights))
                current = []
            current.append(k)
        if current:
            tasks.append(Task(0, [runs[j] for j in current], [ids[j] for j in current], device, save_weights))
    tasks.sort(key=lambda t: t.runs[0].index)
    for n, task in enumerate(tasks):
        task.number = n
        task.batched_over = differing(task.runs)
        task.divergence = divergence
    return tasks


__all__ = ["BATCHED_KEYS", "EITHER_DYNAMICS", "Task", "circuit_bytes", "group", "run_id",
           "separating_keys", "structure", "structure_key"]
