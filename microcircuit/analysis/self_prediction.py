"""Analysis ``self_prediction``: learning the self-predicting state (model.md sec. 4).

The interneuron weights start random (uniform in [-1, 1]); a phase with uniform random inputs in
[0, 1], the teacher off and only W^IP (dendritic prediction) and W^PI (apical silencing) plastic
should silence the apical dendrites and move the weights to the analytic self-predicting state

    W^PI_k* = -W^down_k,     W^IP_k* = W^up_{k+1} c_{k+1} (g_l + g_D) / g_D.

Two circuits, each with LE and orig somas and several seeds batched as circuits of one Simulator:

- ``bars 9-30-3``: circuits/bars_le.yaml with the interneuron weights made random and plastic
  (``--set``-style overrides), one hidden area;
- ``9-20-10-3``: two hidden areas, built in the program (:func:`microcircuit.analysis.specs.microcircuit_spec`)
  and validated by the spec layer.

Recorded every ``--every`` presentations, per hidden area k (all dimensionless):

- ``apical_norm``: mean |v^A_k| over those presentations (what the circuit sees while it learns; orig somas
  low-pass the inputs at short t_pres, so they see smaller fluctuations);
- ``settled_apical_norm``: mean |v^A_k| at the fixed point, over 200 random probe inputs, teacher off, measured
  on an LE twin with the current weights (the same measure for LE and orig);
- ``pi_distance``: ||W^PI_k + W^down_k|| / ||W^down_k||;
- ``ip_distance``: ||W^IP_k - W^IP_k*|| / ||W^IP_k*|| (raw, Frobenius);
- ``ip_span_distance``: the same on the span of the hidden rates, ||R (W^IP_k - W^IP_k*)^T|| / ||R W^IP_k*^T||
  with R the rates of area k on 200 random probe inputs (the equivalent feedforward network; W^IP is only
  determined on the directions the rates take).

Writes ``self_prediction.csv`` (long form), ``apical.png`` and ``weights.png`` into ``--out`` and prints
the first and last values.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from microcircuit.analysis.chains import load_dict
from microcircuit.analysis.figures import save_figure, styled
from microcircuit.analysis.specs import microcircuit_spec
from microcircuit.circuit import Circuit, tagged
from microcircuit.engine import Simulator
from microcircuit.experiment import DTYPES, Experiment, RunOptions
from microcircuit.model.activations import ACTIVATIONS
from microcircuit.rundir import atomic_write_text
from microcircuit.shipped import shipped_circuit
from microcircuit.spec import load_spec
from microcircuit.spec.schema import Spec

#: the two-hidden-area circuit
DEEP_SIZES = [9, 20, 10, 3]
DYNAMICS = {"latent_equilibrium": "LE", "orig": "orig"}
#: probe inputs for the span distance and the settled apical norm (uniform in [0, 1], like the phase's inputs)
N_PROBE = 200
PROBE_SEED = 12345
#: steps an LE twin relaxes on the probe inputs for ``settled_apical_norm`` (the loops settle geometrically)
SETTLE_STEPS = 100


def phase_override(samples: int, epochs: int, t_pres: int, plastic: list[str]) -> str:
    """The ``protocol=`` override of a single self-prediction phase (random inputs, teacher off)."""
    return (f"protocol=[{{phase: self_prediction, data: random, samples: {samples}, epochs: {epochs}, "
            f"teacher: false, plastic: [{', '.join(plastic)}], t_pres: {t_pres}}}]")


def bars_spec(dynamics: str, eta_ip: float, eta_pi: float, samples: int, epochs: int, t_pres: int,
              dtype: str = "float64") -> Spec:
    """circuits/bars_le.yaml with random, plastic interneuron weights and a self-prediction phase only."""
    return load_spec(shipped_circuit("bars_le.yaml"), [
        f"defaults.population.dynamics={dynamics}",
        f"dtype={dtype}",
        "projections.ip_1.init={uniform: 1.0}",
        "projections.pi_1.init={uniform: 1.0}",
        f"projections.pi_1.rule={{apical_silencing: {{eta: {eta_pi}}}}}",
        f"projections.ip_1.rule={{dendritic_prediction: {{eta: {eta_ip}}}}}",
        phase_override(samples, epochs, t_pres, ["ip_1", "pi_1"]),
        "record=[]",
    ])[0]


def deep_spec(sizes: list[int], dynamics: str, eta_ip: float, eta_pi: float, samples: int, epochs: int,
              t_pres: int, dtype: str = "float64") -> Spec:
    """A microcircuit with ``len(sizes) - 2`` hidden areas, fixed random W^up and W^down, random plastic
    W^IP and W^PI, and a self-prediction phase only (bars task sizes: 9 inputs, 3 outputs)."""
    d: dict[str, Any] = microcircuit_spec(sizes, top_down="random", dynamics=dynamics, dtype=dtype,
                                          name="self_prediction_" + "_".join(map(str, sizes)), seed=1)
    plastic = []
    for name, q in d["projections"].items():
        if name.startswith("ip_"):
            q.update(init={"uniform": 1.0}, rule={"dendritic_prediction": {"eta": eta_ip}})
            plastic.append(name)
        elif name.startswith("pi_"):
            q.update(init={"uniform": 1.0}, rule={"apical_silencing": {"eta": eta_pi}})
            plastic.append(name)
    d["task"] = {"bars": {}} if (sizes[0], sizes[-1]) == (9, 3) else {"teacher": {"train": 8, "test": 8}}
    return load_dict(d, [phase_override(samples, epochs, t_pres, plastic)])


def chain_rates(circuit: Circuit, weights: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rates of the equivalent feedforward network r_k = phi(c_k W^up_k r_{k-1}) for inputs ``x``.

    Args:
        x: input rates [circuit, sample, n_in]. weights: [circuit, post, pre].

    Returns:
        population -> rates [circuit, sample, n] for every area of the forward chain.
    """
    rates, r = {}, x
    for q in circuit.forward_chain:
        phi = ACTIVATIONS.get(circuit.populations[q.target].activation)
        r = phi(circuit.attenuation(q.target, "basal") * r @ weights[q.name].mT)
        rates[q.target] = r
    return rates


