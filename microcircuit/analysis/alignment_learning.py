"""Analysis ``alignment_learning``: do learned top-down weights align with the forward weights?

A 5-20-10-20-5 microcircuit (three hidden areas; the circuit of Max et al. 2024, Fig. 3) starts in the
analytic self-predicting state with random top-down weights W^down_k, uniform in [-1, 1] like every
weight. With the teacher off and the forward weights fixed, random inputs (uniform in [0, 1], a new one
every ``t_pres`` steps) drive the circuit while the top-down weights follow one of four rules
(model.md sec. 3, 3a):

- ``fixed``: no plasticity (feedback alignment's random weights);
- ``hebbian_alignment``: the stimulus-driven correlation rule;
- ``pal``: phaseless alignment learning, the hidden areas' own rate noise correlated with the answer of
  the area above;
- ``tied``: W^down_k = (W^up_{k+1})^T (the backprop reference, 0 degrees).

For the learned rules W^PI_k learns by apical silencing, to keep cancelling the changing W^down_k. Every
hidden pyramidal area gets the same rate noise (``--noise``) under every rule, so the four circuits differ
only in their top-down rule. The schedule is ``propagating`` (with ``linear`` neurons the reference
schedule's one-step loop between areas is unstable for some draws of the weights).

Measured: the angle between W^down_k and (W^up_{k+1})^T per layer k, at the start and after every epoch,
per circuit seed, for each activation (``linear`` and the nonlinear ``soft_relu``, ``hard_sigmoid``).
Writes ``alignment.csv`` (every record), ``summary.csv`` (first and last epoch, mean and spread over
seeds) and ``alignment.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from microcircuit.analysis.chains import load_dict
from microcircuit.analysis.figures import save_figure, styled
from microcircuit.analysis.specs import microcircuit_spec
from microcircuit.circuit import Circuit
from microcircuit.engine import Diverged, Simulator
from microcircuit.reference.alignment import top_down_pairs
from microcircuit.reference.backprop import angle_degrees, cosine
from microcircuit.rundir import atomic_write_text
from microcircuit.spec.schema import Spec

SIZES = [5, 20, 10, 20, 5]
TOP_DOWN = ("fixed", "hebbian_alignment", "pal", "tied")
ACTIVATIONS = ("linear", "soft_relu", "hard_sigmoid")
#: rule parameters of the learned top-down weights (eta and decay in 1/ms, time constants in ms)
PAL = {"eta": 3.0, "tau_hp": 0.2, "tau_xi": 0.3, "decay": 1e-3}
HEBBIAN = {"eta": 1.0, "tau_hp": 5.0, "decay": 0.01}
#: quick runs learn faster (and end noisier): eta 10 aligns within about 300 inputs
QUICK_PAL_ETA = 10.0
ETA_PI = 0.3  # apical silencing of W^PI under the learned rules (1/ms)


def alignment_spec(top_down: str, activation: str, noise: float, pal: dict[str, float] | None = None,
                   hebbian: dict[str, float] | None = None, sizes: list[int] | None = None) -> dict[str, Any]:
    """The spec (a dict) of one circuit: ``sizes`` (default :data:`SIZES`), ``activation`` everywhere,
    rate noise ``noise`` (potential units per step) in every hidden pyramidal area, and the top-down
    rule ``top_down`` (one of :data:`TOP_DOWN`) on every W^down_k."""
    if top_down not in TOP_DOWN:
        raise ValueError(f"top_down must be one of {TOP_DOWN}, got '{top_down}'")
    sizes = list(sizes or SIZES)
    d = microcircuit_spec(sizes, top_down="random", dtype="float64", schedule="propagating",
                          name=f"align_{top_down}_{activation}")
    d["defaults"]["population"]["activation"] = activation
    for k in range(1, len(sizes) - 1):
        d["populations"][f"pyr_{k}"]["rate_noise"] = noise
        down, pi = d["projections"][f"down_{k}"], d["projections"][f"pi_{k}"]
        if top_down == "tied":
            down["rule"] = {"tied": {"to": f"up_{k + 1}"}}
        elif top_down == "hebbian_alignment":
            down["rule"] = {"hebbian_alignment": dict(hebbian or HEBBIAN)}
            pi["rule"] = {"apical_silencing": {"eta": ETA_PI}}
        elif top_down == "pal":
            down["rule"] = {"pal": dict(pal or PAL)}
            pi["rule"] = {"apical_silencing": {"eta": ETA_PI}}
    return d


def angles(sim: Simulator) -> dict[str, torch.Tensor]:
    """W^down projection -> angle (degrees) between W^down_k and (W^up_{k+1})^T, [circuit]."""
    w = sim.state.weights
    return {down: angle_degrees(cosine(w[down], w[up].mT, dims=(1, 2))) for down, up in top_down_pairs(sim.circuit)}


def run(spec: Spec, seeds: list[int], epochs: int, presentations: int, t_pres: int, n_batch: int,
        device: str = "cpu") -> list[dict[str, Any]]:
    """Learn the top-down weights of ``spec`` (teacher off, forward weights fixed) for ``epochs`` epochs
    of ``presentations`` random inputs held ``t_pres`` steps; one row per (epoch, layer, seed), epoch 0
    being the start. A circuit batch that diverges (:class:`Diverged`) gets NaN angles from that epoch on."""
    sim = Simulator(Circuit(spec), seeds, n_batch=n_batch, dtype=torch.float64, device=device)
    circuit = sim.circuit
    learning = {n: q.eta for n, q in circuit.projections.items()
                if q.rule in ("hebbian_alignment", "pal", "apical_silencing")}
    plan = sim.plastic_plan(learning)
    n_in = circuit.populations[circuit.input_population].size
    gen = torch.Generator().manual_seed(seeds[0])
    rows: list[dict[str, Any]] = []
    layer = {down: k for k, (down, _) in enumerate(top_down_pairs(circuit), start=1)}

    def record(epoch: int, diverged: bool = False) -> None:
        for down, angle in angles(sim).items():
            for seed, value in zip(seeds, angle.tolist(), strict=True):
                rows.append({"epoch": epoch, "layer": layer[down], "projection": down, "seed": seed,
                             "angle": float("nan") if diverged else value, "diverged": diverged})

    record(0)
    sim.start_phase()
    diverged = False
    for epoch in range(1, epochs + 1):
        if not diverged:
            for _ in range(presentations):
                x = torch.rand(sim.n_circuits, n_batch, n_in, dtype=torch.float64, generator=gen).to(sim.device)
                sim.present(x, None, t_pres, plan, teacher=False)
            try:
                sim.check_finite(f"epoch {epoch}")
            except Diverged as error:
                print(f"{spec.name}: {error.diagnosis}", file=sys.stderr)
                diverged = True
        record(epoch, diverged)
    return rows


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per activation, rule and layer: the angle at the start and after the last epoch (mean, min, max
    over seeds, degrees)."""
    out = []
    for (activation, rule, layer), grp in df.groupby(["activation", "rule", "layer"], sort=False):
        first, last = grp[grp["epoch"] == grp["epoch"].min()], grp[grp["epoch"] == grp["epoch"].max()]
        out.append({"activation": activation, "rule": rule, "layer": layer, "start": first["angle"].mean(),
                    "final": last["angle"].mean(), "final_min": last["angle"].min(),
                    "final_max": last["angle"].max(), "diverged": bool(last["diverged"].any())})
    return pd.DataFrame(out)


