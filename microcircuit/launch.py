"""Starting, resuming and carrying out a run in its run directory.

* :func:`start_run` builds the experiment and a new run directory (created atomically and locked),
  and records in the manifest what the run depends on: a fingerprint of the resolved spec, the
  data's identity and the package version.
* :func:`resume_run` verifies an interrupted run directory against those records before it
  continues: an edited resolved spec, other data, another version, or a metrics.csv that does
  not hold the rows its checkpoint recorded are refused with one line (exit 2); a damaged newest
  checkpoint is skipped for the newest intact one (said on stderr).
* :func:`execute` runs the protocol. SIGINT and SIGTERM stop it at once, then write the
  interrupted checkpoint and the manifest; further signals while that happens are ignored, and
  writes at epoch boundaries are never cut half-way. I/O failures stop the run with one line
  naming the path and the operation, and the manifest says ``failed``.

Exit codes are in :mod:`microcircuit.exitcodes`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import microcircuit
from microcircuit.checksums import sha256_hex
from microcircuit.engine import Diverged
from microcircuit.exitcodes import EXIT_FAILED, EXIT_INT, EXIT_IO, EXIT_LOCKED, EXIT_OK, EXIT_SPEC, EXIT_TERM
from microcircuit.experiment import Experiment, RunOptions, accuracy_summary
from microcircuit.rundir import IntegrityError, RunDir, RunDirError, RunDirLocked

log = logging.getLogger("microcircuit")


class Terminated(Exception):
    """Raised by the SIGTERM handler so that a run can checkpoint and exit 143."""


@dataclass
class PreparedRun:
    """An experiment bound to its (locked) run directory, ready for :func:`execute`."""

    experiment: Experiment
    run_dir: RunDir

    @property
    def manifest(self) -> dict:
        return self.run_dir.manifest


def error(message: str) -> None:
    """One line on stderr."""
    print(f"error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------- fingerprints
def data_identity(experiment: Experiment) -> dict:
    """The task's data identity, with the checksums of the weight and order files the spec reads."""
    from microcircuit.checksums import file_sha256
    from microcircuit.spec.schema import FileInit

    identity = dict(experiment.task.data_identity())
    files = {q.init.file for q in experiment.spec.projections.values() if isinstance(q.init, FileInit)}
    files |= {phase.order.file for phase in experiment.spec.protocol if phase.order is not None}
    if files:
        identity["spec_files"] = {f: file_sha256(f) for f in sorted(files)}
    return identity


