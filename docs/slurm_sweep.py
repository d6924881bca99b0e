"""Run a sweep on a SLURM cluster: dask-jobqueue submits the Dask workers as SLURM jobs, the sweep layer
sends them its simulations. A worked example; copy it and change the marked settings for your cluster.

Needs, on the login node and in every job: this package installed in the same environment, and
``pip install dask-jobqueue`` (not a dependency of microcircuit). The sweep directory must lie on a file
system that the compute nodes share with the login node (each worker writes its runs there).

    python docs/slurm_sweep.py circuits/sweeps/tpres_bars.yaml --jobs 22

Run it inside ``screen`` or ``tmux`` (or as a small job of its own): this process holds the Dask scheduler,
and the workers stop when it ends. Interrupting it is safe: run it again and the finished runs are kept.
PBS: the same with ``from dask_jobqueue import PBSCluster`` (``resource_spec="select=1:ncpus=1:mem=4GB"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from microcircuit.sweep import execute, load_sweep, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="sweep file (schema: microcircuit-sweep/1)")
    parser.add_argument("--jobs", type=int, default=10, help="SLURM jobs, one Dask worker of one core each")
    parser.add_argument("--out", type=Path, default=Path("sweeps"), help="parent of the sweep directory")
    args = parser.parse_args()

    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        queue="normal",                       # your partition (sbatch -p)
        account=None,                         # your account (sbatch -A), if the cluster needs one
        cores=1, processes=1,                 # one worker process of one thread per job: the circuits are small
        memory="4GB",                         # per job; a bars or yin-yang simulation needs far less
        walltime="04:00:00",                  # longer than the longest simulation of the sweep
        job_script_prologue=["export OMP_NUM_THREADS=1",           # one intra-op thread per worker
                             "source $HOME/venvs/microcircuit/bin/activate"],  # your environment
        log_directory="dask-logs",
    )
    cluster.scale(jobs=args.jobs)
    print(f"Dask scheduler at {cluster.scheduler_address}; {args.jobs} worker job(s) submitted", file=sys.stderr)
    try:
        sweep = load_sweep(args.sweep)
        sweep_dir = args.out / sweep.name
        execute(plan(sweep), sweep_dir, scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    print(sweep_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
