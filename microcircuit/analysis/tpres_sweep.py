"""Analysis ``tpres_sweep``: bars accuracy against presentation time, LE versus orig (Haider 2021, Fig. 3).

The 9-30-3 bars circuit (circuits/bars_le.yaml; ``orig`` somas for the other variant) is trained for
``--epochs`` epochs with presentation time t_pres (steps of dt) and learning rates scaled by 1/t_pres
(eta_up = [5, 1] / t_pres, eta_IP = 2 / t_pres in 1/ms, the spec's ``eta_scale: inverse_t_pres``), then
tested with the teacher off: accuracy = fraction of the 8 patterns whose presentation-averaged output
rate potential peaks at the true class.

A thin program over the sweep layer (:mod:`microcircuit.sweep`): the sweep is the shipped file
circuits/sweeps/tpres_bars.yaml (``microcircuit sweep circuits/sweeps/tpres_bars.yaml`` runs the same), with
this program's options as ``--set``/``--axis``/``--seeds`` of it. Every (variant, t_pres) point is one run of
the experiment layer with its seeds batched into one simulation (the compiled engine where it applies):
circuit (t_pres, seed) is exactly what
``microcircuit run circuits/bars_le.yaml --seed SEED --set parameters.t_pres=T --set protocol.0.validate_every=0``
does (tests/test_analyses.py checks this). ``--workers N`` runs the points on a local Dask cluster of N
processes of one thread each, longest first; the sweep directory ``--out``/sweep keeps every finished point,
so an interrupted program continues where it stopped.

Writes ``accuracy.csv`` (one row per variant, t_pres and seed), ``curves.csv`` (train accuracy per epoch,
teacher on), ``timing.csv`` (wall and CPU time per point), ``accuracy.png`` and ``curves.png`` into
``--out``; prints the accuracy table and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.circuit import Circuit, tagged
from microcircuit.experiment import DTYPES
from microcircuit.rundir import atomic_write_text
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import SpecError, load_spec
from microcircuit.spec.schema import Spec
from microcircuit.sweep import SweepPlan, execute, load_sweep, plan

#: the sweep file of this program (shipped with the package)
SWEEP_FILE = "sweeps/tpres_bars.yaml"
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


@dataclass
class SweepResult:
    """What a sweep produced, in this program's tables."""

    accuracy: pd.DataFrame  # dynamics, t_pres, seed, test_accuracy, test_loss, epochs, steps, finished_s
    curves: pd.DataFrame  # dynamics, t_pres, seed, epoch, train_accuracy
    timing: pd.DataFrame  # dynamics, t_pres, n_circuits, engine, steps, wall_s, cpu_s, cpu_us_per_circuit_step
    weights: dict[int, dict[str, torch.Tensor]]  # t_pres -> final weights [seed, post, pre] (when saved)
    failed: pd.DataFrame  # dynamics, t_pres, status, error of every run that did not finish


