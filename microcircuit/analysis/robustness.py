"""Analysis ``robustness``: learning on an imperfect substrate (Haider 2021, sec. 6-7).

Accuracy and alignment with backprop as functions of five substrate knobs, each swept alone, for
Latent Equilibrium (LE) and lagging (``orig``) somas, with seeds batched as independent circuits:

=============  =====================================================================  ===================
knob           what is set (``--set`` on the task's spec)                             levels (full)
=============  =====================================================================  ===================
``mismatch``   ``defaults.population.dynamics={latent_equilibrium: {mismatch:         0, 0.1, 0.3, 0.5
               {distribution: lognormal, spread: s}}}``: tau_r_i = tau_eff exp(N(0,s))
``rate_noise`` ``defaults.population.rate_noise``: sd of white noise on the rate          0, 0.03, 0.1, 0.3
               potential, every step (dimensionless potential)
``noise``      ``defaults.population.noise``: somatic sigma (potential / sqrt(ms))       0, 0.1, 0.3, 1.0
``delay``      ``defaults.projection.delay``: transmission delay of every weighted       0, 1, 2, 5
               projection (steps of dt)
``precision``  ``defaults.projection.precision={bits: b, range: 5.0}``: weights          off, 2, 4, 6, 8, 16
               rounded to the nearest of 2^b levels in [-5, 5] after every update
``stochastic`` the same with ``rounding: stochastic`` (unbiased: small updates            off, 2, 4, 6, 8, 16
               survive on average)
=============  =====================================================================  ===================

Level 0 is the knob switched off (for ``precision`` and ``stochastic``: unquantized float weights). ``mismatch`` applies
to LE only (orig has no tau_r; its level-0 run is drawn as a reference line), and for LE it is run
twice: as is, and after a tau_r learning phase ``{phase: tau_r, data: random, samples: 200,
teacher: false, plastic: none, t_pres: 20, tau_r_eta: 10.0}`` prepended to the protocol.

Tasks: ``bars_t10`` and ``bars_t100`` (circuits/bars_le.yaml at t_pres = 10 and 100 dt; the
protocol's own learning rates scale with 1/t_pres), ``yinyang`` (circuits/yinyang_le.yaml, loaded as
it is; ``--yinyang-train`` / ``--yinyang-epochs`` take a subset). Each variant is built by the spec layer
from the task's file with ``--set`` overrides (:func:`microcircuit.spec.load_spec_text` on the file's text,
read once per process so that a file edited during a sweep cannot mix versions; the summary names the
SHA-256 of the text that ran) and run with ``compare_backprop: true``.

Metrics per seed (CSV column ``metric``):

- ``accuracy``: test accuracy (fraction of the test split, 0..1) after training;
- ``angle_apical_bp``: angle (degrees) between the apical potential of ``pyr_1`` and the
  backpropagated error, mean over the last 10 % of the training epochs (metric
  ``angle_apical_bp/pyr_1`` of the run);
- ``diverged``: 1 if the circuit ran away (NaN or beyond the engine's bounds), else 0; a diverged
  circuit has no accuracy or angle. A batch stops at the first runaway circuit, so its other
  circuits are rerun one by one (circuit i of a batch equals a single run with seed master + i);
- ``tau_r_error_initial``, ``tau_r_error``: mean |tau_r / tau_eff - 1| over all LE neurons before and
  after the run (LE only; they differ only with tau_r learning).

Writes ``robustness.csv`` (columns knob, level, dynamics, tau_r_learning, task, seed, metric, value),
``accuracy.png`` and ``angle.png`` (one panel per task and knob: mean over seeds and min-max range)
into ``--out``, prints a summary table and the wall time. ``--resume`` keeps the variants already in the
CSV (and merges runs of different ``--tasks``/``--knobs``).

The variants run through the sweep layer (:mod:`microcircuit.sweep`, ``divergence: circuit``): one run per
variant in ``--out``/sweep, its seeds batched into one simulation with the other variants of the same task and
phases (every knob's levels and both dynamics batch, :mod:`microcircuit.sweep.grouping`), variants with the
same spec simulated once, a run that finished there never run again (an interrupted program continues;
delete the folder to start afresh), ``--workers N`` on a local Dask cluster.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.rundir import atomic_write_text
from microcircuit.seeds import circuit_seeds
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import load_spec_text
from microcircuit.spec.schema import Spec
from microcircuit.sweep import Run, execute, plan_runs

CSV_COLUMNS = ["knob", "level", "dynamics", "tau_r_learning", "task", "seed", "metric", "value"]
VARIANT_KEYS = ["task", "knob", "level", "dynamics", "tau_r_learning"]
DYNAMICS = {"LE": "latent_equilibrium", "orig": "orig"}
#: the prepended tau_r learning phase (tests/test_substrate.py: removes a 30 % mismatch)
TAU_R_PHASE = {"phase": "tau_r", "data": "random", "samples": 200, "teacher": False, "plastic": "none",
               "t_pres": 20, "tau_r_eta": 10.0}
#: weights are quantized in [-PRECISION_RANGE, PRECISION_RANGE] (the largest w_max of the bars circuit)
PRECISION_RANGE = 5.0
ANGLE_METRIC = "angle_apical_bp/pyr_1"
#: the angle is averaged over this fraction of the last training epochs
LAST_EPOCHS = 0.1


@dataclass(frozen=True)
class Knob:
    """One substrate knob: its levels (full and quick sweep) and how it reads on a figure axis."""

    name: str
    levels: tuple[float, ...]
    quick: tuple[float, ...]
    axis: str
    title: str

    def label(self, level: float) -> str:
        if self.name in ("precision", "stochastic") and level == 0:
            return "off"
        return f"{level:g}"

    def order(self, level: float) -> float:
        """Sort key: level 0 of the precision knobs (unquantized) is the best case and goes last."""
        return math.inf if self.name in ("precision", "stochastic") and level == 0 else level


KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("mismatch", (0.0, 0.1, 0.3, 0.5), (0.0, 0.5), "spread s of log(tau_r / tau_eff)", "tau_r mismatch"),
    Knob("rate_noise", (0.0, 0.03, 0.1, 0.3), (0.0, 0.3), "sd per step (potential)", "rate noise"),
    Knob("noise", (0.0, 0.1, 0.3, 1.0), (0.0, 1.0), "sigma (potential / sqrt(ms))", "somatic noise"),
    Knob("delay", (0, 1, 2, 5), (0, 5), "steps of dt per projection", "transmission delay"),
    Knob("precision", (0, 2, 4, 6, 8, 16), (0, 4, 16), "bits per weight (off = float)", "weight precision"),
    Knob("stochastic", (0, 2, 4, 6, 8, 16), (0, 4, 8), "bits per weight (off = float)",
         "weight precision, stochastic rounding"),
)}


@dataclass(frozen=True)
class Task:
    """A task: the spec file and, for bars, the presentation time (steps of dt) it is run at."""

    name: str
    path: Path
    t_pres: int | None
    label: str


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("bars_t10", shipped_circuit("bars_le.yaml"), 10, "bars, t_pres = 10 dt"),
    Task("bars_t100", shipped_circuit("bars_le.yaml"), 100, "bars, t_pres = 100 dt"),
    Task("yinyang", shipped_circuit("yinyang_le.yaml"), None, "yin-yang"),
)}


@dataclass(frozen=True)
class Variant:
    """One point of the sweep: a task, a knob at a level, LE or orig, with or without tau_r learning."""

    task: str
    knob: str
    level: float
    dynamics: str  # "LE" or "orig"
    tau_r_learning: bool

    def key(self) -> tuple:
        return (self.task, self.knob, float(self.level), self.dynamics, bool(self.tau_r_learning))


@dataclass
class Settings:
    """How much to run: seeds, training length per task, device."""

    n_seeds: int
    bars_epochs: int
    yinyang_train: int | None
    yinyang_epochs: int | None
    device: str
    tau_r_samples: int = TAU_R_PHASE["samples"]


# ---------------------------------------------------------------- building variants
def variants(tasks: Iterable[str], knobs: Iterable[str], quick_levels: bool) -> list[Variant]:
    """Every variant of the sweep, in run order (per task: each knob, LE then orig, level by level)."""
    out = []
    for task in tasks:
        for name in knobs:
            knob = KNOBS[name]
            for dynamics in DYNAMICS:
                for level in (knob.quick if quick_levels else knob.levels):
                    if name == "mismatch" and dynamics == "orig":
                        if level == 0:
                            out.append(Variant(task, name, level, dynamics, False))
                        continue
                    out.append(Variant(task, name, level, dynamics, False))
                    if name == "mismatch":
                        out.append(Variant(task, name, level, dynamics, True))
    return out


@functools.cache
def spec_text(path: Path) -> str:
    """A task's spec file, read once per process, so that every variant of a sweep is built from the same text
    even if the file changes meanwhile."""
    return Path(path).read_text(encoding="utf-8")


def load_task_spec(task: Task, overrides: list[str] = ()) -> tuple[Spec, dict]:
    """The task's spec with ``overrides`` (``--set`` strings): (validated spec, resolved mapping)."""
    spec, resolved, _ = load_spec_text(spec_text(task.path), str(task.path), list(overrides))
    return spec, resolved


