"""Analysis ``error_vs_backprop``: how well dendritic errors and weight updates match backprop.

Two parts, both on circuits built from YAML specs and with seeds batched as independent circuits:

1. Nudging sweep. A 5-8-6-3 microcircuit (two hidden areas) in the analytic self-predicting state
   gets a stimulus with the teacher off, then the teacher on with conductance g_som from weak to
   strong. On the same weights and stimulus, the apical potentials, somatic errors and W^up updates
   are compared with the backprop reference (microcircuit.reference.backprop), for top-down weights
   ``tied`` (W^down = (W^up)^T), ``random`` (feedback alignment) and ``learned`` (hebbian_alignment,
   after a learning phase), LE versus orig. Measured once settled (``steady``) and averaged over the
   first t_pres = 20 dt after the teacher switches on (``transient``: where orig lags and LE does not).
2. Training. The bars circuit (circuits/bars_le.yaml) trained with ``compare_backprop: true`` for each
   top-down rule and LE versus orig; the angles over epochs come from the run's metrics.

Writes ``nudging.csv``, ``training.csv``, ``nudging.png``, ``training.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from microcircuit.analysis.figures import save_figure, styled
from microcircuit.analysis.specs import microcircuit_spec
from microcircuit.circuit import Circuit
from microcircuit.engine import Simulator
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.model.activations import ACTIVATIONS
from microcircuit.reference.backprop import angle_degrees, backprop_reference, cosine
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import load_spec, load_spec_text

SIZES = [5, 8, 6, 3]
DYNAMICS = {"latent_equilibrium": "LE", "orig": "orig"}
TOP_DOWN = ["tied", "random", "learned"]


def build_simulator(top_down: str, dynamics: str, g_som: float, seeds: list[int], n_batch: int,
                    device: str) -> Simulator:
    d = microcircuit_spec(SIZES, top_down=top_down, dynamics=dynamics, teacher_conductance=g_som,
                          dtype="float64", name=f"{top_down}_{dynamics}")
    spec = load_spec_text(yaml.safe_dump(d), f"{d['name']}.yaml")[0]
    return Simulator(Circuit(spec), seeds, n_batch=n_batch, dtype=torch.float64, device=device)


def learn_top_down(sim: Simulator, presentations: int, gen: torch.Generator) -> None:
    """Always-on learning of W^down (hebbian_alignment) and W^PI (apical silencing) on random inputs,
    teacher off; W^PI is then set to -W^down (the self-predicting state of the learned weights)."""
    names = [q.name for q in sim.circuit.projections.values() if q.rule in ("hebbian_alignment", "apical_silencing")]
    plan = sim.plastic_plan({n: sim.circuit.projections[n].eta for n in names})
    n_in = sim.circuit.populations["x"].size
    for _ in range(presentations):
        x = torch.rand(sim.n_circuits, sim.n_batch, n_in, dtype=torch.float64, generator=gen).to(sim.device)
        sim.present(x, None, 50, plan, teacher=False)
    sim.circuit.apply_self_predicting(sim.state.weights)


def measure(sim: Simulator, x: torch.Tensor, target: torch.Tensor, steps: int, average: bool) -> dict[str, np.ndarray]:
    """Teacher on for ``steps`` steps; cosines with backprop [circuit], batch-averaged, either averaged
    over every step (``average``) or taken after the last step."""
    c = sim.circuit
    ref = backprop_reference(c, sim.state.weights, x, target)
    hidden = [p for p in ("pyr_1", "pyr_2") if p in c.populations]
    sums = {f"apical/{p}": 0.0 for p in hidden}
    for i in range(steps):
        sim.step(x, target, [])
        if average or i == steps - 1:
            for p in hidden:
                sums[f"apical/{p}"] = sums[f"apical/{p}"] + cosine(sim.state.v[f"{p}.apical"], ref.rate_errors[p])
    norm = steps if average else 1
    out = {k: (v / norm).mean(dim=1).cpu().numpy() for k, v in sums.items()}
    # the W^up update direction of one step with the current errors (dendritic prediction)
    for q in c.forward_chain:
        phi_post = ACTIVATIONS.get(c.populations[q.target].activation)
        basal = c.attenuation(q.target, "basal") * sim.state.v[f"{q.target}.basal"]
        error = sim.state.rate[q.target] - phi_post(basal)
        dw = torch.einsum("sbi,sbj->sij", error, sim.state.rate[q.source])
        out[f"dW/{q.name}"] = cosine(dw, ref.gradients[q.name], dims=(1, 2)).cpu().numpy()
    return out


def nudging_sweep(g_values: list[float], seeds: list[int], n_batch: int, learn: int, device: str) -> pd.DataFrame:
    rows = []
    for top_down in ("tied", "random", "learned"):
        for dynamics, label in DYNAMICS.items():
            for g in g_values:
                gen = torch.Generator().manual_seed(1234)
                sim = build_simulator(top_down, dynamics, g, seeds, n_batch, device)
                if top_down == "learned":
                    learn_top_down(sim, learn, gen)
                x = torch.rand(len(seeds), n_batch, SIZES[0], dtype=torch.float64, generator=gen).to(sim.device)
                target = (0.1 + 0.9 * torch.rand(len(seeds), n_batch, SIZES[-1], dtype=torch.float64,
                                                 generator=gen)).to(sim.device)
                settle = int(10 * sim.circuit.tau_eff("pyr_1") / sim.dt)
                sim.present(x, target, settle, [], teacher=False)
                snapshot = {k: v.clone() for k, v in sim.state.tensors().items()}
                for mode, steps in (("transient", 20), ("steady", settle)):
                    sim.state.load_tensors({k: v.clone() for k, v in snapshot.items()})
                    for metric, values in measure(sim, x, target, steps, average=mode == "transient").items():
                        for seed, cos in zip(seeds, values, strict=True):
                            rows.append({"g_som": g, "top_down": top_down, "dynamics": label, "mode": mode,
                                         "metric": metric, "seed": seed, "cosine": float(cos),
                                         "angle": float(angle_degrees(torch.tensor(cos)))})
    return pd.DataFrame(rows)


def training_runs(epochs: int, t_pres: int, n_seeds: int, device: str) -> pd.DataFrame:
    """bars with compare_backprop for each top-down rule; LE versus orig."""
    variants = {
        "random": [],
        "tied": ["projections.down_1.rule={tied: {to: up_2}}",
                 "projections.pi_1.rule={apical_silencing: {eta: 2.0}}"],
        "learned": ["projections.down_1.rule={hebbian_alignment: {eta: 1.0, tau_hp: 5.0, decay: 0.01}}",
                    "projections.pi_1.rule={apical_silencing: {eta: 2.0}}"],
    }
    frames = []
    for top_down, extra in variants.items():
        for dynamics, label in DYNAMICS.items():
            overrides = [f"parameters.t_pres={t_pres}", f"protocol.0.epochs={epochs}", "protocol.0.validate_every=0",
                         "compare_backprop=true", "record=[]", f"defaults.population.dynamics={dynamics}", *extra]
            spec = load_spec(shipped_circuit("bars_le.yaml"), overrides)[0]
            experiment = Experiment(spec, RunOptions(n_seeds=n_seeds, device=device, progress=False))
            result = experiment.run()
            df = result.frame()
            df["top_down"], df["dynamics"] = top_down, label
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def plot_nudging(df: pd.DataFrame, path: Path) -> None:
    import seaborn as sns

    with styled() as plt:
        panels = [("apical/pyr_1", "steady", "apical error, area 1 (settled)"),
                  ("apical/pyr_1", "transient", "apical error, area 1 (first 20 dt)"),
                  ("dW/up_1", "steady", "W^up update, area 1 (settled)")]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
        for ax, (metric, mode, title) in zip(axes, panels, strict=True):
            sub = df[(df["metric"] == metric) & (df["mode"] == mode)]
            sns.lineplot(data=sub, x="g_som", y="angle", hue="top_down", style="dynamics", markers=True,
                         hue_order=TOP_DOWN, style_order=list(DYNAMICS.values()), errorbar=("pi", 100), ax=ax,
                         legend=ax is axes[-1])
            ax.set_xscale("log")
            ax.set_title(title)
            ax.set_xlabel("teacher nudging g_som (1/ms)")
            ax.set_ylabel("angle to backprop (degrees)")
            ax.axhline(90, color="0.5", lw=0.8, ls=":")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
        fig.suptitle("Dendritic errors vs backprop on the same weights (5-8-6-3, self-predicting state)")
        fig.tight_layout()
        save_figure(fig, path)


def plot_training(df: pd.DataFrame, path: Path) -> None:
    import seaborn as sns

    with styled() as plt:
        metrics = [("angle_apical_bp/pyr_1", "apical error vs backprop"),
                   ("angle_dW_bp/up_1", "W^up_1 update vs backprop"),
                   ("angle_Wdown_WupT/down_1", "W^down vs (W^up)^T")]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
        train = df[df["phase"] == "train"]
        for ax, (metric, title) in zip(axes, metrics, strict=True):
            sub = train[train["metric"] == metric]
            sns.lineplot(data=sub, x="epoch", y="value", hue="top_down", style="dynamics", hue_order=TOP_DOWN,
                         style_order=list(DYNAMICS.values()), errorbar=("pi", 100), ax=ax, legend=ax is axes[-1])
            ax.set_title(title)
            ax.set_xlabel("training epoch (bars)")
            ax.set_ylabel("angle (degrees)")
            ax.axhline(90, color="0.5", lw=0.8, ls=":")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
        fig.suptitle("Alignment with backprop over training (bars, 9-30-3, mean and range over seeds)")
        fig.tight_layout()
        save_figure(fig, path)


def summary(nudging: pd.DataFrame, training: pd.DataFrame) -> str:
    lines = ["nudging sweep (settled, mean cosine over seeds; area 1 apical / area 2 apical / dW up_1):"]
    steady = nudging[nudging["mode"] == "steady"]
    for (top_down, dynamics, g), grp in steady.groupby(["top_down", "dynamics", "g_som"]):
        means = grp.groupby("metric")["cosine"].mean()
        lines.append(f"  {top_down:<8} {dynamics:<5} g_som={g:<7g} "
                     f"{means.get('apical/pyr_1', np.nan):.4f} / {means.get('apical/pyr_2', np.nan):.4f} / "
                     f"{means.get('dW/up_1', np.nan):.4f}")
    lines.append("training (bars): angle of the apical error to backprop, first -> last epoch (mean over seeds)")
    train = training[(training["phase"] == "train") & (training["metric"] == "angle_apical_bp/pyr_1")]
    for (top_down, dynamics), grp in train.groupby(["top_down", "dynamics"]):
        by_epoch = grp.groupby("epoch")["value"].mean()
        lines.append(f"  {top_down:<8} {dynamics:<5} {by_epoch.iloc[0]:6.1f} -> {by_epoch.iloc[-1]:6.1f} degrees")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="error_vs_backprop", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/error_vs_backprop"))
    parser.add_argument("--quick", action="store_true", help="fewer nudging values, seeds and epochs")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="bars training epochs (default 300; quick 30)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    g_values = [0.001, 0.06, 1.0] if args.quick else [0.001, 0.003, 0.01, 0.03, 0.06, 0.1, 0.3, 1.0]
    seeds = list(range(args.seeds or (3 if args.quick else 5)))
    epochs = args.epochs or (30 if args.quick else 300)
    args.out.mkdir(parents=True, exist_ok=True)
    nudging = nudging_sweep(g_values, seeds, n_batch=4 if args.quick else 8, learn=100 if args.quick else 600,
                            device=args.device)
    training = training_runs(epochs, t_pres=10, n_seeds=len(seeds), device=args.device)
    from microcircuit.rundir import atomic_write_text

    atomic_write_text(args.out / "nudging.csv", nudging.to_csv(index=False))
    atomic_write_text(args.out / "training.csv", training.to_csv(index=False))
    plot_nudging(nudging, args.out / "nudging.png")
    plot_training(training, args.out / "training.png")
    print(summary(nudging, training))
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
