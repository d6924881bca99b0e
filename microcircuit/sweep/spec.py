"""Sweep files (``schema: microcircuit-sweep/1``): reading, validating with located errors, expanding into runs.

A sweep file names a base circuit spec (relative to the sweep file), ``--set``-style overrides of it,
axes over any key of the circuit spec, the seeds of every run and the metrics to collect::

    schema: microcircuit-sweep/1
    name: tpres_bars
    circuit: ../bars_le.yaml                 # relative to this file
    set:                                     # applied to the base circuit first, like --set
      protocol.0.validate_every: 0
    axes:                                    # the runs are the product of the axes
      variant:
        key: defaults.population.dynamics
        values: {LE: latent_equilibrium, orig: orig}    # label: value (or a plain list)
      t_pres:
        key: parameters.t_pres               # one key, or a list of keys set to the same value
        log: {start: 3, stop: 5000, num: 11, integer: true}   # or linear: {...}, or values: [...]
      lr:                                    # zipped: the members move together
        zip:
          eta_up_1: {key: projections.up_1.rule.dendritic_prediction.eta, values: [5.0, 10.0]}
          eta_up_2: {key: projections.up_2.rule.dendritic_prediction.eta, values: [1.0, 2.0]}
    seeds: 10                                # or {count: 10, first: 1}; first defaults to the circuit's seed
    metrics: [test/accuracy, test/loss]      # phase/metric at the phase's last epoch -> results.csv
    curves: [train/accuracy]                 # phase/metric at every epoch -> curves.csv (optional)
    device: cpu
    batch: {max_circuits: 64, memory_mb: 1024}
    save_weights: false                      # final weights of every run (weights.pt)
    divergence: run                          # or circuit: a diverging run's other circuits are run alone

Derived values are expressed with the circuit spec's own means, never with expressions: an axis over
``parameters.X`` reaches every key that references ``$X``, and ``eta_scale: inverse_t_pres`` in a phase
scales its learning rates by 1/t_pres. Every problem is reported compiler style (``file:line:col``) by the
circuit spec's machinery (:mod:`microcircuit.spec.errors`, :mod:`microcircuit.spec.loader`); a problem of an
expanded circuit that an axis value or a ``set`` entry causes is reported at that value in the sweep file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from microcircuit.spec import load_spec
from microcircuit.spec.errors import Problem, SpecError, did_you_mean, listing
from microcircuit.spec.loader import Mark, SourceMap, load_yaml, load_yaml_file
from microcircuit.spec.resolve import COMMAND_LINE
from microcircuit.spec.schema import Spec

SCHEMA = "microcircuit-sweep/1"
TOP_LEVEL = ("schema", "name", "description", "circuit", "set", "axes", "seeds", "metrics", "curves", "device",
             "batch", "save_weights", "divergence")
#: run-level metrics (phase ``run``) every run reports per circuit (tau_r errors: with LE populations)
RUN_METRICS = ("diverged", "tau_r_error_initial", "tau_r_error")
DIVERGENCE = ("run", "circuit")
#: column names of the result tables; an axis may not take them
RESERVED = ("run", "seed", "metric", "value", "epoch", "status", "phase")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_/]*")
DEFAULT_MAX_CIRCUITS = 64
DEFAULT_MEMORY_MB = 1024.0


@dataclass(frozen=True)
class Leaf:
    """One column of the sweep: the circuit keys it sets and its values (``labels`` name them in the tables).

    ``marks`` locate each value in the sweep file (or on the command line)."""

    name: str
    keys: tuple[str, ...]
    values: tuple[Any, ...]
    labels: tuple[Any, ...]
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class Axis:
    """A top-level axis: one leaf, or several zipped leaves of the same length."""

    name: str
    leaves: tuple[Leaf, ...]

    def __len__(self) -> int:
        return len(self.leaves[0].values)


@dataclass(frozen=True)
class Override:
    """A ``--set`` string for the base circuit and where it is written."""

    text: str
    mark: Mark


@dataclass(frozen=True)
class RunDef:
    """One point of the sweep before validation: its axis values (column -> label) and overrides."""

    index: int
    axes: dict[str, Any]
    overrides: tuple[Override, ...]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or "the base circuit"


@dataclass
class SweepFile:
    """A validated sweep file. ``base`` is the circuit spec path, ``file`` the name used in messages."""

    file: str
    path: FsPath | None
    name: str
    description: str
    base: FsPath
    sets: list[Override]
    axes: list[Axis]
    seed_count: int
    seed_first: int | None
    metrics: list[str]
    curves: list[str]
    device: str
    max_circuits: int
    memory_mb: float
    save_weights: bool
    cli_sets: list[Override] = field(default_factory=list)
    divergence: str = "run"
    #: the columns of runs built in code (:func:`microcircuit.sweep.runner.plan_runs`), which have no axes
    column_names: list[str] | None = None

    @property
    def columns(self) -> list[str]:
        """The axis columns of the result tables, in order."""
        if self.column_names is not None:
            return list(self.column_names)
        return [leaf.name for axis in self.axes for leaf in axis.leaves]

    def run_defs(self) -> list[RunDef]:
        """Every point of the sweep: the product of the axes (zipped leaves together), in file order."""
        runs = []
        for index, combo in enumerate(itertools.product(*[range(len(a)) for a in self.axes])):
            values: dict[str, Any] = {}
            overrides = list(self.sets) + list(self.cli_sets)  # the command line wins over the file
            for axis, k in zip(self.axes, combo, strict=True):
                for leaf in axis.leaves:
                    values[leaf.name] = leaf.labels[k]
                    overrides += [Override(f"{key}={_flow(leaf.values[k])}", leaf.marks[k]) for key in leaf.keys]
            runs.append(RunDef(index, values, tuple(overrides)))
        return runs


@dataclass
class Run:
    """An expanded, validated run: its circuit spec, the resolved mapping and its seeds."""

    index: int
    axes: dict[str, Any]
    spec: Spec
    resolved: dict[str, Any]
    seeds: list[int]
    overrides: list[str]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or "the base circuit"


def _flow(value: Any) -> str:
    """A value as YAML flow text for ``--set`` (JSON is YAML)."""
    return json.dumps(value)


# ---------------------------------------------------------------------- reading
def load_sweep(path: str | FsPath, sets: Sequence[str] = (), axes: Sequence[str] = (),
               seeds: int | None = None) -> SweepFile:
    """Read and validate a sweep file; apply the command line's ``--set``, ``--axis`` and ``--seeds``.

    Raises:
        SpecError: every problem found, located in the sweep file (``file:line:col``) or at
            ``<command line>:n`` for the n-th ``--set`` / ``--axis``.
    """
    file = str(path)
    data, positions = load_yaml_file(path, file)
    smap = SourceMap(file, positions)
    problems: list[Problem] = []
    sweep = _read(FsPath(path), file, data, smap, problems)
    if sweep is not None:
        sweep.cli_sets = [Override(text, Mark(COMMAND_LINE, n + 1, 1)) for n, text in enumerate(sets)]
        for n, text in enumerate(axes):
            _apply_axis_option(sweep, text, len(sets) + n + 1, problems)
        if seeds is not None:
            if seeds < 1:
                problems.append(Problem(COMMAND_LINE, 0, 0, "seeds", f"--seeds must be at least 1, got {seeds}"))
            sweep.seed_count = seeds
    if problems:
        raise SpecError(problems)
    return sweep


def _read(path: FsPath, file: str, data: dict, smap: SourceMap, problems: list[Problem]) -> SweepFile | None:
    def error(where: tuple, message: str, hint: str = "") -> None:
        problems.append(smap.problem(where, message, hint))

    for key in data:
        if key not in TOP_LEVEL:
            error((key,), f"unknown key '{key}' in a sweep file (valid: {listing(TOP_LEVEL)})",
                  did_you_mean(key, TOP_LEVEL))
    for key in ("schema", "name", "circuit", "metrics"):
        if key not in data:
            error((), f"missing key '{key}'", "see circuits/sweeps/tpres_bars.yaml for an example")
    if data.get("schema", SCHEMA) != SCHEMA:
        error(("schema",), f"unknown schema {data['schema']!r}; a sweep file has schema: {SCHEMA}",
              "circuit specs (microcircuit/1) are run with `microcircuit run`" if data["schema"] == "microcircuit/1"
              else "")
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        error(("name",), f"name must be letters, digits, '_', '.' or '-' (it names the sweep directory), got {name!r}")
        name = "sweep"
    description = data.get("description", "")
    if not isinstance(description, str):
        error(("description",), "description must be text")
    base = None
    circuit = data.get("circuit")
    if circuit is not None:
        if not isinstance(circuit, str) or not circuit:
            error(("circuit",), f"circuit must be the path of a circuit spec file, got {circuit!r}")
        else:
            base = FsPath(os.path.normpath(path.parent / circuit))
            if not base.is_file():
                error(("circuit",), f"cannot read '{circuit}': no such file", "the path is relative to the sweep file")
                base = None
    sets = []
    raw_sets = data.get("set", {})
    if not isinstance(raw_sets, dict):
        error(("set",), "set must be a mapping of circuit keys to values, e.g. {protocol.0.epochs: 10}")
    else:
        for key, value in raw_sets.items():
            sets.append(Override(f"{key}={_flow(value)}", smap.locate(("set", key))[1]))
    axes: list[Axis] = []
    raw_axes = data.get("axes", {})
    if not isinstance(raw_axes, dict):
        error(("axes",), "axes must be a mapping of axis names to axes")
        raw_axes = {}
    seen: set[str] = set()
    for axis_name, raw in raw_axes.items():
        if isinstance(raw, dict) and "zip" in raw:
            extra = [k for k in raw if k != "zip"]
            for k in extra:
                error(("axes", axis_name, k), f"a zipped axis has only 'zip' (got '{k}')")
            members = raw["zip"]
            if not isinstance(members, dict) or not members:
                error(("axes", axis_name, "zip"), "zip must map member names to axes ({key: ..., values: [...]})")
                continue
            leaves = [_leaf(member, spec, ("axes", axis_name, "zip", member), smap, error)
                      for member, spec in members.items()]
            leaves = [leaf for leaf in leaves if leaf is not None]
            if len(leaves) == len(members):
                lengths = {leaf.name: len(leaf.values) for leaf in leaves}
                if len(set(lengths.values())) > 1:
                    error(("axes", axis_name, "zip"), "zipped members must have the same number of values (have: "
                          + ", ".join(f"{k} {v}" for k, v in lengths.items()) + ")")
                    continue
                axes.append(Axis(axis_name, tuple(leaves)))
        else:
            leaf = _leaf(axis_name, raw, ("axes", axis_name), smap, error)
            if leaf is not None:
                axes.append(Axis(axis_name, (leaf,)))
    for axis in axes:
        combos = [json.dumps([leaf.values[k] for leaf in axis.leaves], sort_keys=True) for k in range(len(axis))]
        if len(set(combos)) < len(combos):
            where = ("axes", axis.name) + (("zip",) if len(axis.leaves) > 1 else ())
            error(where, f"axis '{axis.name}' lists a value twice (each run is one point)")
        for leaf in axis.leaves:
            if leaf.name in seen:
                error(("axes",), f"axis name '{leaf.name}' is used twice")
            seen.add(leaf.name)
    seed_count, seed_first = 1, None
    raw_seeds = data.get("seeds", 1)
    if isinstance(raw_seeds, dict):
        for k in raw_seeds:
            if k not in ("count", "first"):
                error(("seeds", k), f"unknown key '{k}' in seeds (valid: count, first)",
                      did_you_mean(k, ["count", "first"]))
        seed_count = raw_seeds.get("count", 1)
        seed_first = raw_seeds.get("first")
        if seed_first is not None and (not _is_int(seed_first) or seed_first < 0):
            error(("seeds", "first"), f"seeds.first must be an integer >= 0, got {seed_first!r}")
        where: tuple = ("seeds", "count")
    else:
        seed_count, where = raw_seeds, ("seeds",)
    if not _is_int(seed_count) or seed_count < 1:
        error(where, f"seeds must be a positive integer (the circuits of every run), got {seed_count!r}",
              "e.g. seeds: 10 or seeds: {count: 10, first: 1}")
        seed_count = 1
    metrics = _metric_list(data, "metrics", smap, error, required=True)
    curves = _metric_list(data, "curves", smap, error, required=False)
    device = data.get("device", "cpu")
    if not isinstance(device, str):
        error(("device",), f"device must be text (cpu, cuda, cuda:N, auto), got {device!r}")
    batch = data.get("batch", {})
    max_circuits, memory_mb = DEFAULT_MAX_CIRCUITS, DEFAULT_MEMORY_MB
    if not isinstance(batch, dict):
        error(("batch",), "batch must be a mapping {max_circuits: N, memory_mb: M}")
    else:
        for k in batch:
            if k not in ("max_circuits", "memory_mb"):
                error(("batch", k), f"unknown key '{k}' in batch (valid: max_circuits, memory_mb)",
                      did_you_mean(k, ["max_circuits", "memory_mb"]))
        max_circuits = batch.get("max_circuits", max_circuits)
        if not _is_int(max_circuits) or max_circuits < 1:
            error(("batch", "max_circuits"), f"max_circuits must be a positive integer, got {max_circuits!r}")
        memory_mb = batch.get("memory_mb", memory_mb)
        if not isinstance(memory_mb, (int, float)) or isinstance(memory_mb, bool) or not memory_mb > 0:
            error(("batch", "memory_mb"), f"memory_mb must be a positive number, got {memory_mb!r}")
    save_weights = data.get("save_weights", False)
    if not isinstance(save_weights, bool):
        error(("save_weights",), f"save_weights must be true or false, got {save_weights!r}")
    divergence = data.get("divergence", "run")
    if divergence not in DIVERGENCE:
        error(("divergence",), f"divergence must be one of {listing(DIVERGENCE)}, got {divergence!r}",
              did_you_mean(divergence, DIVERGENCE))
        divergence = "run"
    if base is None:
        return None
    sweep = SweepFile(file, path, name, description if isinstance(description, str) else "", base, sets, axes,
                      int(seed_count), seed_first, metrics, curves, device if isinstance(device, str) else "cpu",
                      int(max_circuits) if _is_int(max_circuits) else DEFAULT_MAX_CIRCUITS,
                      float(memory_mb) if isinstance(memory_mb, (int, float)) else DEFAULT_MEMORY_MB,
                      bool(save_weights), divergence=divergence)
    _check_metrics(sweep, smap, problems)
    return sweep


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _metric_list(data: dict, key: str, smap: SourceMap, error, required: bool) -> list[str]:
    raw = data.get(key, [] if not required else None)
    if raw is None:
        return []
    if not isinstance(raw, list) or (required and not raw):
        error((key,), f"{key} must be a list of phase/metric names, e.g. [test/accuracy, test/loss]")
        return []
    out = []
    for k, item in enumerate(raw):
        if not isinstance(item, str) or not _METRIC.fullmatch(item):
            error((key, k), f"'{item}' is not phase/metric (e.g. test/accuracy, train/loss, "
                  "test/apical_norm/pyr_1)")
        else:
            out.append(item)
    return out


def _check_metrics(sweep: SweepFile, smap: SourceMap, problems: list[Problem]) -> None:
    """Phases must exist in the base circuit's protocol; metrics must be ones a run reports."""
    try:
        spec = load_spec(sweep.base, [o.text for o in sweep.sets])[0]
    except SpecError:
        return  # reported with the expanded runs
    phases = [p.phase for p in spec.protocol] + ["validate", "run"]
    pyramidal = [n for n, p in spec.populations.items() if p.cell == "pyramidal"]
    known = ["loss", "accuracy"] + [f"apical_norm/{n}" for n in pyramidal] + [
        f"weight_distance/{n}" for n in spec.projections] + [
        f"{kind}_{what}_bp/{n}" for kind in ("angle", "cos") for what in ("apical", "error") for n in
        [*pyramidal, *(n for n, p in spec.populations.items() if p.cell == "output_pyramidal")]] + [
        f"{kind}_{what}/{n}" for kind in ("angle", "cos") for what in ("dW_bp", "Wdown_WupT") for n in spec.projections]
    for key, names in (("metrics", sweep.metrics), ("curves", sweep.curves)):
        raw = key
        for k, item in enumerate(names):
            phase, _, metric = item.partition("/")
            if phase == "run":
                if metric not in RUN_METRICS:
                    problems.append(smap.problem((raw, k), f"unknown run metric '{metric}' (every run reports: "
                                                 f"{listing(RUN_METRICS)})", did_you_mean(metric, RUN_METRICS)))
            elif phase not in phases:
                problems.append(smap.problem((raw, k), f"unknown phase '{phase}' (the circuit's protocol: "
                                             f"{listing(phases)})", did_you_mean(phase, phases)))
            elif metric not in known:
                problems.append(smap.problem((raw, k), f"unknown metric '{metric}' (a run reports: "
                                             f"{listing(known)})", did_you_mean(metric, known)))


