"""Analysis ``tpres_sweep``: bars accuracy against presentation time, LE versus orig (Haider 2021, Fig. 3).

The 9-30-3 bars circuit (circuits/bars_le.yaml; ``orig`` somas for the other variant) is trained for
``--epochs`` epochs with presentation time t_pres (steps of dt) and learning rates scaled by 1/t_pres
(eta_up = [5, 1] / t_pres, eta_IP = 2 / t_pres in 1/ms, the spec's ``eta_scale: inverse_t_pres``), then
tested with the teacher off: accuracy = fraction of the 8 patterns whose presentation-averaged output
rate potential peaks at the true class.

Every (variant, t_pres) point is one run of the experiment layer with its seeds batched into one
simulation (the compiled engine where it applies): circuit (t_pres, seed) is exactly what
``microcircuit run circuits/bars_le.yaml --seed SEED --set parameters.t_pres=T --set protocol.0.validate_every=0``
does (tests/test_analyses.py checks this). Points are independent tasks; ``--workers N`` runs them in N
processes of one thread each, longest first.

Writes ``accuracy.csv`` (one row per variant, t_pres and seed), ``curves.csv`` (train accuracy per epoch,
teacher on), ``timing.csv`` (wall and CPU time per point), ``accuracy.png`` and ``curves.png`` into
``--out``; prints the accuracy table and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.circuit import Circuit, tagged
from microcircuit.engine import Diverged
from microcircuit.experiment import DTYPES, Experiment, RunOptions, resolve_device
from microcircuit.rundir import atomic_write_text
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import load_spec
from microcircuit.spec.schema import Spec

#: presentation times of Haider 2021, Fig. 3 (steps of dt)
POINTS = [3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
#: quick mode: 300 epochs are what LE needs for 100 % at t_pres = 10 dt (100 epochs give 62-100 %)
QUICK_POINTS = [3, 10, 30]
QUICK_EPOCHS = 300
DYNAMICS = {"latent_equilibrium": "LE", "orig": "orig"}


def variant_spec(dynamics: str, epochs: int, dtype: str = "float32", schedule: str | None = None) -> Spec:
    """circuits/bars_le.yaml with ``dynamics`` somas, ``epochs`` training epochs, no validation, no recording
    (and another ``schedule`` if given: ``reference`` or ``propagating``)."""
    overrides = [f"defaults.population.dynamics={dynamics}", f"protocol.0.epochs={epochs}",
                 "protocol.0.validate_every=0", f"dtype={dtype}", "record=[]"]
    if schedule:
        overrides.append(f"schedule={schedule}")
    return load_spec(shipped_circuit("bars_le.yaml"), overrides)[0]


def tagged_dynamics(spec: Spec) -> str:
    """The dynamics name of the spec's defaults (``latent_equilibrium`` or ``orig``)."""
    return tagged(spec.defaults.population.dynamics)[0]


def point_spec(spec: Spec, t_pres: int) -> Spec:
    """``spec`` with every phase presenting for ``t_pres`` steps (the learning rates follow by ``eta_scale``)."""
    return spec.model_copy(update={"protocol": [p.model_copy(update={"t_pres": t_pres}) for p in spec.protocol]})


@dataclass
class PointResult:
    """What one (variant, t_pres) point produced."""

    label: str
    t_pres: int
    accuracy: list[tuple]  # (dynamics, t_pres, seed, test_accuracy, test_loss, epochs, steps, finished_s)
    curves: list[tuple]  # (dynamics, t_pres, seed, epoch, train_accuracy)
    weights: dict[str, torch.Tensor]  # final weights [seed, post, pre]
    engine: str
    wall_s: float
    cpu_s: float
    steps: int


def run_point(spec: Spec, t_pres: int, n_seeds: int, device: str, engine: str, label: str,
              started: float) -> PointResult:
    """Train and test the ``n_seeds`` circuits of one point as one batched run of the experiment layer."""
    from microcircuit.threads import apply_thread_policy

    apply_thread_policy(1)
    wall, cpu = time.perf_counter(), time.process_time()
    experiment = Experiment(point_spec(spec, t_pres), RunOptions(n_seeds=n_seeds, device=device, progress=False,
                                                                engine=engine))
    result = experiment.run()
    if result.status != "done":
        raise Diverged(result.diagnosis)
    epochs = spec.protocol[0].epochs
    acc, loss = result.metric("test", "accuracy"), result.metric("test", "loss")
    done = time.time() - started
    accuracy = [(label, t_pres, s, acc[s], loss[s], epochs, experiment.global_step, done) for s in experiment.seeds]
    curves = [(label, t_pres, seed, epoch, value) for phase, epoch, seed, metric, value in result.rows
              if phase == "train" and metric == "accuracy"]
    weights = {k: v.detach().cpu().clone() for k, v in experiment.sim.state.weights.items()}
    return PointResult(label, t_pres, accuracy, curves, weights, experiment.sim.engine,
                       time.perf_counter() - wall, time.process_time() - cpu, experiment.global_step)


