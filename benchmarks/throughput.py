"""Throughput of the simulation engine: sample-steps per second of ``Simulator.step``.

A sample-step is one stimulus of one circuit advanced by one dt: ``batch x circuits x steps``.
For each circuit (built from the shipped YAML specs), batch size, dynamics (LE, orig) and
plasticity (on: every projection the spec lets learn; off: inference) it prints

- ``ours``: :meth:`Simulator.step` in a loop;
- ``floor``: a bare loop of only the matrix products one step needs (every dendritic
  potential ``r_pre @ W^T``; with plasticity also every outer product ``post^T @ pre`` added to
  its weights in place, fused as ``W.baddbmm_``), on fixed tensors: what this design cannot beat;
- ``ours/floor``: the fraction of the floor's throughput reached (1.0 = no overhead);
- ``1-at-a-time``: the same Simulator presenting one stimulus at a time (batch 1), i.e. what
  batching buys (``speedup`` = ours / 1-at-a-time).

Usage::

    python benchmarks/throughput.py [--quick] [--device cpu|cuda] [--threads 1] [--min-time 0.5]

Run it alone: timings on a machine shared with other jobs are noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microcircuit.circuit import Circuit  # noqa: E402
from microcircuit.engine import Simulator  # noqa: E402
from microcircuit.experiment import base_learning_rates  # noqa: E402
from microcircuit.spec import load_spec  # noqa: E402
from microcircuit.state import PhasePlan  # noqa: E402

#: circuit label -> shipped spec (only the architecture, conductances and rules are used; no data is read)
CIRCUITS: dict[str, str] = {
    "9-30-3": "circuits/bars_le.yaml",
    "4-120-3": "circuits/yinyang_le.yaml",
    "784-500-10": "circuits/fashion_mnist_le.yaml",
    "784-500-500-10": "circuits/mnist_le.yaml",
}
BATCHES = (1, 32, 128, 512)
QUICK_CIRCUITS = ("9-30-3", "784-500-10")
QUICK_BATCHES = (1, 128)


@dataclass
class Setup:
    """A simulator ready to step, with its inputs."""

    sim: Simulator
    stimulus: torch.Tensor  # [circuit, batch, n_in]
    target: torch.Tensor  # [circuit, batch, n_out]
    plastic: PhasePlan


def build(label: str, dynamics: str, plastic: bool, batch: int, device: str, dtype: torch.dtype) -> Setup:
    """Simulator of one shipped circuit with ``dynamics`` for every population and ``batch`` stimuli."""
    spec = load_spec(ROOT / CIRCUITS[label], [f"defaults.population.dynamics={dynamics}"])[0]
    populations = {n: p.model_copy(update={"dynamics": spec.defaults.population.dynamics})
                   for n, p in spec.populations.items()}
    spec = spec.model_copy(update={"populations": populations})
    circuit = Circuit(spec)
    sim = Simulator(circuit, [spec.seed], n_batch=batch, dtype=dtype, device=device)
    train = next((p for p in spec.protocol if p.plastic != "none"), None)
    learning = {}
    if plastic and train is not None:
        scale = 1.0 / train.t_pres if train.eta_scale == "inverse_t_pres" else float(train.eta_scale)
        learning = {n: eta * scale for n, eta in base_learning_rates(circuit, train).items()}
    gen = torch.Generator().manual_seed(0)
    n_in = circuit.populations[circuit.input_population].size
    n_out = circuit.populations[circuit.output_population].size
    stimulus = torch.rand(1, batch, n_in, generator=gen).to(device, dtype)
    target = (0.1 + 0.9 * (torch.rand(1, batch, n_out, generator=gen) > 0.9)).to(device, dtype)
    return Setup(sim, stimulus, target, sim.plastic_plan(learning))


def floor_step(setup: Setup) -> Callable[[], None]:
    """A closure doing only the matrix products of one step of ``setup``'s circuit, on fixed tensors."""
    sim = setup.sim
    circuit = sim.circuit
    weights = {k: w.clone() for k, w in sim.state.weights.items()}
    rates = {name: r.clone() for name, r in sim.state.rate.items()}
    rates[sim.input] = setup.stimulus
    products = []  # (pre rate, weight, output buffer)
    for soma in sim.somas:
        for d in soma.dendrites:
            for proj in d.projections:
                w = weights[proj]
                products.append((rates[circuit.projections[proj].source], w,
                                 torch.empty(w.shape[0], sim.n_batch, w.shape[1], dtype=w.dtype, device=w.device)))
    updates = []  # (post rate, pre rate, weight)
    for plan, _eta in setup.plastic.plastic:
        updates.append((rates[plan.target], rates[plan.source], weights[plan.name]))

    def step() -> None:
        for r_pre, w, out in products:
            torch.bmm(r_pre, w.transpose(1, 2), out=out)
        for post, pre, w in updates:  # W += alpha post^T pre, fused and in place
            w.baddbmm_(post.transpose(1, 2), pre, alpha=1e-9)

    return step


def rate(fn: Callable[[], None], samples_per_call: int, device: str, min_time: float, min_calls: int = 5) -> float:
    """Calls of ``fn`` per second x samples_per_call, timed over at least ``min_time`` s after a warm-up."""
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(min_calls):
            fn()
        calls += min_calls
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls * samples_per_call / elapsed
        min_calls = max(min_calls, int(calls * (min_time / max(elapsed, 1e-6) - 1)) + 1)


def measure(label: str, dynamics: str, plastic: bool, batch: int, device: str, dtype: torch.dtype,
            min_time: float) -> dict[str, float]:
    setup = build(label, dynamics, plastic, batch, device, dtype)
    sim = setup.sim

    def ours() -> None:
        sim.step(setup.stimulus, setup.target, setup.plastic)

    result = {"ours": rate(ours, batch, device, min_time), "floor": rate(floor_step(setup), batch, device, min_time)}
    return result


def format_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_CIRCUITS)}, batch "
                        f"{', '.join(map(str, QUICK_BATCHES))}, LE")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--circuits", nargs="*", default=None, help=f"subset of {', '.join(CIRCUITS)}")
    parser.add_argument("--batches", nargs="*", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    circuits = args.circuits or (list(QUICK_CIRCUITS) if args.quick else list(CIRCUITS))
    batches = args.batches or (list(QUICK_BATCHES) if args.quick else list(BATCHES))
    dynamics_list = ["latent_equilibrium"] if args.quick else ["latent_equilibrium", "orig"]
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"sample-steps per second (batch x circuits x steps / s), 1 circuit, {args.dtype}, {device_name}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    head = (f"{'circuit':<15} {'dynamics':<8} {'plastic':<7} {'batch':>5} {'ours':>10} {'floor':>10} "
            f"{'ours/floor':>10} {'1-at-a-time':>11} {'speedup':>7}")
    print(head)
    print("-" * len(head))
    for label in circuits:
        for dynamics in dynamics_list:
            for plastic in (True, False):
                single = None
                for batch in batches:
                    m = measure(label, dynamics, plastic, batch, args.device, dtype, args.min_time)
                    if single is None:
                        single = m["ours"] if batch == 1 else measure(
                            label, dynamics, plastic, 1, args.device, dtype, args.min_time)["ours"]
                    short = "LE" if dynamics == "latent_equilibrium" else dynamics
                    print(f"{label:<15} {short:<8} {'on' if plastic else 'off':<7} {batch:>5} "
                          f"{format_rate(m['ours']):>10} {format_rate(m['floor']):>10} "
                          f"{m['ours'] / m['floor']:>10.2f} {format_rate(single):>11} {m['ours'] / single:>7.1f}",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
