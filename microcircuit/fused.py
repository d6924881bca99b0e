"""The compiled engine: whole presentations fused into one numba kernel call.

The eager path (:meth:`microcircuit.engine.Simulator.step`) is the readable reference; this module
runs the same equations (model.md sec. 1-3, 7) for a chunk of presentations in one compiled call,
with no Python, no dictionary look-ups and no allocation inside the time loop. The circuit's
structure is flattened once into integer tables (:class:`Layout`); per call, the state's tensors are
packed into a few flat arrays ([circuit, batch, neuron] with the populations side by side; weights
[circuit, post * pre] side by side), the kernel integrates, and the results are written back into
the same :class:`~microcircuit.engine.State`. Tests check it against the eager path to float32
rounding and, in float64, to 1e-12.

Features the kernel does not implement fall back to the eager path with a one-line notice naming
the feature (:func:`unsupported_features`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from microcircuit.model.dynamics import LatentEquilibrium, Orig
from microcircuit.state import PhasePlan, Presented, Probe, as_phase_plan

if TYPE_CHECKING:
    from microcircuit.engine import Simulator

log = logging.getLogger("microcircuit")

#: activation name -> kernel code (see ``_phi``)
ACTIVATION_CODES = {"soft_relu": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "linear": 4, "hard_sigmoid": 5}
#: plasticity rules the kernel implements: name -> code
RULE_CODES = {"dendritic_prediction": 0, "apical_silencing": 1, "hebbian_alignment": 2}
PROBE_GROUPS = {"u": 0, "u_breve": 1, "rate": 2, "v": 3, "target": 4}
REDUCE_CODES = {"none": 0, "mean": 1, "norm": 2, "mean_abs": 3}
#: auto: the compiled path is chosen while circuits x batch x synapses per step stays below this
#: (above it the matrix products dominate and torch's BLAS is faster; benchmarks/engines.py)
AUTO_MAX_SYNAPSE_UPDATES = 200_000

try:  # numba is a dependency; without it every run takes the eager path
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None


def unsupported_features(sim: Simulator) -> list[str]:
    """Features of ``sim``'s circuit that the kernel does not implement (empty: it runs them all)."""
    c = sim.circuit
    found = []
    if sim.device.type != "cpu":
        found.append(f"device {sim.device}")
    for q in c.projections.values():
        if q.kind != "weighted":
            continue
        if q.rule not in RULE_CODES and q.rule not in ("fixed", "tied"):
            found.append(f"plasticity rule '{q.rule}' (projection '{q.name}')")
        if q.conv is not None:
            found.append(f"convolution (projection '{q.name}')")
    for soma in sim.somas:
        if type(soma.dynamics) not in (Orig, LatentEquilibrium):
            found.append(f"dynamics '{soma.dynamics.name}' (population '{soma.name}')")
        if c.populations[soma.name].activation not in ACTIVATION_CODES:
            found.append(f"activation '{c.populations[soma.name].activation}' (population '{soma.name}')")
    return found


def synapse_updates(sim: Simulator) -> int:
    """circuits x largest phase batch x weighted synapses: the work of one step's matrix products."""
    c = sim.circuit
    synapses = sum(c.populations[q.target].size * c.populations[q.source].size
                   for q in c.projections.values() if q.kind == "weighted")
    batch = max((p.batch for p in c.spec.protocol), default=1)
    return sim.n_circuits * max(batch, sim.n_batch) * synapses


def choose_engine(sim: Simulator, requested: str) -> tuple[str, str]:
    """(engine, reason) for ``requested`` in ``auto``, ``eager``, ``compiled``."""
    if requested == "eager":
        return "eager", "asked for"
    missing = ["numba is not installed"] if numba is None else unsupported_features(sim)
    if missing:
        reason = "not supported by the compiled engine: " + "; ".join(missing)
        if requested == "compiled":
            log.warning("engine: compiled asked for, running eager (%s)", reason)
        return "eager", reason
    if requested == "compiled":
        return "compiled", "asked for"
    work = synapse_updates(sim)
    if work > AUTO_MAX_SYNAPSE_UPDATES:
        return "eager", f"{work} synapse updates per step: the matrix products dominate (BLAS)"
    return "compiled", f"{work} synapse updates per step: fused presentations pay"


@dataclass
class Layout:
    """The circuit flattened into offsets and index tables for the kernel (built once per simulator)."""

    pops: list[str]
    pop_off: dict[str, int]
    n_neurons: int
    dend_keys: list[str]  # "pop.compartment", in soma order
    dend_off: dict[str, int]
    n_dend: int
    projs: list[str]  # weighted projections
    w_off: dict[str, int]
    n_weights: int
    pre_off: dict[str, int]
    n_pre: int
    ints: dict[str, np.ndarray]
    floats: dict[str, np.ndarray]


