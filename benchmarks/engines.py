"""The engines side by side: eager (torch, step by step) against compiled (fused numba presentations).

Workload: the shipped bars circuit (9-30-3 LE, reference schedule, plasticity on W^up_1, W^up_2 and
W^IP_1, t_pres 100 dt, float32), presented through :meth:`Simulator.present_many` in chunks of 8
presentations as an experiment epoch does, for 1, 10 and 100 batched circuits. For each it prints

- ``us/step``: CPU microseconds per simulation step of all circuits together (median of ``--repeats``),
- ``us/circuit-step``: the same divided by the number of circuits,
- ``vs 1 circuit``: the time of a step of N circuits over the time of a step of one circuit,
- ``compiled speed-up``: eager us/step over compiled us/step.

Then the start-up of the compiled engine, each in a fresh process: the first call with an empty
kernel cache (compilation) and with the cache filled (loading). One thread per process throughout.

Usage::

    python benchmarks/engines.py [--circuits 1 10 100] [--repeats 5] [--steps 1600] [--no-compile-time]

Run it alone: timings on a machine shared with other jobs are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microcircuit.circuit import Circuit  # noqa: E402
from microcircuit.engine import Simulator  # noqa: E402
from microcircuit.spec import load_spec  # noqa: E402

T_PRES = 100
PRESENTATIONS = 8  # one bars epoch per call, as the experiment layer calls the engine


def setup(n_circuits: int, engine: str) -> tuple[Simulator, torch.Tensor, torch.Tensor, object]:
    spec = load_spec(ROOT / "circuits" / "bars_le.yaml")[0]
    sim = Simulator(Circuit(spec), list(range(n_circuits)), engine=engine)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(PRESENTATIONS, n_circuits, 1, 9, generator=gen)
    y = torch.rand(PRESENTATIONS, n_circuits, 1, 3, generator=gen)
    plan = sim.plastic_plan({"up_1": 5.0 / T_PRES, "up_2": 1.0 / T_PRES, "ip_1": 2.0 / T_PRES})
    return sim, x, y, plan


def step_cost(n_circuits: int, engine: str, steps: int, repeats: int) -> float:
    """Median CPU microseconds per step of ``n_circuits`` circuits."""
    sim, x, y, plan = setup(n_circuits, engine)
    t_pres = max(1, steps // PRESENTATIONS)
    sim.present_many(x, y, 2, plan, apical=["pyr_1"])  # compile or load the kernel, warm the caches
    costs = []
    for _ in range(repeats):
        begin = time.process_time()
        sim.present_many(x, y, t_pres, plan, apical=["pyr_1"])
        costs.append(1e6 * (time.process_time() - begin) / (PRESENTATIONS * t_pres))
    return statistics.median(costs)


FIRST_CALL = """
import time, torch
torch.set_num_threads(1)
begin = time.perf_counter()
import sys; sys.path.insert(0, {root!r})
from benchmarks.engines import setup
sim, x, y, plan = setup(1, "compiled")
sim.present_many(x[:1], y[:1], 1, plan)
print(time.perf_counter() - begin)
"""


def first_call_seconds(cache: str) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(root=str(ROOT))], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1600, help="steps per timed call (compiled)")
    parser.add_argument("--eager-steps", type=int, default=160, help="steps per timed call (eager)")
    parser.add_argument("--no-compile-time", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"bars 9-30-3 LE, plasticity on, float32, {PRESENTATIONS} presentations per call, one thread; "
          f"median of {args.repeats}")
    print(f"{'circuits':>8} {'engine':>9} {'us/step':>10} {'us/circuit-step':>16} {'vs 1 circuit':>13} "
          f"{'compiled speed-up':>18}")
    single: dict[str, float] = {}
    for n in args.circuits:
        costs = {}
        for engine, steps in (("eager", args.eager_steps), ("compiled", args.steps)):
            costs[engine] = step_cost(n, engine, steps, args.repeats)
            single.setdefault(engine, costs[engine]) if n == 1 else None
            ratio = f"{costs[engine] / single[engine]:.2f}x" if engine in single else "-"
            speed = f"{costs['eager'] / costs['compiled']:.1f}x" if engine == "compiled" else ""
            print(f"{n:>8} {engine:>9} {costs[engine]:>10.1f} {costs[engine] / n:>16.2f} {ratio:>13} {speed:>18}",
                  flush=True)
    if not args.no_compile_time:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_call_seconds(cache)
            warm = first_call_seconds(cache)
        print(f"compiled engine start-up in a fresh process (imports, circuit, first call): "
              f"{cold:.1f} s with an empty kernel cache (compiles float32), {warm:.1f} s with it filled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
