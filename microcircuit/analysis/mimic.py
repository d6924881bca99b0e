"""Analysis ``mimic``: a student microcircuit learns a random teacher's map (Haider 2021, Fig. 5).

Runs circuits/teacher_le.yaml (1-1-1, dt = 0.01 ms, t_pres = 100 dt = 1 ms, about 0.19 tau_eff;
a learned self-prediction phase, then training with the teacher on, then a test without it) through
:class:`microcircuit.experiment.Experiment`, in memory, with seeds batched as independent circuits,
once with Latent Equilibrium somas (as shipped) and once with lagging ``orig`` somas
(``defaults.population.dynamics=orig``). After every epoch the weights of every projection and the
buffered recordings of the spec (``pyr_1.apical.v``; in the test phase ``out.soma.u_breve`` and
``target``) are kept.

Writes into ``--out``:

- ``mimic_metrics.csv``: dynamics, phase, epoch, epoch_index (epochs presented so far, over all
  phases), seed, metric, value; the run's metrics (``loss``, ``apical_norm/pyr_1`` = mean |v^A|,
  ``weight_distance/up_k`` = ||W - W_teacher|| / ||W_teacher||) plus, from the presentation-averaged
  test outputs, ``test_r2`` (1 - test MSE / variance of the test targets; 1 = perfect, 0 = no better
  than a constant), ``test_corr`` (Pearson correlation of output and target) and ``test_spread_ratio``
  (standard deviation of the outputs over that of the targets: near 0 when the output cannot follow
  the stimulus);
- ``mimic_weights.csv``: dynamics, phase, epoch, epoch_index, seed, projection, post, pre, value,
  teacher (the teacher's weight for up_k, else empty); epoch_index 0 = the initial weights;
- ``mimic_test.csv``: dynamics, seed, presentation, output, target (presentation averages of the
  recorded output rate potential and target, every neuron);
- ``weights.png`` (student W^up_1, W^up_2 per seed against the teacher's and their relative distance
  over training; the apical potential and the loss per epoch; the LE students' path in the
  (W^up_1, W^up_2) plane), ``apical.png`` (apical potentials during self-prediction and training, per
  epoch and as recorded), ``output.png`` (output vs target in the test phase).

Distances are reported before training (after the self-prediction phase, in which the forward weights
do not learn), after the first and after the last training epoch. The teacher's map is identifiable:
with soft ReLU, c_2 W_2 phi(c_1 W_1 x) fixes W_2 by its offset (phi(0) = log 2) and W_1 by its slope,
so the distance to the teacher's own weights is the right measure (no sign-flipped equivalent exists).

Prints a summary (weight distances, apical norms, losses, test fit per dynamics) and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.experiment import Experiment, PhaseData, RunOptions
from microcircuit.rundir import atomic_write_text
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import load_spec
from microcircuit.spec.schema import Phase, Spec

SPEC = shipped_circuit("teacher_le.yaml")
DYNAMICS = {"LE": "latent_equilibrium", "orig": "orig"}
APICAL_VAR = "pyr_1.apical.v"
OUTPUT_VAR = "out.soma.u_breve"


class TrackingExperiment(Experiment):
    """An in-memory :class:`Experiment` that keeps, after every epoch, every projection's weights and the
    recordings buffered during it.

    Attributes:
        weights: rows (phase, epoch, epoch_index, seed, projection, post, pre, value); epoch_index 0 holds
            the initial weights.
        epochs: (phase, epoch, epoch_index, first global step, number of metric rows after the epoch).
        chunks: epoch_index -> {var: [sample, circuit, batch(, neuron)] float32, var.t: [sample] ms}.
    """

    def __init__(self, spec: Spec, options: RunOptions):
        super().__init__(spec, options, run_dir=None)
        self.epoch_index = 0
        self.weights: list[tuple] = []
        self.epochs: list[tuple[str, int, int, int, int]] = []
        self.chunks: dict[int, dict[str, np.ndarray]] = {}
        self._keep_weights("init", 0)

    def _keep_weights(self, phase: str, epoch: int) -> None:
        for name, w in self.sim.state.weights.items():
            values = w.detach().to("cpu").double().numpy()  # [circuit, post, pre]
            for c, seed in enumerate(self.seeds):
                for (i, j), value in np.ndenumerate(values[c]):
                    self.weights.append((phase, epoch, self.epoch_index, seed, name, i, j, float(value)))

    def epochs_per_call(self, phase: Phase, n_samples: int) -> int:
        return 1  # the weights are kept after every epoch

    def present_epoch(self, name: str, epoch: int, data: PhaseData, phase: Phase, plastic, shuffle: bool,
                      order=None) -> None:
        first_step = self.global_step
        super().present_epoch(name, epoch, data, phase, plastic, shuffle, order)
        self.epoch_index += 1
        self.epochs.append((name, epoch, self.epoch_index, first_step, len(self.result.rows)))
        self._keep_weights(name, epoch)
        self.chunks[self.epoch_index] = self.recorder.take_chunk()


def run_dynamics(dynamics: str, n_seeds: int, epochs: int | None, device: str,
                 extra: list[str] = ()) -> TrackingExperiment:
    """Run the teacher spec with ``dynamics`` (``LE`` or ``orig``); ``epochs`` overrides the training phase's,
    ``extra`` holds further ``--set`` overrides."""
    overrides = [f"defaults.population.dynamics={DYNAMICS[dynamics]}", *extra]
    if epochs is not None:
        base = load_spec(SPEC)[0]
        train = next(i for i, p in enumerate(base.protocol) if p.phase == "train")
        overrides.append(f"protocol.{train}.epochs={epochs}")
    spec = load_spec(SPEC, overrides)[0]
    experiment = TrackingExperiment(spec, RunOptions(n_seeds=n_seeds, device=device, progress=False))
    result = experiment.run()
    if result.status != "done":
        raise RuntimeError(f"mimic run with {dynamics} somas {result.status}: {result.diagnosis}")
    return experiment


def tables(experiment: TrackingExperiment, dynamics: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(metrics, weights, test outputs) of one run as data frames (see the module docstring)."""
    index_of_row = np.zeros(len(experiment.result.rows), dtype=int)
    start = 0
    for _phase, _epoch, epoch_index, _step, end in experiment.epochs:
        index_of_row[start:end] = epoch_index
        start = end
    metrics = experiment.result.frame()
    metrics.insert(2, "epoch_index", index_of_row)
    teacher = {name: w.cpu().double().numpy() for name, w in experiment.reference_weights.items()}
    weights = pd.DataFrame(experiment.weights,
                           columns=["phase", "epoch", "epoch_index", "seed", "projection", "post", "pre", "value"])
    weights["teacher"] = [teacher[p][i, j] if p in teacher else np.nan
                          for p, i, j in zip(weights["projection"], weights["post"], weights["pre"], strict=True)]
    test = test_outputs(experiment)
    fit = []
    for seed, grp in test.groupby("seed"):
        variance = grp["target"].var(ddof=0)
        mse = ((grp["output"] - grp["target"]) ** 2).mean()
        where = {"phase": "test", "epoch": experiment.trained_epochs, "epoch_index": experiment.epoch_index,
                 "seed": seed}
        fit.append({**where, "metric": "test_r2", "value": 1.0 - mse / variance})
        fit.append({**where, "metric": "test_corr", "value": grp["output"].corr(grp["target"])})
        fit.append({**where, "metric": "test_spread_ratio", "value": grp["output"].std() / grp["target"].std()})
    metrics = pd.concat([metrics, pd.DataFrame(fit)], ignore_index=True)
    for df in (metrics, weights, test):
        df.insert(0, "dynamics", dynamics)
    return metrics, weights, test