def interneuron_pairs(circuit: Circuit) -> list[tuple[str, str, str]]:
    """(pyramidal population, its W^PI projection, its W^IP projection) for every hidden area."""
    pairs = circuit.self_predicting_pairs()
    out = []
    for pi, (kind, _) in pairs.items():
        if kind != "pi":
            continue
        interneuron, pyramidal = circuit.projections[pi].source, circuit.projections[pi].target
        ip = next(n for n, (k, _) in pairs.items() if k == "ip" and circuit.projections[n].target == interneuron)
        out.append((pyramidal, pi, ip))
    return sorted(out)


def distances(circuit: Circuit, weights: dict[str, torch.Tensor], probe: torch.Tensor) -> dict[str, torch.Tensor]:
    """Relative distances of the interneuron weights to the analytic self-predicting state, [circuit] each.

    Keys ``pi_distance/<pop>``, ``ip_distance/<pop>``, ``ip_span_distance/<pop>`` (see the module doc).
    """
    rates = chain_rates(circuit, weights, probe)
    out = {}
    for pop, pi, ip in interneuron_pairs(circuit):
        pi_star, ip_star = circuit.self_predicting_value(pi, weights), circuit.self_predicting_value(ip, weights)
        out[f"pi_distance/{pop}"] = (weights[pi] - pi_star).norm(dim=(1, 2)) / pi_star.norm(dim=(1, 2))
        out[f"ip_distance/{pop}"] = (weights[ip] - ip_star).norm(dim=(1, 2)) / ip_star.norm(dim=(1, 2))
        r = rates[pop]
        out[f"ip_span_distance/{pop}"] = ((r @ (weights[ip] - ip_star).mT).norm(dim=(1, 2))
                                          / (r @ ip_star.mT).norm(dim=(1, 2)))
    return out