@dataclass
class SweepResult:
    """What one variant produced."""

    accuracy: pd.DataFrame  # dynamics, t_pres, seed, test_accuracy, test_loss, epochs, steps, finished_s
    curves: pd.DataFrame  # dynamics, t_pres, seed, epoch, train_accuracy
    timing: pd.DataFrame  # dynamics, t_pres, n_circuits, engine, steps, wall_s, cpu_s, cpu_us_per_circuit_step
    weights: dict[int, dict[str, torch.Tensor]]  # t_pres -> final weights [seed, post, pre]


class Sweep:
    """All (t_pres, seed) circuits of one or more variant specs, one batched run per (variant, t_pres).

    Args:
        specs: the bars spec of each variant (protocol: a ``train`` phase, then a ``test`` phase); one spec
            or a list.
        points: presentation times (steps of dt).
        n_seeds: circuits per point; seeds are the spec's master seed + 0..n_seeds-1.
        device: of the simulations. engine: ``auto``, ``eager`` or ``compiled``.
        workers: processes running points at once (1: in this process).
        log: print a line to stderr when a point is done.
    """

    def __init__(self, specs: Spec | list[Spec], points: list[int], n_seeds: int, device: str = "cpu",
                 engine: str = "auto", workers: int = 1, log: bool = True):
        self.specs = [specs] if isinstance(specs, Spec) else list(specs)
        self.points = sorted(points)
        self.n_seeds = n_seeds
        self.device = str(resolve_device(device))
        self.engine = engine
        self.workers = workers
        self.log = log

    def tasks(self) -> list[tuple[Spec, int, str]]:
        """(spec, t_pres, label) of every point, longest first (so that N workers finish together)."""
        todo = [(spec, t, DYNAMICS.get(tagged_dynamics(spec), tagged_dynamics(spec)))
                for spec in self.specs for t in self.points]
        return sorted(todo, key=lambda task: -task[1])

    def run(self) -> SweepResult:
        started = time.time()
        results: list[PointResult] = []
        args = [(spec, t, self.n_seeds, self.device, self.engine, label, started) for spec, t, label in self.tasks()]
        if self.workers <= 1:
            for task in args:
                results.append(run_point(*task))
                self._report(results[-1], len(results), len(args), started)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
                futures = [pool.submit(run_point, *task) for task in args]
                for future in as_completed(futures):
                    results.append(future.result())
                    self._report(results[-1], len(results), len(args), started)
        results.sort(key=lambda r: (r.label, r.t_pres))
        timing = [(r.label, r.t_pres, self.n_seeds, r.engine, r.steps, r.wall_s, r.cpu_s,
                   1e6 * r.cpu_s / max(r.steps * self.n_seeds, 1)) for r in results]
        return SweepResult(
            accuracy=pd.DataFrame([row for r in results for row in r.accuracy],
                                  columns=["dynamics", "t_pres", "seed", "test_accuracy", "test_loss", "epochs",
                                           "steps", "finished_s"]),
            curves=pd.DataFrame([row for r in results for row in r.curves],
                                columns=["dynamics", "t_pres", "seed", "epoch", "train_accuracy"]),
            timing=pd.DataFrame(timing, columns=["dynamics", "t_pres", "n_circuits", "engine", "steps", "wall_s",
                                                 "cpu_s", "cpu_us_per_circuit_step"]),
            weights={r.t_pres: r.weights for r in results},
        )

    def _report(self, r: PointResult, done: int, total: int, started: float) -> None:
        if not self.log:
            return
        acc = np.array([row[3] for row in r.accuracy])
        print(f"  [{done}/{total}] {r.label} t_pres={r.t_pres}: test accuracy mean {100 * acc.mean():.1f} %, "
              f"min {100 * acc.min():.1f} %, max {100 * acc.max():.1f} % ({r.steps} steps, {r.wall_s:.0f} s; "
              f"{time.time() - started:.0f} s since the start)", file=sys.stderr, flush=True)


def estimate_wall_time(points: list[int], epochs: int, us_per_step: float, workers: int, n_variants: int = 2,
                       n_train: int = 8, n_test: int = 8) -> float:
    """Seconds for a sweep from the measured cost of one step of a point's batched circuits (us): each point
    runs epochs x n_train + n_test presentations of t_pres steps; ``workers`` processes take the points
    longest first, so the wall time is the larger of the total over the workers and the longest point."""
    costs = [(epochs * n_train + n_test) * p * us_per_step * 1e-6 for p in points for _ in range(n_variants)]
    return max(sum(costs) / workers, max(costs))