def spec_digest(task: Task) -> str:
    """First 12 hex digits of the SHA-256 of the task's spec file as read (names the version that ran)."""
    return hashlib.sha256(spec_text(task.path).encode()).hexdigest()[:12]


def phase_index(spec: Spec, name: str) -> int:
    """Index of the protocol phase called ``name`` (else the first phase with the teacher on and plasticity,
    for ``train``)."""
    for i, phase in enumerate(spec.protocol):
        if phase.phase == name:
            return i
    if name == "train":
        for i, phase in enumerate(spec.protocol):
            if phase.teacher and phase.plastic != "none":
                return i
    raise ValueError(f"spec '{spec.name}' has no phase '{name}'")


def task_overrides(task: Task, settings: Settings) -> list[str]:
    """Overrides that make a task's spec a sweep point: training length, no validation, no recordings,
    no checkpoints, and the alignment probe on."""
    base = load_task_spec(task)[0]
    train = phase_index(base, "train")
    out = ["record=[]", "checkpoint_every=0", "compare_backprop=true"]
    out += [f"protocol.{i}.validate_every=0" for i, p in enumerate(base.protocol) if p.validate_every]
    if task.t_pres is not None:
        out.append(f"parameters.t_pres={task.t_pres}")
    if task.name.startswith("bars"):
        out.append(f"protocol.{train}.epochs={settings.bars_epochs}")
    else:
        if settings.yinyang_train is not None:
            out.append(f"task.yin_yang.train={settings.yinyang_train}")
        if settings.yinyang_epochs is not None:
            out.append(f"protocol.{train}.epochs={settings.yinyang_epochs}")
    return out