def tables(sweep_dir: Path, weights: bool = False) -> SweepResult:
    """This program's tables from a sweep directory of the tpres_bars sweep (axes ``variant``, ``t_pres``)."""
    sweep_dir = Path(sweep_dir)
    results = pd.read_csv(sweep_dir / "results.csv")
    runs = pd.read_csv(sweep_dir / "runs.csv").rename(columns={"variant": "dynamics"})
    done = runs[runs["status"] == "done"]
    wide = results.pivot_table(index=["run", "variant", "t_pres", "seed"], columns="metric", values="value",
                               sort=False).reset_index()
    wide = wide.rename(columns={"variant": "dynamics", "test/accuracy": "test_accuracy", "test/loss": "test_loss"})
    wide = wide.merge(done[["run", "steps", "finished"]], on="run")
    first = done["started"].min() if len(done) else 0.0
    epochs = {run: yaml.safe_load((sweep_dir / "runs" / run / "config.resolved.yaml").read_text())["protocol"][0]
              ["epochs"] for run in done["run"]}
    wide["epochs"] = wide["run"].map(epochs)
    wide["finished_s"] = wide["finished"] - first
    accuracy = wide[["dynamics", "t_pres", "seed", "test_accuracy", "test_loss", "epochs", "steps", "finished_s"]]
    accuracy = accuracy.sort_values(["dynamics", "t_pres", "seed"]).reset_index(drop=True)
    curves = pd.read_csv(sweep_dir / "curves.csv")
    curves = curves[curves["metric"] == "train/accuracy"].rename(columns={"variant": "dynamics",
                                                                         "value": "train_accuracy"})
    curves = curves[["dynamics", "t_pres", "seed", "epoch", "train_accuracy"]].reset_index(drop=True)
    timing = done[["dynamics", "t_pres", "n_circuits", "engine", "steps", "wall_s", "cpu_s"]].copy()
    timing["cpu_us_per_circuit_step"] = 1e6 * timing["cpu_s"] / (timing["steps"] * timing["n_circuits"]).clip(1)
    timing = timing.sort_values(["dynamics", "t_pres"]).reset_index(drop=True)
    saved: dict[int, dict[str, torch.Tensor]] = {}
    if weights:
        for run, t_pres in zip(done["run"], done["t_pres"], strict=True):
            saved[int(t_pres)] = torch.load(sweep_dir / "runs" / run / "weights.pt", weights_only=True)
    failed = runs[runs["status"] != "done"][["dynamics", "t_pres", "status", "error"]]
    return SweepResult(accuracy, curves, timing, saved, failed)


def sweep_plan(points: list[int], epochs: int, n_seeds: int, variants: list[str], dtype: str = "float32",
               schedule: str | None = None, engine: str = "auto", device: str = "cpu") -> SweepPlan:
    """circuits/sweeps/tpres_bars.yaml with this program's options (``variants``: dynamics names)."""
    sets = [f"protocol.0.epochs={epochs}", f"dtype={dtype}", f"engine={engine}"]
    if schedule:
        sets.append(f"schedule={schedule}")
    axes = [f"t_pres={','.join(str(t) for t in points)}", f"variant={','.join(DYNAMICS[d] for d in variants)}"]
    return plan(load_sweep(shipped_circuit(SWEEP_FILE), sets, axes, n_seeds), device)


