"""Experiments: run a spec's protocol on a batch of independent circuits and collect metrics.

Each protocol phase presents stimuli of one data split for ``t_pres`` steps each, with the
teacher on or off and a set of plastic projections. Per epoch and circuit it reports
``loss`` (mean squared error between the presentation-averaged output potential and the
target), ``accuracy`` (fraction of stimuli whose presentation-averaged output has its
maximum at the true class; classification tasks) and ``apical_norm/<pop>`` (mean
|v_apical| of a pyramidal population).
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

import microcircuit
from microcircuit.circuit import Circuit
from microcircuit.devices import resolve_device
from microcircuit.engine import Diverged, PhasePlan, Simulator
from microcircuit.model.activations import numpy_activation
from microcircuit.prospective.simulator import ProspectiveSimulator
from microcircuit.recording import Recorder
from microcircuit.reference.alignment import AlignmentProbe
from microcircuit.seeds import circuit_seeds, derived_seeds, rng
from microcircuit.spec.conventions import average_from_steps, resets_state
from microcircuit.spec.data_files import read_order_file
from microcircuit.spec.schema import Phase, Spec
from microcircuit.tasks import Architecture, Split, make_task

log = logging.getLogger("microcircuit")

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: the columns of a metric row, in the order of ``RunResult.rows`` and metrics.csv (long form: one value per row)
METRIC_COLUMNS = ("phase", "epoch", "seed", "metric", "value")
#: presentations between divergence checks (each check synchronises with the device)
CHECK_EVERY = 50


class RunWriter(Protocol):
    """Where an experiment writes as it runs (a run directory, see ``microcircuit.rundir.RunDir``)."""

    def append_metrics(self, rows: list[tuple]) -> None: ...

    def write_chunk(self, phase: str, epochs: list[int], arrays: dict[str, np.ndarray]) -> None: ...

    def write_checkpoint(self, name: str, payload: dict) -> Any: ...

    def metrics_mark(self) -> dict: ...


@dataclass
class RunOptions:
    """How to run a spec. ``dtype`` None means the spec's."""

    n_seeds: int = 1
    seed: int | None = None
    device: str = "cpu"
    dtype: str | None = None
    progress: bool = True
    engine: str | None = None  # auto | eager | compiled; None means the spec's
    #: explicit circuit seeds (may repeat: a sweep batches runs that share seeds); None means
    #: ``seed`` (or the spec's) + 0..n_seeds-1
    seeds: list[int] | None = None


@dataclass
class PhaseData:
    """Stimuli of one phase for every circuit: inputs [circuit, sample, n_in], targets, labels [sample]."""

    inputs: torch.Tensor
    targets: torch.Tensor | None
    labels: torch.Tensor | None


@dataclass
class RunResult:
    """What a run produced: metric rows (:data:`METRIC_COLUMNS`), the status and, if it diverged, why."""

    rows: list[tuple] = field(default_factory=list)
    status: str = "running"
    diagnosis: str = ""

    def frame(self):
        """The metric rows as a pandas DataFrame with the columns :data:`METRIC_COLUMNS` (as metrics.csv)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(METRIC_COLUMNS))

    def metric(self, phase: str, metric: str) -> dict[int, float]:
        """{seed: value} of the last epoch of ``phase`` for ``metric``."""
        out: dict[int, float] = {}
        for ph, _epoch, seed, name, value in self.rows:
            if ph == phase and name == metric:
                out[seed] = value
        return out


def base_learning_rates(circuit: Circuit, phase: Phase) -> dict[str, float]:
    """eta (1/ms) of every projection that is plastic in ``phase``, before ``eta_scale``:
    the phase's override if it has one, else the projection rule's (:meth:`Circuit.learning_rates`)."""
    return circuit.learning_rates(phase, applied=False)


def effective_learning_rates(circuit: Circuit, phase: Phase) -> dict[str, float]:
    """eta (1/ms) of every projection that is plastic in ``phase``, ``eta_scale`` applied."""
    return {n: eta * phase.eta_factor for n, eta in base_learning_rates(circuit, phase).items()}


def architecture(circuit: Circuit) -> Architecture:
    """The equivalent feedforward network's sizes, attenuations and phi (for the teacher task)."""
    chain = circuit.forward_chain
    sizes = [circuit.populations[chain[0].source].size] + [circuit.populations[q.target].size for q in chain]
    attenuation = [1.0 if circuit.is_prospective else circuit.attenuation(q.target, "basal") for q in chain]
    return Architecture(sizes, attenuation, numpy_activation(circuit.populations[chain[0].target].activation))


