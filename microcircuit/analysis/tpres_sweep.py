"""Analysis ``tpres_sweep``: bars accuracy against presentation time, LE versus orig (Haider 2021, Fig. 3).

The 9-30-3 bars circuit (circuits/bars_le.yaml; ``orig`` somas for the other variant) is trained for
``--epochs`` epochs with presentation time t_pres (steps of dt) and learning rates scaled by 1/t_pres
(eta_up = [5, 1] / t_pres, eta_IP = 2 / t_pres in 1/ms, the spec's ``eta_scale: inverse_t_pres``), then
tested with the teacher off: accuracy = fraction of the 8 patterns whose presentation-averaged output
rate potential peaks at the true class.

All (t_pres, seed) pairs of a variant are circuits of ONE Simulator: each circuit switches to its next
pattern every t_pres of its own steps (own shuffled order per epoch, the stream ``order`` of its seed, as
``microcircuit run``), its own teacher target (delayed by the spec's target delay) and its own learning
rate (a per-circuit eta tensor). Circuits of short t_pres finish first: they are tested on their own
(a Simulator of just those circuits, state copied) and dropped, and the others continue in a rebuilt,
smaller Simulator. Circuit (t_pres, seed) therefore follows exactly what
``microcircuit run circuits/bars_le.yaml --seed SEED --set parameters.t_pres=T --set protocol.0.validate_every=0``
does (tests/test_analyses.py checks this).

Writes ``accuracy.csv`` (one row per variant, t_pres and seed), ``curves.csv`` (train accuracy per epoch,
teacher on), ``timing.csv`` (measured step costs), ``accuracy.png`` and ``curves.png`` into ``--out``;
prints the accuracy table, the wall time and the estimated wall time of the full sweep.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.circuit import Circuit, tagged
from microcircuit.engine import Diverged, Simulator
from microcircuit.experiment import DTYPES, architecture, base_learning_rates, resolve_device
from microcircuit.rundir import atomic_write_text
from microcircuit.seeds import circuit_seeds, rng
from microcircuit.spec import load_spec
from microcircuit.spec.schema import Spec
from microcircuit.tasks import Split, make_task

ROOT = Path(__file__).resolve().parents[2]
#: presentation times of Haider 2021, Fig. 3 (steps of dt)
POINTS = [3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
#: quick mode: 300 epochs are what LE needs for 100 % at t_pres = 10 dt (100 epochs give 62-100 %)
QUICK_POINTS = [3, 10, 30]
QUICK_EPOCHS = 300
DYNAMICS = {"latent_equilibrium": "LE", "orig": "orig"}
#: steps between divergence checks (each is a pass over all weights and potentials)
CHECK_EVERY = 20_000


def variant_spec(dynamics: str, epochs: int, dtype: str = "float32", schedule: str | None = None) -> Spec:
    """circuits/bars_le.yaml with ``dynamics`` somas, ``epochs`` training epochs, no validation, no recording
    (and another ``schedule`` if given: ``reference`` or ``propagating``)."""
    overrides = [f"defaults.population.dynamics={dynamics}", f"protocol.0.epochs={epochs}",
                 "protocol.0.validate_every=0", f"dtype={dtype}", "record=[]"]
    if schedule:
        overrides.append(f"schedule={schedule}")
    return load_spec(ROOT / "circuits" / "bars_le.yaml", overrides)[0]


def subset(sim: Simulator, index: list[int]) -> Simulator:
    """A Simulator of the circuits ``index`` of ``sim``, with their weights, neuron state and noise streams.

    State tensors are [circuit, ...] (the 0-d step clock is shared). Circuits with synaptic delays cannot be
    split: their ring buffers are as long as the longest delay of the whole batch.
    """
    if any(plan.delays is not None for plan in getattr(sim, "synapses", {}).values()):
        raise ValueError("circuits with synaptic delays cannot be split into sub-batches")
    new = Simulator(sim.circuit, [sim.seeds[i] for i in index], n_batch=sim.n_batch, dtype=sim.dtype,
                    device=sim.device)
    idx = torch.as_tensor(index, device=sim.device)
    flat = {k: v.clone() if v.dim() == 0 else v.index_select(0, idx).clone() for k, v in sim.state.tensors().items()}
    new.load_state(flat)
    new.noise_generators = [sim.noise_generators[i] for i in index]
    new.rounding_generators = [sim.rounding_generators[i] for i in index]
    return new


@dataclass
class Group:
    """The circuits of one presentation time: one per seed, contiguous in the running Simulator."""

    t_pres: int
    seeds: list[int]
    start: int  # index of the first circuit in the running Simulator
    order_rngs: list[np.random.Generator]
    presentations: int = 0  # presentations started
    order: np.ndarray | None = None  # [seed, n_train]: this epoch's pattern order
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [seed] this epoch's correct answers
    pending: torch.Tensor | None = None  # target to apply ``delay`` steps into the presentation

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + len(self.seeds))


@dataclass
class SweepResult:
    """What one variant produced."""

    accuracy: pd.DataFrame  # dynamics, t_pres, seed, test_accuracy, test_loss, epochs, steps, finished_s
    curves: pd.DataFrame  # dynamics, t_pres, seed, epoch, train_accuracy
    timing: pd.DataFrame  # dynamics, n_circuits, steps, wall_s, cpu_s, cpu_us_per_step
    weights: dict[int, dict[str, torch.Tensor]]  # t_pres -> final weights [seed, post, pre]
    wall_s: float  # wall-clock seconds of the whole variant
    cpu_s: float  # CPU seconds of this process for it
    steps: int


class Sweep:
    """Trains and tests all (t_pres, seed) circuits of one spec in one batched simulation.

    Args:
        spec: the bars spec of the variant (protocol: a ``train`` phase, then a ``test`` phase).
        points: presentation times (steps of dt).
        n_seeds: circuits per point; seeds are the spec's master seed + 0..n_seeds-1.
        device, dtype: of the simulation (dtype: the spec's if None).
        log: print a line to stderr when a point is done.
    """

    def __init__(self, spec: Spec, points: list[int], n_seeds: int, device: str = "cpu",
                 dtype: torch.dtype | None = None, log: bool = True):
        self.spec = spec
        self.points = sorted(points)
        self.circuit = Circuit(spec)
        self.train_phase, self.test_phase = spec.protocol[0], spec.protocol[-1]
        self.seeds = circuit_seeds(spec.seed, n_seeds)
        self.device = resolve_device(device)
        self.dtype = dtype or DTYPES[spec.dtype]
        self.log = log
        task = make_task(spec.task)
        splits = task.splits(architecture(self.circuit))
        self.train: Split = splits[self.train_phase.data]
        self.test: Split = splits[self.test_phase.data]
        self.label = DYNAMICS.get(tagged_dynamics(spec), tagged_dynamics(spec))

    # ------------------------------------------------------------------ helpers
    def learning_rates(self, t_pres: torch.Tensor) -> dict[str, torch.Tensor]:
        """eta per plastic projection of the train phase, one per circuit (1/ms), from t_pres [circuit]."""
        phase = self.train_phase
        if phase.eta_scale == "inverse_t_pres":
            scale = 1.0 / t_pres.to(torch.float64)
        else:
            scale = torch.full_like(t_pres, float(phase.eta_scale), dtype=torch.float64)
        return {n: eta * scale for n, eta in base_learning_rates(self.circuit, phase).items()}

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ running
    def run(self) -> SweepResult:
        """Train every circuit for the train phase's epochs at its own t_pres, test each point when it is done.

        The loop advances all running circuits together, step by step, up to the next event (a presentation
        boundary or a delayed teacher switch of some point), where it swaps in the next stimuli and targets.
        """
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        n_seeds, n_train = len(self.seeds), len(self.train)
        epochs = self.train_phase.epochs
        groups = [Group(p, list(self.seeds), i * n_seeds, [rng(s, "order") for s in self.seeds],
                        correct=np.zeros(n_seeds)) for i, p in enumerate(self.points)]
        sim = Simulator(self.circuit, [s for _ in self.points for s in self.seeds], dtype=self.dtype,
                        device=self.device)
        if any(soma.noise > 0 or getattr(soma, "rate_noise", 0.0) > 0 for soma in sim.somas):
            raise ValueError("the sweep does not simulate noise: set the populations' noise to 0")
        tau_r_eta = float(getattr(self.train_phase, "tau_r_eta", 0.0))
        sim.tau_r_eta = tau_r_eta
        delay = sim.target_delay
        if delay >= min(self.points):
            raise ValueError(f"the target delay ({delay} steps) must be shorter than every t_pres {self.points}")
        n_out = self.circuit.populations[sim.output].size
        x_train, y_train = self.tensor(self.train.inputs), self.tensor(self.train.targets)
        labels = np.asarray(self.train.labels)
        stim = torch.zeros(sim.n_circuits, 1, x_train.shape[1], dtype=self.dtype, device=self.device)
        applied = torch.zeros(sim.n_circuits, 1, n_out, dtype=self.dtype, device=self.device)
        current = applied.clone()  # the target of each circuit's current presentation
        out_sum = applied.clone()
        t_pres_c = torch.as_tensor([g.t_pres for g in groups for _ in g.seeds])
        plan = sim.plastic_plan(self.learning_rates(t_pres_c))
        accuracy_rows, curve_rows, timing_rows = [], [], []
        final_weights: dict[int, dict[str, torch.Tensor]] = {}
        t = 0
        segment_start, segment_cpu, segment_t = time.perf_counter(), time.process_time(), 0
        next_check = CHECK_EVERY
        while groups:
            finished: list[Group] = []
            for g in groups:
                sl = g.slice
                phase_step = t % g.t_pres
                if phase_step == 0:
                    if g.presentations > 0:  # score the presentation that just ended (train, teacher on)
                        pattern = g.order[:, (g.presentations - 1) % n_train]
                        pred = out_sum[sl, 0].argmax(dim=-1).cpu().numpy()
                        g.correct += pred == labels[pattern]
                        if g.presentations % n_train == 0:
                            epoch = g.presentations // n_train
                            curve_rows += [(self.label, g.t_pres, s, epoch, c / n_train)
                                           for s, c in zip(g.seeds, g.correct, strict=True)]
                            g.correct = np.zeros(n_seeds)
                    if g.presentations == epochs * n_train:
                        finished.append(g)
                        continue
                    j = g.presentations % n_train
                    if j == 0:
                        g.order = np.stack([r.permutation(n_train) for r in g.order_rngs])
                    pattern = torch.as_tensor(g.order[:, j], device=self.device)
                    stim = stim.clone()
                    stim[sl, 0] = x_train[pattern]
                    current[sl, 0] = y_train[pattern]
                    if delay == 0 or g.presentations == 0:
                        applied = applied.clone()
                        applied[sl] = current[sl]
                    else:
                        g.pending = current[sl].clone()
                    out_sum[sl] = 0.0
                    g.presentations += 1
                elif phase_step == delay and g.pending is not None:
                    applied = applied.clone()
                    applied[sl] = g.pending
                    g.pending = None
            if finished:
                elapsed, cpu = time.perf_counter() - segment_start, time.process_time() - segment_cpu
                timing_rows.append((self.label, sim.n_circuits, t - segment_t, elapsed, cpu,
                                    1e6 * cpu / max(t - segment_t, 1)))
                sim.check_finite(f"t_pres sweep ({self.label}), step {t}")
                for g in finished:
                    acc, loss, weights = self.evaluate(sim, g, current)
                    final_weights[g.t_pres] = weights
                    done_s = time.perf_counter() - start_wall
                    accuracy_rows += [(self.label, g.t_pres, s, float(a), float(lo), epochs, t, done_s)
                                      for s, a, lo in zip(g.seeds, acc, loss, strict=True)]
                    if self.log:
                        print(f"  {self.label} t_pres={g.t_pres}: test accuracy mean {100 * acc.mean():.1f} %, "
                              f"min {100 * acc.min():.1f} %, max {100 * acc.max():.1f} % "
                              f"({t} steps, {done_s:.0f} s)", file=sys.stderr, flush=True)
                keep = [g for g in groups if g not in finished]
                index = [i for g in keep for i in range(g.start, g.start + len(g.seeds))]
                groups = keep
                if not groups:
                    break
                sim = subset(sim, index)
                sim.tau_r_eta = tau_r_eta
                idx = torch.as_tensor(index, device=self.device)
                stim, applied, current, out_sum = (a.index_select(0, idx) for a in (stim, applied, current, out_sum))
                t_pres_c = t_pres_c[index]
                offset = 0
                for g in groups:
                    g.start, offset = offset, offset + len(g.seeds)
                plan = sim.plastic_plan(self.learning_rates(t_pres_c))
                segment_start, segment_cpu, segment_t = time.perf_counter(), time.process_time(), t
            # run to the next event (a presentation boundary or a delayed target switch of some group)
            nxt = min(_next_event(t, g.t_pres, delay if g.pending is not None else None) for g in groups)
            output = sim.output
            for _ in range(nxt - t):
                sim.step(stim, applied, plan)
                out_sum += sim.state.u_breve[output]
            t = nxt
            if t >= next_check:
                sim.check_finite(f"t_pres sweep ({self.label}), step {t}")
                next_check = t + CHECK_EVERY
        wall, cpu_total = time.perf_counter() - start_wall, time.process_time() - start_cpu
        return SweepResult(
            accuracy=pd.DataFrame(accuracy_rows, columns=["dynamics", "t_pres", "seed", "test_accuracy", "test_loss",
                                                          "epochs", "steps", "finished_s"]),
            curves=pd.DataFrame(curve_rows, columns=["dynamics", "t_pres", "seed", "epoch", "train_accuracy"]),
            timing=pd.DataFrame(timing_rows, columns=["dynamics", "n_circuits", "steps", "wall_s", "cpu_s",
                                                      "cpu_us_per_step"]),
            weights=final_weights, wall_s=wall, cpu_s=cpu_total, steps=t,
        )

    def evaluate(self, sim: Simulator, group: Group, current: torch.Tensor) -> tuple[np.ndarray, np.ndarray, dict]:
        """Test phase of one finished group on a Simulator of its own circuits (teacher off, no plasticity).

        Returns:
            test accuracy [seed] (fraction), test loss [seed] (mean squared error of the presentation-averaged
            output potential), final weights {projection: [seed, post, pre]}.
        """
        index = list(range(group.start, group.start + len(group.seeds)))
        sub = subset(sim, index)
        sub.tau_r_eta = float(getattr(self.test_phase, "tau_r_eta", 0.0))
        sub.state.last_target = current[group.slice].clone()
        weights = {k: v.detach().cpu().clone() for k, v in sub.state.weights.items()}
        n_test = len(self.test)
        if self.test_phase.shuffle:
            order = np.stack([r.permutation(n_test) for r in group.order_rngs])
        else:
            order = np.broadcast_to(np.arange(n_test), (len(group.seeds), n_test))
        x, y = self.tensor(self.test.inputs), self.tensor(self.test.targets)
        labels = np.asarray(self.test.labels)
        correct = np.zeros(len(group.seeds))
        loss = np.zeros(len(group.seeds))
        for j in range(n_test):
            pattern = torch.as_tensor(np.ascontiguousarray(order[:, j]), device=self.device)
            res = sub.present(x[pattern][:, None], y[pattern][:, None], group.t_pres, [], teacher=False)
            out = res["output"][:, 0]
            correct += out.argmax(dim=-1).cpu().numpy() == labels[order[:, j]]
            loss += (out - y[pattern]).square().mean(dim=-1).cpu().numpy()
        sub.check_finite(f"t_pres sweep ({self.label}), test of t_pres={group.t_pres}")
        return correct / n_test, loss / n_test, weights


def _next_event(t: int, period: int, delay: int | None) -> int:
    """The first step index > t at which a group with this period has an event."""
    boundary = (t // period + 1) * period
    if delay is not None:
        switch = (t // period) * period + delay
        if switch > t:
            return min(boundary, switch)
    return boundary


def tagged_dynamics(spec: Spec) -> str:
    """The dynamics name of the spec's defaults (``latent_equilibrium`` or ``orig``)."""
    return tagged(spec.defaults.population.dynamics)[0]


# ---------------------------------------------------------------------- cost model
def step_costs(spec: Spec, n_circuits: list[int], steps: int = 250, device: str = "cpu") -> dict[int, float]:
    """Measured seconds per step of a training Simulator with ``n`` circuits, for each n.

    CPU time of this process (``time.process_time``, one torch thread): the wall time on an idle core,
    robust against other processes sharing the machine. On CUDA, wall time after synchronising.
    """
    cuda = str(device).startswith("cuda")
    clock = time.perf_counter if cuda else time.process_time
    circuit = Circuit(spec)
    dtype = DTYPES[spec.dtype]
    costs = {}
    for n in sorted(set(n_circuits)):
        sim = Simulator(circuit, list(range(n)), dtype=dtype, device=device)
        plan = sim.plastic_plan({k: torch.full((n,), 0.01) for k in ("up_1", "up_2", "ip_1")})
        x = torch.rand(n, 1, 9, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        y = torch.full((n, 1, 3), 0.5, dtype=dtype, device=device)
        out = torch.zeros_like(y)
        for _ in range(50):
            sim.step(x, y, plan)
        if cuda:
            torch.cuda.synchronize()
        begin = clock()
        for _ in range(steps):
            sim.step(x, y, plan)
            out += sim.state.u_breve[sim.output]
        if cuda:
            torch.cuda.synchronize()
        costs[n] = (clock() - begin) / steps
    return costs


def estimate_wall_time(points: list[int], n_seeds: int, epochs: int, costs: dict[int, float],
                       n_train: int = 8) -> float:
    """Seconds for one variant, from per-step costs by number of circuits (:func:`step_costs`): each segment
    between two points' ends runs with the circuits still active, then the finished point is tested."""
    points = sorted(points)
    total, t = 0.0, 0
    for i, p in enumerate(points):
        end = epochs * n_train * p
        total += (end - t) * costs[(len(points) - i) * n_seeds]
        total += n_train * p * costs[n_seeds]  # the test of this point
        t = end
    return total


# ---------------------------------------------------------------------- figures
def plot_accuracy(df: pd.DataFrame, tau_eff_steps: float, path: Path, epochs: int,
                  schedule: str = "reference") -> None:
    """Test accuracy (%) vs t_pres (log x), mean and min-max over seeds, LE vs orig; t_pres in tau_eff on top."""
    import seaborn as sns

    palette = sns.color_palette("colorblind")
    colours = {"LE": palette[0], "orig": palette[3]}
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        for dynamics, grp in df.groupby("dynamics"):
            stats = grp.groupby("t_pres")["test_accuracy"].agg(["mean", "min", "max"]).sort_index() * 100
            n_seeds = grp.groupby("t_pres")["seed"].nunique().min()
            x = stats.index.to_numpy()
            ax.fill_between(x, stats["min"], stats["max"], color=colours.get(dynamics), alpha=0.2, lw=0)
            ax.plot(x, stats["mean"], marker="o", color=colours.get(dynamics),
                    label=f"{dynamics} (mean, range and seeds; {n_seeds} seeds)")
            jitter = np.exp(np.random.default_rng(0).uniform(-0.06, 0.06, len(grp)))
            ax.scatter(grp["t_pres"] * jitter, 100 * grp["test_accuracy"], s=12, color=colours.get(dynamics),
                       alpha=0.5, lw=0)
        ax.axhline(37.5, color="0.4", ls=":", lw=1.0, label="one class for every pattern (37.5 %)")
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        points = sorted(df["t_pres"].unique())
        ax.set_xscale("log")
        ax.set_xlim(points[0] / 1.5, points[-1] * 1.5)
        ax.xaxis.set_major_locator(FixedLocator(points))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylim(0, 105)
        ax.set_xlabel("presentation time t_pres (steps of dt = 0.1 ms)")
        ax.set_ylabel("test accuracy (%)")
        top = ax.secondary_xaxis("top", functions=(lambda s: s / tau_eff_steps, lambda v: v * tau_eff_steps))
        top.set_xlabel(f"t_pres (tau_eff = {tau_eff_steps:.1f} dt)")
        top.xaxis.set_major_locator(FixedLocator([0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200]))
        top.xaxis.set_minor_locator(NullLocator())
        top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"Bars 9-30-3: test accuracy after {epochs} epochs against presentation time, LE vs orig\n"
                     f"({schedule} schedule, learning rates scaled by 1/t_pres; dots: seeds, line: mean, band: range)",
                     fontsize=10)
        ax.legend(loc="lower right", fontsize=8, frameon=True)
        fig.tight_layout()
        save_figure(fig, path)


def plot_curves(df: pd.DataFrame, path: Path) -> None:
    """Train accuracy (teacher on) vs epoch, one panel per variant, one line per t_pres (mean over seeds)."""
    import seaborn as sns

    variants = list(dict.fromkeys(df["dynamics"]))
    df = df.copy()
    width = max(1, int(df["epoch"].max()) // 100)  # average over bins of epochs to tame the per-epoch noise
    df["epoch"] = (df["epoch"] - 1) // width * width + (width + 1) / 2
    with styled() as plt:
        fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4.2), sharey=True, squeeze=False)
        points = sorted(df["t_pres"].unique())
        palette = dict(zip(points, sns.color_palette("viridis", len(points)), strict=True))
        for ax, dynamics in zip(axes[0], variants, strict=True):
            sub = df[df["dynamics"] == dynamics].copy()
            sub["train_accuracy"] *= 100
            sns.lineplot(data=sub, x="epoch", y="train_accuracy", hue="t_pres", palette=palette, errorbar=None,
                         ax=ax, lw=1.2)
            ax.set_title(f"{dynamics}: train accuracy (teacher on), mean over seeds"
                         + (f" and {width} epochs" if width > 1 else ""), fontsize=10)
            ax.set_xlabel("epoch (8 patterns)")
            ax.set_ylabel("train accuracy (%)")
            ax.set_ylim(0, 105)
            ax.legend(title="t_pres (dt)", fontsize=8, title_fontsize=8, ncol=2, loc="lower right")
        fig.tight_layout()
        save_figure(fig, path)


