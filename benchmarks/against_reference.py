"""Throughput of this package beside the original reference program of the Latent Equilibrium paper.

Both programs train the bars task (9-30-3 LE dendritic microcircuit, plasticity on, one seed,
``--t-pres`` steps of dt = 0.1 ms per pattern, default 100) for ``--epochs`` epochs and then test,
each as a whole fresh process with one thread (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` = 1). The runs alternate (reference, ours,
reference, ours, ...), ``--repeats`` of each.

- reference: ``fig3fig5_dendritic_microcircuits/src/run_bars.py train CONFIG`` of the
  unibe-cns/le_NeurIPS_code checkout given with ``--reference`` (Haider et al. 2021), with a
  temporary copy of ``experiment_configs/bars_le_tpres_<T>.yaml`` whose ``n_epochs`` is changed
  (the checkout is never written to). Per epoch it presents the 8 training patterns and then 8
  validation patterns (no plasticity); at the end 8 + 8 evaluation patterns:
  ``(16 * epochs + 16) * t_pres`` steps.
- ours: ``python -m microcircuit.cli run circuits/bars_le.yaml`` with ``protocol.0.epochs=N``,
  ``protocol.0.validate_every=0`` and ``record=[]``: 8 training patterns per epoch and 8 test
  patterns at the end: ``(8 * epochs + 8) * t_pres`` steps. With ``--readme-command`` ours is the
  README's first command as a user runs it (only ``protocol.0.epochs`` changed, when ``--epochs`` is
  not 1000): the spec's validation on the 8 patterns every 100 epochs, its recordings (output and
  target in the test phase, the mean apical potential every 10 steps throughout) and the three figures;
  ``(8 * epochs + 8 * (epochs // 100) + 8) * t_pres`` steps. It uses a private, initially empty numba
  cache, so that its first run compiles the fused engine and the later runs load the cache.

Units: steps per second, a step being one dt of the one simulated circuit, counted over the whole
process (start-up, imports, data, compilation and the writing of results included), once with the
CPU time of the child process (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``) and once
with wall-clock time. ``self-timed`` adds what each program measures itself: the reference's
"Training duration" (its training and validation loop only, ``16 * epochs * t_pres`` steps) and our
manifest's ``wall_time_s`` (``Experiment.run``: training and test, compilation included).
The medians are over the repeats; ``ours, warm cache`` is the median over the runs after the first
(leaving out any that compiled again, which happens when the package's source changes meanwhile).

Without ``--reference`` only ours is timed, and it is compared with the reference's throughput
recorded earlier (not measured by this script): 3.1 k steps/s on the current 2-core AMD EPYC
development machine, 9.1 k steps/s on an earlier 2-core Xeon.

Usage::

    python benchmarks/against_reference.py [--reference PATH] [--epochs 20] [--repeats 3]
        [--engine auto|eager|compiled] [--t-pres 100] [--reference-python PYTHON] [--no-reference-records]

``PATH`` is a checkout of unibe-cns/le_NeurIPS_code (the folder that contains
``fig3fig5_dendritic_microcircuits/``). The reference needs numpy, pyyaml, matplotlib and git; it is
run with this interpreter unless ``--reference-python`` names another one. On numpy >= 1.24 its
``np.save`` of ragged weight lists fails, so it is started through a small wrapper that retries such a
save as an object array; the reference's code itself runs unchanged. Run this alone: timings on a
machine shared with other jobs are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "circuits" / "bars_le.yaml"

TRAIN_PATTERNS = 8  # bars patterns per training epoch (both programs)
VALIDATION_PATTERNS = 8  # the reference's validation chunk per epoch (n_val_samples, n_vals_per_epoch = 1)
TEST_PATTERNS = 8  # ours: the test phase; the reference evaluates on train and test: 2 x 8
README_VALIDATE_EVERY = 100  # ours with --readme-command: the shipped spec validates on 8 patterns every 100 epochs

#: the reference's throughput measured earlier on the development machines, steps/s
RECORDED_REFERENCE: dict[str, float] = {
    "current 2-core AMD EPYC development machine": 3.1e3,
    "earlier 2-core Xeon": 9.1e3,
}

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")

#: the packages the reference imports: module -> package name
REFERENCE_MODULES: dict[str, str] = {"numpy": "numpy", "yaml": "pyyaml", "matplotlib": "matplotlib"}

#: started instead of run_bars.py: lets np.save store the ragged weight lists of the reference's
#: dump_weights as object arrays (numpy >= 1.24 refuses them), then runs the script unchanged
REFERENCE_WRAPPER = '''\
import os
import runpy
import sys

import numpy as np

_save = np.save


def _save_ragged(file, arr, *args, **kwargs):
    try:
        return _save(file, arr, *args, **kwargs)
    except ValueError:
        kwargs["allow_pickle"] = True
        return _save(file, np.array(arr, dtype=object), *args, **kwargs)


np.save = _save_ragged
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
'''


class BenchmarkError(RuntimeError):
    """A one-line reason why the benchmark cannot go on."""


@dataclass
class Measurement:
    """One whole child process."""

    program: str  # "reference" or "ours"
    index: int  # 1-based run number of this program
    steps: int
    cpu_s: float  # user + system CPU time of the child (and its children)
    wall_s: float
    self_s: float | None  # the program's own timing (see the module docstring)
    self_steps: int
    note: str = ""
    warm: bool = False  # ours after the first run, and the numba cache was only read

    @property
    def cpu_rate(self) -> float:
        return self.steps / self.cpu_s

    @property
    def wall_rate(self) -> float:
        return self.steps / self.wall_s

    @property
    def self_rate(self) -> float | None:
        return None if not self.self_s else self.self_steps / self.self_s


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with one thread everywhere and a non-interactive matplotlib."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = "1"
    env["MPLBACKEND"] = "Agg"
    env.update(extra or {})
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, float, float]:
    """Run ``cmd`` to completion with its output in ``log``: (exit status, CPU s, wall s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, cpu, wall


def last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate / 1e3:.2f} k"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