class Sweep:
    """All (t_pres, seed) circuits of one or more variant specs through the sweep layer, one batched
    simulation per (variant, t_pres), in a temporary sweep directory.

    Args:
        specs: the bars spec of each variant (protocol: a ``train`` phase, then a ``test`` phase); one spec
            or a list.
        points: presentation times (steps of dt), set on every phase.
        n_seeds: circuits per point; seeds are the spec's master seed + 0..n_seeds-1.
        device: of the simulations. engine: ``auto``, ``eager`` or ``compiled``.
        workers: worker processes of a local Dask cluster (1: in this process).
        log: progress lines on stderr.
    """

    def __init__(self, specs: Spec | list[Spec], points: list[int], n_seeds: int, device: str = "cpu",
                 engine: str = "auto", workers: int = 1, log: bool = True):
        self.specs = [specs] if isinstance(specs, Spec) else list(specs)
        self.points = sorted(points)
        self.n_seeds = n_seeds
        self.device = device
        self.engine = engine
        self.workers = workers
        self.log = log

    def run(self) -> SweepResult:
        """Run every variant's sweep; the tables of all variants, final weights by t_pres."""
        parts = []
        with tempfile.TemporaryDirectory(prefix="tpres_sweep.") as tmp:
            for k, spec in enumerate(self.specs):
                folder = Path(tmp) / f"variant{k}"
                folder.mkdir()
                base = spec.model_copy(update={"engine": self.engine}).model_dump(mode="json", by_alias=True,
                                                                                  exclude_none=True)
                (folder / "circuit.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
                label = DYNAMICS.get(tagged_dynamics(spec), tagged_dynamics(spec))
                keys = [f"protocol.{i}.t_pres" for i in range(len(spec.protocol))]
                (folder / "sweep.yaml").write_text(yaml.safe_dump({
                    "schema": "microcircuit-sweep/1", "name": "tpres", "circuit": "circuit.yaml",
                    "axes": {"variant": {"key": "name", "values": {label: spec.name}},
                             "t_pres": {"key": keys, "values": self.points}},
                    "seeds": self.n_seeds, "metrics": ["test/accuracy", "test/loss"], "curves": ["train/accuracy"],
                    "device": self.device, "save_weights": True}, sort_keys=False))
                p = plan(load_sweep(folder / "sweep.yaml"))
                execute(p, folder / "out", workers=self.workers if self.workers > 1 else 0, quiet=not self.log)
                parts.append(tables(folder / "out", weights=True))
        weights: dict[int, dict[str, torch.Tensor]] = {}
        for part in parts:
            weights.update(part.weights)
        return SweepResult(*(pd.concat([getattr(part, name) for part in parts], ignore_index=True)
                             for name in ("accuracy", "curves", "timing")), weights,
                           pd.concat([part.failed for part in parts], ignore_index=True))


def estimate_wall_time(points: list[int], epochs: int, us_per_step: float, workers: int, n_variants: int = 2,
                       n_train: int = 8, n_test: int = 8) -> float:
    """Seconds for a sweep from the measured cost of one step of a point's batched circuits (us): each point
    runs epochs x n_train + n_test presentations of t_pres steps; ``workers`` processes take the points
    longest first, so the wall time is the larger of the total over the workers and the longest point."""
    costs = [(epochs * n_train + n_test) * p * us_per_step * 1e-6 for p in points for _ in range(n_variants)]
    return max(sum(costs) / workers, max(costs))


def measure_step_cost(spec: Spec, n_seeds: int, device: str, engine: str, epochs: int = 20) -> float:
    """us of CPU per step of one point's batched circuits (t_pres 100, ``epochs`` epochs, compile excluded)."""
    def with_epochs(n: int) -> Spec:
        return spec.model_copy(update={"protocol": [spec.protocol[0].model_copy(update={"epochs": n}),
                                                    *spec.protocol[1:]]})

    Sweep(with_epochs(1), [10], n_seeds, device, engine, log=False).run()  # compile or load the kernel first
    timing = Sweep(with_epochs(epochs), [100], n_seeds, device, engine, log=False).run().timing
    return float(1e6 * timing["cpu_s"].sum() / timing["steps"].sum())


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
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes of a local Dask cluster running points at once (1: this process)")
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
    try:
        p = sweep_plan(points, epochs, n_seeds, args.variants, args.dtype, args.schedule, args.engine, args.device)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        return 2
    spec = p.runs[0].spec
    circuit = Circuit(spec)
    tau_eff_steps = circuit.tau_eff("pyr_1", teacher=False) / circuit.spec.dt

    if args.estimate:
        specs = {d: variant_spec(d, epochs, args.dtype, args.schedule) for d in args.variants}
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

    schedule = spec.schedule
    print(f"t_pres sweep: points {points} dt, {n_seeds} seeds, {epochs} epochs, variants "
          f"{[DYNAMICS[d] for d in args.variants]}, {schedule} schedule, {args.dtype}, {args.device}, "
          f"{args.workers} worker(s)", file=sys.stderr, flush=True)
    sweep_dir = args.out / "sweep"
    execute(p, sweep_dir, workers=args.workers if args.workers > 1 else 0, argv=["tpres_sweep", *(argv or [])])
    result = tables(sweep_dir)
    if len(result.failed):
        for _, row in result.failed.iterrows():
            print(f"error: {row['dynamics']} t_pres={row['t_pres']} {row['status']}: {row['error']}", file=sys.stderr)
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