def plot(df: pd.DataFrame, path: Path, note: str) -> None:
    """Angle over epochs: one panel per (activation, layer), one line per rule (mean and range over seeds)."""
    activations = list(dict.fromkeys(df["activation"]))
    layers = sorted(df["layer"].unique())
    with styled() as plt:
        import seaborn as sns

        fig, axes = plt.subplots(len(activations), len(layers), figsize=(3.4 * len(layers), 2.8 * len(activations)),
                                 sharex=True, sharey=True, squeeze=False)
        palette = dict(zip(TOP_DOWN, sns.color_palette("colorblind", len(TOP_DOWN)), strict=True))
        for i, activation in enumerate(activations):
            for j, layer in enumerate(layers):
                ax = axes[i][j]
                part = df[(df["activation"] == activation) & (df["layer"] == layer)]
                sns.lineplot(data=part, x="epoch", y="angle", hue="rule", hue_order=[r for r in TOP_DOWN
                             if r in set(part["rule"])], palette=palette, errorbar=("pi", 100), ax=ax,
                             legend=(i == 0 and j == len(layers) - 1))
                ax.set_title(f"{activation}, layer {layer}")
                ax.set_ylabel("angle (deg)" if j == 0 else "")
                if part["diverged"].any():
                    gone = sorted(set(part.loc[part["diverged"], "rule"]))
                    ax.text(0.97, 0.7, "diverged: " + ", ".join(gone), transform=ax.transAxes, ha="right",
                            fontsize=8, color="0.3")
                ax.set_ylim(-2, 100)
                ax.axhline(90, color="0.6", lw=0.8, ls=":")
        if axes[0][-1].get_legend() is not None:
            sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0), title="top-down rule")
        fig.suptitle(f"Angle between W^down_k and (W^up_k+1)^T while the top-down weights learn, "
                     f"{'-'.join(map(str, SIZES))}, teacher off{note}", y=1.02)
        fig.tight_layout()
        save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alignment_learning", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/alignment_learning"))
    parser.add_argument("--quick", action="store_true", help="fewer epochs, seeds and stimuli")
    parser.add_argument("--seeds", type=int, default=None, help="circuits per variant (default 5; quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 20; quick 4)")
    parser.add_argument("--presentations", type=int, default=None,
                        help="random inputs per epoch (default 100; quick 100)")
    parser.add_argument("--t-pres", type=int, default=10, help="steps per input (default 10 = 1 ms)")
    parser.add_argument("--batch", type=int, default=None, help="stimuli per step sharing the weights "
                        "(default 8; quick 4)")
    parser.add_argument("--noise", type=float, default=0.1, help="rate noise of the hidden areas (default 0.1)")
    parser.add_argument("--activations", nargs="+", choices=ACTIVATIONS, default=list(ACTIVATIONS))
    parser.add_argument("--rules", nargs="+", choices=TOP_DOWN, default=list(TOP_DOWN))
    parser.add_argument("--pal-eta", type=float, default=None,
                        help=f"pal learning rate (1/ms, default {PAL['eta']:g}; quick {QUICK_PAL_ETA:g})")
    parser.add_argument("--pal-decay", type=float, default=PAL["decay"], help="pal weight decay alpha (1/ms)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    epochs = args.epochs or (4 if args.quick else 20)
    presentations = args.presentations or 100
    n_batch = args.batch or (4 if args.quick else 8)
    pal = dict(PAL, eta=args.pal_eta or (QUICK_PAL_ETA if args.quick else PAL["eta"]), decay=args.pal_decay)
    rows = []
    for activation in args.activations:
        for rule in args.rules:
            spec = load_dict(alignment_spec(rule, activation, args.noise, pal=pal))
            for row in run(spec, seeds, epochs, presentations, args.t_pres, n_batch, args.device):
                rows.append({"activation": activation, "rule": rule, **row})
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "alignment.csv", df.to_csv(index=False))
    table = summary(df)
    atomic_write_text(args.out / "summary.csv", table.to_csv(index=False))
    dt = load_dict(alignment_spec("fixed", "linear", args.noise)).dt
    ms = epochs * presentations * args.t_pres * dt
    note = (f"\n{len(seeds)} seeds, epoch = {presentations} inputs x {args.t_pres * dt:g} ms, batch {n_batch}, "
            f"rate noise {args.noise:g}")
    plot(df, args.out / "alignment.png", note)
    print(f"alignment of W^down with (W^up)^T, {'-'.join(map(str, SIZES))}: {len(seeds)} seeds, {epochs} epochs x "
          f"{presentations} inputs x {args.t_pres} dt ({ms / 1000:.1f} s simulated), batch {n_batch}, rate noise "
          f"{args.noise:g}; pal {pal}; angle in degrees, mean over seeds (range of the last epoch):")
    with pd.option_context("display.width", 140, "display.max_rows", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
