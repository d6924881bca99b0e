"""Analysis ``latency_vs_depth``: how long a circuit of depth N needs to answer a new input.

Feedforward chains of depth 1..8 (:mod:`microcircuit.analysis.chains`, loaded through the spec layer)
get a constant step input from rest with the teacher off. The settle time of a circuit is the first
step after which every output rate potential (u_breve in LE, u in orig: what the output transmits)
stays within 1 % of its final value. Several random weight draws per depth run as circuits of one
Simulator; the table gives mean and range over them, in steps of dt and in units of tau_eff (the
hidden pyramidal soma's, 1 / (g_l + g_B + g_A) = 52.6 dt with the haider2021 preset).

Expected (model.md sec. 2, 7): LE settles within one step per area under the ``reference`` schedule
and in one step in all under ``propagating``; ``orig`` needs at least tau_eff more per area.

Writes ``latency.csv`` (one row per depth, dynamics, schedule and circuit) and ``latency.png`` into
``--out`` and prints the summary table.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from microcircuit.analysis.chains import load_chain
from microcircuit.analysis.figures import save_figure, styled
from microcircuit.circuit import Circuit
from microcircuit.engine import Simulator
from microcircuit.rundir import atomic_write_text
from microcircuit.seeds import circuit_seeds

DYNAMICS = {"latent_equilibrium": "LE", "orig": "orig"}
SCHEDULES = ("reference", "propagating")
#: relative band around the final value that counts as settled
TOLERANCE = 0.01


def settle_steps(trace: np.ndarray, rest: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Settle time of each circuit, in steps (1-based: 1 = settled after the first step).

    The band is relative to the size of the step response, as for a control system's settling time:
    ``max_i |y_i(t) - y_i(final)| <= tolerance * max_i |y_i(final) - y_i(rest)|`` over the output neurons i.

    Args:
        trace: output after each step of the new input, [step, circuit, neuron]; the last step is final.
        rest: output before the input switched on (the circuit's resting state), [circuit, neuron].
        tolerance: relative band (0.01 = 1 %).

    Returns:
        [circuit] int array: the first step from which the output stays in its band.
    """
    final = trace[-1]
    amplitude = np.maximum(np.abs(final - rest).max(axis=1), 1e-300)  # [circuit]
    outside = np.abs(trace - final).max(axis=2) > tolerance * amplitude  # [step, circuit]
    settled = np.ones(trace.shape[1], dtype=np.int64)
    for c in range(trace.shape[1]):
        bad = np.nonzero(outside[:, c])[0]
        if bad.size:
            settled[c] = int(bad[-1]) + 2
    return settled


