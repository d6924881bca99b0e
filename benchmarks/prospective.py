"""Prospective networks against their bare floor: one learning step against one step of backprop.

A learning step of a prospective network (model.md sec. 10) does what one SGD step of backprop on the
same network does: a forward pass through every area, the errors carried down through the transposes
of the weights, and one weight update per projection. So the floor of a step is a plain torch SGD step
of the same architecture (autograd forward, backward and update, :class:`ProspectiveFeedforwardNet`),
and a presentation of t_pres steps costs about t_pres such steps. For each shipped prospective circuit
and batch size this prints

- ``LE ms/step``: CPU milliseconds per learning step of :class:`ProspectiveSimulator` (median of
  ``--repeats`` runs of ``--steps`` steps),
- ``SGD ms/step``: the same for the SGD step on the same batch,
- ``ratio``: LE over SGD (1 would be the floor; the LE step also updates the membrane state).

Usage::

    python benchmarks/prospective.py [--circuits fashion_mnist_le_mlp fashion_mnist_le_lenet]
        [--batch 32 512] [--steps 20] [--repeats 5]

One thread (set before torch starts); run it alone: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microcircuit.circuit import Circuit  # noqa: E402
from microcircuit.prospective.feedforward import ProspectiveFeedforwardNet  # noqa: E402
from microcircuit.prospective.simulator import ProspectiveSimulator  # noqa: E402
from microcircuit.spec import load_spec  # noqa: E402


def median_ms(run, steps: int, repeats: int) -> float:
    run()  # warm up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(steps):
            run()
        times.append((time.process_time() - start) / steps * 1e3)
    return statistics.median(times)


def measure(name: str, batch: int, steps: int, repeats: int) -> tuple[float, float]:
    spec = load_spec(ROOT / "circuits" / f"{name}.yaml")[0]
    circuit = Circuit(spec)
    sim = ProspectiveSimulator(circuit, [1], n_batch=batch)
    n_in = circuit.populations[circuit.input_population].size
    n_out = circuit.populations[circuit.output_population].size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, batch, n_in, generator=gen)
    target = torch.rand(1, batch, n_out, generator=gen)
    plan = sim.plastic_plan({q: 0.01 for q in sim.state.weights})
    le = median_ms(lambda: sim.step(x, target, plan), steps, repeats)
    net = ProspectiveFeedforwardNet(circuit, sim.state.weights, sim.state.bias)
    sgd = median_ms(lambda: net.sgd_step(x, target, 0.01), steps, repeats)
    return le, sgd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", nargs="+", default=["fashion_mnist_le_mlp", "fashion_mnist_le_lenet"])
    parser.add_argument("--batch", nargs="+", type=int, default=[32, 512])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{'circuit':<26} {'batch':>6} {'LE ms/step':>11} {'SGD ms/step':>12} {'ratio':>6}")
    for name in args.circuits:
        if not (ROOT / "circuits" / f"{name}.yaml").exists():
            print(f"{name:<26} (no such circuit)")
            continue
        for batch in args.batch:
            le, sgd = measure(name, batch, args.steps, args.repeats)
            print(f"{name:<26} {batch:>6} {le:>11.3f} {sgd:>12.3f} {le / sgd:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