def fingerprint(resolved_text: str, experiment: Experiment) -> dict:
    """What a resumed run must find unchanged: the resolved spec, the data and the package version."""
    return {"spec_sha256": sha256_hex(resolved_text), "data": data_identity(experiment),
            "version": microcircuit.__version__}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for k, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def changed_keys(recorded: Any, current: Any, limit: int = 3) -> str:
    """'key: old -> new' for up to ``limit`` dotted keys that differ between two resolved specs."""
    old, new = _flatten(recorded), _flatten(current)
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k, "<absent>") != new.get(k, "<absent>")]
    shown = [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return "; ".join(shown) + more


def _data_difference(recorded: dict, current: dict) -> str:
    if recorded.get("source") != current.get("source") or recorded.get("task") != current.get("task"):
        return f"{recorded.get('task')} ({recorded.get('source')}) -> {current.get('task')} ({current.get('source')})"
    old = {**recorded.get("files", {}), **recorded.get("spec_files", {})}
    new = {**current.get("files", {}), **current.get("spec_files", {})}
    differing = sorted(name for name in {*old, *new} if old.get(name) != new.get(name))
    return "different content in " + ", ".join(differing)


# ---------------------------------------------------------------------- start
def _run_dir_or_code(make) -> RunDir | int:
    """``make()``'s (locked) run directory, or the exit code after printing in one line why not."""
    try:
        return make()
    except (FileExistsError, ValueError) as err:
        error(str(err))
        return EXIT_SPEC
    except RunDirLocked as err:
        error(str(err))
        return EXIT_LOCKED
    except RunDirError as err:
        error(str(err))
        return EXIT_IO


def make_experiment(where: Path | str, spec, options: RunOptions) -> Experiment | None:
    """An Experiment, or None after printing why the spec's data or device cannot run."""
    try:
        return Experiment(spec, options)
    except (RuntimeError, ValueError) as err:
        print(f"{where}: error: {err}", file=sys.stderr)
        return None


def start_run(spec_path: Path, spec, resolved: dict, options: RunOptions, out: Path,
              run_dir_path: Path | None = None, overwrite: bool = False,
              argv: list[str] | None = None) -> PreparedRun | int:
    """Build the experiment of a validated spec and a new run directory for it; an exit code on failure.

    Args:
        spec_path: the spec file as given (copied into the run directory as config.yaml).
        spec, resolved: :func:`microcircuit.spec.load_spec`'s validated spec and resolved mapping.
        out: parent folder of ``<name>/<stamp>-<hash>`` run directories.
        run_dir_path: an exact run directory instead (``--run-dir``).
    """
    experiment = make_experiment(spec_path, spec, options)
    if experiment is None:
        return EXIT_SPEC
    resolved_text = yaml.safe_dump(resolved, sort_keys=False)
    try:
        given_text = Path(spec_path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        error(f"{spec_path}: cannot read: {err}")
        return EXIT_IO
    run_dir = _run_dir_or_code(lambda: RunDir.at(run_dir_path, overwrite=overwrite) if run_dir_path is not None
                               else RunDir.create(out, spec.name, resolved_text))
    if isinstance(run_dir, int):
        return run_dir
    experiment.run_dir = run_dir
    try:
        run_dir.write_config(given_text, resolved_text)
        run_dir.write_recording_index(experiment.recorder.index())
        run_dir.append_metrics([])  # the header, so that metrics.csv exists whatever happens next
        manifest = experiment.manifest(["microcircuit", *(argv or [])])
        manifest["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest["fingerprint"] = fingerprint(resolved_text, experiment)
        manifest["checkpoints"] = {}
        manifest["spec"] = resolved  # for naming what changed, should config.resolved.yaml be edited
        run_dir.write_manifest(manifest)
    except RunDirError as err:
        error(str(err))
        run_dir.close()
        return EXIT_IO
    return PreparedRun(experiment, run_dir)


# ---------------------------------------------------------------------- resume
def resume_run(path: Path, argv: list[str] | None = None, progress: bool = True) -> PreparedRun | int:
    """Verify the run directory ``path`` against its manifest and continue it from its newest intact
    checkpoint; an exit code when there is nothing to do or it cannot be resumed."""
    from microcircuit.spec import SpecError, format_problems, load_spec

    path = Path(path)
    if not path.is_dir() or not (path / "manifest.json").exists():
        error(f"{path} is not a run directory (no manifest.json)")
        return EXIT_SPEC
    run_dir = _run_dir_or_code(lambda: RunDir.open(path))
    if isinstance(run_dir, int):
        return run_dir
    try:
        prepared = _verify_and_restore(run_dir, argv, progress, load_spec)
    except IntegrityError as err:
        error(f"{err}; not resumed")
        prepared = EXIT_SPEC
    except SpecError as err:
        print(format_problems(err.problems), file=sys.stderr)
        prepared = EXIT_SPEC
    except RunDirError as err:
        error(str(err))
        prepared = EXIT_IO
    if isinstance(prepared, int):
        run_dir.close()
    return prepared


def _verify_and_restore(run_dir: RunDir, argv, progress: bool, load_spec) -> PreparedRun | int:
    path = run_dir.path
    manifest = run_dir.read_manifest()
    if manifest.get("status") == "done":
        print(f"{path}: the run is complete; nothing to resume")
        print(path)
        return EXIT_OK
    recorded = manifest.get("fingerprint")
    if not isinstance(recorded, dict):
        raise IntegrityError(f"{path}/manifest.json has no fingerprint (written by microcircuit "
                             f"{manifest.get('version', 'before 0.2')}): the run cannot be verified")
    if recorded.get("version") != microcircuit.__version__:
        raise IntegrityError(f"{path} was written by microcircuit {recorded.get('version')}, this is "
                             f"{microcircuit.__version__}: the numbers would not continue the same way")
    resolved_path = path / "config.resolved.yaml"
    try:
        resolved_text = resolved_path.read_text()
    except FileNotFoundError:
        raise IntegrityError(f"{resolved_path}: missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise IntegrityError(f"{resolved_path}: unreadable ({err})") from None
    if sha256_hex(resolved_text) != recorded.get("spec_sha256"):
        raise IntegrityError(f"{resolved_path} was changed after the run started ({_spec_changes(run_dir)}); "
                             "start a new run with the changed spec instead")
    spec, _resolved, _warnings = load_spec(resolved_path)
    # the engine that wrote the checkpoint continues it, so that the floats stay the same
    engine = (manifest.get("engine") or {}).get("chosen")
    try:
        options = RunOptions(n_seeds=len(manifest["seeds"]), seed=manifest["master_seed"],
                             device=manifest["device"], dtype=manifest["dtype"], progress=progress, engine=engine)
    except (KeyError, TypeError) as err:
        raise IntegrityError(f"{path}/manifest.json: damaged (no {err})") from None
    experiment = make_experiment(path, spec, options)
    if experiment is None:
        return EXIT_SPEC
    if experiment.seeds != manifest["seeds"]:
        raise IntegrityError(f"{path}/manifest.json: seeds {manifest['seeds']} are not those of master seed "
                             f"{manifest['master_seed']}")
    try:
        data = data_identity(experiment)
    except OSError as err:
        raise IntegrityError(f"the data cannot be read to check them: {err}") from None
    if data != recorded.get("data"):
        raise IntegrityError(f"the data differ from the run's: {_data_difference(recorded.get('data') or {}, data)}")
    run_dir.manifest = manifest
    chosen = None
    for name, payload, notes in run_dir.intact_checkpoints():
        for note in notes:
            print(f"warning: {note}", file=sys.stderr)
        if name is not None:
            chosen = (name, payload)
            break
    if chosen is None:
        raise IntegrityError(f"{path} has no intact checkpoint to resume from")
    name, payload = chosen
    try:
        experiment.restore(payload)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise IntegrityError(f"checkpoints/{name}.pt does not fit this run ({err})") from None
    mark = payload.get("metrics") or {}
    if "rows" not in mark or "sha256" not in mark:
        raise IntegrityError(f"checkpoints/{name}.pt records no metrics checksum")
    experiment.result.rows = run_dir.resume_metrics(mark)
    experiment.run_dir = run_dir
    manifest.setdefault("resumed", []).append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                               "from": f"checkpoints/{name}.pt",
                                               "argv": ["microcircuit", *(argv or [])]})
    manifest["status"] = "running"
    manifest.pop("failure", None)
    run_dir.write_manifest(manifest)
    log.info("resuming %s from checkpoints/%s.pt", path, name)
    return PreparedRun(experiment, run_dir)


def _spec_changes(run_dir: RunDir) -> str:
    try:
        current = yaml.safe_load((run_dir.path / "config.resolved.yaml").read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return "it no longer parses"
    recorded = run_dir.manifest.get("spec")
    if recorded is None:
        return "fingerprint differs"
    return changed_keys(recorded, current) or "formatting only"


# ---------------------------------------------------------------------- execute
class SignalGuard:
    """SIGINT and SIGTERM while a run executes.

    The first signal stops the run: it raises KeyboardInterrupt (SIGINT) or :class:`Terminated`
    (SIGTERM) at once, or at the end of a :meth:`critical` section if one is being written. Every
    later signal is ignored, so that the checkpoint and manifest written after the first one cannot
    be interrupted half-way."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._depth = 0
        self._pending = False
        self._settled = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def settle(self) -> None:
        """From now on every signal is ignored (the run is writing its last checkpoint and manifest)."""
        self._settled = True

    def _handle(self, signum, frame) -> None:
        if self.received is not None or self._settled:
            return  # already stopping: the checkpoint and manifest are being written
        self.received = signum
        if self._depth:
            self._pending = True
        else:
            self._raise()

    def _raise(self) -> None:
        raise KeyboardInterrupt if self.received == signal.SIGINT else Terminated()

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A section that a signal does not cut: the signal takes effect when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                self._raise()


class _RunLogHandler(logging.FileHandler):
    """log.txt of a run; a write failure there (full disk) disables it instead of printing a traceback."""

    def handleError(self, record) -> None:  # noqa: N802 (logging's name)
        self.close()
        log.removeHandler(self)


def execute(prepared: PreparedRun) -> int:
    """Run the protocol of a prepared run; write the manifest's final status. Returns the exit code."""
    experiment, run_dir = prepared.experiment, prepared.run_dir
    manifest = run_dir.manifest
    try:
        file_handler = _RunLogHandler(run_dir.path / "log.txt")
    except OSError as err:
        error(str(RunDirError(run_dir.path / "log.txt", "open the log", err)))
        run_dir.close()
        return EXIT_IO
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(file_handler)
    log.info("running %s on %d circuit(s), %s, %s -> %s", experiment.spec.name, len(experiment.seeds),
             experiment.device, manifest.get("dtype"), run_dir.path)
    start = time.perf_counter()
    code, failure = EXIT_OK, ""
    guard = SignalGuard()
    try:
        with guard:
            experiment.critical = guard.critical
            try:
                try:
                    result = experiment.run()
                    guard.settle()
                    manifest["status"] = result.status
                    if result.status == "diverged":
                        manifest["diagnosis"] = result.diagnosis
                        experiment.checkpoint("last_good")  # the last epoch boundary, which passed the check
                        code = EXIT_FAILED
                except (KeyboardInterrupt, Terminated):
                    guard.settle()
                    interrupted = guard.received != signal.SIGTERM
                    manifest["status"] = "interrupted" if interrupted else "terminated"
                    code = EXIT_INT if interrupted else EXIT_TERM
                    experiment.checkpoint("interrupted")
                except Diverged as err:  # raised outside the protocol loop
                    guard.settle()
                    manifest.update(status="diverged", diagnosis=err.diagnosis)
                    code = EXIT_FAILED
                run_dir.sync()  # the metric rows and recordings since the last checkpoint
            except RunDirError as err:
                guard.settle()
                failure, code = str(err), EXIT_IO
                manifest.update(status="failed", failure=failure)
            manifest["wall_time_s"] = round(time.perf_counter() - start, 3)
            manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            try:
                run_dir.write_manifest()
            except RunDirError as err:
                if failure:
                    failure += " (the manifest could not be updated either)"
                else:
                    failure, code = str(err), EXIT_IO
        if code == EXIT_OK:
            summary = accuracy_summary(experiment.result)
            if summary:
                print(summary)  # (the experiment wrote it into log.txt)
    finally:
        experiment.critical = contextlib.nullcontext
        run_dir.close()
        log.removeHandler(file_handler)
        file_handler.close()
    if code == EXIT_IO:
        error(failure)
    elif code == EXIT_FAILED:
        print(f"run diverged: {manifest.get('diagnosis', '')}", file=sys.stderr)
    return code


__all__ = ["PreparedRun", "SignalGuard", "Terminated", "execute", "make_experiment", "resume_run", "start_run"]