# ---------------------------------------------------------------------- program
def summary(acc: pd.DataFrame, tau_eff_steps: float) -> str:
    g = acc.groupby(["t_pres", "dynamics"])["test_accuracy"]
    table = (g.agg(["mean", "min", "max"]) * 100).unstack("dynamics")
    table.columns = [f"{d} {s} %" for s, d in table.columns]
    table.insert(0, "t_pres/tau_eff", table.index.to_numpy() / tau_eff_steps)
    return table.to_string(float_format=lambda v: f"{v:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tpres_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/tpres_sweep"))
    parser.add_argument("--quick", action="store_true",
                        help=f"points {' '.join(map(str, QUICK_POINTS))} dt, {QUICK_EPOCHS} epochs, 3 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per point (default 10; quick 3)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default 1000; quick {QUICK_EPOCHS})")
    parser.add_argument("--points", type=int, nargs="+", default=None,
                        help=f"presentation times in steps of dt (default {' '.join(map(str, POINTS))})")
    parser.add_argument("--variants", nargs="+", choices=sorted(DYNAMICS), default=list(DYNAMICS))
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--schedule", choices=["reference", "propagating"], default=None,
                        help="override the spec's schedule (bars_le.yaml: reference)")
    parser.add_argument("--estimate", action="store_true",
                        help="only measure step costs and print the estimated time of this sweep and the full one")
    parser.add_argument("--no-estimate", action="store_true", help="skip the step-cost measurement")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    points = sorted(set(args.points or (QUICK_POINTS if args.quick else POINTS)))
    n_seeds = args.seeds or (3 if args.quick else 10)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else 1000)
    if min(points) < 1 or n_seeds < 1 or epochs < 1:
        parser.error("--points, --seeds and --epochs must be positive")
    specs = {d: variant_spec(d, epochs, args.dtype, args.schedule) for d in args.variants}
    circuit = Circuit(next(iter(specs.values())))
    tau_eff_steps = circuit.tau_eff("pyr_1", teacher=False) / circuit.spec.dt

    estimate_line = ""
    if not args.no_estimate or args.estimate:  # cost model from step costs measured on this machine now
        full_seeds = 10
        sizes = {k * n_seeds for k in range(1, len(points) + 1)} | {k * full_seeds for k in range(1, len(POINTS) + 1)}
        costs = {d: step_costs(s, sorted(sizes), device=args.device) for d, s in specs.items()}
        predicted = sum(estimate_wall_time(points, n_seeds, epochs, c) for c in costs.values())
        full = sum(estimate_wall_time(POINTS, full_seeds, 1000, c) for c in costs.values())
        estimate_line = (f"estimated time on one idle core (measured step costs): this sweep {predicted:.0f} s; "
                         f"the full sweep ({len(POINTS)} points up to {max(POINTS)} dt, {full_seeds} seeds, "
                         f"1000 epochs, {len(costs)} variant(s)) {full:.0f} s = {full / 3600:.2f} h")
        if args.estimate:
            for d, c in costs.items():
                print(f"{DYNAMICS[d]} CPU per step (us) by number of circuits: "
                      + ", ".join(f"{n}: {1e6 * v:.0f}" for n, v in sorted(c.items())))
            print(estimate_line)
            return 0

    schedule = next(iter(specs.values())).schedule
    print(f"t_pres sweep: points {points} dt, {n_seeds} seeds, {epochs} epochs, variants "
          f"{[DYNAMICS[d] for d in args.variants]}, {schedule} schedule, {args.dtype}, {args.device}",
          file=sys.stderr, flush=True)
    results = []
    try:
        for spec in specs.values():
            results.append(Sweep(spec, points, n_seeds, device=args.device).run())
    except Diverged as err:
        print(f"error: the sweep diverged: {err.diagnosis}", file=sys.stderr)
        return 1
    acc = pd.concat([r.accuracy for r in results], ignore_index=True)
    acc.insert(2, "t_pres_tau", acc["t_pres"] / tau_eff_steps)
    curves = pd.concat([r.curves for r in results], ignore_index=True)
    timing = pd.concat([r.timing for r in results], ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "accuracy.csv", acc.to_csv(index=False))
    atomic_write_text(args.out / "curves.csv", curves.to_csv(index=False))
    atomic_write_text(args.out / "timing.csv", timing.to_csv(index=False))
    plot_accuracy(acc, tau_eff_steps, args.out / "accuracy.png", epochs, schedule)
    plot_curves(curves, args.out / "curves.png")
    print(f"test accuracy after {epochs} epochs ({n_seeds} seeds, {schedule} schedule; "
          f"tau_eff = {tau_eff_steps:.1f} dt):")
    print(summary(acc, tau_eff_steps))
    for dynamics, r in zip(specs, results, strict=True):
        print(f"{DYNAMICS[dynamics]}: {r.steps} steps in {r.wall_s:.1f} s wall, {r.cpu_s:.1f} s CPU "
              f"({1e6 * r.cpu_s / max(r.steps, 1):.0f} us CPU per step on average)")
    if estimate_line:
        print(estimate_line)
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