def _leaf(name: str, raw: Any, where: tuple, smap: SourceMap, error) -> Leaf | None:
    """One axis (or zip member) ``{key, values | linear | log}``."""
    if not _NAME.fullmatch(str(name)) or name in RESERVED:
        error(where, f"axis name '{name}' must be an identifier other than {listing(RESERVED)} (it is a column)")
        return None
    if not isinstance(raw, dict):
        error(where, "an axis is a mapping {key: circuit.key, values: [...]} (or linear:, log:, zip:)")
        return None
    forms = [k for k in ("values", "linear", "log") if k in raw]
    for k in raw:
        if k not in ("key", "values", "linear", "log"):
            error(where + (k,), f"unknown key '{k}' in axis '{name}' (valid: key, values, linear, log, zip)",
                  did_you_mean(k, ["key", "values", "linear", "log", "zip"]))
    keys = raw.get("key")
    if keys is None:
        error(where, f"axis '{name}' has no 'key' (the circuit key it sets, e.g. parameters.t_pres)")
        return None
    keys = [keys] if isinstance(keys, str) else keys
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        error(where + ("key",), "key must be a dotted circuit key or a list of them")
        return None
    if len(forms) != 1:
        error(where, f"axis '{name}' needs exactly one of values, linear, log (has: {listing(forms)})")
        return None
    form = forms[0]
    here = where + (form,)
    if form == "values":
        raw_values = raw["values"]
        if isinstance(raw_values, dict) and raw_values:
            labels = list(raw_values)
            values = list(raw_values.values())
            marks = [smap.locate(here + (k,))[1] for k in labels]
        elif isinstance(raw_values, list) and raw_values:
            values = labels = list(raw_values)
            marks = [smap.locate(here + (k,))[1] for k in range(len(values))]
        else:
            error(here, "values must be a non-empty list, or a mapping of labels to values")
            return None
        return Leaf(name, tuple(keys), tuple(values), tuple(labels), tuple(marks))
    spec = raw[form]
    if not isinstance(spec, dict):
        error(here, f"{form} must be a mapping {{start: a, stop: b, num: n, integer: false}}")
        return None
    for k in spec:
        if k not in ("start", "stop", "num", "integer"):
            error(here + (k,), f"unknown key '{k}' in {form} (valid: start, stop, num, integer)",
                  did_you_mean(k, ["start", "stop", "num", "integer"]))
            return None
    start, stop, num, integer = spec.get("start"), spec.get("stop"), spec.get("num"), spec.get("integer", False)
    ok = True
    for k, v in (("start", start), ("stop", stop)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            error(here + ((k,) if k in spec else ()), f"{form}.{k} must be a finite number, got {v!r}")
            ok = False
        elif form == "log" and v <= 0:
            error(here + (k,), f"log.{k} must be positive, got {v!r}")
            ok = False
    if not _is_int(num) or num < 1:
        error(here + (("num",) if "num" in spec else ()), f"{form}.num must be a positive integer, got {num!r}")
        ok = False
    if not isinstance(integer, bool):
        error(here + ("integer",), f"{form}.integer must be true or false, got {integer!r}")
        ok = False
    if not ok:
        return None
    if num == 1:
        points = [float(start)]
    elif form == "linear":
        points = [start + (stop - start) * i / (num - 1) for i in range(num)]
    else:
        points = [math.exp(math.log(start) + (math.log(stop) - math.log(start)) * i / (num - 1)) for i in range(num)]
    values = [int(round(v)) for v in points] if integer else [float(f"{v:.12g}") for v in points]
    values = list(dict.fromkeys(values))  # rounding to integers may merge neighbours
    mark = smap.locate(here)[1]
    return Leaf(name, tuple(keys), tuple(values), tuple(values), tuple(mark for _ in values))


def _apply_axis_option(sweep: SweepFile, text: str, line: int, problems: list[Problem]) -> None:
    """``--axis NAME=v1,v2``: replace the values of axis (or zip member) NAME; for a labelled axis, the
    values are labels. A zipped member keeps its length."""
    where = Mark(COMMAND_LINE, line, 1)

    def fail(message: str, hint: str = "") -> None:
        problems.append(Problem(where.file, where.line, where.col, "axis", message, hint))

    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        fail(f"--axis {text!r}: expected NAME=v1,v2,...")
        return
    for a, axis in enumerate(sweep.axes):
        for m, leaf in enumerate(axis.leaves):
            if leaf.name != name:
                continue
            try:
                given = [load_yaml(item.strip(), COMMAND_LINE, scalar_ok=True, line=line)[0]
                         for item in rest.split(",")]
            except SpecError as err:
                problems.extend(err.problems)
                return
            if leaf.labels != leaf.values:  # labelled: pick labels
                lookup = dict(zip(leaf.labels, leaf.values, strict=True))
                unknown = [g for g in given if g not in lookup]
                if unknown:
                    fail(f"axis '{name}' has no label {unknown[0]!r} (labels: {listing(map(str, leaf.labels))})",
                         did_you_mean(unknown[0], [str(x) for x in leaf.labels]))
                    return
                new = replace(leaf, values=tuple(lookup[g] for g in given), labels=tuple(given),
                              marks=tuple(where for _ in given))
            else:
                new = replace(leaf, values=tuple(given), labels=tuple(given), marks=tuple(where for _ in given))
            if len(axis.leaves) > 1 and len(given) != len(leaf.values):
                fail(f"axis '{name}' is zipped with {listing(x.name for x in axis.leaves if x.name != name)}: "
                     f"give {len(leaf.values)} values, got {len(given)}")
                return
            leaves = list(axis.leaves)
            leaves[m] = new
            sweep.axes[a] = Axis(axis.name, tuple(leaves))
            return
    names = sweep.columns
    fail(f"no axis '{name}' (axes: {listing(names)})", did_you_mean(name, names))


# ---------------------------------------------------------------------- expanding
def expand(sweep: SweepFile) -> list[Run]:
    """Validate every run's circuit (all of them, before anything runs) and return them.

    Raises:
        SpecError: every problem of every run; one that an axis value or ``set`` entry causes is
            located there, and each names the run (its axis values) it occurred in.
    """
    runs: list[Run] = []
    found: dict[str, tuple[Problem, list[str]]] = {}
    for definition in sweep.run_defs():
        texts = [o.text for o in definition.overrides]
        try:
            spec, resolved, _warnings = load_spec(sweep.base, texts)
        except SpecError as err:
            for problem in err.problems:
                if not problem.is_error:
                    continue
                if problem.file == COMMAND_LINE and 1 <= problem.line <= len(definition.overrides):
                    mark = definition.overrides[problem.line - 1].mark
                    problem = replace(problem, file=mark.file, line=mark.line, col=mark.col)
                key = str(problem)
                found.setdefault(key, (problem, []))[1].append(definition.label())
            continue
        first = sweep.seed_first if sweep.seed_first is not None else spec.seed
        runs.append(Run(definition.index, definition.axes, spec, resolved,
                        list(range(first, first + sweep.seed_count)), texts))
    if found:
        problems = []
        for problem, labels in found.values():
            more = f" and {len(labels) - 1} more run(s)" if len(labels) > 1 else ""
            problems.append(replace(problem, message=f"{problem.message} (in run {labels[0]}{more})"))
        raise SpecError(problems)
    return runs


__all__ = ["DIVERGENCE", "RUN_METRICS", "SCHEMA", "Axis", "Leaf", "Run", "RunDef", "SweepFile", "expand",
           "load_sweep"]