def build_layout(sim: Simulator) -> Layout:
    c = sim.circuit
    pops = list(c.populations)
    pop_off, off = {}, 0
    for name in pops:
        pop_off[name] = off
        off += c.populations[name].size
    n_neurons = off
    dend_keys, dend_off, off = [], {}, 0
    for soma in sim.somas:
        for d in soma.dendrites:
            key = f"{soma.name}.{d.compartment}"
            dend_keys.append(key)
            dend_off[key] = off
            off += soma.size
    n_dend = off
    projs = [q.name for q in c.projections.values() if q.kind == "weighted"]
    w_off, pre_off, w, pre = {}, {}, 0, 0
    for name in projs:
        q = c.projections[name]
        w_off[name], pre_off[name] = w, pre
        w += c.populations[q.target].size * c.populations[q.source].size
        pre += c.populations[q.source].size
    proj_index = {n: i for i, n in enumerate(projs)}
    soma_cols = {k: [] for k in ("pop_off", "size", "dyn", "act", "d_start", "d_end", "n_start", "n_end")}
    soma_g_dend = []  # [soma, circuit] g_l + the dendritic couplings, 1/ms
    soma_tau_r = []  # [soma, circuit]: the fixed base tau_r in ms, -1 for tau_eff
    soma_g_teacher = []  # [soma, circuit]: the teacher's g_som, 1/ms
    # [soma]: 1 where the teacher nudges it; 1 where its conductances (g_som, g_l, dendritic g) or tau_r differ
    soma_taught, soma_per_circuit = [], []
    dend_cols = {k: [] for k in ("off", "p_start", "p_end")}
    dend_g, dend_projs, nudge_src, nudge_g = [], [], [], []
    for soma in sim.somas:
        soma_cols["pop_off"].append(pop_off[soma.name])
        soma_cols["size"].append(soma.size)
        le = isinstance(soma.dynamics, LatentEquilibrium)
        soma_cols["dyn"].append(1 if le else 0)
        soma_cols["act"].append(ACTIVATION_CODES[c.populations[soma.name].activation])
        soma_g_dend.append(_per_circuit(soma.g_dendritic, sim.n_circuits))
        soma_g_teacher.append(_per_circuit(soma.teacher_g, sim.n_circuits))
        soma_tau_r.append(_fixed_tau_r(soma.dynamics, sim.n_circuits))
        conductances = (soma.teacher_g, *(g for _, g in soma.nudges), soma.g_dendritic, *(d.g for d in soma.dendrites))
        soma_taught.append(int(soma.taught))
        soma_per_circuit.append(int(any(isinstance(g, torch.Tensor) for g in conductances)
                                    or len(set(soma_tau_r[-1])) > 1))
        soma_cols["d_start"].append(len(dend_cols["off"]))
        for d in soma.dendrites:
            dend_cols["off"].append(dend_off[f"{soma.name}.{d.compartment}"])
            dend_g.append(_per_circuit(d.g, sim.n_circuits))
            dend_cols["p_start"].append(len(dend_projs))
            dend_projs.extend(proj_index[p] for p in d.projections)
            dend_cols["p_end"].append(len(dend_projs))
        soma_cols["d_end"].append(len(dend_cols["off"]))
        soma_cols["n_start"].append(len(nudge_src))
        for source, g in soma.nudges:
            nudge_src.append(pop_off[source])
            nudge_g.append(_per_circuit(g, sim.n_circuits))
        soma_cols["n_end"].append(len(nudge_src))
    proj_cols = {k: [] for k in ("src_off", "pre", "post", "w_off", "pre_off", "delay_len")}
    proj_tau_s, proj_delays = [], []
    for name in projs:
        q = c.projections[name]
        proj_cols["src_off"].append(pop_off[q.source])
        proj_cols["pre"].append(c.populations[q.source].size)
        proj_cols["post"].append(c.populations[q.target].size)
        proj_cols["w_off"].append(w_off[name])
        proj_cols["pre_off"].append(pre_off[name])
        synapse = sim.synapses.get(name)
        has_delay = synapse is not None and synapse.delays is not None
        proj_cols["delay_len"].append(synapse.length if has_delay else 1)
        proj_delays.append(synapse.delays.cpu().numpy() if has_delay else np.zeros(sim.n_circuits, dtype=np.int64))
        proj_tau_s.append(q.tau_s)
    tied = [(proj_index[a], proj_index[b]) for a, b in c.tied_pairs]

    def ints(values) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    table = {f"soma_{k}": ints(v) for k, v in soma_cols.items()}
    table.update({f"dend_{k}": ints(v) for k, v in dend_cols.items()})
    table.update({f"proj_{k}": ints(v) for k, v in proj_cols.items()})
    table["soma_taught"] = ints(soma_taught)
    table["soma_per_circuit"] = ints(soma_per_circuit)
    table["dend_projs"] = ints(dend_projs)
    table["nudge_src"] = ints(nudge_src)
    table["tied"] = ints(tied).reshape(-1, 2)
    table["proj_delays"] = ints(proj_delays).reshape(len(projs), sim.n_circuits)
    # [soma, circuit]: 1 where an orig circuit is batched with LE ones (its rate potential is u(t + dt))
    table["soma_orig"] = ints([np.zeros(sim.n_circuits) if soma.orig_circuits is None
                               else soma.orig_circuits.reshape(-1).cpu().numpy() for soma in sim.somas]
                              ).reshape(len(sim.somas), sim.n_circuits)
    floats = {"soma_g_dend": np.asarray(soma_g_dend, dtype=np.float64).reshape(len(sim.somas), sim.n_circuits)}
    floats["soma_tau_r"] = np.asarray(soma_tau_r, dtype=np.float64).reshape(len(sim.somas), sim.n_circuits)
    floats["soma_g_teacher"] = np.asarray(soma_g_teacher, dtype=np.float64).reshape(len(sim.somas), sim.n_circuits)
    floats["dend_g"] = np.asarray(dend_g, dtype=np.float64).reshape(len(dend_g), sim.n_circuits)
    floats["nudge_g"] = np.asarray(nudge_g, dtype=np.float64).reshape(len(nudge_g), sim.n_circuits)
    floats["proj_tau_s"] = np.asarray(proj_tau_s, dtype=np.float64)
    return Layout(pops, pop_off, n_neurons, dend_keys, dend_off, n_dend, projs, w_off, w, pre_off, pre,
                  table, floats)


def _per_circuit(g: float | torch.Tensor, n_circuits: int) -> np.ndarray:
    """A conductance (1/ms) of the soma plans, one value or [circuit, 1, 1], as [circuit] float64."""
    if isinstance(g, torch.Tensor):
        return g.reshape(-1).cpu().double().numpy()
    return np.full(n_circuits, float(g))


def _fixed_tau_r(dynamics, n_circuits: int) -> np.ndarray:
    """A soma's fixed base tau_r in ms per circuit [circuit], -1 where it is tau_eff (or the soma is not LE)."""
    if not isinstance(dynamics, LatentEquilibrium):
        return np.full(n_circuits, -1.0)
    if dynamics.tau_r_circuits is not None:
        values = dynamics.tau_r_circuits.reshape(-1).cpu().double().numpy()
        return np.where(np.isnan(values), -1.0, values)
    return np.full(n_circuits, dynamics.tau_r if dynamics.tau_r is not None else -1.0)


def _layout(sim: Simulator) -> Layout:
    """The simulator's layout, built on its first compiled call (it depends on the structure only)."""
    if sim.fused_layout is None:
        sim.fused_layout = build_layout(sim)
    return sim.fused_layout


def _circuit_last(x: torch.Tensor) -> np.ndarray:
    """[circuit, ...] -> a C-contiguous numpy array [..., circuit] (the kernel's layout)."""
    return x.permute(*range(1, x.dim()), 0).contiguous().numpy()


def _circuit_first(x: np.ndarray) -> torch.Tensor:
    """The inverse of :func:`_circuit_last`: [..., circuit] -> a contiguous tensor [circuit, ...]."""
    t = torch.from_numpy(x)
    return t.permute(t.dim() - 1, *range(t.dim() - 1)).contiguous()


