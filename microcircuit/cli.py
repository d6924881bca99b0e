"""The ``microcircuit`` command: ``validate``, ``describe``, ``run``, ``plot``, ``analyse`` and ``baseline``.

Each subcommand parses its arguments here and calls the library (spec, circuit, experiment,
plotting, analysis programs).

Exit codes (:mod:`microcircuit.exitcodes`): 0 ok, 1 runtime failure (e.g. a diverged run), 2 spec or
usage error or a refused resume, 74 I/O failure, 75 run directory in use, 130 interrupted (SIGINT),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from microcircuit.datadir import data_dir_arg, use_data_dir
from microcircuit.devices import check_device
from microcircuit.exitcodes import EXIT_FAILED, EXIT_INT, EXIT_IO, EXIT_OK, EXIT_SPEC
from microcircuit.shipped import DEFAULT_SPEC
from microcircuit.threads import apply_thread_policy

log = logging.getLogger("microcircuit")

DESCRIPTION = """\
Dendritic-error cortical microcircuits with Latent Equilibrium: circuits written as YAML specs,
simulated in batches with torch, compared against backprop.

The shipped circuits are in the package (microcircuit.shipped; circuits/ of the source tree);
without a spec, describe, run and baseline use bars_le.yaml."""

EPILOG = """\
first steps:
  microcircuit validate circuits/bars_le.yaml       check a spec (every problem at once)
  microcircuit describe --draw circuit.png          populations, projections, learning rates
  microcircuit run --set parameters.t_pres=10       train bars (writes runs/bars_le/...)
  microcircuit plot RUN_DIR                         learning curves, traces, apical potentials
  microcircuit analyse --help                       the analysis programs

exit codes: 0 ok, 1 runtime failure (diverged), 2 spec or usage error (or a refused resume),
  74 I/O failure, 75 run directory in use, 130 interrupted, 143 terminated (docs/reliability.md)"""


def build_parser() -> argparse.ArgumentParser:
    from microcircuit import __version__

    parser = argparse.ArgumentParser(prog="microcircuit", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"microcircuit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
        p.add_argument("spec", nargs="*" if many else "?", type=Path,
                       help="circuit spec YAML file" + ("s" if many else f" (default: {DEFAULT_SPEC.name})"))
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec value, e.g. --set parameters.t_pres=10 (repeatable)")
        data_dir_arg(p)

    p = sub.add_parser("validate", help="check spec files; print every problem at once")
    spec_args(p, many=True)
    p.set_defaults(spec=[])
    p.add_argument("--schema", action="store_true", help="print the JSON schema of the spec format and exit")

    p = sub.add_parser("describe", help="print populations, projections, shapes and derived constants")
    spec_args(p)
    p.add_argument("--graph", type=Path, help="write the circuit graph as GraphML to this file")
    p.add_argument("--draw", type=Path, help="draw the circuit graph to this PNG file")

    p = sub.add_parser("run", help="validate, then run the spec's protocol; prints the run directory last")
    spec_args(p)
    p.add_argument("--out", type=Path, default=None, help="parent folder of run directories (default: runs/)")
    p.add_argument("--seeds", type=int, default=None, help="independent circuits, simulated as one batch (1)")
    p.add_argument("--seed", type=int, default=None, help="master seed (default: the spec's)")
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N or auto (CUDA if torch sees a GPU)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default: the spec's")
    p.add_argument("--engine", choices=["auto", "eager", "compiled"], default=None,
                   help="eager (reference), compiled (fused numba presentations) or auto (default: the spec's, "
                        "auto: compiled where it is supported and pays); the choice is logged and in the manifest")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads of this process (default 1, or OMP_NUM_THREADS if set)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing run directory")
    p.add_argument("--run-dir", type=Path, default=None, help="exact run directory (default: a new unique one)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its newest intact checkpoint after checking the directory "
                        "against its manifest (same floats as an uninterrupted run)")
    p.add_argument("--no-plot", action="store_true", help="skip the figures at the end")
    p.add_argument("--baseline", action="store_true",
                   help="also train the backprop baseline of the same architecture (SGD, same data, initial "
                        "weights and epochs; see `microcircuit baseline`) and write baseline.csv")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("analyse", aliases=["analyze"], add_help=False,
                       help="run an analysis program; 'analyse --help' lists them, 'analyse NAME --help' "
                            "shows a program's options")
    p.add_argument("name", nargs="?", help="analysis program")
    p.add_argument("--list", action="store_true", help="list the analysis programs")
    p.add_argument("-h", "--help", dest="list_help", action="store_true", help="list the analysis programs")

    sub.add_parser("baseline", add_help=False,
                   help="train the same architecture with backprop (SGD) on the same data; see 'baseline -h'")

    p = sub.add_parser("plot", help="draw learning curves, output traces and apical potentials of a run, "
                                    "or a metric of a sweep against an axis")
    p.add_argument("run_dir", type=Path, help="a run directory or a sweep directory")
    p.add_argument("--kind", action="append", choices=["curves", "traces", "apical"], default=None)
    p.add_argument("--x", default=None, metavar="AXIS", help="sweep directory: the axis on the x axis")
    p.add_argument("--metric", default=None, metavar="NAME", help="sweep directory: the metric, e.g. test/accuracy")
    p.add_argument("--hue", default=None, metavar="AXIS", help="sweep directory: one colour per value of this axis")
    p.add_argument("--style", default=None, metavar="AXIS",
                   help="sweep directory: one line style and marker per value of this axis")

    from microcircuit.sweep.command import add_arguments as sweep_arguments

    p = sub.add_parser("sweep", help="run a sweep file (many runs of one circuit, batched, on Dask) into one "
                                     "table; prints the sweep directory last")
    sweep_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = build_parser().parse_known_args(argv)
    if args.command == "baseline":
        from microcircuit.baseline import main as baseline_main

        return baseline_main(argv[argv.index("baseline") + 1:])
    if rest and args.command not in ("analyse", "analyze"):
        build_parser().parse_args(argv)  # reports the unknown arguments and exits 2
    args.rest = rest
    try:
        apply_thread_policy(getattr(args, "threads", None))
        if getattr(args, "device", None) is not None:
            check_device(args.device)
            if args.device.startswith("cuda"):  # say why before anything is built
                from microcircuit.devices import resolve_device

                resolve_device(args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_SPEC
    use_data_dir(getattr(args, "data_dir", None))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # records for the run's log file only (the command prints them)
        if not any(isinstance(f, _LogFileOnly) for f in handler.filters):
            handler.addFilter(_LogFileOnly())
    handler = {"validate": cmd_validate, "describe": cmd_describe, "run": cmd_run, "plot": cmd_plot,
               "analyse": cmd_analyse, "analyze": cmd_analyse, "sweep": cmd_sweep}
    try:
        return handler[args.command](args, argv)
    except KeyboardInterrupt:  # before a run started (a started run checkpoints and exits 130 itself)
        print("interrupted", file=sys.stderr)
        return EXIT_INT
    except OSError as err:  # a file a command reads or writes (figures, graphs, tables): path and reason
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_IO
    except MemoryError:
        print("error: out of memory (fewer seeds, a smaller batch or fewer samples need less)", file=sys.stderr)
        return EXIT_FAILED


class _LogFileOnly(logging.Filter):
    """Keeps records logged with ``extra={"console": False}`` off the console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "console", True)