def settled_apical(evaluator: Simulator, weights: dict[str, torch.Tensor], probe: torch.Tensor, pops: list[str],
                   steps: int = SETTLE_STEPS) -> dict[str, torch.Tensor]:
    """Mean |v_apical| once settled, over the probe inputs, teacher off, [circuit] per population.

    ``evaluator`` is an LE twin of the circuit with one probe input per batch entry; it gets ``weights``
    (shared, not changed) and relaxes from rest for ``steps`` steps. The fixed point does not depend on the
    dynamics (u_breve = u when du/dt = 0), so this measures the learned weights the same way for LE and orig.
    """
    evaluator.state.weights = weights
    evaluator.reset_neurons(probe.shape[1])
    for _ in range(steps):
        evaluator.step(probe, None, [])
    return {p: evaluator.state.v[f"{p}.apical"].abs().mean(dim=(1, 2)) for p in pops}


def run(spec: Spec, n_seeds: int, every: int, device: str = "cpu", label: str = "",
        evaluation_spec: Spec | None = None) -> pd.DataFrame:
    """Run the spec's single self-prediction phase on ``n_seeds`` batched circuits, recording as it learns.

    Args:
        evaluation_spec: the same circuit with LE somas, for ``settled_apical_norm`` (default: ``spec``).

    Returns:
        Long-form rows: circuit, dynamics, seed, presentation, time_s (simulated), population, metric, value.
    """
    experiment = Experiment(spec, RunOptions(n_seeds=n_seeds, device=device, progress=False))
    sim, circuit = experiment.sim, experiment.circuit
    evaluator = Simulator(Circuit(evaluation_spec or spec), experiment.seeds, n_batch=N_PROBE, dtype=sim.dtype,
                          device=sim.device)
    (phase,) = spec.protocol
    data = experiment.phase_data(phase)
    plastic = sim.plastic_plan(experiment.learning_rates(phase))
    pops = [pop for pop, _, _ in interneuron_pairs(circuit)]
    gen = torch.Generator().manual_seed(PROBE_SEED)
    n_in = circuit.populations[circuit.input_population].size
    probe = torch.rand(N_PROBE, n_in, generator=gen, dtype=torch.float64)
    probe = probe.to(device=sim.device, dtype=sim.dtype).expand(sim.n_circuits, N_PROBE, n_in)
    dynamics = DYNAMICS[tagged_dynamics(spec)]
    rows: list[dict[str, Any]] = []

    def record(presentation: int, apical: dict[str, torch.Tensor] | None) -> None:
        values = {k: v.cpu().numpy() for k, v in distances(circuit, sim.state.weights, probe).items()}
        settled = settled_apical(evaluator, sim.state.weights, probe, pops)
        values.update({f"settled_apical_norm/{p}": a.cpu().numpy() for p, a in settled.items()})
        if apical is not None:
            values.update({f"apical_norm/{p}": (a / every).cpu().numpy() for p, a in apical.items()})
        t = presentation * phase.t_pres * sim.dt / 1000.0
        for key, vals in values.items():
            metric, pop = key.split("/")
            for c, seed in enumerate(experiment.seeds):
                rows.append({"circuit": label, "dynamics": dynamics, "seed": seed, "presentation": presentation,
                             "time_s": t, "population": pop, "metric": metric, "value": float(vals[c])})

    record(0, None)
    index = torch.arange(sim.n_circuits, device=sim.device)[:, None]
    apical = {p: torch.zeros(sim.n_circuits, dtype=sim.dtype, device=sim.device) for p in pops}
    presentation = 0
    n = data.inputs.shape[1]
    for _ in range(phase.epochs):
        order = np.stack([g.permutation(n) for g in experiment.order_rngs])
        for j in range(n):
            idx = torch.as_tensor(order[:, j : j + 1], device=sim.device)
            res = sim.present(data.inputs[index, idx], None, phase.t_pres, plastic, apical=pops, teacher=False)
            for p in pops:
                apical[p] += res[f"apical/{p}"]
            presentation += 1
            if presentation % every == 0:
                record(presentation, apical)
                apical = {p: torch.zeros_like(a) for p, a in apical.items()}
        sim.check_finite(f"self-prediction of {label}, presentation {presentation}")
    return pd.DataFrame(rows)