def present_fused(sim: Simulator, stimuli: torch.Tensor, targets: torch.Tensor | None, steps: int,
                  plan: PhasePlan, probes: list[Probe], step_offset: int, apical: list[str],
                  teacher: bool, average_from: int | Sequence[int] = 0) -> Presented:
    """:meth:`Simulator.present_many` on the kernel: pack the state, integrate, write it back.

    The kernel's arrays hold the circuit as their last (innermost, contiguous) dimension, so that
    every inner loop runs over circuits with the same operation and compiles to SIMD code.
    """
    plan = as_phase_plan(plan)
    lay, st, c = _layout(sim), sim.state, sim.circuit
    n_c, n_b, dtype = sim.n_circuits, sim.n_batch, sim.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    n_pres = stimuli.shape[0]
    n_out = c.populations[sim.output].size

    def packed(group: dict[str, torch.Tensor], keys: list[str]) -> np.ndarray:
        """[batch, neuron (populations side by side), circuit]."""
        parts = [group[k] if k in group else torch.zeros(n_c, n_b, c.populations[k.split(".")[0]].size,
                                                          dtype=dtype) for k in keys]
        return _circuit_last(torch.cat(parts, dim=2))

    rate, pot, sent = (packed(g, lay.pops) for g in (st.rate, st.u, st.u_breve))
    vd = packed(st.v, lay.dend_keys)
    weights = _circuit_last(torch.cat([st.weights[p].reshape(n_c, -1) for p in lay.projs], dim=1))
    dwf = np.zeros_like(weights)
    for name, value in st.dw_filtered.items():
        dwf[lay.w_off[name]:lay.w_off[name] + value[0].numel()] = _circuit_last(value.reshape(n_c, -1))
    factor = np.ones((lay.n_neurons, n_c), dtype=np_dtype)
    for name, value in st.tau_r_factor.items():
        off = lay.pop_off[name]
        factor[off:off + value.shape[-1]] = _circuit_last(value.reshape(n_c, -1))

    syn = np.zeros((n_b, max(lay.n_pre, 1), n_c), dtype=np_dtype)  # tau_s low-pass of each projection's input
    for name, value in st.synaptic.items():
        syn[:, lay.pre_off[name]:lay.pre_off[name] + value.shape[-1]] = _circuit_last(value)
    dbuf = np.zeros((max(int(lay.ints["proj_delay_len"].max(initial=1)), 1), n_b, max(lay.n_pre, 1), n_c),
                    dtype=np_dtype)  # delay ring buffers [slot, batch, presynaptic neuron, circuit]
    for name, value in st.delay_buffer.items():  # [slot, circuit, batch, pre]
        dbuf[:value.shape[0], :, lay.pre_off[name]:lay.pre_off[name] + value.shape[-1]] = \
            value.permute(0, 2, 3, 1).numpy()
    clock = np.array([int(st.clock)], dtype=np.int64)

    def target_array(value: torch.Tensor | None) -> tuple[np.ndarray, bool]:
        if value is None:
            return np.zeros((n_b, n_out, n_c), dtype=np_dtype), False
        return _circuit_last(value.expand(n_c, n_b, n_out)), True

    target_f, target_set = target_array(st.target)
    last, last_set = target_array(st.last_target)
    if not last_set and sim.conventions.initial_target == "zero" and targets is not None:
        last_set = True  # before a run's first presentation the delayed target is zero (model.md sec. 9)
    applied, _ = target_array(st.applied_target)
    flags = np.array([target_set, last_set, st.applied_target is not None], dtype=np.int64)

    # the phase plan as flat tables
    n_plastic = len(plan.plastic)
    # projection, rule, dendrite, predictor, phi code, rounding (the highest of its circuits' codes),
    # rule memory offsets (post, pre), offset of the rounding draws, rule memory present, attenuation per circuit
    pl_int = np.zeros((n_plastic, 11), dtype=np.int64)
    pl_flt = np.zeros((n_plastic, 4), dtype=np.float64)  # tau_w, w_max, decay, tau_hp
    pl_att = np.zeros((n_plastic, n_c), dtype=np.float64)  # each circuit's attenuation c of the predicting dendrite
    # per circuit: precision range, level step, highest level, rounding (0 none, 1 nearest, 2 stochastic)
    pl_q = np.zeros((n_plastic, n_c, 4), dtype=np_dtype)
    pl_eta = np.zeros((n_plastic, n_c), dtype=np.float64)
    mem_sizes, uni_sizes = [0, 0], 0
    for k, (pp, eta) in enumerate(plan.plastic):
        n_post, n_pre_k = c.populations[pp.target].size, c.populations[pp.source].size
        precisions = sim.quantized.get(pp.name, [None] * n_c)
        codes = [0 if q is None else (2 if q.rounding == "stochastic" else 1) for q in precisions]
        rounding = max(codes)  # the highest code of any circuit: 2 where one rounds stochastically
        memory = st.rule_memory.get(pp.name, {})
        pl_int[k] = (lay.projs.index(pp.name), RULE_CODES[pp.rule.name], lay.dend_off[f"{pp.target}.{pp.compartment}"],
                     lay.dend_off[f"{pp.target}.{pp.predicted_from}"],
                     ACTIVATION_CODES[c.populations[pp.target].activation], rounding, mem_sizes[0], mem_sizes[1],
                     uni_sizes, int("low_post" in memory), int(isinstance(pp.attenuation, torch.Tensor)))
        pl_att[k] = _per_circuit(pp.attenuation, n_c)
        pl_flt[k] = (pp.tau_w, pp.w_max if pp.w_max is not None else math.inf,
                     getattr(pp.rule, "decay", 0.0), getattr(pp.rule, "tau_hp", 1.0))
        for ci, (q, code) in enumerate(zip(precisions, codes, strict=True)):
            if q is not None:
                pl_q[k, ci] = (q.range, 2.0 * q.range / (2**q.bits - 1), 2**q.bits - 1, code)
        pl_eta[k] = eta.reshape(-1).double().cpu().numpy() if isinstance(eta, torch.Tensor) else eta
        if pp.rule.memory_names:
            mem_sizes = [mem_sizes[0] + n_post, mem_sizes[1] + n_pre_k]
        if rounding == 2:
            uni_sizes += n_post * n_pre_k
    pl_target = np.asarray([lay.pop_off[p.target] for p, _ in plan.plastic], dtype=np.int64)
    mem_post = np.zeros((n_b, max(mem_sizes[0], 1), n_c), dtype=np_dtype)  # hebbian low-pass filters
    mem_pre = np.zeros((n_b, max(mem_sizes[1], 1), n_c), dtype=np_dtype)
    for k, (pp, _) in enumerate(plan.plastic):
        memory = st.rule_memory.get(pp.name, {})
        if "low_post" in memory:
            mem_post[:, pl_int[k, 6]:pl_int[k, 6] + memory["low_post"].shape[-1]] = _circuit_last(memory["low_post"])
            mem_pre[:, pl_int[k, 7]:pl_int[k, 7] + memory["low_pre"].shape[-1]] = _circuit_last(memory["low_pre"])

    def per_presentation(x: torch.Tensor, size: int) -> np.ndarray:
        """[presentation, circuit, batch, size] -> [presentation, batch, size, circuit]."""
        return x.to(dtype).expand(n_pres, n_c, n_b, size).permute(0, 2, 3, 1).contiguous().numpy()

    stim = per_presentation(stimuli, c.populations[sim.input].size)
    has_targets = targets is not None
    tgts = per_presentation(targets, n_out) if has_targets else np.zeros((n_pres, n_b, n_out, n_c), dtype=np_dtype)
    n_steps = n_pres * steps
    noise_u = np.zeros((1, 1, 1, 1), dtype=np_dtype)
    noise_r = noise_u
    if sim.has_noise:  # drawn presentation by presentation, as the eager path draws them
        noise_u = np.zeros((n_steps, n_b, lay.n_neurons, n_c), dtype=np_dtype)
        noise_r = np.zeros_like(noise_u)
        for j in range(n_pres):
            for key, value in sim.draw_noise(steps).items():  # [step, circuit, batch, neuron]
                pop, _, kind = key.partition(".")
                off = lay.pop_off[pop]
                (noise_r if kind else noise_u)[j * steps:(j + 1) * steps, :, off:off + value.shape[-1]] = \
                    value.permute(0, 2, 3, 1).numpy()

    uni = np.zeros((1, 1, 1), dtype=np_dtype)
    if uni_sizes:  # stochastic rounding: every step's draws in the eager order (projection after projection)
        per_circuit = torch.stack([torch.rand(n_steps, uni_sizes, generator=g, dtype=torch.float64)
                                   for g in sim.rounding_generators], dim=-1)  # [step, draw, circuit]
        uni = per_circuit.to(dtype).contiguous().numpy()

    pr_int = np.zeros((len(probes), 6), dtype=np.int64)  # group, offset, size, reduce, every, buffer offset
    counts, buf_len = [], 0
    for k, probe in enumerate(probes):
        if probe.group == "target":
            off, size = 0, n_out
        elif probe.group == "v":
            off, size = lay.dend_off[probe.key], c.populations[probe.key.split(".")[0]].size
        else:
            off, size = lay.pop_off[probe.key], c.populations[probe.key].size
        width = size if probe.reduce == "none" else 1
        count = (step_offset + n_steps) // probe.every - step_offset // probe.every
        every = min(probe.every, 2**62)  # larger cadences never fire within an int64 step count
        pr_int[k] = (PROBE_GROUPS[probe.group], off, size, REDUCE_CODES[probe.reduce], every, buf_len)
        counts.append((count, width))
        buf_len += count * n_c * n_b * width
    rec = np.zeros(buf_len, dtype=np_dtype)  # per probe [sample, circuit, batch, width]
    ap_off = np.asarray([lay.dend_off[f"{p}.apical"] for p in apical], dtype=np.int64)
    ap_size = np.asarray([c.populations[p].size for p in apical], dtype=np.int64)
    outputs = np.zeros((n_pres, n_b, n_out, n_c), dtype=np_dtype)
    apical_out = np.zeros((n_pres, len(apical), n_c), dtype=np.float64)
    delays = sim.target_delays.cpu().numpy().astype(np.int64)
    scalars = np.array([sim.dt, sim.input_tau_0, sim.teacher_tau_0], dtype=np.float64)
    tau_r_etas = (plan.tau_r_eta.reshape(-1).cpu().double().numpy() if isinstance(plan.tau_r_eta, torch.Tensor)
                  else np.full(n_c, float(plan.tau_r_eta)))
    conventions = sim.conventions
    teacher_before = teacher
    if conventions.teacher_switch == "delayed" and st.last_teacher is not None:
        teacher_before = bool(st.last_teacher)
    config = np.array([steps, int(sim.propagating), int(teacher), int(has_targets), int(sim.has_noise),
                       lay.pop_off[sim.input], c.populations[sim.input].size, lay.pop_off[sim.output], n_out,
                       step_offset, int(teacher_before), int(sim.relax_with_teacher)], dtype=np.int64)
    windows = sim.output_windows(average_from).cpu().numpy().astype(np.int64)
    t = lay.ints
    _kernel(config, scalars, stim, tgts, delays, windows, tau_r_etas, noise_u, noise_r,
            rate, pot, sent, vd, weights, dwf, factor, target_f, last, applied, flags,
            t["soma_pop_off"], t["soma_size"], t["soma_dyn"], t["soma_act"], t["soma_d_start"], t["soma_d_end"],
            t["soma_n_start"], t["soma_n_end"], lay.floats["soma_g_dend"], lay.floats["soma_g_teacher"],
            lay.floats["soma_tau_r"], t["soma_orig"], t["soma_taught"], t["soma_per_circuit"], t["dend_off"],
            t["dend_p_start"], t["dend_p_end"],
            lay.floats["dend_g"], t["dend_projs"], t["nudge_src"], lay.floats["nudge_g"], t["proj_src_off"],
            t["proj_pre"], t["proj_post"], t["proj_w_off"], t["proj_pre_off"], lay.n_pre, t["tied"],
            lay.floats["proj_tau_s"], t["proj_delay_len"], t["proj_delays"], syn, dbuf, clock, int(bool(sim.synapses)),
            pl_int, pl_flt, pl_att, pl_q, pl_eta, pl_target, mem_post, mem_pre, uni,
            pr_int, rec, ap_off, ap_size, outputs, apical_out)

    # write the state back
    def unpack(group: dict[str, torch.Tensor], keys: list[str], offsets: dict[str, int], array: np.ndarray,
               only_existing: bool) -> None:
        for k in keys:
            if only_existing and k not in group:
                continue
            size = c.populations[k.split(".")[0]].size
            group[k] = _circuit_first(array[:, offsets[k]:offsets[k] + size])

    unpack(st.rate, lay.pops, lay.pop_off, rate, False)
    unpack(st.u, lay.pops, lay.pop_off, pot, True)
    unpack(st.u_breve, lay.pops, lay.pop_off, sent, True)
    unpack(st.v, lay.dend_keys, lay.dend_off, vd, False)

    def weight_block(array: np.ndarray, name: str) -> torch.Tensor:
        shape = st.weights[name].shape
        return _circuit_first(array[lay.w_off[name]:lay.w_off[name] + shape[1] * shape[2]]).reshape(shape)

    for name in lay.projs:
        st.weights[name] = weight_block(weights, name)
    for pp, _ in plan.plastic:
        if pp.tau_w > 0.0 and n_steps > 0:
            st.dw_filtered[pp.name] = weight_block(dwf, pp.name)
    for name, value in st.synaptic.items():
        st.synaptic[name] = _circuit_first(syn[:, lay.pre_off[name]:lay.pre_off[name] + value.shape[-1]])
    for name, value in st.delay_buffer.items():
        block = dbuf[:value.shape[0], :, lay.pre_off[name]:lay.pre_off[name] + value.shape[-1]]
        st.delay_buffer[name] = torch.from_numpy(block).permute(0, 3, 1, 2).contiguous()
    st.clock = torch.tensor(int(clock[0]), dtype=torch.int64)
    for k, (pp, _) in enumerate(plan.plastic):
        if pp.rule.memory_names and n_steps > 0:
            size_post, size_pre = c.populations[pp.target].size, c.populations[pp.source].size
            st.rule_memory[pp.name] = {
                "low_post": _circuit_first(mem_post[:, pl_int[k, 6]:pl_int[k, 6] + size_post]),
                "low_pre": _circuit_first(mem_pre[:, pl_int[k, 7]:pl_int[k, 7] + size_pre])}
    for name, value in st.tau_r_factor.items():
        off = lay.pop_off[name]
        st.tau_r_factor[name] = _circuit_first(factor[off:off + value.shape[-1]]).reshape(value.shape)
    st.target = _circuit_first(target_f) if flags[0] else None
    st.last_target = _circuit_first(last) if flags[1] else None
    st.applied_target = _circuit_first(applied) if flags[2] else None
    if n_pres:
        st.last_teacher = torch.tensor(bool(teacher))
    samples, sample_steps = [], []
    for k, probe in enumerate(probes):
        count, width = counts[k]
        start = int(pr_int[k, 5])
        block = rec[start:start + count * n_c * n_b * width].reshape(count, n_c, n_b, width)
        if probe.reduce != "none":
            block = block[..., 0]
        samples.append(torch.from_numpy(block.copy()) if count else None)
        first = step_offset // probe.every + 1
        sample_steps.append([probe.every * (first + i) for i in range(count)])
    outputs_t = torch.from_numpy(outputs).permute(0, 3, 1, 2).contiguous()
    apical_t = torch.from_numpy(apical_out).permute(0, 2, 1).to(dtype).contiguous()
    return Presented(outputs_t, apical_t, samples, sample_steps)


