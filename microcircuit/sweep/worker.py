"""What a worker does with one task: simulate its runs as one batch on the experiment layer, write each run.

A task's runs share one :class:`~microcircuit.experiment.Experiment` (the package's one protocol loop): their
circuits are concatenated along the circuit dimension, with one learning rate per circuit where the runs
differ in it. A task of one run is exactly ``microcircuit run SPEC --seeds N --seed FIRST``. When a circuit of
a batched simulation runs away, the runs that hold one are simulated alone and the others again as one batch
without them, so that only the diverging run is recorded as diverged (a batch that stops with no circuit to
blame has every run simulated alone). Each run's files are written into ``SWEEP_DIR/runs/<id>/`` atomically;
``done.json`` is written last and marks the run finished (its ``status``: ``done``, ``diverged`` or ``error``).

With ``divergence: circuit`` a run whose batch diverges is resolved per circuit instead: its runaway circuits
are recorded as diverged (metric ``run/diverged`` = 1), its other circuits are simulated alone, and the run
is done. Every run reports, per circuit, the run-level metrics ``run/diverged`` and, with LE populations,
``run/tau_r_error_initial`` and ``run/tau_r_error`` (mean |tau_r / tau_eff - 1| before and after).
"""

from __future__ import annotations

import io
import json
import logging
import time
import traceback
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
import yaml

from microcircuit.circuit import Circuit, tagged
from microcircuit.engine import POTENTIAL_BOUND, WEIGHT_BOUND, Simulator
from microcircuit.experiment import METRIC_COLUMNS, Experiment, RunOptions, effective_learning_rates
from microcircuit.model.dynamics import make_dynamics
from microcircuit.prospective.simulator import ProspectiveSimulator
from microcircuit.rundir import atomic_write_bytes, atomic_write_text
from microcircuit.seeds import rng
from microcircuit.spec.schema import Phase, Spec
from microcircuit.sweep.grouping import Task
from microcircuit.sweep.spec import Run

COMPLETION = "done.json"
#: statuses that a restarted sweep does not run again (an error, e.g. a lost worker, is retried)
FINAL = ("done", "diverged")


class _ByCircuit:
    """The alignment probe, with its rows labelled by circuit index (as :class:`GroupExperiment`'s)."""

    def __init__(self, probe):
        self._probe = probe

    def __getattr__(self, name: str):
        return getattr(self._probe, name)

    def rows(self, phase: str, epoch: int, seeds: list[int]) -> list[tuple]:
        return self._probe.rows(phase, epoch, list(range(len(seeds))))


