"""Wall time of one training epoch of each real-data circuit, and its peak memory.

For each shipped spec (``fashion_mnist_le``, ``yinyang_le``, and ``mnist_le`` when the MNIST files
are found) a fresh Python process builds the experiment (reading or generating the data), then
runs exactly one epoch of the spec's first training phase (its batch size, presentation time and
plasticity; no validation) and reports

- ``setup s``: building the circuit and loading the data;
- ``epoch s``: the training epoch;
- ``stim/s``: training stimuli per second (each one presented to every circuit);
- ``peak MiB``: the process's peak resident memory (``resource.getrusage(...).ru_maxrss``), which
  includes the Python interpreter, torch and the data set.

Usage::

    python benchmarks/epoch_time.py [--device cpu|cuda] [--seeds 1] [--train N] [--threads 1] [--only NAME ...]

``--train N`` limits the training split to its first N stimuli (quick check; the time of a full
epoch is then extrapolated linearly and marked with ``~``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("fashion_mnist_le", "yinyang_le", "mnist_le")


def one(name: str, device: str, seeds: int, train: int | None, threads: int) -> dict:
    """Run in the child process: one training epoch of ``circuits/<name>.yaml``."""
    import torch

    sys.path.insert(0, str(ROOT))
    from microcircuit.experiment import Experiment, RunOptions
    from microcircuit.spec import load_spec

    torch.set_num_threads(threads)
    spec = load_spec(ROOT / "circuits" / f"{name}.yaml")[0]
    phase = next(p for p in spec.protocol if p.data == "train" and p.plastic != "none")
    task_name, params = next((k, v) for k, v in spec.task if v is not None)
    full_task = spec.task
    if train is not None:
        if not hasattr(params, "train"):
            raise ValueError(f"task {task_name} has no train size to limit")
        params = params.model_copy(update={"train": train})
    spec = spec.model_copy(update={
        "protocol": [phase.model_copy(update={"epochs": 1, "validate_every": 0})],
        "record": [],
        "checkpoint_every": 0,
        "task": spec.task.model_copy(update={task_name: params}),
    })
    start = time.perf_counter()
    experiment = Experiment(spec, RunOptions(n_seeds=seeds, device=device, progress=False))
    n_train = len(experiment.splits["train"])
    n_full = n_train
    if train is not None:  # the full split's size (the data are cached in-process)
        from microcircuit.experiment import architecture
        from microcircuit.tasks import make_task

        n_full = len(make_task(full_task).splits(architecture(experiment.circuit))["train"])
    setup = time.perf_counter() - start
    start = time.perf_counter()
    result = experiment.run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    epoch = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"name": name, "status": result.status, "n_train": n_train, "batch": phase.batch,
            "t_pres": phase.t_pres, "seeds": seeds, "n_full": n_full, "setup_s": setup, "epoch_s": epoch,
            "peak_mib": peak_kib / 1024, "device": device}


def available(name: str) -> str | None:
    """None if the spec's data can be found, else why not."""
    sys.path.insert(0, str(ROOT))
    from microcircuit.spec import load_spec
    from microcircuit.tasks import make_task

    task = make_task(load_spec(ROOT / "circuits" / f"{name}.yaml")[0].task)
    if hasattr(task, "data_dir"):
        try:
            task.data_dir()
        except ValueError as err:
            return str(err).split(". ")[0]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=1, help="independent circuits simulated together")
    parser.add_argument("--train", type=int, default=None, help="limit the training split (extrapolate)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--only", nargs="*", default=None, help=f"subset of {', '.join(SPECS)}")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one(args.child, args.device, args.seeds, args.train, args.threads)))
        return 0
    print(f"one training epoch per spec, {args.seeds} circuit(s), device {args.device}, {args.threads} thread(s)")
    head = (f"{'spec':<17} {'train':>6} {'batch':>5} {'t_pres':>6} {'setup s':>8} {'epoch s':>9} "
            f"{'stim/s':>8} {'peak MiB':>9}")
    print(head)
    print("-" * len(head))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for name in args.only or SPECS:
        missing = available(name)
        if missing:
            print(f"{name:<17} skipped: {missing}")
            continue
        cmd = [sys.executable, __file__, "--child", name, "--device", args.device, "--seeds", str(args.seeds),
               "--threads", str(args.threads)]
        if args.train is not None:
            cmd += ["--train", str(args.train)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{name:<17} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        epoch_s = r["epoch_s"]
        mark = ""
        if args.train is not None:
            epoch_s *= r["n_full"] / r["n_train"]
            mark = "~"
        print(f"{name:<17} {r['n_train']:>6} {r['batch']:>5} {r['t_pres']:>6} {r['setup_s']:>8.1f} "
              f"{mark + format(epoch_s, '.1f'):>9} {r['n_train'] / r['epoch_s']:>8.0f} {r['peak_mib']:>9.0f}"
              + ("" if r["status"] == "done" else f"  ({r['status']})"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