def step_response(sim: Simulator, steps: int, value: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Output rate potential after each of ``steps`` steps of a constant input, teacher off.

    The circuit first relaxes for ``steps`` steps with zero input from u = 0 to its resting state
    (with soft ReLU the resting rates phi(0) are not zero, so u = 0 is not at rest), then the input
    switches to ``value * linspace(0.1, 1, n_in)``, the same for every circuit.

    Returns:
        trace [step, circuit, n_out] and the resting output [circuit, n_out], float64.
    """
    sim.reset_neurons()
    n_in = sim.circuit.populations[sim.input].size
    n_out = sim.circuit.populations[sim.output].size
    zero = torch.zeros(sim.n_circuits, sim.n_batch, n_in, dtype=sim.dtype, device=sim.device)
    for _ in range(steps):
        sim.step(zero, None, [])
    rest = sim.state.u_breve[sim.output][:, 0].cpu().numpy().astype(np.float64)
    x = (torch.linspace(0.1, 1.0, n_in, dtype=sim.dtype, device=sim.device) * value)
    x = x.expand(sim.n_circuits, sim.n_batch, n_in).clone()
    trace = torch.empty(steps, sim.n_circuits, n_out, dtype=sim.dtype, device=sim.device)
    for i in range(steps):
        sim.step(x, None, [])
        trace[i] = sim.state.u_breve[sim.output][:, 0]
    return trace.cpu().numpy().astype(np.float64), rest


def horizon_steps(circuit: Circuit, factor: float) -> int:
    """Steps to simulate: ``factor`` times the summed tau_eff (teacher off) of the chain's areas."""
    taus = sum(circuit.tau_eff(p, teacher=False) for p in circuit.update_order())
    return int(math.ceil(factor * taus / circuit.spec.dt))


def reference_tau_eff(activation: str = "soft_relu") -> float:
    """tau_eff of a hidden pyramidal soma (teacher off), ms: the unit of the table."""
    return Circuit(load_chain(2, activation=activation)).tau_eff("h1", teacher=False)


def measure(depths: list[int], n_seeds: int, activation: str = "soft_relu", horizon: float = 25.0,
            device: str = "cpu", master_seed: int = 1) -> pd.DataFrame:
    """Settle times of every depth x dynamics x schedule, ``n_seeds`` weight draws batched per simulation.

    Returns:
        One row per (depth, dynamics, schedule, seed): ``settle_steps`` (dt), ``settle_ms``,
        ``settle_tau`` (units of the hidden tau_eff), ``sum_tau_steps`` (the chain's summed tau_eff, dt),
        ``horizon_steps`` (steps of rest and of response each), ``amplitude`` (largest |final - rest| of the output).
    """
    tau_ref = reference_tau_eff(activation)
    seeds = circuit_seeds(master_seed, n_seeds)
    rows = []
    for depth in depths:
        for dynamics, label in DYNAMICS.items():
            for schedule in SCHEDULES:
                spec = load_chain(depth, dynamics=dynamics, schedule=schedule, activation=activation)
                circuit = Circuit(spec)
                sim = Simulator(circuit, seeds, dtype=torch.float64, device=device)
                steps = horizon_steps(circuit, horizon)
                trace, rest = step_response(sim, steps)
                settled = settle_steps(trace, rest)
                sum_tau = sum(circuit.tau_eff(p, teacher=False) for p in circuit.update_order()) / sim.dt
                for c, seed in enumerate(seeds):
                    rows.append({
                        "depth": depth, "dynamics": label, "schedule": schedule, "seed": seed,
                        "settle_steps": int(settled[c]), "settle_ms": settled[c] * sim.dt,
                        "settle_tau": settled[c] * sim.dt / tau_ref, "sum_tau_steps": sum_tau,
                        "horizon_steps": steps, "amplitude": float(np.abs(trace[-1, c] - rest[c]).max()),
                    })
    return pd.DataFrame(rows)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max settle time per depth, dynamics and schedule (dt and tau_eff units)."""
    g = df.groupby(["dynamics", "schedule", "depth"])
    table = pd.DataFrame({
        "mean_dt": g["settle_steps"].mean(), "min_dt": g["settle_steps"].min(), "max_dt": g["settle_steps"].max(),
        "mean_tau": g["settle_tau"].mean(), "min_tau": g["settle_tau"].min(), "max_tau": g["settle_tau"].max(),
    })
    return table.reset_index()


def checks(df: pd.DataFrame, tau_ref_steps: float) -> dict[str, bool | float]:
    """The expected facts, evaluated on the measurements.

    ``le_reference_within_depth``: every LE circuit (reference) settles within ``depth`` steps;
    ``le_propagating_one_step``: every LE circuit (propagating) settles in 1 step;
    ``orig_min_increment_tau``: the smallest increase of the mean orig settle time per added area,
    in units of tau_eff (expected >= 1), over both schedules.
    """
    le_ref = df[(df["dynamics"] == "LE") & (df["schedule"] == "reference")]
    le_prop = df[(df["dynamics"] == "LE") & (df["schedule"] == "propagating")]
    increments = []
    for _, grp in df[df["dynamics"] == "orig"].groupby("schedule"):
        mean = grp.groupby("depth")["settle_steps"].mean().sort_index()
        d = mean.index.to_numpy()
        if len(d) > 1:
            increments.extend(np.diff(mean.to_numpy()) / np.diff(d) / tau_ref_steps)
    return {
        "le_reference_within_depth": bool((le_ref["settle_steps"] <= le_ref["depth"]).all()),
        "le_propagating_one_step": bool((le_prop["settle_steps"] == 1).all()),
        "orig_min_increment_tau": float(min(increments)) if increments else float("nan"),
    }


def plot(df: pd.DataFrame, tau_ref_steps: float, path: Path) -> None:
    """Settle time vs depth (log y), LE vs orig, both schedules, with the two reference lines."""
    import seaborn as sns

    palette = sns.color_palette("colorblind")
    colours = {"LE": palette[0], "orig": palette[3]}
    styles = {"reference": ("-", "o", 5), "propagating": ("--", "s", 8)}
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 5.6))
        depths = np.array(sorted(df["depth"].unique()))
        ax.plot(depths, depths * tau_ref_steps, color="0.3", lw=5, alpha=0.25, zorder=1,
                label=f"reference: tau_eff per area ({tau_ref_steps:.1f} dt each)")
        ax.plot(depths, depths, color="0.3", lw=5, alpha=0.25, ls=(0, (1, 1.5)), zorder=1,
                label="reference: 1 step per area")
        for (dynamics, schedule), grp in df.groupby(["dynamics", "schedule"]):
            stats = grp.groupby("depth")["settle_steps"].agg(["mean", "min", "max"]).sort_index()
            ls, marker, size = styles[schedule]
            x = stats.index.to_numpy()
            ax.fill_between(x, stats["min"], stats["max"], color=colours[dynamics], alpha=0.18, lw=0)
            ax.plot(x, stats["mean"], ls=ls, marker=marker, color=colours[dynamics], ms=size,
                    mfc="none" if schedule == "propagating" else colours[dynamics],
                    label=f"{dynamics}, {schedule} schedule")
        ax.set_yscale("log")
        ax.set_xticks(depths)
        ax.set_xlabel("depth (areas between input and output)")
        ax.set_ylabel("settle time to 1 % (steps of dt = 0.1 ms)")
        top = ax.secondary_yaxis("right", functions=(lambda s: s / tau_ref_steps, lambda t: t * tau_ref_steps))
        top.set_ylabel("settle time (tau_eff)")
        ax.set_ylim(0.7, max(df["settle_steps"].max(), depths.max() * tau_ref_steps) * 1.6)
        ax.set_title("Output settle time after a step input: LE needs 1 step per area (or 1 in all),\n"
                     "orig more than tau_eff per area (mean and range over weight draws)", fontsize=10)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
        fig.tight_layout()
        save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="latency_vs_depth", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/latency_vs_depth"))
    parser.add_argument("--quick", action="store_true", help="depths 1-4, 3 seeds, shorter horizon")
    parser.add_argument("--seeds", type=int, default=None, help="weight draws per depth (default 5; quick 3)")
    parser.add_argument("--depths", type=int, nargs="+", default=None, help="depths (default 1..8; quick 1..4)")
    parser.add_argument("--activation", default="soft_relu", help="phi of every population (default soft_relu)")
    parser.add_argument("--horizon", type=float, default=None,
                        help="simulated time in units of the chain's summed tau_eff (default 25; quick 15)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    depths = args.depths or (list(range(1, 5)) if args.quick else list(range(1, 9)))
    n_seeds = args.seeds or (3 if args.quick else 5)
    horizon = args.horizon or (15.0 if args.quick else 25.0)
    df = measure(depths, n_seeds, activation=args.activation, horizon=horizon, device=args.device)
    dt = float(load_chain(1).dt)
    tau_ref_steps = reference_tau_eff(args.activation) / dt
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "latency.csv", df.to_csv(index=False))
    plot(df, tau_ref_steps, args.out / "latency.png")
    table = summary_table(df)
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(f"settle time to {TOLERANCE:.0%} of the final output (steps of dt; tau_eff = {tau_ref_steps:.1f} dt), "
              f"{n_seeds} weight draws per depth:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    facts = checks(df, tau_ref_steps)
    print(f"LE reference within depth steps: {facts['le_reference_within_depth']}; "
          f"LE propagating in 1 step: {facts['le_propagating_one_step']}; "
          f"orig smallest increase per area: {facts['orig_min_increment_tau']:.2f} tau_eff")
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