def load(path: Path, overrides: list[str]):
    """Load and validate a spec; print problems and return None on failure."""
    from microcircuit.spec import SpecError, format_problems, load_spec

    try:
        spec, resolved, warnings = load_spec(path, overrides)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        return None
    if warnings:
        print(format_problems(warnings), file=sys.stderr)
    return spec, resolved


def cmd_validate(args, argv) -> int:
    if args.schema:
        from microcircuit.spec import Spec

        print(json.dumps(Spec.model_json_schema(by_alias=True), indent=2))
        return EXIT_OK
    if not args.spec:
        print("error: validate needs spec files (or --schema)", file=sys.stderr)
        return EXIT_SPEC
    status = EXIT_OK
    for path in args.spec:
        loaded = load(path, args.overrides)
        if loaded is None:
            status = EXIT_SPEC
        else:
            print(f"{path}: ok")
    return status


def cmd_describe(args, argv) -> int:
    from microcircuit.circuit import Circuit
    from microcircuit.tasks import make_task

    path = args.spec or DEFAULT_SPEC
    loaded = load(path, args.overrides)
    if loaded is None:
        return EXIT_SPEC
    circuit = Circuit(loaded[0])
    print(circuit.describe())
    print(f"\ntask: {make_task(loaded[0].task).name}")
    if args.graph:
        import networkx as nx

        from microcircuit.drawing import graphml_ready

        nx.write_graphml(graphml_ready(circuit.graph), args.graph)
        print(f"graph written to {args.graph}")
    if args.draw:
        from microcircuit.drawing import draw_circuit

        draw_circuit(circuit, args.draw)
        print(f"drawing written to {args.draw}")
    return EXIT_OK


#: run options that a resumed run takes from its run directory (giving them is a usage error)
FIXED_ON_RESUME = {"spec": "SPEC", "overrides": "--set", "out": "--out", "seeds": "--seeds", "seed": "--seed",
                   "device": "--device", "dtype": "--dtype", "engine": "--engine", "run_dir": "--run-dir",
                   "overwrite": "--overwrite"}