def test_outputs(experiment: TrackingExperiment) -> pd.DataFrame:
    """Presentation averages of the recorded output and target in the test phase (the last epoch)."""
    phase, _epoch, epoch_index, first_step, _ = experiment.epochs[-1]
    test_phase = next(p for p in experiment.spec.protocol if p.phase == phase)
    chunk = experiment.chunks[epoch_index]
    if OUTPUT_VAR not in chunk or "target" not in chunk:
        raise ValueError(f"the spec must record {OUTPUT_VAR} and target in the phase '{phase}'")
    steps = np.rint(chunk[f"{OUTPUT_VAR}.t"] / experiment.sim.dt).astype(int) - first_step  # 1..n * t_pres
    presentation = (steps - 1) // test_phase.t_pres
    rows = []
    out, target = chunk[OUTPUT_VAR], chunk["target"]  # [sample, circuit, batch, neuron]
    for p in np.unique(presentation):
        sel = presentation == p
        mean_out, mean_target = out[sel].mean(axis=0), target[sel].mean(axis=0)  # [circuit, batch, neuron]
        for c, seed in enumerate(experiment.seeds):
            for (b, n), value in np.ndenumerate(mean_out[c]):
                rows.append({"seed": seed, "presentation": int(p) * mean_out.shape[1] + b, "neuron": n,
                             "output": float(value), "target": float(mean_target[c, b, n])})
    return pd.DataFrame(rows)