class Experiment:
    """Runs the protocol of ``spec`` on ``options.n_seeds`` independent circuits batched together.

    Args:
        spec: validated spec.
        options: seeds, device, dtype, progress.
        run_dir: where to write metrics, recordings and checkpoints (None: in memory only).
    """

    def __init__(self, spec: Spec, options: RunOptions, run_dir: RunWriter | None = None):
        self.spec = spec
        self.options = options
        self.run_dir = run_dir
        self.circuit = Circuit(spec)
        self.master_seed = spec.seed if options.seed is None else options.seed
        self.seeds = (list(options.seeds) if options.seeds is not None
                      else circuit_seeds(self.master_seed, options.n_seeds))
        self.device = resolve_device(options.device)
        self.dtype = DTYPES[options.dtype or spec.dtype]
        self.task = make_task(spec.task)
        n_in = self.circuit.populations[self.circuit.input_population].size
        n_out = self.circuit.populations[self.circuit.output_population].size
        problems = self.task.check_sizes(n_in, n_out)
        if problems:
            raise ValueError(f"task '{self.task.name}' does not fit the circuit: " + "; ".join(problems))
        arch = architecture(self.circuit)
        self.splits: dict[str, Split] = self.task.splits(arch)
        #: phase index -> given stimulus order [circuit, epoch, sample] (phases with ``order: {file}``)
        self.orders = {k: self._given_order(phase) for k, phase in enumerate(spec.protocol) if phase.order}
        # tasks with a known generating network (teacher) report how far the student's W_up are from it
        self.reference_weights = (
            {q.name: torch.as_tensor(w, dtype=self.dtype, device=self.device)
             for q, w in zip(self.circuit.forward_chain, self.task.teacher_weights(arch), strict=True)}
            if hasattr(self.task, "teacher_weights") else {}
        )
        self.sim = self.make_simulator()
        for phase in spec.protocol:
            lag = max(self.output_windows(phase))
            if lag >= phase.t_pres:
                raise ValueError(f"phase '{phase.phase}': the output is averaged from step {lag} of each "
                                 f"presentation (average_from), but a presentation lasts t_pres = {phase.t_pres} steps")
        log.info("engine: %s (%s)", self.sim.engine, self.sim.engine_reason)
        self.recorder = Recorder(list(spec.record), self.sim)
        self.order_rngs = [rng(s, "order") for s in self.seeds]
        self.global_step = 0
        self.trained_epochs = 0
        self.apical_pops = [p.name for p in self.circuit.populations.values() if "apical" in p.cell.dendrites]
        self.result = RunResult()
        self.probe = AlignmentProbe(self.sim) if spec.compare_backprop else None
        self.cursor: tuple[int, int] = (0, 0)  # (phase index, epochs of it completed)
        self.snapshot: dict | None = None  # payload at the last epoch boundary
        self._bar = tqdm(total=0, disable=True)  # replaced by run(); lets run_phase() run on its own
        self._latest: dict = {}
        #: a context in which writes at epoch boundaries run; the command line defers signals in it
        self.critical: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self._last_checkpoint = time.monotonic()

    def make_simulator(self) -> Simulator | ProspectiveSimulator:
        """The simulator of this experiment's circuits (a prospective network's or a microcircuit's)."""
        simulator = ProspectiveSimulator if self.circuit.is_prospective else Simulator
        return simulator(self.circuit, self.seeds, n_batch=1, dtype=self.dtype, device=self.device,
                         engine=self.options.engine or self.spec.engine)

    def _given_order(self, phase: Phase) -> np.ndarray:
        """The order file of ``phase`` as [circuit, epoch, sample], checked against the phase's data."""
        order = read_order_file(phase.order)
        n, epochs, circuits = self._n_samples(phase), phase.epochs, len(self.seeds)
        where = f"{phase.order.file} (order of phase '{phase.phase}')"
        if order.ndim == 1:
            order = np.broadcast_to(order, (circuits, epochs, order.shape[0]))
        elif order.ndim == 2:
            if order.shape[0] < epochs:
                raise ValueError(f"{where}: {order.shape[0]} epoch row(s), the phase has {epochs} epochs")
            order = np.broadcast_to(order[:epochs], (circuits, epochs, order.shape[1]))
        elif order.shape[0] != circuits or order.shape[1] < epochs:
            raise ValueError(f"{where}: shape {list(order.shape)}, expected [{circuits} circuits, >= {epochs} "
                             "epochs, samples]")
        if order.shape[2] != n:
            raise ValueError(f"{where}: {order.shape[2]} indices per epoch, the phase presents {n} samples")
        if order.size and (order.min() < 0 or order.max() >= n):
            raise ValueError(f"{where}: indices must lie in 0..{n - 1}, found {order.min()}..{order.max()}")
        return np.ascontiguousarray(order[:, :epochs])

    # ------------------------------------------------------------------ manifest
    def manifest(self, argv: list[str] | None = None) -> dict:
        return {
            "name": self.spec.name,
            "package": "microcircuit",
            "version": microcircuit.__version__,
            "git": git_info(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "libraries": library_versions(),
            "platform": platform.platform(),
            "device": str(self.device),
            "engine": {"requested": self.options.engine or self.spec.engine, "chosen": self.sim.engine,
                       "reason": self.sim.engine_reason},
            "threads": torch.get_num_threads(),
            "dtype": str(self.dtype).replace("torch.", ""),
            "dt": self.spec.dt,
            "argv": argv if argv is not None else sys.argv,
            "master_seed": self.master_seed,
            "seeds": self.seeds,
            "derived_seeds": derived_seeds(self.seeds),
            "status": self.result.status,
        }

    # ------------------------------------------------------------------ data
    def phase_data(self, phase: Phase) -> PhaseData:
        n_in = self.circuit.populations[self.circuit.input_population].size
        if phase.data == "random":  # a stream per phase, so that a resumed run draws the same inputs
            x = np.stack([rng(seed, f"random/{phase.phase}").uniform(0.0, 1.0, (phase.samples, n_in))
                          for seed in self.seeds])
            return PhaseData(torch.as_tensor(x, dtype=self.dtype, device=self.device), None, None)
        split = self.splits[phase.data]
        n_circuits = len(self.seeds)
        x = torch.as_tensor(split.inputs, dtype=self.dtype, device=self.device)
        t = torch.as_tensor(split.targets, dtype=self.dtype, device=self.device)
        labels = None if split.labels is None else torch.as_tensor(split.labels, device=self.device)
        return PhaseData(x.expand(n_circuits, *x.shape), t.expand(n_circuits, *t.shape), labels)

    def learning_rates(self, phase: Phase) -> dict[str, float | torch.Tensor]:
        """Effective eta (1/ms) of every plastic projection in ``phase`` (a float, or a tensor [circuit])."""
        return effective_learning_rates(self.circuit, phase)

    # ------------------------------------------------------------------ running
    def run(self) -> RunResult:
        """Run every phase (from the cursor, after :meth:`restore`); metrics are appended as they come."""
        total = sum(p.epochs * self._n_samples(p) + self._n_validations(p) * len(self.splits["validation"])
                    for p in self.spec.protocol)
        bar = tqdm(total=total, file=sys.stderr, disable=not self.options.progress, unit="stim",
                   mininterval=1.0, dynamic_ncols=True)
        self._bar = bar
        self._latest: dict = {}  # what the bar shows: accuracy, loss and where they come from
        if self.snapshot is None:
            self.snapshot = self.payload()  # an interrupt before the first epoch ends resumes from here
            if self.run_dir is not None:  # so that even a kill -9 in the first epoch leaves a resumable run
                self.checkpoint("start", self.snapshot)
        try:
            for index, phase in enumerate(self.spec.protocol):
                if index >= self.cursor[0]:
                    self.run_phase(index, phase, first_epoch=self.cursor[1] + 1 if index == self.cursor[0] else 1)
            self.result.status = "done"
        except Diverged as err:
            self.result.status = "diverged"
            self.result.diagnosis = err.diagnosis
            log.error("run diverged: %s", err.diagnosis)
        finally:
            bar.close()
        if self.run_dir is not None and self.result.status == "done":
            self.cursor = (len(self.spec.protocol), 0)
            self.checkpoint("final", self.payload())
        if self.result.status == "done":
            for line in accuracy_summary(self.result).splitlines():
                log.info("%s", line, extra={"console": False})  # the log file keeps what the command prints
        return self.result

    def _n_samples(self, phase: Phase) -> int:
        return phase.samples if phase.data == "random" else len(self.splits[phase.data])

    def _n_validations(self, phase: Phase) -> int:
        return phase.epochs // phase.validate_every if phase.validate_every else 0

    def run_phase(self, index: int, phase: Phase, first_epoch: int = 1) -> None:
        plan = self.sim.plastic_plan(self.learning_rates(phase), self.tau_r_learning_rate(phase))
        if first_epoch == 1:
            self.sim.start_phase()
            if resets_state(self.spec, phase):  # reference convention D5 (model.md sec. 9)
                self.sim.reset_neurons()
        evaluation = not plan.learns
        data = self.phase_data(phase)
        if phase.teacher and self.sim.target_delay > phase.t_pres:
            log.warning("phase '%s': the teacher target lags the stimulus by %d steps, more than t_pres = %d: "
                        "only the previous presentation's target is kept, so the first %d steps of each "
                        "presentation pair the output with a target one presentation too late", phase.phase,
                        self.sim.target_delay, phase.t_pres, self.sim.target_delay - phase.t_pres)
        per_call = self.epochs_per_call(phase, self._n_samples(phase))
        epoch = first_epoch
        while epoch <= phase.epochs:
            count = self._block_length(phase, epoch, per_call)
            last = epoch + count - 1
            self._bar.set_description(f"{phase.phase} {last}/{phase.epochs}", refresh=False)
            labels = [self.trained_epochs] * count if evaluation else list(range(epoch, last + 1))
            given = [self.orders[index][:, e - 1] for e in range(epoch, last + 1)] if index in self.orders else None
            if count == 1:
                self.present_epoch(phase.phase, labels[0], data, phase, plan, shuffle=phase.shuffle,
                                   order=given[0] if given is not None else None)
            else:
                self.present_epochs(phase.phase, labels, data, phase, plan, shuffle=phase.shuffle, orders=given)
            if not evaluation and phase.teacher:
                self.trained_epochs += count
            if phase.validate_every and last % phase.validate_every == 0:
                # inference only: the validation stimuli run in the training phase's batches
                validation = Phase(phase="validate", data="validation", t_pres=phase.t_pres, batch=phase.batch)
                self.present_epoch("validate", self.trained_epochs, self.phase_data(validation), validation,
                                   PhasePlan(), shuffle=False)
            with self.critical():
                self.cursor = (index, last)
                self.snapshot = self.payload()
                if self.run_dir is not None and self._checkpoint_due(last):
                    self.checkpoint(f"{phase.phase}_epoch_{last:04d}", self.snapshot)
            epoch = last + 1

    def epochs_per_call(self, phase: Phase, n_samples: int) -> int:
        """How many epochs of ``phase`` one engine call presents: as many whole epochs as fit in ``CHECK_EVERY``
        presentations (one while the alignment probe measures, which reads the state after every presentation)."""
        if self.probe is not None and phase.teacher:
            return 1
        return max(1, CHECK_EVERY // -(-n_samples // phase.batch))

    def _block_length(self, phase: Phase, epoch: int, per_call: int) -> int:
        """The epochs from ``epoch`` on that run as one block: up to ``per_call``, ending at multiples of it (so that
        a resumed run has the same blocks), at the next validation, at the next ``checkpoint_every`` epoch and at
        the phase's end."""
        ends = [epoch + per_call - 1 - (epoch - 1) % per_call, phase.epochs]
        for every in (phase.validate_every, self.spec.checkpoint_every):
            if every:
                ends.append(epoch + every - 1 - (epoch - 1) % every)
        return min(ends) - epoch + 1

    def _checkpoint_due(self, epoch: int) -> bool:
        """Every ``checkpoint_every`` epochs, or when ``checkpoint_minutes`` of wall time passed since the last."""
        every, minutes = self.spec.checkpoint_every, self.spec.checkpoint_minutes
        return bool(every and epoch % every == 0) or bool(
            minutes and time.monotonic() - self._last_checkpoint >= 60.0 * minutes)

    def present_epoch(self, name: str, epoch: int, data: PhaseData, phase: Phase, plan: PhasePlan,
                      shuffle: bool, order: np.ndarray | None = None) -> None:
        """Present every stimulus of ``data`` once, then log the epoch's metrics. ``order``: the sample
        indices [circuit, sample] from the phase's order file (else drawn by ``shuffle``).

        Presentations run in chunks of up to ``CHECK_EVERY`` per engine call (one at a time while the
        alignment probe measures), with a divergence check after each chunk."""
        self.present_epochs(name, [epoch], data, phase, plan, shuffle, None if order is None else [order])

    def present_epochs(self, name: str, epochs: list[int], data: PhaseData, phase: Phase, plan: PhasePlan,
                       shuffle: bool, orders: list[np.ndarray] | None = None) -> None:
        """Present every stimulus of ``data`` once per epoch, for the epochs labelled ``epochs``, then log each
        epoch's metrics and recordings as :meth:`present_epoch` does. Several epochs run in one engine call
        (at most ``CHECK_EVERY`` presentations, see :meth:`epochs_per_call`); the numbers are those of one call
        per epoch, since the engine carries everything from one call to the next. ``orders``: each epoch's
        sample indices [circuit, sample] from the phase's order file (else drawn by ``shuffle``)."""
        sim = self.sim
        n_circuits = len(self.seeds)
        n = data.inputs.shape[1]
        batch = phase.batch
        n_presentations = -(-n // batch)
        fill = np.arange(n_presentations * batch - n) % n  # the last batch is filled from the start (wraps)
        epoch_orders, padded = [], []
        for k in range(len(epochs)):
            if orders is not None:
                order = orders[k]  # given (from a file): the order streams are not drawn from
            elif shuffle:
                order = np.stack([g.permutation(n) for g in self.order_rngs])
            else:
                order = np.broadcast_to(np.arange(n), (n_circuits, n))
            epoch_orders.append(order)
            padded.append(np.concatenate([order, order[:, fill]], axis=1))
        padded_all = np.concatenate(padded, axis=1)  # [circuit, epoch * presentation * batch]
        circuit_index = torch.arange(n_circuits, device=self.device)[:, None]
        channels = self.recorder.active(name)
        probes = [c.probe for c in channels]
        if sim.n_batch != batch:
            sim.reset_neurons(batch)
        probing = self.probe is not None and phase.teacher and data.targets is not None
        windows = self.output_windows(phase)
        average_from = windows[0] if len(set(windows)) == 1 else windows
        total = len(epochs) * n_presentations
        chunk = 1 if probing else (total if len(epochs) > 1 else CHECK_EVERY)
        where = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
        first_step = self.global_step
        outputs, apical = [], []
        for first in range(0, total, chunk):
            count = min(chunk, total - first)
            idx = torch.as_tensor(np.ascontiguousarray(
                padded_all[:, first * batch:(first + count) * batch].reshape(n_circuits, count, batch).swapaxes(0, 1)),
                device=self.device)  # [presentation, circuit, batch]
            x = data.inputs[circuit_index, idx]
            target = data.targets[circuit_index, idx] if data.targets is not None else None
            if probing:
                self.probe.start([p.name for p, _ in plan.plastic])
            res = sim.present_many(x, target, phase.t_pres, plan, probes, self.global_step, self.apical_pops,
                                   teacher=phase.teacher, average_from=average_from)
            if probing:
                self.probe.finish(target[0])
            self.recorder.add(channels, res)
            self.global_step += count * phase.t_pres
            outputs.append(res.outputs)
            apical.append(res.apical)
            if len(epochs) == 1:
                self._bar.update(min(count * batch, n - first * batch))
            sim.check_finite(f"phase '{name}', {where}, step {self.global_step}")
        all_outputs, all_apical = torch.cat(outputs), torch.cat(apical)
        block_rows = []
        for k, epoch in enumerate(epochs):
            part = slice(k * n_presentations, (k + 1) * n_presentations)
            # [presentation, circuit, batch, n_out] -> [circuit, sample in presentation order, n_out]
            outputs_t = all_outputs[part].permute(1, 0, 2, 3).reshape(n_circuits, -1, all_outputs.shape[-1])[:, :n]
            apical_sum = all_apical[part].sum(dim=0)  # [circuit, apical population]
            rows = self.epoch_metrics(name, epoch, data, epoch_orders[k], outputs_t,
                                      {p: apical_sum[:, j] for j, p in enumerate(self.apical_pops)}, n_presentations)
            if self.probe is not None:
                rows += self.probe.rows(name, epoch, self.seeds)
            self._show_latest(name, rows)
            if len(epochs) > 1:
                self._bar.update(n)
            block_rows += rows
        with self.critical():  # the block's metric rows, then its recordings as one chunk
            self.result.rows.extend(block_rows)
            if self.run_dir is not None:
                self.run_dir.append_metrics(block_rows)
                ends = [(e, first_step + (k + 1) * n_presentations * phase.t_pres) for k, e in enumerate(epochs)]
                chunk_data = self.recorder.take_chunk(ends if len(epochs) > 1 else None)
                if chunk_data:
                    self.run_dir.write_chunk(name, epochs, chunk_data)

    def _show_latest(self, name: str, rows: list[tuple]) -> None:
        """The latest validation accuracy and loss (means over circuits) in the progress bar; until the
        first validation, those of the phase that runs."""
        if name != "validate" and "val" in self._latest:
            return
        for metric in ("accuracy", "loss"):
            values = [value for _, _, _, m, value in rows if m == metric]
            if values:
                self._latest[metric] = float(np.mean(values))
        self._latest["val" if name == "validate" else "phase"] = name
        parts = [f"{'val' if name == 'validate' else name}"]
        if "accuracy" in self._latest:
            parts.append(f"acc {self._latest['accuracy']:.3f}")
        if "loss" in self._latest:
            parts.append(f"loss {self._latest['loss']:.4g}")
        if len(parts) > 1:
            self._bar.set_postfix_str(" ".join(parts), refresh=False)

    def epoch_metrics(self, name, epoch, data: PhaseData, order, outputs, apical, n_presentations) -> list[tuple]:
        """outputs: presentation-averaged outputs [circuit, sample (presentation order), n_out];
        apical: summed per-presentation mean |v_apical| [circuit]."""
        rows = []
        order_t = torch.as_tensor(np.array(order), device=self.device)
        loss = acc = None
        if data.targets is not None:
            targets = torch.gather(data.targets, 1, order_t[..., None].expand(-1, -1, data.targets.shape[-1]))
            loss = (outputs - targets).square().mean(dim=(1, 2))
            if data.labels is not None and self.task.classification:
                labels = data.labels[order_t]
                acc = (outputs.argmax(dim=-1) == labels).to(self.dtype).mean(dim=1)
        for c, seed in enumerate(self.seeds):
            if loss is not None:
                rows.append((name, epoch, seed, "loss", float(loss[c])))
            if acc is not None:
                rows.append((name, epoch, seed, "accuracy", float(acc[c])))
            for p, total in apical.items():
                rows.append((name, epoch, seed, f"apical_norm/{p}", float(total[c]) / n_presentations))
            for proj, w_ref in self.reference_weights.items():
                w = self.sim.state.weights[proj][c]
                rows.append((name, epoch, seed, f"weight_distance/{proj}", float((w - w_ref).norm() / w_ref.norm())))
        return rows

    # ------------------------------------------------------------------ checkpoints
    def tau_r_learning_rate(self, phase: Phase) -> float | torch.Tensor:
        """The learning rate of the LE prospective time constants in ``phase`` (1/ms): a float, or a tensor
        [circuit] where the circuits differ in it."""
        return phase.tau_r_eta

    def output_windows(self, phase: Phase) -> list[int]:
        """The step of each presentation of ``phase`` from which each circuit's output is averaged, [circuit]
        (model.md sec. 9: under ``average_from: reference_lag`` it follows each circuit's output dynamics)."""
        return [average_from_steps(self.spec, phase, le) for le in self.sim.output_le_circuits()]

    def payload(self) -> dict:
        """Everything needed to continue exactly from the current epoch boundary: weights, neuron state,
        RNG states, protocol cursor and the number of metric rows written. Tensors and primitives only
        (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "format": 1,
            "spec_name": self.spec.name,
            "seeds": self.seeds,
            "cursor": {"phase": self.cursor[0], "epoch": self.cursor[1], "global_step": self.global_step,
                       "trained_epochs": self.trained_epochs, "metric_rows": len(self.result.rows)},
            # the rows written so far and their checksum, so that a resume can check metrics.csv
            "metrics": self.run_dir.metrics_mark() if self.run_dir is not None else {},
            "state": {k: v.detach().cpu().clone() for k, v in self.sim.state.tensors().items()},
            "rng": {
                "order": [json.dumps(g.bit_generator.state) for g in self.order_rngs],
                "noise": [g.get_state() for g in self.sim.noise_generators],
                "rounding": [g.get_state() for g in self.sim.rounding_generators],
            },
        }

    def checkpoint(self, name: str, payload: dict | None = None) -> None:
        """Write a checkpoint (default: the last epoch boundary, the point a resumed run continues from)."""
        if payload is None:
            payload = self.snapshot if self.snapshot is not None else self.payload()
        self.run_dir.write_checkpoint(name, payload)
        self._last_checkpoint = time.monotonic()

    def restore(self, payload: dict) -> None:
        """Continue from a checkpoint written by :meth:`payload` (same spec, seeds, device and dtype)."""
        if payload["seeds"] != self.seeds:
            raise ValueError(f"checkpoint seeds {payload['seeds']} differ from this run's {self.seeds}")
        cursor = payload["cursor"]
        self.cursor = (cursor["phase"], cursor["epoch"])
        self.global_step, self.trained_epochs = cursor["global_step"], cursor["trained_epochs"]
        self.sim.load_state({k: v.to(self.device) for k, v in payload["state"].items()})
        for g, text in zip(self.order_rngs, payload["rng"]["order"], strict=True):
            g.bit_generator.state = json.loads(text)
        for g, value in zip(self.sim.noise_generators, payload["rng"]["noise"], strict=True):
            g.set_state(value)
        for g, value in zip(self.sim.rounding_generators, payload["rng"].get("rounding", []), strict=False):
            g.set_state(value)
        self.snapshot = payload


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("numpy", "torch", "networkx", "pyyaml", "pydantic", "seaborn", "matplotlib", "pandas", "tqdm"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_info() -> dict:
    """Commit and dirty flag of the package's source tree, if it is a git checkout (an editable install).

    An installed copy (a wheel in site-packages) has none, even when its folder lies inside some git work tree."""
    root = Path(microcircuit.__file__).resolve().parent.parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return {}
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


#: up to this many circuits, :func:`accuracy_summary` lists each seed
SEED_TABLE_MAX = 10


def accuracy_summary(result: RunResult, phase: str = "test") -> str:
    """The accuracy of the last epoch of ``phase`` as text: one line per seed (up to
    :data:`SEED_TABLE_MAX` seeds) and a summary line (mean, min, max); "" without accuracy rows."""
    acc = result.metric(phase, "accuracy")
    if not acc:
        return ""
    values = list(acc.values())
    lines = []
    if 1 < len(acc) <= SEED_TABLE_MAX:
        width = max(len(str(seed)) for seed in acc)
        lines = [f"{phase} accuracy per seed:"]
        lines += [f"  seed {seed:>{width}}  {value:.3f}" for seed, value in acc.items()]
    lines.append(f"{phase} accuracy: mean {np.mean(values):.3f}, min {min(values):.3f}, max {max(values):.3f} "
                 f"over {len(values)} seed(s)")
    return "\n".join(lines)


__all__ = ["Experiment", "RunOptions", "RunResult", "accuracy_summary"]