class GroupExperiment(Experiment):
    """One experiment over the circuits of several runs that differ only in values the engine holds per
    circuit: seeds, learning rates, the LE mismatch and fixed tau_r, orig vs LE, tau_r learning and noise levels,
    and in a microcircuit the nudging, transmission delays and weight precision
    (see :mod:`microcircuit.sweep.grouping`).

    Args:
        members: (spec, circuits) of each run, in circuit order; the first spec is the template.
        options: with ``seeds`` set to every circuit's seed, run after run.

    Each run's initial tau_r factors are drawn from its own spec (as the run alone draws them). Metric rows
    are labelled by circuit index (0..n-1) instead of seed, since runs share seeds.
    """

    def __init__(self, members: list[tuple[Spec, int]], options: RunOptions):
        self.members = [(Circuit(spec), spec, n) for spec, n in members]
        super().__init__(members[0][0], options)
        if self.probe is not None:
            self.probe = _ByCircuit(self.probe)
        start = 0
        for circuit, _spec, n in self.members:
            seeds = self.seeds[start:start + n]
            for name, factor in self.sim.state.tau_r_factor.items():
                population = circuit.populations[name]
                own = make_dynamics(population.dynamics, population.size,
                                    [rng(s, f"mismatch/{name}") for s in seeds]).initial_factor()
                if own is None:  # no tau_r factor of its own (orig areas of a prospective network): m = 1
                    continue
                factor[start:start + n] = own.to(factor.device, factor.dtype)
            start += n

    def make_simulator(self) -> Simulator | ProspectiveSimulator:
        """The template's simulator, each soma (or prospective area) with the dynamics (orig or LE), fixed tau_r
        and noise levels, and in a microcircuit each soma with the leak, dendritic and nudging conductances, each
        weighted projection with the transmission delay and weight precision and each circuit with the initial
        weights, of each member's circuits."""
        circuits = [circuit for circuit, _spec, n in self.members for _ in range(n)]  # each circuit's own
        somas = {name: [c.populations[name] for c in circuits]
                 for name, p in self.circuit.populations.items() if p.cell.has_soma}
        per_circuit = {name: [tagged(p.dynamics)[0] for p in ps] for name, ps in somas.items()}
        noise = {name: [float(p.noise) for p in ps] for name, ps in somas.items()}
        noise |= {f"{name}.rate": [float(p.rate_noise) for p in ps] for name, ps in somas.items()}
        tau_r = {name: [fixed_tau_r(p.dynamics) for p in ps] for name, ps in somas.items()}
        if self.circuit.is_prospective:  # no conductances, nudging, delays or precision
            return ProspectiveSimulator(self.circuit, self.seeds, n_batch=1, dtype=self.dtype, device=self.device,
                                        engine=self.options.engine or self.spec.engine,
                                        dynamics_per_circuit=per_circuit, noise_per_circuit=noise,
                                        tau_r_per_circuit=tau_r)
        projections = {name: [c.projections[name] for c in circuits] for name in self.circuit.projections}
        nudges = {name: qs for name, qs in projections.items() if qs[0].compartment == "soma"}
        weighted = {name: qs for name, qs in projections.items() if qs[0].compartment != "soma"}
        nudging = {name: [q.conductance for q in qs] for name, qs in nudges.items()}
        nudging["teacher"] = [c.teacher_conductance for c in circuits]
        delays = {name: [(q.delay_steps, q.delay_jitter) for q in qs] for name, qs in weighted.items()}
        precision = {name: [q.precision for q in qs] for name, qs in weighted.items()}
        conductances = {name: [dict(p.conductances) for p in ps] for name, ps in somas.items()}
        weights, start = {}, 0  # each run's initial weights, as it draws them alone (self-predicting ones follow
        for circuit, _spec, n in self.members:  # its own conductances)
            for name, w in circuit.init_weights(self.seeds[start:start + n], self.dtype, self.device).items():
                weights.setdefault(name, []).append(w)
            start += n
        return Simulator(self.circuit, self.seeds, n_batch=1, dtype=self.dtype, device=self.device,
                         engine=self.options.engine or self.spec.engine, dynamics_per_circuit=per_circuit,
                         noise_per_circuit=noise, tau_r_per_circuit=tau_r, nudging_per_circuit=nudging,
                         delays_per_circuit=delays, precision_per_circuit=precision,
                         conductances_per_circuit=conductances,
                         initial_weights={name: torch.cat(ws) for name, ws in weights.items()})

    def learning_rates(self, phase: Phase) -> dict[str, float | torch.Tensor]:
        """eta per plastic projection: a float where every circuit has the same, else a tensor [circuit]."""
        index = next(k for k, p in enumerate(self.spec.protocol) if p is phase)
        per_circuit = []
        for circuit, spec, n in self.members:
            per_circuit += [effective_learning_rates(circuit, spec.protocol[index])] * n
        out: dict[str, float | torch.Tensor] = {}
        for name in per_circuit[0]:
            values = [rates[name] for rates in per_circuit]
            out[name] = values[0] if len(set(values)) == 1 else torch.tensor(values, dtype=torch.float64)
        return out

    def tau_r_learning_rate(self, phase: Phase) -> float | torch.Tensor:
        """tau_r_eta of ``phase`` in each member's spec: a float where every circuit has the same, else [circuit]."""
        index = next(k for k, p in enumerate(self.spec.protocol) if p is phase)
        values = [float(spec.protocol[index].tau_r_eta) for _circuit, spec, n in self.members for _ in range(n)]
        return values[0] if len(set(values)) == 1 else torch.tensor(values, dtype=torch.float64)

    def epoch_metrics(self, name, epoch, data, order, outputs, apical, n_presentations) -> list[tuple]:
        rows = super().epoch_metrics(name, epoch, data, order, outputs, apical, n_presentations)
        n = len(self.seeds)
        per = len(rows) // n if n else 0
        out = []
        for k, (phase, ep, seed, metric, value) in enumerate(rows):
            circuit = k // per
            if per * n != len(rows) or seed != self.seeds[circuit]:  # pragma: no cover - guards the layout
                raise RuntimeError("epoch metrics are not in blocks per circuit; cannot label them by circuit")
            out.append((phase, ep, circuit, metric, value))
        return out


