"""``microcircuit sweep SWEEP.yaml``: what the command line does (argument parsing lives in microcircuit.cli)."""

from __future__ import annotations

import sys
from pathlib import Path

from microcircuit.spec import SpecError

EXIT_OK, EXIT_FAILED, EXIT_SPEC = 0, 1, 2


def add_arguments(p) -> None:
    """The options of ``microcircuit sweep`` on parser ``p``."""
    p.add_argument("sweep", type=Path, help="sweep file (schema: microcircuit-sweep/1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the base circuit, e.g. --set protocol.0.epochs=10 (repeatable)")
    p.add_argument("--axis", dest="axes", action="append", default=[], metavar="NAME=v1,v2",
                   help="replace the values (or labels) of an axis, e.g. --axis t_pres=10,100 (repeatable)")
    p.add_argument("--seeds", type=int, default=None, help="circuits per run (default: the sweep file's)")
    p.add_argument("--out", type=Path, default=Path("sweeps"),
                   help="parent of the sweep directory OUT/NAME (sweeps/); running again continues it")
    p.add_argument("--dry-run", action="store_true",
                   help="validate every expanded circuit, print the runs and their simulations, run nothing")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=0,
                       help="run on a local Dask cluster of N worker processes, one thread each (default: this "
                            "process)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on the Dask cluster of this scheduler (e.g. one started by dask-jobqueue)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: the sweep file's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def main(args, argv: list[str]) -> int:
    """Validate, plan and run the sweep; the sweep directory is the last line of stdout."""
    from microcircuit.sweep import describe, execute, load_sweep, plan, status_counts

    if args.workers < 0:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return EXIT_SPEC
    try:
        sweep = load_sweep(args.sweep, args.overrides, args.axes, args.seeds)
        p = plan(sweep, args.device)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        return EXIT_SPEC
    sweep_dir = args.out / sweep.name
    if args.dry_run:
        print(describe(p))
        print(f"every expanded circuit is valid; results would go to {sweep_dir}")
        print(sweep_dir)
        return EXIT_OK
    execute(p, sweep_dir, workers=args.workers, scheduler=args.scheduler, quiet=args.quiet,
            argv=["microcircuit", *argv])
    counts = status_counts(p, sweep_dir)
    done = counts.get("done", 0)
    print(f"{done} of {len(p.runs)} runs done" + "".join(f", {n} {s}" for s, n in counts.items() if s != "done")
          + f"; tables in {sweep_dir} (results.csv)")
    print(sweep_dir)
    return EXIT_OK if done == len(p.runs) else EXIT_FAILED