def apical_traces(experiment: TrackingExperiment, dynamics: str) -> pd.DataFrame:
    """The recorded apical potential of every epoch: dynamics, phase, epoch_index, time (ms), seed, |v^A|
    (mean over neurons)."""
    frames = []
    for phase, _epoch, epoch_index, _step, _ in experiment.epochs:
        chunk = experiment.chunks.get(epoch_index, {})
        if APICAL_VAR not in chunk:
            continue
        v = np.abs(chunk[APICAL_VAR]).reshape(len(chunk[f"{APICAL_VAR}.t"]), len(experiment.seeds), -1).mean(axis=2)
        for c, seed in enumerate(experiment.seeds):
            frames.append(pd.DataFrame({"dynamics": dynamics, "phase": phase, "epoch_index": epoch_index,
                                        "time": chunk[f"{APICAL_VAR}.t"], "seed": seed, "abs_apical": v[:, c]}))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- figures
def math_name(projection: str) -> str:
    """``up_2`` -> mathtext W^up_2."""
    kind, _, k = projection.partition("_")
    return f"$W^{{{kind}}}_{{{k}}}$"


def palette() -> dict[str, tuple]:
    import seaborn as sns

    return dict(zip(DYNAMICS, sns.color_palette("colorblind", 3)[0::2], strict=True))