def measure_step_cost(spec: Spec, n_seeds: int, device: str, engine: str, epochs: int = 20) -> float:
    """us of CPU per step of one point's batched circuits (t_pres 100, ``epochs`` epochs, compile excluded)."""
    run_point(spec.model_copy(update={"protocol": [p.model_copy(update={"epochs": 1}) for p in spec.protocol]}),
              10, n_seeds, device, engine, "", time.time())  # compile or load the kernel first
    short = spec.model_copy(update={"protocol": [spec.protocol[0].model_copy(update={"epochs": epochs}),
                                                 *spec.protocol[1:]]})
    r = run_point(short, 100, n_seeds, device, engine, "", time.time())
    return 1e6 * r.cpu_s / r.steps


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
            if ax is axes[0][-1]:  # one key, outside the panels, so that it hides no line
                ax.legend(title="t_pres (dt)", fontsize=8, title_fontsize=8, loc="upper left",
                          bbox_to_anchor=(1.02, 1.0))
            else:
                ax.get_legend().remove()
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
    parser.add_argument("--workers", type=int, default=1, help="processes running points at once (1)")
    parser.add_argument("--engine", choices=["auto", "eager", "compiled"], default="auto")
    parser.add_argument("--estimate", action="store_true",
                        help="only measure the step cost and print the estimated wall time of this sweep and the "
                             "full one")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    points = sorted(set(args.points or (QUICK_POINTS if args.quick else POINTS)))
    n_seeds = args.seeds or (3 if args.quick else 10)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else 1000)
    if min(points) < 1 or n_seeds < 1 or epochs < 1 or args.workers < 1:
        parser.error("--points, --seeds, --epochs and --workers must be positive")
    specs = {d: variant_spec(d, epochs, args.dtype, args.schedule) for d in args.variants}
    circuit = Circuit(next(iter(specs.values())))
    tau_eff_steps = circuit.tau_eff("pyr_1", teacher=False) / circuit.spec.dt

    if args.estimate:
        costs = {d: measure_step_cost(s, n_seeds, args.device, args.engine) for d, s in specs.items()}
        cost = max(costs.values())
        for d, c in costs.items():
            print(f"{DYNAMICS[d]}: {c:.1f} us CPU per step of {n_seeds} batched circuits "
                  f"({c / n_seeds:.2f} us per circuit-step)")
        this = estimate_wall_time(points, epochs, cost, args.workers, len(specs))
        full = estimate_wall_time(POINTS, 1000, cost, args.workers, 2)
        print(f"estimated wall time with {args.workers} worker(s) of one idle core each: this sweep {this:.0f} s; "
              f"the full sweep ({len(POINTS)} points up to {max(POINTS)} dt, {n_seeds} seeds, 1000 epochs, LE and "
              f"orig) {full:.0f} s = {full / 60:.1f} min")
        return 0

    schedule = next(iter(specs.values())).schedule
    print(f"t_pres sweep: points {points} dt, {n_seeds} seeds, {epochs} epochs, variants "
          f"{[DYNAMICS[d] for d in args.variants]}, {schedule} schedule, {args.dtype}, {args.device}, "
          f"{args.workers} worker(s)", file=sys.stderr, flush=True)
    try:
        result = Sweep(list(specs.values()), points, n_seeds, device=args.device, engine=args.engine,
                       workers=args.workers).run()
    except Diverged as err:
        print(f"error: the sweep diverged: {err.diagnosis}", file=sys.stderr)
        return 1
    acc = result.accuracy
    acc.insert(2, "t_pres_tau", acc["t_pres"] / tau_eff_steps)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "accuracy.csv", acc.to_csv(index=False))
    atomic_write_text(args.out / "curves.csv", result.curves.to_csv(index=False))
    atomic_write_text(args.out / "timing.csv", result.timing.to_csv(index=False))
    plot_accuracy(acc, tau_eff_steps, args.out / "accuracy.png", epochs, schedule)
    plot_curves(result.curves, args.out / "curves.png")
    print(f"test accuracy after {epochs} epochs ({n_seeds} seeds, {schedule} schedule; "
          f"tau_eff = {tau_eff_steps:.1f} dt):")
    print(summary(acc, tau_eff_steps))
    timing = result.timing
    print(f"{int(timing['steps'].sum())} steps of {n_seeds} circuits in {timing['cpu_s'].sum():.1f} s CPU "
          f"({timing['cpu_s'].sum() * 1e6 / max(timing['steps'].sum() * n_seeds, 1):.2f} us per circuit-step)")
    print(f"wall time: {time.perf_counter() - start:.1f} s with {args.workers} worker(s); written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