class Reference:
    """The reference program: checks, configuration and one timed run."""

    def __init__(self, checkout: Path, python: str, epochs: int, t_pres: int, records: bool, tmp: Path) -> None:
        self.src = checkout / "fig3fig5_dendritic_microcircuits" / "src"
        self.script = self.src / "run_bars.py"
        template = checkout / "fig3fig5_dendritic_microcircuits" / "experiment_configs" / f"bars_le_tpres_{t_pres}.yaml"
        if not self.script.is_file():
            raise BenchmarkError(f"--reference: no fig3fig5_dendritic_microcircuits/src/run_bars.py under {checkout}")
        if not template.is_file():
            raise BenchmarkError(f"the reference has no config {template.name} (--t-pres {t_pres})")
        self.python = python
        self.epochs = epochs
        self.t_pres = t_pres
        self.tmp = tmp
        self.check_requirements()
        self.config = self.write_config(template, records)
        self.wrapper = tmp / "reference_wrapper.py"
        self.wrapper.write_text(REFERENCE_WRAPPER)
        self.runs = 0

    def check_requirements(self) -> None:
        """Raise, naming what is missing, if the reference's interpreter cannot import its packages or no git."""
        probe = (
            "import importlib, sys\n"
            f"for m in {list(REFERENCE_MODULES)!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except Exception:\n        print(m)\n"
        )
        try:
            out = subprocess.run([self.python, "-c", probe], capture_output=True, text=True, check=True, timeout=300,
                                 env=child_env()).stdout.split()
        except (OSError, subprocess.SubprocessError) as err:
            raise BenchmarkError(f"cannot start the reference's interpreter {self.python}: {err}") from err
        if out:
            names = ", ".join(REFERENCE_MODULES[m] for m in out)
            raise BenchmarkError(f"the reference needs the Python package(s) {names}, not importable with "
                                 f"{self.python} (install them there or pass --reference-python)")
        if shutil.which("git") is None:
            raise BenchmarkError("the reference calls `git rev-parse HEAD` when it saves its config: git not found")

    def write_config(self, template: Path, records: bool) -> Path:
        """A copy of the reference's config with ``n_epochs`` (and optionally no recorded traces)."""
        network, training = yaml.safe_load(template.read_text())
        n_pattern = round(network["t_pattern"] / network["dt"])
        if n_pattern != self.t_pres:
            raise BenchmarkError(f"{template.name}: t_pattern / dt = {n_pattern} steps, not {self.t_pres}")
        if network["dims"] != [9, 30, 3] or not network["latent_eq"]:
            raise BenchmarkError(f"{template.name} is not the 9-30-3 LE microcircuit")
        if training["n_val_samples"] != VALIDATION_PATTERNS or training["n_vals_per_epoch"] != 1:
            raise BenchmarkError(f"{template.name}: unexpected validation settings, step count unknown")
        training["n_epochs"] = self.epochs
        if not records:
            training["recorded_quants"] = [[] for _ in training["recorded_quants"]]
        folder = self.tmp / "reference_config"
        folder.mkdir()
        config = folder / template.name  # run_bars.py names its result folder after the config file
        config.write_text(yaml.safe_dump([network, training], default_flow_style=False))
        return config

    @property
    def presentations(self) -> int:
        return self.epochs * (TRAIN_PATTERNS + VALIDATION_PATTERNS) + 2 * TEST_PATTERNS

    @property
    def steps(self) -> int:
        return self.presentations * self.t_pres

    @property
    def loop_steps(self) -> int:
        """Steps of its self-timed part: the training loop with its validation chunks."""
        return self.epochs * (TRAIN_PATTERNS + VALIDATION_PATTERNS) * self.t_pres

    def run(self) -> Measurement:
        self.runs += 1
        # the reference writes ../experiment_results/ relative to its working directory and reads
        # `git rev-parse HEAD`: give each run a fresh folder that is a git repository (not timed)
        work = self.tmp / f"reference_{self.runs}"
        cwd = work / "src"
        cwd.mkdir(parents=True)
        git = ["git", "-C", str(work), "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost",
               "-c", "commit.gpgsign=false"]
        env = child_env()
        for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            env.pop(var, None)
        subprocess.run(["git", "init", "-q", str(work)], check=True, env=env, capture_output=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "benchmark"], check=True, env=env,
                       capture_output=True)
        log = work / "output.txt"
        cmd = [self.python, str(self.wrapper), str(self.script), "train", str(self.config)]
        code, cpu, wall = timed(cmd, cwd, env, log)
        text = log.read_text(errors="replace")
        found = re.search(r"Training duration: ([0-9.eE+-]+) seconds", text)
        if code != 0 or found is None:
            raise BenchmarkError(f"reference run {self.runs} failed (exit {code}): {last_line(log)}")
        shutil.rmtree(work, ignore_errors=True)
        return Measurement("reference", self.runs, self.steps, cpu, wall, float(found.group(1)), self.loop_steps)