def knob_overrides(variant: Variant) -> list[str]:
    """The dynamics and the knob of a variant as ``--set`` strings (level 0 sets the knob to off)."""
    dynamics = DYNAMICS[variant.dynamics]
    level = variant.level
    if variant.knob == "mismatch" and variant.dynamics == "LE":  # level 0: an explicit zero spread
        dynamics = f"{{latent_equilibrium: {{mismatch: {{distribution: lognormal, spread: {level:g}}}}}}}"
    out = [f"defaults.population.dynamics={dynamics}"]
    if variant.knob == "rate_noise":
        out.append(f"defaults.population.rate_noise={level:g}")
    elif variant.knob == "noise":
        out.append(f"defaults.population.noise={level:g}")
    elif variant.knob == "delay":
        out.append(f"defaults.projection.delay={int(level)}")
    elif variant.knob == "precision" and level > 0:
        out.append(f"defaults.projection.precision={{bits: {int(level)}, range: {PRECISION_RANGE:g}}}")
    elif variant.knob == "stochastic" and level > 0:
        out.append(f"defaults.projection.precision={{bits: {int(level)}, range: {PRECISION_RANGE:g}, "
                   "rounding: stochastic}")
    return out


def build_spec(variant: Variant, settings: Settings) -> Spec:
    """Load the variant's spec; with tau_r learning the tau_r phase is prepended to its resolved protocol."""
    task = TASKS[variant.task]
    overrides = task_overrides(task, settings) + knob_overrides(variant)
    spec, resolved = load_task_spec(task, overrides)
    if variant.tau_r_learning:
        protocol = [{**TAU_R_PHASE, "samples": settings.tau_r_samples}, *resolved["protocol"]]
        text = yaml.safe_dump(protocol, default_flow_style=True, width=1_000_000).strip()
        spec = load_task_spec(task, [*overrides, f"protocol={text}"])[0]
    return spec