# ---------------------------------------------------------------------------------------- the kernel
def _njit(fn=None, *, inline: str = "never"):
    """Compile with numba, cached on disk; numpy's error model (x / 0 is inf, no exception check) and
    fused multiply-add let the loops over circuits vectorise. No reassociation: sums keep their order.
    ``inline="always"`` inlines a helper into its callers before LLVM sees them (a call in a loop
    would stop it from vectorising)."""
    if fn is None:
        return lambda f: _njit(f, inline=inline)
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"}, inline=inline)(fn)


@_njit(inline="always")
def _softplus(x):
    """log(1 + exp(x)) (soft_relu, model.md sec. 2) in float64 from arithmetic only, so that loops over
    neurons and circuits vectorise: max(x, 0) + log1p(exp(-|x|)) with exp(-|x|) = exp(-|x| / 64)^64 (Taylor polynomial
    of degree 16 on [-0.63, 0]) and log1p(z) = 2 atanh(z / (2 + z)) by its series. Above 20: x, as torch;
    below -40: 0 (the true value is below 4.3e-18). Relative error below 5e-14 on [-40, 20]
    (tests/test_fused.py checks it against torch)."""
    a = min(abs(x), 40.0) * (-1.0 / 64.0)
    e = 1.0 / 20922789888000.0  # Horner: sum_k a^k / k!, k <= 16
    e = e * a + 1.0 / 1307674368000.0
    e = e * a + 1.0 / 87178291200.0
    e = e * a + 1.0 / 6227020800.0
    e = e * a + 1.0 / 479001600.0
    e = e * a + 1.0 / 39916800.0
    e = e * a + 1.0 / 3628800.0
    e = e * a + 1.0 / 362880.0
    e = e * a + 1.0 / 40320.0
    e = e * a + 1.0 / 5040.0
    e = e * a + 1.0 / 720.0
    e = e * a + 1.0 / 120.0
    e = e * a + 1.0 / 24.0
    e = e * a + 1.0 / 6.0
    e = e * a + 1.0 / 2.0
    e = e * a + 1.0 / 1.0
    e = e * a + 1.0 / 1.0
    e = e * e  # ^64: exp(-|x|), written out so that the loops around vectorise
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    s = e / (2.0 + e)
    s2 = s * s
    series = 1.0 / 33.0  # sum_k s^(2k) / (2k + 1), k <= 16
    series = series * s2 + 1.0 / 31.0
    series = series * s2 + 1.0 / 29.0
    series = series * s2 + 1.0 / 27.0
    series = series * s2 + 1.0 / 25.0
    series = series * s2 + 1.0 / 23.0
    series = series * s2 + 1.0 / 21.0
    series = series * s2 + 1.0 / 19.0
    series = series * s2 + 1.0 / 17.0
    series = series * s2 + 1.0 / 15.0
    series = series * s2 + 1.0 / 13.0
    series = series * s2 + 1.0 / 11.0
    series = series * s2 + 1.0 / 9.0
    series = series * s2 + 1.0 / 7.0
    series = series * s2 + 1.0 / 5.0
    series = series * s2 + 1.0 / 3.0
    series = series * s2 + 1.0
    soft = max(x, 0.0) + 2.0 * s * series
    soft = soft if x >= -40.0 else 0.0
    return x if x > 20.0 else soft


