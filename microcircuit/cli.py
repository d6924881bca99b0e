"""The ``microcircuit`` command: ``validate``, ``describe``, ``run``, ``plot``, ``analyse`` and ``baseline``.

Each subcommand parses its arguments here and calls the library (spec, circuit, experiment,
plotting, analysis programs).

Exit codes: 0 ok, 1 runtime failure (e.g. a diverged run), 2 spec or usage error,
130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path

from microcircuit.datadir import data_dir_arg, use_data_dir
from microcircuit.devices import check_device
from microcircuit.shipped import DEFAULT_SPEC
from microcircuit.threads import apply_thread_policy

EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_INT, EXIT_TERM = 0, 1, 2, 130, 143


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

exit codes: 0 ok, 1 runtime failure, 2 spec or usage error, 130 interrupted, 143 terminated"""


class Terminated(Exception):
    """Raised from the SIGTERM handler so that a run can checkpoint and exit 143."""


def _on_sigterm(signum, frame):
    raise Terminated()


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
    p.add_argument("--out", type=Path, default=Path("runs"), help="parent folder of run directories (runs/)")
    p.add_argument("--seeds", type=int, default=1, help="independent circuits, simulated as one batch (1)")
    p.add_argument("--seed", type=int, default=None, help="master seed (default: the spec's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto (CUDA if torch sees a GPU)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default: the spec's")
    p.add_argument("--engine", choices=["auto", "eager", "compiled"], default=None,
                   help="eager (reference), compiled (fused numba presentations) or auto (default: the spec's, "
                        "auto: compiled where it is supported and pays); the choice is logged and in the manifest")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads of this process (default 1, or OMP_NUM_THREADS if set)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing run directory")
    p.add_argument("--run-dir", type=Path, default=None, help="exact run directory (default: a new unique one)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its latest checkpoint (same floats as an uninterrupted run)")
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
    p.add_argument("--hue", default=None, metavar="AXIS", help="sweep directory: one line per value of this axis")

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
    return handler[args.command](args, argv)


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


def cmd_run(args, argv) -> int:
    from microcircuit.engine import Diverged
    from microcircuit.experiment import accuracy_summary

    prepared = resume_run(args, argv) if args.resume else new_run(args, argv)
    if isinstance(prepared, int):
        return prepared
    experiment, run_dir, manifest = prepared
    file_handler = logging.FileHandler(run_dir.path / "log.txt")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(file_handler)
    log.info("running %s on %d circuit(s), %s, %s -> %s", experiment.spec.name, len(experiment.seeds),
             experiment.device, manifest["dtype"], run_dir.path)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.perf_counter()
    code = EXIT_OK
    try:
        result = experiment.run()
        manifest["status"] = result.status
        if result.status == "diverged":
            manifest["diagnosis"] = result.diagnosis
            experiment.checkpoint("last_good")  # the last epoch boundary, which passed the finiteness check
            code = EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as err:
        interrupted = isinstance(err, KeyboardInterrupt)
        manifest["status"] = "interrupted" if interrupted else "terminated"
        experiment.checkpoint("interrupted")
        code = EXIT_INT if interrupted else EXIT_TERM
    except Diverged as err:  # raised outside the protocol loop
        manifest.update(status="diverged", diagnosis=err.diagnosis)
        code = EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
        manifest["wall_time_s"] = round(time.perf_counter() - start, 3)
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run_dir.write_manifest(manifest)
        run_dir.close()
        log.removeHandler(file_handler)
        file_handler.close()
    if code == EXIT_OK:
        summary = accuracy_summary(experiment.result)
        if summary:
            print(summary)
        print(f"wall time: {manifest['wall_time_s']:.1f} s")
        if args.baseline:
            code = baseline_beside(experiment, run_dir.path)
        if not args.no_plot:
            from microcircuit.plotting import plot_run

            plot_run(run_dir.path)
    elif code == EXIT_FAILED:
        print(f"run diverged: {manifest['diagnosis']}", file=sys.stderr)
    print(run_dir.path)
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


def make_experiment(path: Path, spec, options):
    """An Experiment, or None after printing why the spec's data or device cannot run."""
    from microcircuit.experiment import Experiment

    try:
        return Experiment(spec, options)
    except (RuntimeError, ValueError) as err:
        print(f"{path}: error: {err}", file=sys.stderr)
        return None