# ---------------------------------------------------------------- running (on the sweep layer)
def variant_runs(todo: list[Variant], settings: Settings) -> list[Run]:
    """One sweep run per variant: its spec, ``settings.n_seeds`` seeds from the spec's master seed, and the
    variant's keys as the run's columns. Variants with the same spec (e.g. every knob at level 0) are the
    same run of the sweep layer (same id) and are simulated once."""
    runs = []
    for index, variant in enumerate(todo):
        spec = build_spec(variant, settings)
        resolved = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        axes = {"task": variant.task, "knob": variant.knob, "level": float(variant.level),
                "dynamics": variant.dynamics, "tau_r_learning": bool(variant.tau_r_learning)}
        runs.append(Run(index, axes, spec, resolved, circuit_seeds(spec.seed, settings.n_seeds), []))
    return runs


def variant_rows(run: Run, rid: str, results: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    """The CSV rows of one variant: per seed accuracy, angle_apical_bp (mean over the last training
    epochs), diverged and, for LE, tau_r_error_initial and tau_r_error; a diverged circuit has no accuracy,
    angle or tau_r error."""
    spec = run.spec
    train = spec.protocol[phase_index(spec, "train")]
    last = max(1, round(LAST_EPOCHS * train.epochs))
    mine = results[results["run"] == rid].drop_duplicates(["seed", "metric"])
    angles = curves[(curves["run"] == rid) & (curves["metric"] == f"{train.phase}/{ANGLE_METRIC}")
                    & (curves["epoch"] > train.epochs - last)].drop_duplicates(["seed", "epoch"])
    value = {(int(seed), metric): v for seed, metric, v in zip(mine["seed"], mine["metric"], mine["value"],
                                                               strict=True)}
    rows = []
    for seed in run.seeds:
        diverged = value.get((seed, "run/diverged"), 1.0)
        metrics = {"accuracy": value.get((seed, "test/accuracy"), math.nan),
                   "angle_apical_bp": float(angles[angles["seed"] == seed]["value"].mean())
                   if diverged == 0 and len(angles) else math.nan,
                   "diverged": diverged}
        if diverged == 0 and (seed, "run/tau_r_error") in value:
            metrics["tau_r_error_initial"] = value[(seed, "run/tau_r_error_initial")]
            metrics["tau_r_error"] = value[(seed, "run/tau_r_error")]
        rows += [{**{k: run.axes[k] for k in ("knob", "level", "dynamics", "tau_r_learning", "task")}, "seed": seed,
                  "metric": metric, "value": v} for metric, v in metrics.items()]
    return rows


def sweep(todo: list[Variant], settings: Settings, done: pd.DataFrame, out_csv: Path, log=print,
          workers: int = 0) -> pd.DataFrame:
    """Run every variant of ``todo`` not yet in ``done`` through the sweep layer (runs in ``OUT/sweep``, each
    with its seeds batched; a diverging circuit is recorded and the others of its run are simulated alone);
    write the CSV."""
    present = {tuple(k) for k in done[VARIANT_KEYS].itertuples(index=False)} if len(done) else set()
    pending = [v for v in todo if v.key() not in present]
    if not pending:
        return done
    runs = variant_runs(pending, settings)
    curve_names = sorted({f"{r.spec.protocol[phase_index(r.spec, 'train')].phase}/{ANGLE_METRIC}" for r in runs})
    p = plan_runs("robustness", runs, VARIANT_KEYS, ["test/accuracy", "run/diverged", "run/tau_r_error_initial",
                                                      "run/tau_r_error"], curve_names, settings.device,
                  divergence="circuit")
    sweep_dir = out_csv.parent / "sweep"
    execute(p, sweep_dir, workers=workers)
    status = pd.read_csv(sweep_dir / "runs.csv")
    failed = status[status["status"] != "done"]
    if len(failed):
        raise RuntimeError("; ".join(f"{row['task']} {row['knob']}={row['level']:g} {row['dynamics']}: "
                                     f"{row['status']} {row['error']}" for _, row in failed.iterrows()))
    results = pd.read_csv(sweep_dir / "results.csv")
    curves = pd.read_csv(sweep_dir / "curves.csv")
    frames = [done]
    for run, rid in zip(runs, p.ids, strict=True):
        first = next(r for r, i in zip(runs, p.ids, strict=True) if i == rid)  # the same spec ran once
        rows = variant_rows(run, rid, results, curves)
        frames.append(pd.DataFrame(rows, columns=CSV_COLUMNS))
        acc = np.array([r["value"] for r in rows if r["metric"] == "accuracy"], dtype=float)
        div = int(sum(r["value"] for r in rows if r["metric"] == "diverged"))
        log(f"[{run.index + 1}/{len(runs)}] {run.axes['task']} {run.axes['knob']}={run.axes['level']:g} "
            f"{run.axes['dynamics']}{' +tau_r learning' if run.axes['tau_r_learning'] else ''}: accuracy mean "
            f"{np.nanmean(acc) if np.isfinite(acc).any() else math.nan:.3f}, diverged {div}/{len(acc)}"
            f"{' (same spec as an earlier variant)' if first is not run else ''}")
    table = pd.concat([f for f in frames if len(f)], ignore_index=True)
    atomic_write_text(out_csv, table.to_csv(index=False))
    return table


# ---------------------------------------------------------------- figures and summary
def series_name(dynamics: str, tau_r_learning: bool) -> str:
    return "LE + tau_r learning" if tau_r_learning else dynamics


SERIES_ORDER = ["LE", "LE + tau_r learning", "orig"]
MARKERS = {"LE": "o", "LE + tau_r learning": "s", "orig": "X"}
DODGE = {"LE": -0.04, "LE + tau_r learning": 0.0, "orig": 0.04}


def plot_metric(df: pd.DataFrame, metric: str, ylabel: str, path: Path, title: str,
                reference: float | None = None, ylim: tuple[float, float] | None = None) -> None:
    """One panel per (task, knob): ``metric`` against the knob's level, mean over seeds with the min-max
    range, one line per series (LE, LE + tau_r learning, orig). Levels sit at evenly spaced positions.
    Diverged circuits are counted under their point. orig has no tau_r: in the mismatch panels its
    level-0 result is drawn at every level."""
    import seaborn as sns

    tasks = [t for t in TASKS if t in set(df["task"])]
    knobs = [k for k in KNOBS if k in set(df["knob"])]
    palette = dict(zip(SERIES_ORDER, sns.color_palette("colorblind", 3), strict=True))
    with styled() as plt:
        fig, axes = plt.subplots(len(tasks), len(knobs), figsize=(3.4 * len(knobs), 3.1 * len(tasks)),
                                 squeeze=False, sharey=True)
        for r, task in enumerate(tasks):
            for c, name in enumerate(knobs):
                ax = axes[r, c]
                knob = KNOBS[name]
                sub = df[(df["task"] == task) & (df["knob"] == name)].copy()
                ax.set_ylabel(f"{TASKS[task].label}\n{ylabel}" if c == 0 else "")
                if sub.empty:
                    ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", color="0.5")
                    ax.set_xticks([])
                    ax.set_title(knob.title if r == 0 else "")
                    continue
                levels = sorted(set(sub["level"]), key=knob.order)
                if name == "mismatch":  # orig has no tau_r: repeat its level-0 result
                    orig = sub[sub["dynamics"] == "orig"]
                    sub = pd.concat([sub[sub["dynamics"] != "orig"]]
                                    + [orig.assign(level=lv) for lv in levels], ignore_index=True)
                sub["series"] = [series_name(d, t) for d, t in zip(sub["dynamics"], sub["tau_r_learning"],
                                                                   strict=True)]
                # evenly spaced levels, the series dodged a little so that equal values stay visible
                sub["x"] = sub["level"].map({lv: i for i, lv in enumerate(levels)}) + sub["series"].map(DODGE)
                values = sub[sub["metric"] == metric]
                hue_order = [s for s in SERIES_ORDER if s in set(values["series"])]
                if len(values):
                    sns.lineplot(data=values, x="x", y="value", hue="series", hue_order=hue_order, palette=palette,
                                 style="series", style_order=hue_order, markers=MARKERS, dashes=False,
                                 errorbar=("pi", 100), ax=ax, legend=False)
                diverged = sub[(sub["metric"] == "diverged") & (sub["value"] > 0)]
                for (series, x), grp in diverged.groupby(["series", "x"]):
                    n = len(sub[(sub["metric"] == "diverged") & (sub["series"] == series) & (sub["x"] == x)])
                    k = hue_order.index(series) if series in hue_order else 0
                    ax.annotate(f"{len(grp)}/{n}\ndiverged", xy=(x, 0.03 + 0.15 * k),
                                xycoords=("data", "axes fraction"), ha="center", fontsize=7, color=palette[series],
                                linespacing=0.9)
                if reference is not None:
                    ax.axhline(reference, color="0.5", lw=0.8, ls=":")
                ax.set_xticks(range(len(levels)), [knob.label(lv) for lv in levels])
                ax.set_xlim(-0.45, len(levels) - 0.55)
                ax.set_xlabel(knob.axis if r == len(tasks) - 1 else "")
                if ylim is not None:
                    ax.set_ylim(*ylim)
                if r == 0:
                    ax.set_title(knob.title)
        handles = [plt.Line2D([], [], color=palette[s], marker=MARKERS[s], label=s) for s in SERIES_ORDER
                   if s in set(series_name(d, t) for d, t in zip(df["dynamics"], df["tau_r_learning"], strict=True))]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        save_figure(fig, path)


def summary(df: pd.DataFrame) -> str:
    """Table: per task, knob and level, accuracy and angle (mean [min, max] over seeds) of every series."""
    lines = [f"{'task':<10} {'knob':<10} {'level':>6}  {'series':<20} {'accuracy mean [min, max]':<26} "
             f"{'diverged':>8}  {'angle (deg)':>11}"]
    for task in [t for t in TASKS if t in set(df["task"])]:
        for name in [k for k in KNOBS if k in set(df["knob"])]:
            knob = KNOBS[name]
            sub = df[(df["task"] == task) & (df["knob"] == name)]
            for level in sorted(set(sub["level"]), key=knob.order):
                at = sub[sub["level"] == level]
                for (dynamics, taur), grp in at.groupby(["dynamics", "tau_r_learning"], sort=False):
                    acc = grp[grp["metric"] == "accuracy"]["value"].to_numpy(dtype=float)
                    ang = grp[grp["metric"] == "angle_apical_bp"]["value"].to_numpy(dtype=float)
                    div = grp[grp["metric"] == "diverged"]["value"].to_numpy(dtype=float)
                    ok = acc[np.isfinite(acc)]
                    acc_text = f"{ok.mean():.3f} [{ok.min():.3f}, {ok.max():.3f}]" if len(ok) else "-"
                    ang_text = f"{np.nanmean(ang):.1f}" if np.isfinite(ang).any() else "-"
                    lines.append(f"{task:<10} {name:<10} {knob.label(level):>6}  "
                                 f"{series_name(dynamics, bool(taur)):<20} {acc_text:<26} "
                                 f"{int(div.sum()):>3}/{len(div):<4}  {ang_text:>11}")
    return "\n".join(lines)


def read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=CSV_COLUMNS)
    df = pd.read_csv(path)
    df["tau_r_learning"] = df["tau_r_learning"].astype(bool)
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robustness", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/robustness"))
    parser.add_argument("--quick", action="store_true",
                        help="3 seeds, bars_t10 only, 100 epochs, levels: off and the strongest")
    parser.add_argument("--seeds", type=int, default=None, help="circuits per variant (default 10; quick 3)")
    parser.add_argument("--tasks", default=None,
                        help=f"comma-separated, from {', '.join(TASKS)} (default all; quick bars_t10)")
    parser.add_argument("--knobs", default=",".join(KNOBS), help="comma-separated, from " + ", ".join(KNOBS))
    parser.add_argument("--levels", choices=("full", "quick"), default=None,
                        help="level sets (default full; quick with --quick)")
    parser.add_argument("--bars-epochs", type=int, default=None, help="bars training epochs (default 300; quick 100)")
    parser.add_argument("--yinyang-train", type=int, default=None,
                        help="yin-yang training samples (default the spec's)")
    parser.add_argument("--yinyang-epochs", type=int, default=None,
                        help="yin-yang training epochs (default the spec's)")
    parser.add_argument("--tau-r-samples", type=int, default=TAU_R_PHASE["samples"],
                        help="random stimuli of the tau_r learning phase (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="keep the variants already in robustness.csv")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes of a local Dask cluster (default: this process)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    tasks = (args.tasks or ("bars_t10" if args.quick else ",".join(TASKS))).split(",")
    knobs = args.knobs.split(",")
    unknown = [t for t in tasks if t not in TASKS] + [k for k in knobs if k not in KNOBS]
    if unknown:
        parser.error(f"unknown task or knob: {', '.join(unknown)}")
    settings = Settings(n_seeds=args.seeds or (3 if args.quick else 10),
                        bars_epochs=args.bars_epochs or (100 if args.quick else 300),
                        yinyang_train=args.yinyang_train, yinyang_epochs=args.yinyang_epochs, device=args.device,
                        tau_r_samples=args.tau_r_samples)
    quick_levels = (args.levels or ("quick" if args.quick else "full")) == "quick"
    args.out.mkdir(parents=True, exist_ok=True)
    out_csv = args.out / "robustness.csv"
    done = read_csv(out_csv) if args.resume else pd.DataFrame(columns=CSV_COLUMNS)
    todo = variants(tasks, knobs, quick_levels)
    try:
        df = sweep(todo, settings, done, out_csv, log=lambda text: print(text, flush=True), workers=args.workers)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    plot_metric(df, "accuracy", "test accuracy", args.out / "accuracy.png",
                "Test accuracy on an imperfect substrate (mean and min-max range over seeds)",
                reference=1 / 3, ylim=(0.0, 1.05))
    plot_metric(df, "angle_apical_bp", "angle (degrees)", args.out / "angle.png",
                "Apical error vs backprop in area 1, last 10 % of training (mean and min-max range over seeds)",
                reference=90.0)
    print(summary(df))
    versions = ", ".join(f"{TASKS[t].path.name} sha256 {spec_digest(TASKS[t])}" for t in dict.fromkeys(tasks))
    print(f"this run: tasks {', '.join(tasks)}; seeds {settings.n_seeds}, bars epochs {settings.bars_epochs}, "
          f"yin-yang train {settings.yinyang_train or 'spec'} x {settings.yinyang_epochs or 'spec'} epochs; "
          f"{versions}")
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