def training_curve(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of ``metric`` per training epoch, plus epoch 0: the value after the self-prediction phase
    (before training; the forward weights do not learn during self-prediction)."""
    sel = metrics[metrics["metric"] == metric]
    train = sel[sel["phase"] == "train"]
    before = sel[sel["phase"] == "self_prediction"]
    before = before[before["epoch"] == before["epoch"].max()].assign(epoch=0)
    return pd.concat([before, train], ignore_index=True)


def plot_weights(metrics: pd.DataFrame, weights: pd.DataFrame, path: Path) -> None:
    """Rows W^up_1, W^up_2: student weight per seed (LE, orig) against the teacher's, and the relative distance;
    last row: apical potential and loss per epoch, and the LE students' path in the (W^up_1, W^up_2) plane."""
    import seaborn as sns

    colors = palette()
    ups = sorted(p for p in weights["projection"].unique() if p.startswith("up_"))
    train = weights[weights["phase"].isin(["init", "train"])]
    epoch_label = "training epoch (0: before training)"
    with styled() as plt:
        fig, axes = plt.subplots(len(ups) + 1, 3, figsize=(15, 3.6 * (len(ups) + 1)), squeeze=False)
        for r, proj in enumerate(ups):
            sub = train[(train["projection"] == proj) & (train["post"] == 0) & (train["pre"] == 0)]
            for c, dynamics in enumerate(DYNAMICS):
                ax = axes[r, c]
                d = sub[sub["dynamics"] == dynamics]
                for k, (_, grp) in enumerate(d.groupby("seed")):
                    ax.plot(grp["epoch"], grp["value"], color=colors[dynamics], lw=1.0, alpha=0.7,
                            label="student, one line per seed" if k == 0 else None)
                ax.axhline(d["teacher"].iloc[0], color="k", ls="--", lw=1.2,
                           label=f"teacher ({d['teacher'].iloc[0]:.3f})")
                ax.set_title(f"{dynamics}: student {math_name(proj)}")
                ax.set_xlabel(epoch_label)
                ax.set_ylabel(f"{math_name(proj)} (dimensionless)")
                ax.legend(loc="best", frameon=True, fontsize=8)
            ax = axes[r, 2]
            dist = training_curve(metrics, f"weight_distance/{proj}")
            sns.lineplot(data=dist, x="epoch", y="value", hue="dynamics", hue_order=list(DYNAMICS), palette=colors,
                         errorbar=("pi", 100), ax=ax)
            ax.set_yscale("log")
            ax.set_title(f"distance of {math_name(proj)} to the teacher's (mean, min-max)")
            ax.set_xlabel(epoch_label)
            ax.set_ylabel("|W - W_teacher| / |W_teacher|")
            ax.legend(frameon=True, fontsize=8)
        row = axes[len(ups)]
        ax = row[0]
        apical = metrics[(metrics["metric"] == "apical_norm/pyr_1")
                         & metrics["phase"].isin(["self_prediction", "train"])]
        n_self = int(apical[apical["phase"] == "self_prediction"]["epoch_index"].max())
        sns.lineplot(data=apical, x="epoch_index", y="value", hue="dynamics", hue_order=list(DYNAMICS),
                     palette=colors, errorbar=("pi", 100), ax=ax)
        ax.axvspan(0.5, n_self + 0.5, color="0.88", zorder=0)
        ax.text(0.55, 0.03, "self-prediction\n(teacher off)", transform=ax.get_xaxis_transform(), va="bottom",
                fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epochs presented (self-prediction, then training)")
        ax.set_ylabel("mean |v^A| of pyr_1 (dimensionless)")
        ax.set_title("apical potential per epoch (mean, min-max)")
        ax.legend(frameon=True, fontsize=8, loc="upper right")
        ax = row[1]
        loss = training_curve(metrics, "loss")
        loss = loss[loss["phase"] == "train"]
        sns.lineplot(data=loss, x="epoch", y="value", hue="dynamics", hue_order=list(DYNAMICS), palette=colors,
                     errorbar=("pi", 100), ax=ax)
        ax.set_yscale("log")
        ax.set_xlabel(epoch_label)
        ax.set_ylabel("MSE of output vs target")
        ax.set_title("training loss (teacher on; mean, min-max)")
        ax.legend(frameon=True, fontsize=8)
        ax = row[2]
        if len(ups) == 2:
            plane = train[(train["post"] == 0) & (train["pre"] == 0) & (train["dynamics"] == "LE")]
            wide = plane.pivot_table(index=["seed", "epoch"], columns="projection", values="value").reset_index()
            for k, (_, grp) in enumerate(wide.groupby("seed")):
                ax.plot(grp[ups[0]], grp[ups[1]], color=colors["LE"], lw=0.9, alpha=0.7,
                        label="LE student path, one per seed" if k == 0 else None)
                ax.plot(grp[ups[0]].iloc[0], grp[ups[1]].iloc[0], "o", color=colors["LE"], ms=4, mfc="white",
                        label="before training" if k == 0 else None)
            teacher = plane.groupby("projection")["teacher"].first()
            ax.plot(teacher[ups[0]], teacher[ups[1]], "*", color="k", ms=14, label="teacher", zorder=5)
            ax.set_xlabel(f"{math_name(ups[0])} (dimensionless)")
            ax.set_ylabel(f"{math_name(ups[1])} (dimensionless)")
            ax.set_title("LE: forward weights during training")
            ax.legend(frameon=True, fontsize=8, loc="best")
        else:
            ax.set_visible(False)
        fig.suptitle("Mimic (1-1-1, t_pres = 100 dt = 1 ms = 0.19 tau_eff, an epoch = the 6 training stimuli): "
                     "student forward weights against the teacher's, apical potentials, loss", y=1.0)
        fig.tight_layout()
        save_figure(fig, path)


def plot_apical(metrics: pd.DataFrame, traces: pd.DataFrame, path: Path) -> None:
    """A: mean |v^A| per epoch over self-prediction and training; B: recorded |v^A| over the self-prediction
    phase and the first training epochs; C: over the last training epoch."""
    import seaborn as sns

    colors = palette()
    apical = metrics[(metrics["metric"] == "apical_norm/pyr_1") & metrics["phase"].isin(["self_prediction", "train"])]
    n_self = int(apical[apical["phase"] == "self_prediction"]["epoch_index"].max())
    with styled() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        ax = axes[0]
        sns.lineplot(data=apical, x="epoch_index", y="value", hue="dynamics", hue_order=list(DYNAMICS),
                     palette=colors, errorbar=("pi", 100), ax=ax)
        ax.axvspan(0.5, n_self + 0.5, color="0.85", zorder=0)
        ax.text(0.6, 0.97, "self-\nprediction", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epochs presented (self-prediction, then training)")
        ax.set_ylabel("mean |v^A| of pyr_1 over the epoch (dimensionless)")
        ax.set_title("A  apical potential per epoch (mean, range)")
        ax.legend(frameon=False, fontsize=8)
        early = traces[traces["epoch_index"] <= n_self + 3]
        last_train = int(traces[traces["phase"] == "train"]["epoch_index"].max())
        late = traces[traces["epoch_index"] == last_train]
        for ax, part, title in ((axes[1], early, "B  self-prediction and first 3 training epochs"),
                                (axes[2], late, "C  last training epoch")):
            sns.lineplot(data=part, x="time", y="abs_apical", hue="dynamics", hue_order=list(DYNAMICS), palette=colors,
                         errorbar=("pi", 100), ax=ax, lw=1.0)
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("|v^A| of pyr_1, every 20 dt (dimensionless)")
            ax.set_title(title)
            ax.legend(frameon=False, fontsize=8)
        switch = early[early["phase"] == "train"]["time"].min()
        axes[1].axvline(switch, color="k", ls="--", lw=1.0)
        axes[1].text(switch, 0.97, " teacher on", transform=axes[1].get_xaxis_transform(), va="top", fontsize=8)
        fig.suptitle("Mimic: apical (error) potentials, mean and min-max range over seeds")
        fig.tight_layout()
        save_figure(fig, path)


def plot_output(test: pd.DataFrame, experiments: dict[str, TrackingExperiment], path: Path) -> None:
    """A, B: test-phase output potential and target of the first seed (LE, orig); C: presentation
    averages, output against target, every seed."""
    colors = palette()
    with styled() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for ax, (dynamics, experiment) in zip(axes[:2], experiments.items(), strict=True):
            _phase, _epoch, epoch_index, first_step, _ = experiment.epochs[-1]
            chunk = experiment.chunks[epoch_index]
            t = chunk[f"{OUTPUT_VAR}.t"] - first_step * experiment.sim.dt
            ax.plot(t, chunk["target"][:, 0, 0, 0], color="k", ls="--", lw=1.2, label="target (teacher)")
            ax.plot(t, chunk[OUTPUT_VAR][:, 0, 0, 0], color=colors[dynamics], lw=1.5, label=f"{dynamics} output")
            ax.set_xlabel("time in the test phase (ms; a new stimulus every 1 ms)")
            ax.set_ylabel("output potential (dimensionless)")
            ax.set_title(f"{'AB'[list(experiments).index(dynamics)]}  {dynamics}, seed {experiment.seeds[0]}, "
                         "teacher off")
            ax.legend(frameon=True, fontsize=8)
        ax = axes[2]
        lo, hi = test["target"].min(), test["target"].max()
        pad = 0.15 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=1.0, ls="--", label="output = target",
                zorder=1)
        for dynamics in experiments:
            d = test[test["dynamics"] == dynamics]
            ax.scatter(d["target"], d["output"], color=colors[dynamics], alpha=0.6, s=22,
                       marker="o" if dynamics == "LE" else "X", zorder=2,
                       label=f"{dynamics} ({d['seed'].nunique()} seeds x {d['presentation'].nunique()} stimuli)")
        ax.set_xlabel("target, mean over the presentation")
        ax.set_ylabel("output, mean over the presentation")
        ax.set_title("C  test stimuli, every seed")
        ax.legend(frameon=True, fontsize=8, loc="upper left")
        fig.suptitle("Mimic: output against the teacher's target after training, teacher off "
                     "(t_pres = 100 dt = 1 ms = 0.19 tau_eff)")
        fig.tight_layout()
        save_figure(fig, path)


def summary(metrics: pd.DataFrame) -> str:
    """Per dynamics: weight distances (before training, first and last training epoch), apical norms,
    losses, test fit."""

    def stat(sel: pd.Series) -> str:
        v = sel.to_numpy(dtype=float)
        return f"{v.mean():.3g} [{v.min():.3g}, {v.max():.3g}]"

    lines = ["mean [min, max] over seeds"]
    for dynamics, d in metrics.groupby("dynamics", sort=False):
        train = d[d["phase"] == "train"]
        first, last = train["epoch"].min(), train["epoch"].max()
        lines.append(f"{dynamics}:")
        for metric in sorted(m for m in d["metric"].unique() if m.startswith("weight_distance/")):
            m = training_curve(d, metric)
            lines.append(f"  {metric:<24} before training: {stat(m[m['epoch'] == 0]['value'])}, "
                         f"epoch {first}: {stat(m[m['epoch'] == first]['value'])}  ->  "
                         f"epoch {last}: {stat(m[m['epoch'] == last]['value'])}")
        sp = d[(d["phase"] == "self_prediction") & (d["metric"] == "apical_norm/pyr_1")]
        ap = train[train["metric"] == "apical_norm/pyr_1"]
        peak = ap.groupby("epoch")["value"].mean()
        lines.append(f"  apical_norm/pyr_1        self-prediction epoch 1: "
                     f"{stat(sp[sp['epoch'] == sp['epoch'].min()]['value'])}, "
                     f"last: {stat(sp[sp['epoch'] == sp['epoch'].max()]['value'])}")
        lines.append(f"  apical_norm/pyr_1        training: peak of the mean {peak.max():.3g} (epoch {peak.idxmax()}), "
                     f"epoch {last}: {stat(ap[ap['epoch'] == last]['value'])}")
        loss = train[train["metric"] == "loss"]
        lines.append(f"  training loss (teacher on) epoch {first}: {stat(loss[loss['epoch'] == first]['value'])}, "
                     f"epoch {last}: {stat(loss[loss['epoch'] == last]['value'])}")
        test = d[d["phase"] == "test"]
        lines.append(f"  test loss                {stat(test[test['metric'] == 'loss']['value'])}")
        lines.append(f"  test R^2                 {stat(test[test['metric'] == 'test_r2']['value'])}")
        lines.append(f"  test corr(output, target) {stat(test[test['metric'] == 'test_corr']['value'])}")
        lines.append(f"  test sd(output)/sd(target) {stat(test[test['metric'] == 'test_spread_ratio']['value'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mimic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/mimic"))
    parser.add_argument("--quick", action="store_true", help="3 seeds, 30 training epochs")
    parser.add_argument("--seeds", type=int, default=None, help="circuits per dynamics (default 10; quick 3)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default the spec's; quick 30)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="further override of the spec, for LE and orig (repeatable), e.g. "
                             "--set 'projections.down_1.rule={tied: {to: up_2}}'")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    n_seeds = args.seeds or (3 if args.quick else 10)
    epochs = args.epochs or (30 if args.quick else None)
    args.out.mkdir(parents=True, exist_ok=True)
    experiments, metric_frames, weight_frames, test_frames, trace_frames = {}, [], [], [], []
    for dynamics in DYNAMICS:
        t0 = time.perf_counter()
        experiment = run_dynamics(dynamics, n_seeds, epochs, args.device, args.overrides)
        experiments[dynamics] = experiment
        m, w, t = tables(experiment, dynamics)
        metric_frames.append(m)
        weight_frames.append(w)
        test_frames.append(t)
        trace_frames.append(apical_traces(experiment, dynamics))
        print(f"{dynamics}: {len(experiment.seeds)} seeds, {experiment.trained_epochs} training epochs, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    metrics = pd.concat(metric_frames, ignore_index=True)
    weights = pd.concat(weight_frames, ignore_index=True)
    test = pd.concat(test_frames, ignore_index=True)
    traces = pd.concat(trace_frames, ignore_index=True)
    atomic_write_text(args.out / "mimic_metrics.csv", metrics.to_csv(index=False))
    atomic_write_text(args.out / "mimic_weights.csv", weights.to_csv(index=False))
    atomic_write_text(args.out / "mimic_test.csv", test.to_csv(index=False))
    plot_weights(metrics, weights, args.out / "weights.png")
    plot_apical(metrics, traces, args.out / "apical.png")
    plot_output(test, experiments, args.out / "output.png")
    print(summary(metrics))
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