def new_run(args, argv):
    """Validate the spec, build the experiment and a new run directory; an exit code on failure."""
    import yaml

    from microcircuit.experiment import RunOptions
    from microcircuit.rundir import RunDir

    path = args.spec or DEFAULT_SPEC
    if args.seeds < 1:
        print(f"error: --seeds must be at least 1, got {args.seeds}", file=sys.stderr)
        return EXIT_SPEC
    loaded = load(path, args.overrides)
    if loaded is None:
        return EXIT_SPEC
    spec, resolved = loaded
    options = RunOptions(n_seeds=args.seeds, seed=args.seed, device=args.device, dtype=args.dtype,
                         progress=not args.quiet, engine=args.engine)
    experiment = make_experiment(path, spec, options)
    if experiment is None:
        return EXIT_SPEC
    resolved_text = yaml.safe_dump(resolved, sort_keys=False)
    try:
        run_dir = (RunDir(args.run_dir, overwrite=args.overwrite) if args.run_dir
                   else RunDir.create(args.out, spec.name, resolved_text, overwrite=args.overwrite))
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_SPEC
    experiment.run_dir = run_dir
    run_dir.write_config(Path(path).read_text(), resolved_text)
    run_dir.write_recording_index(experiment.recorder.index())
    run_dir.append_metrics([])  # the header, so that metrics.csv exists whatever happens next
    manifest = experiment.manifest(["microcircuit", *argv])
    manifest["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_dir.write_manifest(manifest)
    return experiment, run_dir, manifest


def resume_run(args, argv):
    """Continue the run in ``args.resume`` from its latest checkpoint; an exit code on failure."""
    import pickle

    import torch

    from microcircuit.experiment import RunOptions
    from microcircuit.rundir import RunDir

    path = Path(args.resume)
    if not (path / "manifest.json").exists() or not (path / "config.resolved.yaml").exists():
        print(f"error: {path} is not a run directory (no manifest.json / config.resolved.yaml)", file=sys.stderr)
        return EXIT_SPEC
    run_dir = RunDir(path, overwrite=True)
    manifest = run_dir.read_manifest()
    if manifest.get("status") == "done":
        print(f"{path}: the run is complete; nothing to resume")
        print(path)
        return EXIT_OK
    try:
        checkpoint = run_dir.latest_checkpoint()
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, KeyError) as err:
        print(f"error: {path}: unreadable checkpoint: {err}", file=sys.stderr)
        return EXIT_SPEC
    if checkpoint is None:
        print(f"error: {path} has no checkpoint to resume from", file=sys.stderr)
        return EXIT_SPEC
    loaded = load(path / "config.resolved.yaml", [])
    if loaded is None:
        return EXIT_SPEC
    # the engine that wrote the checkpoint continues it, so that the floats stay the same
    engine = (manifest.get("engine") or {}).get("chosen")
    options = RunOptions(n_seeds=len(manifest["seeds"]), seed=manifest["master_seed"],
                         device=manifest["device"], dtype=manifest["dtype"], progress=not args.quiet,
                         engine=engine)
    experiment = make_experiment(path, loaded[0], options)
    if experiment is None:
        return EXIT_SPEC
    try:
        payload = torch.load(checkpoint, weights_only=True)
        experiment.restore(payload)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, KeyError, TypeError, ValueError) as err:
        print(f"{checkpoint}: error: cannot resume from this checkpoint: {err}", file=sys.stderr)
        return EXIT_SPEC
    experiment.result.rows = run_dir.truncate_metrics(payload["cursor"]["metric_rows"])
    experiment.run_dir = run_dir
    manifest.setdefault("resumed", []).append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                               "from": checkpoint.name, "argv": ["microcircuit", *argv]})
    manifest["status"] = "running"
    run_dir.write_manifest(manifest)
    return experiment, run_dir, manifest


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

        return plot_sweep(args.run_dir, args.x, args.metric, args.hue)

    if not (args.run_dir / "metrics.csv").exists():
        print(f"error: {args.run_dir} is not a run directory (no metrics.csv)", file=sys.stderr)
        return EXIT_SPEC
    for path in plot_run(args.run_dir, kinds=args.kind or ("curves", "traces", "apical")):
        print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