def cmd_run(args, argv) -> int:
    from microcircuit import launch

    if args.resume:
        given = [flag for key, flag in FIXED_ON_RESUME.items() if getattr(args, key) not in (None, False, [])]
        if given:
            print(f"error: {', '.join(given)} cannot be given with --resume: a resumed run keeps the settings "
                  "it was started with (start a new run to change them)", file=sys.stderr)
            return EXIT_SPEC
        prepared = launch.resume_run(args.resume, argv, progress=not args.quiet)
    else:
        prepared = new_run(args, argv)
    if isinstance(prepared, int):
        return prepared
    code = launch.execute(prepared)
    run_path = prepared.run_dir.path
    if code == EXIT_OK:
        print(f"wall time: {prepared.manifest['wall_time_s']:.1f} s")
        if args.baseline:
            code = baseline_beside(prepared.experiment, run_path)
        if not args.no_plot:
            from microcircuit.plotting import plot_run

            try:
                plot_run(run_path)
            except OSError as err:
                print(f"warning: figures not written: {err}", file=sys.stderr)
    print(run_path)
    return code


def baseline_beside(experiment, path: Path) -> int:
    """Train the run's backprop baseline on its seeds and device; write ``baseline.csv``, print its accuracy."""
    import numpy as np

    from microcircuit.baseline import baseline_csv, run_baseline
    from microcircuit.rundir import atomic_write_text

    try:
        result = run_baseline(experiment.spec, experiment.seeds, device=str(experiment.device),
                              dtype=str(experiment.dtype).removeprefix("torch."))
    except FloatingPointError as err:
        print(f"baseline: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    atomic_write_text(path / "baseline.csv", baseline_csv(result["rows"]))
    accuracy = result["test"]["accuracy"]
    if accuracy:
        print(f"backprop baseline (SGD, lr {result['lr']:g}) test accuracy: mean {np.mean(accuracy):.3f}, "
              f"min {min(accuracy):.3f}, max {max(accuracy):.3f} over {len(accuracy)} seed(s)")
    print(f"backprop baseline wall time: {result['wall_time_s']:.1f} s")
    return EXIT_OK


def new_run(args, argv):
    """Validate the spec, build the experiment and a new run directory; an exit code on failure."""
    from microcircuit import launch
    from microcircuit.experiment import RunOptions

    path = args.spec or DEFAULT_SPEC
    seeds = 1 if args.seeds is None else args.seeds
    if seeds < 1:
        print(f"error: --seeds must be at least 1, got {seeds}", file=sys.stderr)
        return EXIT_SPEC
    loaded = load(path, args.overrides)
    if loaded is None:
        return EXIT_SPEC
    spec, resolved = loaded
    options = RunOptions(n_seeds=seeds, seed=args.seed, device=args.device or "cpu", dtype=args.dtype,
                         progress=not args.quiet, engine=args.engine)
    return launch.start_run(path, spec, resolved, options, out=args.out or Path("runs"),
                            run_dir_path=args.run_dir, overwrite=args.overwrite, argv=argv)


def cmd_analyse(args, argv) -> int:
    """``microcircuit analyse NAME [program options]``: runs the program's main with the remaining arguments."""
    import importlib

    from microcircuit.analysis import ANALYSES, SUMMARIES

    if args.list or not args.name:
        asked = args.list or args.list_help
        out = sys.stdout if asked else sys.stderr
        print("usage: microcircuit analyse NAME [options]   ('microcircuit analyse NAME --help' for its options)\n"
              "\nanalysis programs:", file=out)
        width = max(map(len, ANALYSES))
        for name in ANALYSES:
            print(f"  {name:<{width}}  {SUMMARIES[name]}", file=out)
        if not asked:
            print("error: name an analysis program", file=sys.stderr)
        return EXIT_OK if asked else EXIT_SPEC
    if args.name not in ANALYSES:
        from microcircuit.registry import UnknownName

        print(f"error: {UnknownName('analysis', args.name, list(ANALYSES))}", file=sys.stderr)
        return EXIT_SPEC
    rest = ["--help", *args.rest] if args.list_help else args.rest
    return importlib.import_module(ANALYSES[args.name]).main(rest)


def cmd_sweep(args, argv) -> int:
    from microcircuit.sweep.command import main as sweep_main

    return sweep_main(args, argv)


def cmd_plot(args, argv) -> int:
    from microcircuit.plotting import plot_run

    if (args.run_dir / "sweep.json").exists():
        from microcircuit.sweep.plot import main as plot_sweep

        return plot_sweep(args.run_dir, args.x, args.metric, args.hue, args.style)
    if not (args.run_dir / "metrics.csv").exists():
        print(f"error: {args.run_dir} is not a run directory (no metrics.csv)", file=sys.stderr)
        return EXIT_SPEC
    for path in plot_run(args.run_dir, kinds=args.kind or ("curves", "traces", "apical")):
        print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