def tagged_dynamics(spec: Spec) -> str:
    """The dynamics name of the spec's defaults (``latent_equilibrium`` or ``orig``)."""
    return tagged(spec.defaults.population.dynamics)[0]


AREA_LABELS = {("bars 9-30-3", "pyr_1"): "9-30-3, area 1", ("9-20-10-3", "pyr_1"): "9-20-10-3, area 1",
               ("9-20-10-3", "pyr_2"): "9-20-10-3, area 2"}


def _with_area(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["area"] = [AREA_LABELS.get((c, p), f"{c}, {p}") for c, p in zip(df["circuit"], df["population"], strict=True)]
    return df


def plot_apical(df: pd.DataFrame, path: Path, note: str = "") -> None:
    """Apical potentials against learning time (log y): while learning (top) and settled on probe inputs
    (bottom), one column per circuit; mean and min-max range over seeds."""
    import seaborn as sns

    df = _with_area(df[df["metric"].isin(["apical_norm", "settled_apical_norm"])])
    circuits = list(dict.fromkeys(df["circuit"]))
    rows = [("apical_norm", "while learning (mean over the last presentations)"),
            ("settled_apical_norm", "settled, on 200 probe inputs (same measure for LE and orig)")]
    with styled() as plt:
        fig, axes = plt.subplots(2, len(circuits), figsize=(5.4 * len(circuits), 7.6), sharex=True, squeeze=False)
        for i, (metric, what) in enumerate(rows):
            for j, name in enumerate(circuits):
                ax = axes[i, j]
                sub = df[(df["circuit"] == name) & (df["metric"] == metric)]
                sns.lineplot(data=sub, x="time_s", y="value", hue="dynamics", style="area", errorbar=("pi", 100),
                             hue_order=["LE", "orig"], palette="colorblind", ax=ax)
                ax.set_yscale("log")
                ax.set_title(f"{name}: {what}", fontsize=9)
                ax.set_xlabel("learning time (s of simulated time)")
                ax.set_ylabel("mean |v_apical| (dimensionless)")
                ax.legend(fontsize=8, frameon=False, ncol=2)
        fig.suptitle("Learned self-prediction silences the apical dendrites\n"
                     f"(random inputs, teacher off, W^IP and W^PI plastic{note}; mean and range over seeds)",
                     fontsize=11)
        fig.tight_layout()
        save_figure(fig, path)


def plot_weights(df: pd.DataFrame, path: Path, note: str = "") -> None:
    """Relative distances of W^PI and W^IP to the analytic self-predicting state against learning time."""
    import seaborn as sns

    df = _with_area(df[df["metric"].isin(["pi_distance", "ip_span_distance", "ip_distance"])])
    panels = [("pi_distance", "W^PI: ||W^PI + W^down|| / ||W^down||"),
              ("ip_span_distance", "W^IP on the span of the hidden rates"),
              ("ip_distance", "W^IP raw: ||W^IP - W^IP*|| / ||W^IP*||")]
    with styled() as plt:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
        for ax, (metric, title) in zip(axes, panels, strict=True):
            sub = df[df["metric"] == metric]
            sns.lineplot(data=sub, x="time_s", y="value", hue="dynamics", style="area", errorbar=("pi", 100),
                         hue_order=["LE", "orig"], palette="colorblind", ax=ax, legend=ax is axes[-1])
            ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("learning time (s of simulated time)")
            ax.set_ylabel("relative distance to the analytic state")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
        fig.suptitle(f"Interneuron weights against the analytic self-predicting state ({note.lstrip('; ')}"
                     "mean and range over seeds)", fontsize=11)
        fig.tight_layout()
        save_figure(fig, path)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """First and last value (mean over seeds) of every metric per circuit, dynamics and area."""
    rows = []
    for (circuit, dynamics, pop, metric), grp in df.groupby(["circuit", "dynamics", "population", "metric"],
                                                            sort=False):
        by_p = grp.groupby("presentation")["value"]
        mean, lo, hi = by_p.mean(), by_p.min(), by_p.max()
        rows.append({"circuit": circuit, "dynamics": dynamics, "area": pop, "metric": metric,
                     "first": mean.iloc[0], "last": mean.iloc[-1], "last_min": lo.iloc[-1], "last_max": hi.iloc[-1],
                     "ratio": mean.iloc[-1] / mean.iloc[0]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="self_prediction", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis_out/self_prediction"))
    parser.add_argument("--quick", action="store_true", help="fewer presentations and seeds")
    parser.add_argument("--seeds", type=int, default=None, help="circuits per variant (default 5; quick 2)")
    parser.add_argument("--samples", type=int, default=None, help="random inputs per epoch (default 200; quick 100)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the phase (default 30; quick 4)")
    parser.add_argument("--t-pres", type=int, default=20, help="presentation time (steps of dt, default 20)")
    parser.add_argument("--eta-ip", type=float, default=1.0, help="W^IP learning rate (1/ms, default 1.0)")
    parser.add_argument("--eta-pi", type=float, default=0.5, help="W^PI learning rate (1/ms, default 0.5)")
    parser.add_argument("--every", type=int, default=None, help="presentations per record (default 50; quick 20)")
    parser.add_argument("--no-deep", action="store_true", help="skip the 9-20-10-3 circuit")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    n_seeds = args.seeds or (2 if args.quick else 5)
    samples = args.samples or (100 if args.quick else 200)
    epochs = args.epochs or (4 if args.quick else 30)
    every = args.every or (20 if args.quick else 50)
    common = dict(eta_ip=args.eta_ip, eta_pi=args.eta_pi, samples=samples, epochs=epochs, t_pres=args.t_pres,
                  dtype=args.dtype)
    frames = []
    le = "latent_equilibrium"
    for dynamics in DYNAMICS:
        frames.append(run(bars_spec(dynamics, **common), n_seeds, every, args.device, "bars 9-30-3",
                          evaluation_spec=bars_spec(le, **common)))
        if not args.no_deep:
            frames.append(run(deep_spec(DEEP_SIZES, dynamics, **common), n_seeds, every, args.device, "9-20-10-3",
                              evaluation_spec=deep_spec(DEEP_SIZES, le, **common)))
    df = pd.concat(frames, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "self_prediction.csv", df.to_csv(index=False))
    dt = bars_spec("latent_equilibrium", **common).dt
    tau_eff = Circuit(bars_spec("latent_equilibrium", **common)).tau_eff("pyr_1", teacher=False)
    note = f"; t_pres = {args.t_pres} dt = {args.t_pres * dt / tau_eff:.2f} tau_eff"
    plot_apical(df, args.out / "apical.png", note)
    plot_weights(df, args.out / "weights.png", note + "; ")
    print(f"learned self-prediction: {n_seeds} seeds, {epochs} x {samples} presentations of {args.t_pres} dt "
          f"({epochs * samples * args.t_pres * dt / 1000:.1f} s simulated), eta_ip {args.eta_ip}, "
          f"eta_pi {args.eta_pi} (1/ms); mean over seeds, first -> last record:")
    with pd.option_context("display.width", 140, "display.max_rows", 100):
        print(summary(df).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wall time: {time.perf_counter() - start:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