def runaway_circuits(sim: Simulator) -> set[int]:
    """Indices of circuits whose weights or somatic potentials are NaN/Inf or beyond the engine's bounds."""
    bad: set[int] = set()
    for tensors, bound in ((sim.state.weights, WEIGHT_BOUND), (sim.state.u, POTENTIAL_BOUND)):
        for x in tensors.values():
            flags = (~torch.isfinite(x) | (x.abs() > bound)).flatten(1).any(dim=1)
            bad |= {int(i) for i in torch.nonzero(flags).flatten()}
    return bad


def fixed_tau_r(dynamics) -> float | None:
    """The fixed base tau_r (ms) of a population's dynamics value, None for tau_eff or without LE."""
    name, params = tagged(dynamics)
    return params.get("tau_r") if name == "latent_equilibrium" else None


def tau_r_errors(sim: Simulator) -> list[float | None] | None:
    """Mean |tau_r / tau_eff - 1| over every LE neuron, per circuit (None without LE populations; a circuit's
    entry is None where it has none of its own: an orig circuit batched with LE ones)."""
    factors = {name: f.flatten(1) for name, f in sim.state.tau_r_factor.items()}
    if not factors:
        return None
    orig = {soma.name: soma.orig_circuits.reshape(-1).tolist() for soma in getattr(sim, "somas", [])
            if soma.orig_circuits is not None}
    if not orig:
        return (torch.cat(list(factors.values()), dim=1) - 1).abs().mean(dim=1).tolist()
    errors: list[float | None] = []
    for c in range(sim.n_circuits):  # the LE populations of circuit c, in the order a run of it alone has them
        own = [f[c] for name, f in factors.items() if not (name in orig and orig[name][c])]
        errors.append(float((torch.cat(own)[None] - 1).abs().mean(dim=1)) if own else None)
    return errors


def _run_rows(experiment: Experiment, initial: list[float] | None, diverged: bool) -> list[tuple]:
    """Run-level rows (phase ``run``, epoch 0) per circuit: ``diverged`` (0/1) and, with LE populations,
    ``tau_r_error_initial`` and ``tau_r_error`` (mean |tau_r / tau_eff - 1| before and after), labelled by
    circuit index."""
    final = tau_r_errors(experiment.sim)
    rows = []
    for c in range(len(experiment.seeds)):
        rows.append(("run", 0, c, "diverged", float(diverged)))
        if initial is not None and final is not None and final[c] is not None and not diverged:
            rows += [("run", 0, c, "tau_r_error_initial", float(initial[c])),
                     ("run", 0, c, "tau_r_error", float(final[c]))]
    return rows