class Ours:
    """This package through its CLI: one timed run."""

    def __init__(self, python: str, epochs: int, t_pres: int, engine: str, tmp: Path,
                 readme_command: bool = False) -> None:
        self.epochs = epochs
        self.readme_command = readme_command
        self.t_pres = t_pres
        self.engine = engine
        self.tmp = tmp
        self.cache = tmp / "numba_cache"  # private and empty: the first run compiles
        self.prefix = self.cli(python)
        self.runs = 0

    def cli(self, python: str) -> list[str]:
        """``python -m microcircuit.cli``, or the console script next to the interpreter."""
        candidates = [[python, "-m", "microcircuit.cli"], [str(Path(python).parent / "microcircuit")]]
        for prefix in candidates:
            try:
                probe = subprocess.run([*prefix, "run", "--help"], capture_output=True, text=True, timeout=300,
                                       env=child_env(), check=False)
            except (OSError, subprocess.SubprocessError):
                continue
            if probe.returncode == 0 and "--engine" in probe.stdout:
                return prefix
        raise BenchmarkError(f"neither `{python} -m microcircuit.cli` nor a `microcircuit` script next to it works")

    @property
    def presentations(self) -> int:
        validations = self.epochs // README_VALIDATE_EVERY * TRAIN_PATTERNS if self.readme_command else 0
        return self.epochs * TRAIN_PATTERNS + validations + TEST_PATTERNS

    def arguments(self) -> list[str]:
        """What follows ``run circuits/bars_le.yaml`` (before ``--out``)."""
        sets = [f"protocol.0.epochs={self.epochs}", f"parameters.t_pres={self.t_pres}"]
        if self.readme_command:
            return [a for s in sets for a in ("--set", s)] + ["--threads", "1", "--engine", self.engine]
        sets[1:1] = ["protocol.0.validate_every=0", "record=[]"]
        return [a for s in sets for a in ("--set", s)] + ["-q", "--no-plot", "--threads", "1",
                                                           "--engine", self.engine]

    @property
    def steps(self) -> int:
        return self.presentations * self.t_pres

    def run(self) -> Measurement:
        self.runs += 1
        out = self.tmp / f"ours_{self.runs}"
        out.mkdir()
        cmd = [*self.prefix, "run", str(SPEC), *self.arguments(), "--out", str(out)]
        log = self.tmp / f"ours_{self.runs}.txt"
        env = child_env({"NUMBA_CACHE_DIR": str(self.cache)})
        cache_before = self.cache_state()
        code, cpu, wall = timed(cmd, out, env, log)
        recompiled = self.runs > 1 and self.cache_state() != cache_before
        manifests = sorted(out.glob("*/*/manifest.json"))
        if code != 0 or not manifests:
            raise BenchmarkError(f"our run {self.runs} failed (exit {code}): {last_line(log)}")
        manifest = json.loads(manifests[-1].read_text())
        engine = (manifest.get("engine") or {}).get("chosen", "?")
        note = f"engine {engine}, " + ("cold numba cache" if self.runs == 1 else "warm numba cache")
        if recompiled:
            note += " but it compiled again (source changed during the benchmark?): not in the warm median"
        shutil.rmtree(out, ignore_errors=True)
        return Measurement("ours", self.runs, self.steps, cpu, wall, manifest.get("wall_time_s"), self.steps, note,
                           warm=self.runs > 1 and not recompiled)

    def cache_state(self) -> dict[str, int]:
        """Name -> modification time of every file in the numba cache (it changes when numba compiles)."""
        if not self.cache.exists():
            return {}
        return {str(p.relative_to(self.cache)): p.stat().st_mtime_ns for p in self.cache.rglob("*") if p.is_file()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_runs(runs: list[Measurement]) -> None:
    print()
    print(f"{'run':<14}{'steps':>8}{'CPU s':>9}{'wall s':>9}{'self s':>9}"
          f"{'CPU steps/s':>13}{'wall steps/s':>14}{'self steps/s':>14}  note")
    for m in runs:
        self_s = "-" if m.self_s is None else f"{m.self_s:.2f}"
        print(f"{m.program + ' ' + str(m.index):<14}{m.steps:>8}{m.cpu_s:>9.2f}{m.wall_s:>9.2f}{self_s:>9}"
              f"{fmt_rate(m.cpu_rate):>13}{fmt_rate(m.wall_rate):>14}{fmt_rate(m.self_rate):>14}  {m.note}")


def summary_row(label: str, runs: list[Measurement]) -> dict[str, float | None] | None:
    if not runs:
        print(f"{label:<24}{'(no runs: needs --repeats >= 2 and an unchanged numba cache)':>44}")
        return None
    row = {"cpu": median([m.cpu_rate for m in runs]), "wall": median([m.wall_rate for m in runs]),
           "self": median([m.self_rate for m in runs])}
    print(f"{label:<24}{len(runs):>5}{runs[0].steps:>8}{fmt_rate(row['cpu']):>13}{fmt_rate(row['wall']):>14}"
          f"{fmt_rate(row['self']):>14}")
    return row


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.3g}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", type=Path, default=None,
                        help="checkout of unibe-cns/le_NeurIPS_code (contains fig3fig5_dendritic_microcircuits/); "
                             "without it only ours is timed and compared with the recorded reference figure")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of both programs (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each program, alternating (default 3)")
    parser.add_argument("--engine", choices=["auto", "eager", "compiled"], default="auto",
                        help="our engine, passed to `microcircuit run --engine` (default auto)")
    parser.add_argument("--t-pres", type=int, default=100,
                        help="steps of dt per pattern; the reference needs experiment_configs/bars_le_tpres_<T>.yaml "
                             "(default 100)")
    parser.add_argument("--reference-python", default=sys.executable,
                        help="interpreter for the reference (default: this one)")
    parser.add_argument("--readme-command", action="store_true",
                        help="time ours as the README's first command: with the spec's validation every 100 "
                             "epochs, its recordings and the three figures (default: without them)")
    parser.add_argument("--no-reference-records", action="store_true",
                        help="empty the reference config's recorded_quants (it records 3 traces by default; "
                             "ours records none)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1 or args.t_pres < 1:
        parser.error("--epochs, --repeats and --t-pres must be positive")

    print(f"bars 9-30-3 LE microcircuit, plasticity on, 1 seed, t_pres {args.t_pres} dt, {args.epochs} epochs, "
          f"{args.repeats} repeat(s); every process single-threaded")
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPU(s); Python {platform.python_version()}")
    runs: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="against_reference_") as tmp_name:
        tmp = Path(tmp_name)
        try:
            reference = None
            if args.reference is not None:
                reference = Reference(args.reference.resolve(), args.reference_python, args.epochs, args.t_pres,
                                      not args.no_reference_records, tmp)
            ours = Ours(sys.executable, args.epochs, args.t_pres, args.engine, tmp, args.readme_command)
            print()
            if reference is not None:
                print(f"reference steps: {args.epochs} epochs x ({TRAIN_PATTERNS} train + {VALIDATION_PATTERNS} "
                      f"validation) + {TEST_PATTERNS} + {TEST_PATTERNS} evaluation = {reference.presentations} "
                      f"presentations x {args.t_pres} = {reference.steps} steps "
                      f"({args.epochs * TRAIN_PATTERNS * args.t_pres} plastic); "
                      f"self-timed: training loop, {reference.loop_steps} steps")
                print(f"  run as: run_bars.py train <copy of bars_le_tpres_{args.t_pres}.yaml with n_epochs: "
                      f"{args.epochs}" + (", recorded_quants emptied" if args.no_reference_records else "")
                      + ">, through the np.save wrapper")
            validation = (f" + {args.epochs // README_VALIDATE_EVERY} x {TRAIN_PATTERNS} validation"
                          if args.readme_command else "")
            print(f"ours steps:      {args.epochs} epochs x {TRAIN_PATTERNS} train{validation} + {TEST_PATTERNS} "
                  f"test = {ours.presentations} presentations x {args.t_pres} = {ours.steps} steps "
                  f"({args.epochs * TRAIN_PATTERNS * args.t_pres} plastic); self-timed: Experiment.run, same steps")
            print(f"  run as: microcircuit run circuits/bars_le.yaml {' '.join(ours.arguments())} "
                  f"(fresh numba cache: run 1 compiles"
                  + ("; the spec's recordings and the three figures written" if args.readme_command else "")
                  + ")")
            for _ in range(args.repeats):
                for program in (reference, ours):
                    if program is None:
                        continue
                    m = program.run()
                    runs.append(m)
                    print(f"  {m.program} {m.index}: {m.cpu_s:.2f} s CPU, {m.wall_s:.2f} s wall, "
                          f"{fmt_rate(m.cpu_rate)} steps/s (CPU)", flush=True)
        except BenchmarkError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    print_runs(runs)
    print()
    print("medians over the runs; steps/s (k = 1000), CPU = user + system time of the child process, "
          "wall = elapsed; both over the whole process")
    print(f"{'program':<24}{'runs':>5}{'steps':>8}{'CPU steps/s':>13}{'wall steps/s':>14}{'self steps/s':>14}")
    ref_runs = [m for m in runs if m.program == "reference"]
    our_runs = [m for m in runs if m.program == "ours"]
    ref = summary_row("reference", ref_runs) if ref_runs else None
    mine = summary_row("ours, all runs", our_runs)
    summary_row("ours, cold (run 1)", our_runs[:1])
    warm = summary_row("ours, warm cache", [m for m in our_runs if m.warm])
    print()
    if ref is not None and mine is not None:
        print(f"ours / reference (CPU time, median): {ratio(mine['cpu'], ref['cpu'])}")
        print(f"ours / reference (wall time, median): {ratio(mine['wall'], ref['wall'])}")
        if warm is not None:
            print(f"ours / reference (CPU time, median, warm numba cache): {ratio(warm['cpu'], ref['cpu'])}")
            print(f"ours / reference (wall time, median, warm numba cache): {ratio(warm['wall'], ref['wall'])}")
        print(f"ours / reference (self-timed, median; different scopes, see the docstring): "
              f"{ratio(mine['self'], ref['self'])}")
        # the programs take different numbers of steps for the same training (the reference validates
        # after every epoch): the time each needs for the same epochs is the user's measure
        ref_s = statistics.median(m.cpu_s for m in ref_runs)
        for label, chosen in (("cold", our_runs[:1]), ("warm numba cache", [m for m in our_runs if m.warm])):
            if chosen:
                ours_s = statistics.median(m.cpu_s for m in chosen)
                print(f"time for the same {args.epochs} training epochs, reference / ours (CPU, median, {label}): "
                      f"{ref_s:.1f} s / {ours_s:.1f} s = {ref_s / ours_s:.1f}x")
    elif mine is not None:
        print("no --reference given: the reference was NOT measured here; the ratios below are against its "
              "throughput recorded earlier")
        for where, rate in RECORDED_REFERENCE.items():
            line = f"ours / reference (CPU time, median): {ratio(mine['cpu'], rate)}"
            if warm is not None:
                line += f"; warm numba cache: {ratio(warm['cpu'], rate)}"
            print(f"{line}   [recorded reference: {rate / 1e3:.1f} k steps/s on the {where}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