@_njit
def _phi(code, x):
    """phi by activation code (model.md sec. 2); a call (the soft_relu loops inline _softplus instead)."""
    if code == 0:
        return _softplus(x)
    if code == 1:
        return 1.0 / (1.0 + math.exp(-x))
    if code == 2:
        return math.tanh(x)
    if code == 3:
        return max(x, 0.0)
    if code == 4:
        return x
    return min(max(x, 0.0), 1.0)


@_njit
def _kernel(config, scalars, stim, tgts, delays, windows, tau_r_etas, noise_u, noise_r,
            rate, pot, sent, vd, weights, dwf, factor, target_f, last, applied, flags,
            soma_pop_off, soma_size, soma_dyn, soma_act, soma_d_start, soma_d_end, soma_n_start, soma_n_end,
            soma_g_dend, soma_g_teacher, soma_tau_r, soma_orig, soma_taught, soma_per_circuit, dend_off,
            dend_p_start, dend_p_end, dend_g, dend_projs,
            nudge_src, nudge_g, proj_src_off, proj_pre, proj_post, proj_w_off, proj_pre_off, n_pre, tied,
            proj_tau_s, proj_delay_len, proj_delays, syn, dbuf, clock, uses_clock,
            pl_int, pl_flt, pl_att, pl_q, pl_eta, pl_target, mem_post, mem_pre, uni,
            pr_int, rec, ap_off, ap_size, outputs, apical_out):
    """Integrate ``stim.shape[0]`` presentations of ``config[0]`` steps each (model.md sec. 1-3, 7).

    Arrays are float32 or float64 alike, circuit last: rate, pot (u), sent (u_breve) [batch, neuron,
    circuit] (populations side by side), vd (dendrites v) [batch, dendrite neuron, circuit], weights and
    dwf (tau_w low-pass of dW/dt) [synapse, circuit], factor (LE tau_r / base) [neuron, circuit],
    target_f / last / applied [batch, n_out, circuit], syn (tau_s filters) [batch, presynaptic neuron,
    circuit], dbuf (delay ring buffers) [slot, batch, presynaptic neuron, circuit], mem_post / mem_pre
    (hebbian_alignment low-pass filters), clock [1]; all are updated in place. delays (the teacher target's
    lag) and windows (the first step of the output average) are steps per circuit [circuit], tau_r_etas the
    learning rate of the LE time constants per circuit (1/ms) [circuit]; soma_g_teacher
    [soma, circuit] and nudge_g [nudge, circuit] are the somatic nudging conductances (1/ms), soma_g_dend
    [soma, circuit] g_l + the dendritic couplings and dend_g [dendrite, circuit] each coupling (1/ms), and
    soma_tau_r [soma, circuit] the fixed base of tau_r (ms, -1: tau_eff) of each circuit; soma_taught [soma] is
    1 where the teacher nudges the soma (in any circuit), soma_per_circuit [soma] 1 where its conductances or
    fixed tau_r differ between circuits; pl_att [plastic projection, circuit] is each circuit's attenuation c of
    the predicting dendrite (pl_int[k, 10] = 1 where it differs between circuits) and pl_q [plastic projection,
    circuit, 4] its weight precision (range, level step, highest level, rounding code 0 none, 1 nearest,
    2 stochastic).
    """
    steps, propagating, teacher, has_targets, has_noise = config[0], config[1], config[2], config[3], config[4]
    in_off, in_size, out_off, n_out, step_offset = config[5], config[6], config[7], config[8], config[9]
    # conventions (model.md sec. 9): the teacher flag before this call's first presentation (the delayed switch,
    # during each circuit's first delays[c] steps) and the output's teacher-off relaxation with g_som; the output
    # is averaged from step windows[c] of each presentation on (per circuit)
    teacher_before, relax_with_teacher = config[10], config[11]
    dt, input_tau_0, teacher_tau_0 = scalars[0], scalars[1], scalars[2]
    n_pres, n_b, n_c = stim.shape[0], stim.shape[1], stim.shape[3]
    tau_r_eta = 0.0  # the largest of the circuits' tau_r learning rates (1/ms)
    for c in range(n_c):
        tau_r_eta = max(tau_r_eta, tau_r_etas[c])
    n_somas = soma_pop_off.shape[0]
    n_plastic = pl_int.shape[0]
    # scratch, allocated once per call
    rate_read = np.empty_like(rate)
    sent_read = np.empty_like(sent)
    carried = np.zeros((n_b, max(n_pre, 1), n_c), dtype=rate.dtype)
    post_f = np.zeros((n_b, n_c), dtype=rate.dtype)  # sums in the state's precision, as torch's products
    current = np.zeros(n_c, dtype=rate.dtype)
    vsum = np.zeros(n_c, dtype=rate.dtype)
    acc = np.zeros(n_c, dtype=rate.dtype)
    learn = np.zeros(factor.shape, dtype=np.float64)
    out_sum = np.zeros((n_b, n_out, n_c), dtype=np.float64)
    counts = np.zeros(pr_int.shape[0], dtype=np.int64)
    # whom the teacher nudges this step, and the output soma's conductances where that differs between circuits
    teach_c = np.zeros(n_c, dtype=np.bool_)
    g_tot_c = np.zeros(n_c, dtype=np.float64)
    scale_c = np.zeros(n_c, dtype=np.float64)
    base_c = np.zeros(n_c, dtype=np.float64)
    # flat views of the contiguous [batch, neuron, circuit] arrays, for the passes that vectorise over neurons
    n_neurons, n_dend = rate.shape[1], vd.shape[1]
    rate_flat, sent_flat, vd_flat = rate.reshape(-1), sent.reshape(-1), vd.reshape(-1)
    weights_flat, carried_flat = weights.reshape(-1), carried.reshape(-1)
    error_rows = 1
    for k in range(n_plastic):
        error_rows = max(error_rows, proj_post[pl_int[k, 0]])
    error = np.zeros((n_b, error_rows, n_c), dtype=np.float64)  # r_post - phi(c v) of one projection
    error_flat = error.reshape(-1)
    for p in range(n_pres):
        out_sum[:] = 0.0
        for i in range(steps):
            t = p * steps + i
            # input population: the (low-passed) stimulus
            for b in range(n_b):
                for j in range(in_size):
                    for c in range(n_c):
                        if input_tau_0 > 0.0:
                            rate[b, in_off + j, c] += dt / input_tau_0 * (stim[p, b, j, c] - rate[b, in_off + j, c])
                        else:
                            rate[b, in_off + j, c] = stim[p, b, j, c]
            # the target of this step: the previous presentation's during each circuit's first delay steps, and
            # with it the teacher's on/off flag of before this call (the delayed switch; else the same flag)
            teach, mixed = False, False
            if has_targets:
                for b in range(n_b):
                    for j in range(n_out):
                        for c in range(n_c):
                            use_last = flags[1] == 1 and i < delays[c]
                            applied[b, j, c] = last[b, j, c] if use_last else tgts[p, b, j, c]
                flags[2] = 1
                for c in range(n_c):
                    teach_c[c] = (teacher_before if p == 0 and i < delays[c] else teacher) == 1
                teach = teach_c[0]
                for c in range(n_c):
                    mixed = mixed or teach_c[c] != teach
                if teach or mixed:
                    filtering = teacher_tau_0 > 0.0 and flags[0] == 1
                    for b in range(n_b):
                        for j in range(n_out):
                            for c in range(n_c):
                                if not teach_c[c]:
                                    continue
                                if filtering:
                                    target_f[b, j, c] += dt / teacher_tau_0 * (applied[b, j, c] - target_f[b, j, c])
                                else:
                                    target_f[b, j, c] = applied[b, j, c]
                    if teacher_tau_0 > 0.0:
                        flags[0] = 1
            else:
                flags[2] = 0
                teach_c[:] = False
            # reference schedule: every population reads the previous step (after the input update)
            if not propagating:
                rate_read[:] = rate
                sent_read[:] = sent
            r_src = rate if propagating else rate_read
            s_src = sent if propagating else sent_read
            for s in range(n_somas):
                po, n, act, le = soma_pop_off[s], soma_size[s], soma_act[s], soma_dyn[s] == 1
                g_off = soma_g_dend[s, 0]
                for k in range(soma_n_start[s], soma_n_end[s]):
                    g_off += nudge_g[k, 0]
                g_teacher = soma_g_teacher[s, 0]
                g_teach = g_teacher if teach else 0.0
                g_tot = g_off + g_teach
                # teacher off under the reference convention: relaxed at g_rate towards the same potential
                g_rate = g_tot + g_teacher if relax_with_teacher and not teach else g_tot
                rate_scale = g_rate / g_tot
                base = soma_tau_r[s, 0] if soma_tau_r[s, 0] > 0.0 else 1.0 / g_rate
                # per circuit where the teacher nudges some circuits' output and not all, or the circuits differ in
                # their nudging conductances or fixed tau_r
                taught = soma_taught[s] == 1
                per_circuit = (mixed and taught) or soma_per_circuit[s] == 1
                if per_circuit:
                    for c in range(n_c):
                        g_o = soma_g_dend[s, c]
                        for k in range(soma_n_start[s], soma_n_end[s]):
                            g_o += nudge_g[k, c]
                        g_t = soma_g_teacher[s, c]
                        g_c = g_o + g_t if teach_c[c] else g_o
                        g_r = g_c + g_t if relax_with_teacher and not teach_c[c] else g_c
                        g_tot_c[c], scale_c[c] = g_c, g_r / g_c
                        base_c[c] = soma_tau_r[s, c] if soma_tau_r[s, c] > 0.0 else 1.0 / g_r
                learning = tau_r_eta > 0.0 and le
                for b in range(n_b):
                    # presynaptic rates as carried this step (kept for plasticity)
                    for d in range(soma_d_start[s], soma_d_end[s]):
                        for m in range(dend_p_start[d], dend_p_end[d]):
                            q = dend_projs[m]
                            co, so, ts, length = proj_pre_off[q], proj_src_off[q], proj_tau_s[q], proj_delay_len[q]
                            if length > 1:  # transmission delay: write this step's rate, read the delayed one
                                slot = clock[0] % length
                                for j in range(proj_pre[q]):
                                    for c in range(n_c):
                                        dbuf[slot, b, co + j, c] = r_src[b, so + j, c]
                                        carried[b, co + j, c] = dbuf[(slot - proj_delays[q, c]) % length, b, co + j, c]
                            else:
                                for j in range(proj_pre[q]):
                                    for c in range(n_c):
                                        carried[b, co + j, c] = r_src[b, so + j, c]
                            if ts > 0.0:  # synaptic low-pass tau_s
                                for j in range(proj_pre[q]):
                                    for c in range(n_c):
                                        r = syn[b, co + j, c] + dt / ts * (carried[b, co + j, c] - syn[b, co + j, c])
                                        syn[b, co + j, c] = r
                                        carried[b, co + j, c] = r
                    for nn in range(n):
                        if n_c == 1:  # one circuit: scalar sums over the presynaptic neurons
                            cur = 0.0
                            for d in range(soma_d_start[s], soma_d_end[s]):
                                # v_c = sum_proj W r_pre, in four interleaved partial sums (independent chains)
                                v0, v1, v2, v3 = 0.0, 0.0, 0.0, 0.0
                                for m in range(dend_p_start[d], dend_p_end[d]):
                                    q = dend_projs[m]
                                    pre, co = proj_pre[q], proj_pre_off[q]
                                    wo = proj_w_off[q] + nn * pre
                                    cb = b * carried.shape[1] + co
                                    j = 0
                                    while j + 4 <= pre:
                                        v0 += weights_flat[wo + j] * carried_flat[cb + j]
                                        v1 += weights_flat[wo + j + 1] * carried_flat[cb + j + 1]
                                        v2 += weights_flat[wo + j + 2] * carried_flat[cb + j + 2]
                                        v3 += weights_flat[wo + j + 3] * carried_flat[cb + j + 3]
                                        j += 4
                                    while j < pre:
                                        v0 += weights_flat[wo + j] * carried_flat[cb + j]
                                        j += 1
                                v1 = (v0 + v1) + (v2 + v3)
                                vd[b, dend_off[d] + nn, 0] = v1
                                cur += dend_g[d, 0] * v1
                            for k in range(soma_n_start[s], soma_n_end[s]):
                                cur += nudge_g[k, 0] * s_src[b, nudge_src[k] + nn, 0]
                            if g_teach > 0.0:
                                cur += g_teach * target_f[b, nn, 0]
                            current[0] = cur
                        else:
                            for c in range(n_c):
                                current[c] = 0.0
                            for d in range(soma_d_start[s], soma_d_end[s]):
                                for c in range(n_c):  # v_c = sum_proj W r_pre
                                    vsum[c] = 0.0
                                for m in range(dend_p_start[d], dend_p_end[d]):
                                    q = dend_projs[m]
                                    pre, co = proj_pre[q], proj_pre_off[q]
                                    wo = proj_w_off[q] + nn * pre
                                    for j in range(pre):
                                        for c in range(n_c):
                                            vsum[c] += weights[wo + j, c] * carried[b, co + j, c]
                                for c in range(n_c):
                                    vd[b, dend_off[d] + nn, c] = vsum[c]
                                    current[c] += dend_g[d, c] * vsum[c]
                            for k in range(soma_n_start[s], soma_n_end[s]):
                                src = nudge_src[k] + nn
                                for c in range(n_c):
                                    current[c] += nudge_g[k, c] * s_src[b, src, c]
                            if per_circuit and taught:
                                for c in range(n_c):
                                    if teach_c[c]:
                                        current[c] += soma_g_teacher[s, c] * target_f[b, nn, c]
                            elif g_teach > 0.0:
                                for c in range(n_c):
                                    current[c] += g_teach * target_f[b, nn, c]
                        for c in range(n_c):
                            u = pot[b, po + nn, c]
                            g_c, scale, base_r = g_tot, rate_scale, base
                            if per_circuit:
                                g_c, scale, base_r = g_tot_c[c], scale_c[c], base_c[c]
                            du = current[c] - g_c * u  # du/dt = I - g_tot u
                            if scale != 1.0:
                                du = du * scale
                            u_next = u + dt * du  # forward Euler
                            if has_noise:
                                u_next += noise_u[t, b, po + nn, c]
                            if le:  # LE: u_breve = u + tau_r du/dt
                                u_rate = u + base_r * factor[po + nn, c] * du
                                if learning:
                                    learn[po + nn, c] += (u_rate - current[c] / g_c) * du
                                u_rate = u_next if soma_orig[s, c] == 1 else u_rate  # an orig circuit among LE ones
                            else:  # orig: r = phi(u(t + dt))
                                u_rate = u_next
                            if has_noise:
                                u_rate += noise_r[t, b, po + nn, c]
                            pot[b, po + nn, c] = u_next
                            sent[b, po + nn, c] = u_rate
                        if act != 0:
                            for c in range(n_c):
                                rate[b, po + nn, c] = _phi(act, np.float64(sent[b, po + nn, c]))
                    if act == 0:  # r = phi(u_breve) over the population's neurons and circuits in one pass
                        first = (b * n_neurons + po) * n_c
                        for ix in range(first, first + n * n_c):
                            rate_flat[ix] = _softplus(np.float64(sent_flat[ix]))
                if learning:  # tau_r rule, batch mean, m >= 0
                    for nn in range(n):
                        for c in range(n_c):
                            if tau_r_etas[c] > 0.0 and soma_orig[s, c] == 0:  # (an orig circuit learns none)
                                base_r = base_c[c] if per_circuit else base
                                f = factor[po + nn, c] - dt * tau_r_etas[c] / base_r * (learn[po + nn, c] / n_b)
                                factor[po + nn, c] = max(f, 0.0)
                            learn[po + nn, c] = 0.0
            # plasticity: W += dt eta dW/dt (tau_w low-pass, clip at w_max, round to the precision)
            for k in range(n_plastic):
                q, rule, dend, pred, act = pl_int[k, 0], pl_int[k, 1], pl_int[k, 2], pl_int[k, 3], pl_int[k, 4]
                rounding, m_post, m_pre, u_off = pl_int[k, 5], pl_int[k, 6], pl_int[k, 7], pl_int[k, 8]
                att = pl_att[k, 0]  # where every circuit has the same (pl_int[k, 10] = 0)
                tau_w, w_max, decay, tau_hp = pl_flt[k, 0], pl_flt[k, 1], pl_flt[k, 2], pl_flt[k, 3]
                pre, post, wo, co, to = proj_pre[q], proj_post[q], proj_w_off[q], proj_pre_off[q], pl_target[k]
                if rule == 2:  # hebbian_alignment: high-passed prediction and presynaptic rate
                    alpha = dt / tau_hp
                    for b in range(n_b):
                        for j in range(pre):
                            for c in range(n_c):
                                x = carried[b, co + j, c]
                                if pl_int[k, 9] == 0:
                                    mem_pre[b, m_pre + j, c] = x
                                mem_pre[b, m_pre + j, c] += alpha * (x - mem_pre[b, m_pre + j, c])
                        for nn in range(post):
                            for c in range(n_c):
                                x = _phi(act, pl_att[k, c] * vd[b, pred + nn, c])
                                if pl_int[k, 9] == 0:
                                    mem_post[b, m_post + nn, c] = x
                                mem_post[b, m_post + nn, c] += alpha * (x - mem_post[b, m_post + nn, c])
                    pl_int[k, 9] = 1
                if rule == 0 and act == 0 and pl_int[k, 10] == 1:  # r_post - phi(c v), each circuit its own c
                    for b in range(n_b):
                        for nn in range(post):
                            for c in range(n_c):
                                error[b, nn, c] = rate[b, to + nn, c] - _softplus(pl_att[k, c] * vd[b, pred + nn, c])
                elif rule == 0 and act == 0:  # dendritic prediction r_post - phi(c v), all neurons in one pass
                    for b in range(n_b):
                        r_at, v_at, e_at = (b * n_neurons + to) * n_c, (b * n_dend + pred) * n_c, b * error_rows * n_c
                        for ix in range(post * n_c):
                            error_flat[e_at + ix] = rate_flat[r_at + ix] - _softplus(att * vd_flat[v_at + ix])
                for nn in range(post):
                    for b in range(n_b):
                        if rule == 0 and act == 0:  # rounded to the state's precision, as the other rules
                            for c in range(n_c):
                                post_f[b, c] = error[b, nn, c]
                        elif rule == 0:
                            for c in range(n_c):
                                post_f[b, c] = rate[b, to + nn, c] - _phi(act, pl_att[k, c] * vd[b, pred + nn, c])
                        elif rule == 1:  # apical silencing: v_rest - v, v_rest = 0
                            for c in range(n_c):
                                post_f[b, c] = -vd[b, dend + nn, c]
                        else:  # hebbian alignment: hp(phi(vhat))
                            for c in range(n_c):
                                x = _phi(act, pl_att[k, c] * vd[b, pred + nn, c])
                                post_f[b, c] = x - mem_post[b, m_post + nn, c]
                    if n_b == 1 and tau_w == 0.0 and rule != 2 and rounding == 0 and n_c == 1:  # one circuit:
                        g = dt * pl_eta[k, 0]  # W += (dt eta) (f_post r_pre) along the row, in one pass
                        f_post = post_f[0, 0]
                        row = wo + nn * pre
                        for j in range(pre):
                            w = weights_flat[row + j] + g * (f_post * carried_flat[co + j])
                            weights_flat[row + j] = min(max(w, -w_max), w_max)
                        continue
                    if n_b == 1 and tau_w == 0.0 and rule != 2 and rounding == 0:  # the common case:
                        for c in range(n_c):  # W += (dt eta f_post) r_pre, four synapses per pass over circuits
                            acc[c] = dt * pl_eta[k, c] * post_f[0, c]
                        row = wo + nn * pre
                        j = 0
                        while j + 4 <= pre:
                            for c in range(n_c):
                                g = acc[c]
                                w0 = weights[row + j, c] + g * carried[0, co + j, c]
                                w1 = weights[row + j + 1, c] + g * carried[0, co + j + 1, c]
                                w2 = weights[row + j + 2, c] + g * carried[0, co + j + 2, c]
                                w3 = weights[row + j + 3, c] + g * carried[0, co + j + 3, c]
                                weights[row + j, c] = min(max(w0, -w_max), w_max)
                                weights[row + j + 1, c] = min(max(w1, -w_max), w_max)
                                weights[row + j + 2, c] = min(max(w2, -w_max), w_max)
                                weights[row + j + 3, c] = min(max(w3, -w_max), w_max)
                            j += 4
                        while j < pre:
                            for c in range(n_c):
                                w = weights[row + j, c] + acc[c] * carried[0, co + j, c]
                                weights[row + j, c] = min(max(w, -w_max), w_max)
                            j += 1
                        continue
                    for j in range(pre):
                        w_index = wo + nn * pre + j
                        for c in range(n_c):
                            acc[c] = 0.0
                        for b in range(n_b):
                            if rule == 2:
                                for c in range(n_c):
                                    acc[c] += post_f[b, c] * (carried[b, co + j, c] - mem_pre[b, m_pre + j, c])
                            else:
                                for c in range(n_c):
                                    acc[c] += post_f[b, c] * carried[b, co + j, c]
                        for c in range(n_c):
                            dw = acc[c] / n_b - decay * weights[w_index, c]
                            if tau_w > 0.0:
                                dwf[w_index, c] += dt / tau_w * (dw - dwf[w_index, c])
                                dw = dwf[w_index, c]
                            w = weights[w_index, c] + dt * pl_eta[k, c] * dw
                            weights[w_index, c] = min(max(w, -w_max), w_max)
                        if rounding > 0:  # 2^bits levels in [-range, range] per circuit, as the eager quantize_
                            for c in range(n_c):
                                code = pl_q[k, c, 3]
                                if code == 0.0:  # this circuit's weights are floats
                                    continue
                                q_range, q_step, q_top = pl_q[k, c, 0], pl_q[k, c, 1], pl_q[k, c, 2]
                                x = min(max(weights[w_index, c], -q_range), q_range)
                                level = (x + q_range) / q_step
                                if code == 1.0:
                                    level = np.rint(level)
                                else:
                                    level = min(np.floor(level + uni[t, u_off + nn * pre + j, c]), q_top)
                                weights[w_index, c] = level * q_step - q_range
            if n_plastic > 0:  # tied top-down weights: W = (W_to)^T
                for k in range(tied.shape[0]):
                    dst, src = tied[k, 0], tied[k, 1]
                    rows, cols = proj_post[dst], proj_pre[dst]
                    for a in range(rows):
                        for bb in range(cols):
                            for c in range(n_c):
                                w_src = weights[proj_w_off[src] + bb * rows + a, c]
                                weights[proj_w_off[dst] + a * cols + bb, c] = w_src
            if uses_clock:
                clock[0] += 1
            # what the presentation reports (from step windows[c] on)
            for b in range(n_b):
                for j in range(n_out):
                    for c in range(n_c):
                        if i >= windows[c]:
                            out_sum[b, j, c] += sent[b, out_off + j, c]
            for a in range(ap_off.shape[0]):
                for c in range(n_c):
                    acc[c] = 0.0
                for b in range(n_b):
                    for nn in range(ap_size[a]):
                        for c in range(n_c):
                            acc[c] += abs(vd[b, ap_off[a] + nn, c])
                for c in range(n_c):
                    apical_out[p, a, c] += acc[c] / (n_b * ap_size[a]) / steps
            step_count = step_offset + t + 1
            for r in range(pr_int.shape[0]):
                if step_count % pr_int[r, 4] != 0:
                    continue
                group, off, size, reduce, start = pr_int[r, 0], pr_int[r, 1], pr_int[r, 2], pr_int[r, 3], pr_int[r, 5]
                width = size if reduce == 0 else 1
                for c in range(n_c):
                    for b in range(n_b):
                        base_index = start + ((counts[r] * n_c + c) * n_b + b) * width
                        total = 0.0
                        for nn in range(size):
                            if group == 4:
                                x = applied[b, nn, c] if flags[2] == 1 else np.nan
                            elif group == 3:
                                x = vd[b, off + nn, c]
                            elif group == 2:
                                x = rate[b, off + nn, c]
                            elif group == 1:
                                x = sent[b, off + nn, c]
                            else:
                                x = pot[b, off + nn, c]
                            if reduce == 0:
                                rec[base_index + nn] = x
                            elif reduce == 1:
                                total += x
                            elif reduce == 3:
                                total += abs(x)
                            else:
                                total += x * x
                        if reduce == 1 or reduce == 3:
                            rec[base_index] = total / size
                        elif reduce == 2:
                            rec[base_index] = math.sqrt(total / size)
                counts[r] += 1
        for b in range(n_b):
            for j in range(n_out):
                for c in range(n_c):
                    outputs[p, b, j, c] = out_sum[b, j, c] / (steps - windows[c])
        if has_targets:
            last[:] = tgts[p]
            flags[1] = 1
        else:
            flags[1] = 0