def _simulate(runs: list[Run], device: str) -> dict:
    """Simulate ``runs`` as one batch. Returns status, diagnosis, per-run rows (seed-labelled), weights,
    engine, steps, wall and CPU seconds, and the circuits that ran away (indices over the whole batch)."""
    wall, cpu = time.perf_counter(), time.process_time()
    runaway: set[int] = set()
    if len(runs) == 1:
        run = runs[0]
        experiment = Experiment(run.spec, RunOptions(n_seeds=len(run.seeds), seed=run.seeds[0], device=device,
                                                     progress=False))
        initial = tau_r_errors(experiment.sim)
        result = experiment.run()
        if result.status == "diverged":
            runaway = runaway_circuits(experiment.sim)
        rows = [result.rows + [(ph, ep, run.seeds[c], m, v) for ph, ep, c, m, v in
                               _run_rows(experiment, initial, result.status != "done")]]
    else:
        seeds = [s for r in runs for s in r.seeds]
        experiment = GroupExperiment([(r.spec, len(r.seeds)) for r in runs],
                                     RunOptions(n_seeds=len(seeds), seeds=seeds, device=device, progress=False))
        initial = tau_r_errors(experiment.sim)
        result = experiment.run()
        if result.status == "diverged":
            runaway = runaway_circuits(experiment.sim)
        result.rows += _run_rows(experiment, initial, result.status != "done")
        offsets = _circuit_offsets(runs)
        rows = [[] for _ in runs]
        for phase, epoch, circuit, metric, value in result.rows:
            k = next(j for j in range(len(runs)) if circuit < offsets[j + 1])
            rows[k].append((phase, epoch, runs[k].seeds[circuit - offsets[k]], metric, value))
    weights = []
    start = 0
    for r in runs:
        index = torch.arange(start, start + len(r.seeds))
        weights.append({k: v.detach().cpu().index_select(0, index).clone()
                        for k, v in experiment.sim.state.weights.items()})
        start += len(r.seeds)
    return {"status": result.status, "diagnosis": result.diagnosis, "rows": rows, "weights": weights,
            "engine": experiment.sim.engine, "steps": experiment.global_step,
            "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "runaway": runaway}


def _per_circuit(run: Run, device: str, outcome: dict) -> dict:
    """After ``run``'s batch diverged: its runaway circuits are recorded as diverged, every other circuit is
    simulated alone (as ``microcircuit run --seed S`` does); the run is done, per circuit."""
    rows: list[tuple] = []
    bad = []
    steps, cpu = outcome["steps"], outcome["cpu_s"]
    weights: dict[str, list[torch.Tensor]] = {}
    for c, seed in enumerate(run.seeds):
        single = None
        if c not in outcome["runaway"]:
            single = _simulate([replace(run, seeds=[seed])], device)
            steps, cpu = steps + single["steps"], cpu + single["cpu_s"]
        if single is None or single["status"] != "done":
            bad.append(seed)
            rows.append(("run", 0, seed, "diverged", 1.0))
            continue
        rows += single["rows"][0]
        for name, w in single["weights"][0].items():
            weights.setdefault(name, []).append(w)
    diagnosis = (f"circuit(s) with seed {bad} diverged ({outcome['diagnosis']}); the others were simulated alone"
                 if bad else "")
    return {**outcome, "status": "done", "diagnosis": diagnosis, "rows": [rows], "steps": steps, "cpu_s": cpu,
            "weights": [{k: torch.cat(v) for k, v in weights.items()}] if len(bad) == 0 else [{}]}


def run_task(task: Task) -> list[dict]:
    """Simulate a task and write its runs; returns each run's completion record (as in ``done.json``)."""
    from microcircuit.threads import apply_thread_policy

    apply_thread_policy(None)
    quiet = logging.getLogger("microcircuit")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # a run's info lines (the engine chosen) are in runs.csv
    try:
        return _run_task(task)
    finally:
        quiet.setLevel(level)


def _run_task(task: Task) -> list[dict]:
    started = time.time()
    records = []
    try:
        outcome = _simulate(task.runs, task.device)
        if outcome["status"] == "diverged" and len(task.runs) == 1 and task.divergence == "circuit":
            outcome = _per_circuit(task.runs[0], task.device, outcome)
        spoiled = _spoiled_runs(task.runs, outcome)
        if spoiled and len(spoiled) < len(task.runs):
            # the runs with a runaway circuit are simulated alone, the others batched again without them
            note = f"the batch of {len(task.runs)} runs stopped ({outcome['diagnosis']})"
            for k in spoiled:
                records += _run_alone(task, task.runs[k], task.ids[k], note=f"{note}; simulated alone")
            clean = [k for k in range(len(task.runs)) if k not in spoiled]
            rest = replace(task, runs=[task.runs[k] for k in clean], ids=[task.ids[k] for k in clean])
            for record in _run_task(rest):
                record["note"] = f"{note}; simulated again without the runs that ran away" + (
                    f"; {record['note']}" if record.get("note") else "")
                _write_completion(task, record["id"], record)
                records.append(record)
            return records
        if outcome["status"] != "done" and len(task.runs) > 1:
            # the batch stopped and no run is to blame: simulate every run alone, so that the others finish
            for run, run_id in zip(task.runs, task.ids, strict=True):
                records += _run_alone(task, run, run_id, note=f"the batch of {len(task.runs)} runs stopped "
                                      f"({outcome['diagnosis']}); simulated alone")
            return records
        for k, (run, run_id) in enumerate(zip(task.runs, task.ids, strict=True)):
            records.append(_write_run(task, run, run_id, outcome, k, started))
    except Exception:  # noqa: BLE001 - recorded with its traceback; the sweep goes on
        if len(task.runs) > 1:
            for run, run_id in zip(task.runs, task.ids, strict=True):
                records += _run_alone(task, run, run_id, note="the batch raised an error; simulated alone")
            return records
        records.append(_write_error(task, task.runs[0], task.ids[0], traceback.format_exc(), started))
    return records


def _circuit_offsets(runs: list[Run]) -> list[int]:
    """The index of each run's first circuit in a batch of ``runs``, and the number of circuits last."""
    offsets = [0]
    for r in runs:
        offsets.append(offsets[-1] + len(r.seeds))
    return offsets


def _spoiled_runs(runs: list[Run], outcome: dict) -> list[int]:
    """Indices of the runs of a diverged batch that hold a circuit that ran away (empty if it did not diverge
    or no circuit is to blame)."""
    if outcome["status"] != "diverged" or len(runs) < 2:
        return []
    offsets = _circuit_offsets(runs)
    return [k for k in range(len(runs)) if any(offsets[k] <= c < offsets[k + 1] for c in outcome["runaway"])]


def _run_alone(task: Task, run: Run, run_id: str, note: str) -> list[dict]:
    """Simulate one run of ``task`` in a simulation of its own and write it, with ``note`` in its record."""
    started = time.time()
    task = replace(task, runs=[run], ids=[run_id])
    try:
        outcome = _simulate([run], task.device)
        if outcome["status"] == "diverged" and task.divergence == "circuit":
            outcome = _per_circuit(run, task.device, outcome)
    except Exception:  # noqa: BLE001
        return [_write_error(task, run, run_id, traceback.format_exc(), started)]
    record = _write_run(task, run, run_id, outcome, 0, started)
    record["note"] = note
    _write_completion(task, run_id, record)
    return [record]


def run_folder(task: Task, run_id: str) -> Path:
    return Path(task.sweep_dir) / "runs" / run_id


def _record(task: Task, run: Run, run_id: str, started: float) -> dict:
    return {"id": run_id, "index": run.index, "axes": run.axes, "seeds": run.seeds, "simulation": task.number,
            "n_circuits": task.n_circuits, "started": started}


def _write_run(task: Task, run: Run, run_id: str, outcome: dict, k: int, started: float) -> dict:
    folder = run_folder(task, run_id)
    atomic_write_text(folder / "config.resolved.yaml", yaml.safe_dump(run.resolved, sort_keys=False))
    rows = pd.DataFrame(outcome["rows"][k], columns=list(METRIC_COLUMNS))
    atomic_write_text(folder / "metrics.csv", rows.to_csv(index=False))
    if task.save_weights and outcome["status"] == "done":
        buf = io.BytesIO()
        torch.save(outcome["weights"][k], buf)
        atomic_write_bytes(folder / "weights.pt", buf.getvalue())
    record = _record(task, run, run_id, started)
    record.update(status=outcome["status"], error=outcome["diagnosis"], engine=outcome["engine"],
                  steps=outcome["steps"], wall_s=outcome["wall_s"], cpu_s=outcome["cpu_s"], finished=time.time())
    _write_completion(task, run_id, record)
    return record


def _write_error(task: Task, run: Run, run_id: str, error: str, started: float) -> dict:
    record = _record(task, run, run_id, started)
    record.update(status="error", error=error, engine="", steps=0, wall_s=time.time() - started, cpu_s=0.0,
                  finished=time.time())
    _write_completion(task, run_id, record)
    return record


def _write_completion(task: Task, run_id: str, record: dict) -> None:
    atomic_write_text(run_folder(task, run_id) / COMPLETION, json.dumps(record, indent=2, default=str) + "\n")


def read_completion(sweep_dir: Path, run_id: str) -> dict | None:
    """A run's completion record, or None if it has not finished (or its file is unreadable)."""
    path = Path(sweep_dir) / "runs" / run_id / COMPLETION
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


__all__ = ["COMPLETION", "FINAL", "GroupExperiment", "read_completion", "run_task"]
