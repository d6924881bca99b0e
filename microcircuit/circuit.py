"""Circuit assembly: a validated spec becomes a networkx graph of populations and projections.

Nodes are populations (size, cell type, dynamics, conductances); edges are projections
(keyed by name; target compartment, rule, weight shape [post, pre]). This module also
derives the constants of model.md (tau_eff, attenuation factors c, nudging ratios),
draws initial weights and computes the analytic self-predicting state (model.md sec. 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import torch

from microcircuit.model.cells import CELL_TYPES, CellType
from microcircuit.seeds import rng
from microcircuit.spec.data_files import read_weight_file
from microcircuit.spec.schema import FileInit, Phase, Spec

#: membrane time constant of a prospective cell when neither the population nor ``parameters`` set one, ms
DEFAULT_TAU_M = 10.0


def tagged(value) -> tuple[str, dict]:
    """Split a tagged-union spec value into (name, params).

    ``'fixed'`` -> ('fixed', {}); ``{name: {params}}`` or its pydantic model -> (name, params);
    ``{uniform: 1.0}`` -> ('uniform', {'value': 1.0}).
    """
    if value is None:
        return "fixed", {}
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, dict):
        value = value.model_dump(exclude_none=True)
    ((name, params),) = value.items()
    if isinstance(params, dict) or params is None:
        return name, dict(params or {})
    return name, {"value": params}


@dataclass(frozen=True)
class PopulationInfo:
    """A population: ``conductances`` in 1/ms by name (g_l, g_b, g_a, g_d)."""

    name: str
    cell: type[CellType]
    size: int
    conductances: dict[str, float]
    dynamics: object
    activation: str
    noise: float
    rate_noise: float
    tau_0: float
    shape: tuple[int, ...] = ()  # [channels, height, width] or [size]
    tau_m: float = 0.0  # membrane time constant of a prospective cell, ms
    bias: bool = False  # a learned bias on a prospective cell's basal input


@dataclass(frozen=True)
class ProjectionInfo:
    """A projection. ``kind`` is ``weighted`` (W of shape [post, pre]) or ``nudging`` (one-to-one, conductance)."""

    name: str
    source: str
    target: str
    compartment: str
    kind: str
    rule: str
    rule_params: dict
    init: object
    w_max: float | None
    tau_w: float
    conductance: float
    tau_s: float = 0.0  # synaptic low-pass of the presynaptic rate, ms
    delay_steps: int = 0
    delay_jitter: int = 0
    precision: object = None  # PrecisionSpec or None
    conv: object = None  # ConvSpec or None (prospective networks)
    pool: object = None  # PoolSpec or None (prospective networks)
    feedback: str = "transpose"  # what carries a prospective network's error down: W^T or a fixed random B

    @property
    def eta(self) -> float:
        return float(self.rule_params.get("eta", 0.0))


class Circuit:
    """The assembled circuit: graph, derived constants, weight initialisation.

    Args:
        spec: a validated spec (see :func:`microcircuit.spec.load_spec`).
    """

    def __init__(self, spec: Spec):
        self.spec = spec
        self.populations: dict[str, PopulationInfo] = {}
        for name, p in spec.populations.items():
            self.populations[name] = PopulationInfo(
                name=name,
                cell=CELL_TYPES.get(p.cell),
                size=p.size,
                conductances=dict(p.conductances),
                dynamics=p.dynamics or spec.defaults.population.dynamics,
                activation=p.activation or spec.defaults.population.activation,
                noise=float(p.noise if p.noise is not None else spec.defaults.population.noise),
                rate_noise=float(p.rate_noise if p.rate_noise is not None else spec.defaults.population.rate_noise),
                tau_0=float(p.tau_0 if p.tau_0 is not None else spec.defaults.population.tau_0),
                shape=tuple(p.shape) if p.shape else (p.size,),
                tau_m=float(p.tau_m if p.tau_m is not None else spec.parameters.get("tau_m", DEFAULT_TAU_M)),
                bias=bool(p.bias if p.bias is not None else spec.defaults.population.bias),
            )
        self.projections: dict[str, ProjectionInfo] = {}
        dflt = spec.defaults.projection
        for name, q in spec.projections.items():
            target, compartment = q.target.split(".")
            source = q.source.split(".")[0]
            nudging = compartment == "soma"
            rule, rule_params = tagged(None if nudging else (q.rule or dflt.rule))
            self.projections[name] = ProjectionInfo(
                name=name,
                source=source,
                target=target,
                compartment=compartment,
                kind="nudging" if nudging else "weighted",
                rule=rule,
                rule_params=rule_params,
                init=None if nudging else (q.init or dflt.init),
                w_max=q.w_max if q.w_max is not None else dflt.w_max,
                tau_w=float(q.tau_w if q.tau_w is not None else dflt.tau_w),
                conductance=float(q.conductance or 0.0),
                tau_s=0.0 if nudging else float(q.tau_s if q.tau_s is not None else dflt.tau_s),
                delay_steps=0 if nudging else delay_of(q.delay if q.delay is not None else dflt.delay)[0],
                delay_jitter=0 if nudging else delay_of(q.delay if q.delay is not None else dflt.delay)[1],
                precision=None if nudging else (q.precision if q.precision is not None else dflt.precision),
                conv=q.conv,
                pool=q.pool,
                feedback=q.feedback or "transpose",
            )
        self.input_population = spec.inputs.stimulus.target
        self.output_population = spec.inputs.teacher.target.split(".")[0]
        self.teacher_conductance = float(spec.inputs.teacher.conductance or 0.0)
        #: a prospective (Latent Equilibrium) network (model.md sec. 10) rather than a microcircuit
        self.is_prospective = any(p.cell.name == "prospective" for p in self.populations.values())

    # ------------------------------------------------------------------ graph
    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """Populations as nodes, projections as edges keyed by projection name."""
        g = nx.MultiDiGraph(name=self.spec.name)
        for p in self.populations.values():
            g.add_node(
                p.name,
                cell=p.cell.name,
                size=p.size,
                activation=p.activation,
                dynamics=tagged(p.dynamics)[0],
                **{k: v for k, v in p.conductances.items()},
            )
        for q in self.projections.values():
            shape = self.weight_shape(q.name)
            g.add_edge(
                q.source,
                q.target,
                key=q.name,
                compartment=q.compartment,
                kind=q.kind,
                rule=q.rule,
                shape="x".join(map(str, shape)) if q.kind == "weighted" else "one_to_one",
            )
        return g

    def weight_shape(self, projection: str) -> tuple[int, ...]:
        """A projection's weights without the circuit: [post, pre], or a convolution's kernel [target
        channels, source channels, kernel, kernel] ([source channels, target channels, ...] transposed);
        a dense projection after pooling reads the pooled size."""
        q = self.projections[projection]
        source, target = self.populations[q.source], self.populations[q.target]
        if q.conv is not None and q.conv.transposed:
            return (image_shape(source.shape)[0], image_shape(target.shape)[0], q.conv.kernel, q.conv.kernel)
        if q.conv is not None:
            return (image_shape(target.shape)[0], image_shape(source.shape)[0], q.conv.kernel, q.conv.kernel)
        pre = source.size
        if q.pool is not None:
            c, h, w = image_shape(source.shape)
            pre = c * (h // q.pool.size) * (w // q.pool.size)
        return (target.size, pre)

    def into(self, population: str, compartment: str | None = None) -> list[ProjectionInfo]:
        """Projections whose target is ``population`` (optionally only ``compartment``)."""
        return [
            q
            for q in self.projections.values()
            if q.target == population and (compartment is None or q.compartment == compartment)
        ]

    def update_order(self) -> list[str]:
        """Non-input populations in bottom-up order: a topological order of the graph without
        apical (top-down) projections. The propagating schedule updates them in this order."""
        g = nx.DiGraph()
        g.add_nodes_from(self.populations)
        g.add_edges_from((q.source, q.target) for q in self.projections.values() if q.compartment != "apical")
        order = list(nx.lexicographical_topological_sort(g))
        return [n for n in order if self.populations[n].cell.has_soma]

    @cached_property
    def forward_chain(self) -> list[ProjectionInfo]:
        """The bottom-up (basal) projections from the input to the output, in order.

        This is the equivalent feedforward network r_k = phi(c_k W^up_k r_{k-1}) of model.md sec. 5.
        """
        chain: list[ProjectionInfo] = []
        pop = self.output_population
        while pop != self.input_population:
            basal = self.into(pop, "basal")
            if len(basal) != 1:
                raise ValueError(f"population '{pop}' needs exactly one basal projection, has {len(basal)}")
            chain.append(basal[0])
            pop = basal[0].source
            if len(chain) > len(self.populations):
                raise ValueError("the basal projections form a cycle")
        return chain[::-1]

    @property
    def depth(self) -> int:
        """Number of areas between input and output (bottom-up projections on the way)."""
        return len(self.forward_chain)

    # ------------------------------------------------------------------ derived constants
    # (the sums of conductances are the cell type's: microcircuit.model.cells.CellType)
    def dendritic_conductance(self, population: str) -> float:
        """g_l + sum of dendritic couplings (no nudging), 1/ms."""
        p = self.populations[population]
        return p.cell.dendritic_conductance(p.conductances)

    def nudging_conductances(self, population: str, teacher: bool) -> tuple[list[float], float]:
        """(the g_som of the projections that nudge the soma, the teacher's g_som: the output's while
        ``teacher``, else 0), 1/ms."""
        nudging = [q.conductance for q in self.into(population, "soma")]
        return nudging, self.teacher_conductance if teacher and population == self.output_population else 0.0

    def nudging_conductance(self, population: str, teacher: bool) -> float:
        """Somatic nudging conductance (interneuron nudging; teacher at the output when on), 1/ms."""
        nudging, by_teacher = self.nudging_conductances(population, teacher)
        return sum(nudging) + by_teacher

    def soma_conductance(self, population: str, teacher: bool = True) -> float:
        """g_tot = g_l + sum_c g_c + sum of g_som (the teacher's with ``teacher``, at the output), 1/ms."""
        p = self.populations[population]
        nudging, by_teacher = self.nudging_conductances(population, teacher)
        return p.cell.soma_conductance(p.conductances, nudging, by_teacher)

    def tau_eff(self, population: str, teacher: bool = True) -> float:
        """Effective time constant tau_eff = 1 / g_tot (the sum of the soma's conductances), ms."""
        return 1.0 / self.soma_conductance(population, teacher)

    def attenuation(self, population: str, compartment: str) -> float:
        """Attenuation of a dendritic potential at the soma: c = g_c / (g_l + sum of dendritic g).

        For a basal dendrite this is c_k = g_B / (g_l + g_B + g_A) of model.md (g_A = 0 at the output);
        for the interneuron dendrite g_D / (g_l + g_D). vhat = c v is the dendritic prediction.
        """
        p = self.populations[population]
        return p.cell.attenuation(p.conductances, compartment)

    def nudging_ratio(self, population: str) -> float:
        """g_som / (g_l + sum of dendritic g + g_som) of the nudged soma (teacher on at the output)."""
        return self.nudging_conductance(population, teacher=True) / self.soma_conductance(population, teacher=True)

    # ------------------------------------------------------------------ weights
    def init_weights(
        self, seeds: list[int], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Initial weights of every weighted projection, [circuit, post, pre], one circuit per seed.

        Each circuit's weights come from its own seed (drawn in float64, then cast), so
        circuit i of a batch equals the same circuit built alone. A projection with ``init: {file: ...}``
        is read from its file (circuit i takes entry i of a [circuit, post, pre] array) and draws nothing,
        so the draws of the other projections shift; give every projection from files to reproduce a run.
        """
        per_circuit: dict[str, list[np.ndarray]] = {n: [] for n, q in self.projections.items() if q.kind == "weighted"}
        from_files = {n: read_weight_file(q.init, n) for n, q in self.projections.items()
                      if n in per_circuit and isinstance(q.init, FileInit)}
        for index, seed in enumerate(seeds):
            gen = rng(seed, "weights")
            for name in per_circuit:
                q = self.projections[name]
                shape = self.weight_shape(name)
                if name in from_files:  # read, not drawn: it takes no numbers from the circuit's stream
                    per_circuit[name].append(weights_for_circuit(from_files[name], index, q.init.file, name,
                                                                 len(shape)))
                else:
                    per_circuit[name].append(draw_init(q.init, shape, gen))
        weights = {n: torch.as_tensor(np.stack(ws), dtype=dtype, device=device) for n, ws in per_circuit.items()}
        self.apply_tied(weights)
        self.apply_self_predicting(weights, only_marked=True)
        return weights

    @cached_property
    def tied_pairs(self) -> list[tuple[str, str]]:
        """(projection, projection it mirrors) for every ``tied`` rule: W = (W_to)^T."""
        return [(q.name, q.rule_params["to"]) for q in self.projections.values() if q.rule == "tied"]

    def apply_tied(self, weights: dict[str, torch.Tensor]) -> None:
        """Set every tied projection to the transpose of its partner, in place of the dict entry (a
        transposed convolution takes its partner's kernel as it is: it is that kernel's transpose)."""
        for name, to in self.tied_pairs:
            if self.projections[name].conv is not None:
                weights[name] = weights[to].clone()
            else:
                weights[name] = weights[to].transpose(1, 2).clone()

    def self_predicting_pairs(self) -> dict[str, tuple[str, list[str]]]:
        """For every interneuron projection: how its self-predicting value is formed.

        Returns {projection: ("pi", [down projections]) | ("ip", [up projection of the nudging area])}.
        """
        pairs: dict[str, tuple[str, list[str]]] = {}
        for q in self.projections.values():
            if q.kind != "weighted":
                continue
            src, tgt = self.populations[q.source], self.populations[q.target]
            if src.cell.name == "interneuron" and q.compartment == "apical":
                nudgers = [n.source for n in self.into(q.source, "soma")]
                downs = [d.name for d in self.into(q.target, "apical") if d.source in nudgers]
                pairs[q.name] = ("pi", downs)
            elif tgt.cell.name == "interneuron" and q.compartment == "dendrite":
                nudgers = [n.source for n in self.into(q.target, "soma")]
                ups = [u.name for u in self.projections.values()
                       if u.compartment == "basal" and u.target in nudgers and u.source == q.source]
                pairs[q.name] = ("ip", ups)
        return pairs

    def self_predicting_value(self, name: str, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The analytic self-predicting weights of one interneuron projection (model.md sec. 4).

        W^PI_k = -W^down_k;  W^IP_k = W^up_{k+1} * c_{k+1} * (g_l + g_D) / g_D.
        """
        kind, partners = self.self_predicting_pairs()[name]
        if not partners:
            raise ValueError(f"projection '{name}' has no partner for the self-predicting state")
        if kind == "pi":
            return -sum(weights[p] for p in partners)
        q = self.projections[name]
        (up,) = partners
        area_above = self.projections[up].target
        g_d = self.populations[q.target].conductances["g_d"]
        return weights[up] * self.attenuation(area_above, "basal") * self.dendritic_conductance(q.target) / g_d

    def apply_self_predicting(self, weights: dict[str, torch.Tensor], only_marked: bool = False) -> None:
        """Set interneuron weights to the analytic self-predicting state, in place.

        ``only_marked``: only projections with ``init: self_predicting``; else every ip/pi projection.
        """
        for name in self.self_predicting_pairs():
            if only_marked and self.projections[name].init != "self_predicting":
                continue
            weights[name] = self.self_predicting_value(name, weights).clone()

    # ------------------------------------------------------------------ learning rates
    def learning_rates(self, phase: Phase, applied: bool = True) -> dict[str, float]:
        """eta (1/ms) of every projection that is plastic in ``phase``: the phase's override if it has one,
        else the projection rule's; times ``eta_scale`` (:attr:`Phase.eta_factor`) when ``applied``."""
        if phase.plastic == "none":
            names: list[str] = []
        elif phase.plastic == "all":
            names = [n for n, q in self.projections.items() if q.kind == "weighted"]
        else:
            names = list(phase.plastic)
        factor = phase.eta_factor if applied else 1.0
        return {n: phase.eta.get(n, self.projections[n].eta) * factor for n in names}

    def learning_projections(self) -> list[str]:
        """Projections whose weights change in some phase: a rule that learns (not ``fixed`` or ``tied``)
        with a learning rate above zero in at least one phase of the protocol."""
        learning = set()
        for phase in self.spec.protocol:
            learning |= {n for n, eta in self.learning_rates(phase).items()
                         if eta > 0 and self.projections[n].rule not in ("fixed", "tied")}
        return [n for n in self.projections if n in learning]

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """Human-readable tables: populations, projections with shapes, derived constants."""
        lines = [f"circuit {self.spec.name}: depth {self.depth}, dt {self.spec.dt} ms, schedule {self.spec.schedule}"]
        lines.append("")
        lines.append("populations")
        lines.append(f"  {'name':<10} {'cell':<17} {'size':>5}  {'compartments':<22} {'dynamics':<19} "
                     f"{'phi':<12} conductances (1/ms)")
        for p in self.populations.values():
            comps = ", ".join(p.cell.compartments())
            g = ", ".join(f"{k}={v:g}" for k, v in p.conductances.items())
            dyn = tagged(p.dynamics)[0] if p.cell.has_soma else "-"
            act = p.activation if p.cell.has_soma else "-"
            if len(p.shape) > 1:
                g = (g + ", " if g else "") + "shape " + "x".join(map(str, p.shape))
            lines.append(f"  {p.name:<10} {p.cell.name:<17} {p.size:>5}  {comps:<22} {dyn:<19} {act:<12} {g}")
        lines.append("")
        lines.append("projections (weights are post x pre; kernels out x in x k x k)")
        for q in self.projections.values():
            edge = self.graph.edges[q.source, q.target, q.name]
            extra = f"g_som={q.conductance:g}" if q.kind == "nudging" else (
                f"rule eta={q.eta:g}" if q.rule not in ("fixed", "tied") else "")
            if q.w_max:
                extra += f" w_max={q.w_max:g}"
            if q.conv is not None:
                extra += (f" {'transposed ' if q.conv.transposed else ''}conv k={q.conv.kernel} "
                          f"stride={q.conv.stride} padding={q.conv.padding}")
            if q.pool is not None:
                extra += f" {q.pool.kind} pool {q.pool.size}"
            lines.append(f"  {q.name:<10} {q.source:>8} -> {q.target + '.' + q.compartment:<18} "
                         f"{edge['shape']:<11} {q.rule:<21} {extra.strip()}".rstrip())
        lines.append("")
        lines.append("derived constants")
        for p in self.populations.values():
            if p.cell.name == "prospective":
                q = self.into(p.name, "basal")
                shape = "x".join(map(str, p.shape))
                lines.append(f"  {p.name:<10} tau_m={p.tau_m:g} ms = {p.tau_m / self.spec.dt:.1f} dt, shape {shape}"
                             + (", bias" if p.bias else "")
                             + (f", feedback {q[0].feedback}" if q and p.name != self.input_population else ""))
                continue
            if not p.cell.has_soma:
                continue
            parts = [f"tau_eff={self.tau_eff(p.name, teacher=False):.3f} ms"]
            if p.name == self.output_population:
                parts.append(f"tau_eff(teacher on)={self.tau_eff(p.name, teacher=True):.3f} ms")
            parts.append(f"= {self.tau_eff(p.name, teacher=False) / self.spec.dt:.1f} dt")
            for comp in p.cell.dendrites:
                parts.append(f"c_{comp}={self.attenuation(p.name, comp):.4f}")
            if self.nudging_conductance(p.name, teacher=True) > 0:
                parts.append(f"nudging ratio={self.nudging_ratio(p.name):.4f}")
            lines.append(f"  {p.name:<10} " + ", ".join(parts))
        lines.append("")
        lines.append("learning rates as applied (1/ms: the rule's or the phase's eta, times eta_scale)")
        for phase in self.spec.protocol:
            rates = {n: eta for n, eta in self.learning_rates(phase).items()
                     if self.projections[n].rule not in ("fixed", "tied")}
            scale = (f"eta_scale 1/t_pres = 1/{phase.t_pres}" if isinstance(phase.eta_scale, str)  # inverse_t_pres
                     else f"eta_scale {phase.eta_factor:g}")
            shown = ", ".join(f"{n}={eta:.4g}" for n, eta in rates.items()) if rates else "nothing learns"
            lines.append(f"  {phase.phase:<10} ({scale}): {shown}")
        return "\n".join(lines)


def delay_of(delay) -> tuple[int, int]:
    """(steps, jitter) of a spec ``delay`` (an int or {steps, jitter})."""
    if isinstance(delay, int):
        return delay, 0
    return delay.steps, delay.jitter


def image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """[channels, height, width] of a population shape ([n]: n channels of 1 x 1; [h, w]: one channel)."""
    if len(shape) == 3:
        return tuple(shape)  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, shape[0], shape[1])
    return (shape[0], 1, 1)


def weights_for_circuit(array: np.ndarray, index: int, file: str, projection: str, ndim: int = 2) -> np.ndarray:
    """Circuit ``index``'s weights ([post, pre], or a kernel of ``ndim`` axes) of a weight file's array (the
    weights, shared by every circuit, or one set per circuit with the circuit first)."""
    if array.ndim == ndim:
        return array
    if index >= array.shape[0]:
        raise ValueError(f"{file}: '{projection}' holds weights of {array.shape[0]} circuit(s), circuit "
                         f"{index} asked for (fewer --seeds, or [post, pre] weights for every circuit)")
    return array[index]


def draw_init(init, shape: tuple[int, int], gen: np.random.Generator) -> np.ndarray:
    """Draw one weight matrix [post, pre] in float64. ``self_predicting`` starts at zero and is
    overwritten by :meth:`Circuit.apply_self_predicting`."""
    name, params = tagged(init)
    if name in ("zeros", "self_predicting"):
        return np.zeros(shape)
    if name == "uniform":
        return gen.uniform(-params["value"], params["value"], shape)
    if name == "normal":
        return gen.normal(0.0, params["value"], shape)
    if name == "constant":
        return np.full(shape, params["value"])
    raise ValueError(f"unknown init '{name}'")
