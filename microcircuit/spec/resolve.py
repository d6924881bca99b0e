"""Resolution of a raw spec mapping into the mapping that is validated and saved.

In order:

1. ``extends: other.yaml`` (:func:`load_chain`): the child deep-merges over its parent
   (mappings merge recursively; lists and scalars replace), chains allowed, cycles an error.
2. ``--set dotted.key=value`` overrides (:func:`apply_overrides`).
3. the ``preset`` (:func:`microcircuit.spec.presets.apply_preset`).
4. ``$name`` references to ``parameters`` (:func:`resolve_references`); never expressions.
5. defaults for populations and projections (:func:`fill_defaults`): the one place where
   defaults are applied; the semantic checks, the circuit and the engines read the values it set.

Each step keeps the :class:`~microcircuit.spec.loader.SourceMap` up to date, so that a
problem is reported in the file (or ``<command line>``) and line that defines the key.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

import yaml

from microcircuit.model.cells import CELL_TYPES
from microcircuit.spec.data_files import anchor_files
from microcircuit.spec.errors import Problem, SpecError, did_you_mean, listing
from microcircuit.spec.loader import (
    COMMAND_LINE,
    Mark,
    Path,
    SourceMap,
    dotted,
    is_under,
    load_yaml,
    load_yaml_file,
)
from microcircuit.spec.presets import PRESETS, apply_preset
from microcircuit.spec.schema import PopulationDefaults, ProjectionDefaults, Spec
from microcircuit.spec.structural import child_type, describe_value, is_choice, is_container, key_names

REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
#: Keys whose string values are free text, never references.
FREE_TEXT = {("description",)}


@dataclass
class Findings:
    """Problems found while resolving, and the spec paths they make unreliable.

    Later passes stay quiet about ``affected`` paths: an error there is a consequence.
    """

    problems: list[Problem] = field(default_factory=list)
    affected: list[Path] = field(default_factory=list)

    def add(self, problem: Problem, path: Path | None) -> None:
        self.problems.append(problem)
        if path is not None:
            self.affected.append(path)


def resolve(data: dict[str, Any], smap: SourceMap, overrides: Sequence[str] = ()) -> Findings:
    """Apply steps 2-5 to ``data`` in place; return everything found (all of it, not the first)."""
    findings = Findings()
    apply_overrides(data, smap, overrides, findings)
    for problem in apply_preset(data, smap):
        findings.add(problem, ("preset",))
    resolve_references(data, smap, findings)
    fill_defaults(data, smap, findings)
    anchor_files(data, smap)
    return findings


# ---------------------------------------------------------------- 1. extends
def load_chain(file: str | os.PathLike, text: str | bytes | None = None) -> tuple[dict, SourceMap]:
    """Load a spec file (or ``text`` named ``file``) with its ``extends`` chain merged in.

    Raises:
        SpecError: for unreadable or invalid YAML anywhere in the chain, or an
            ``extends`` cycle (naming the files).
    """
    name = str(file)
    data, positions = _load_extended(name, FsPath(file), text, [(FsPath(file).resolve(), name)])
    return data, SourceMap(name, positions)


def _load_extended(name: str, fs_path: FsPath, text: str | bytes | None,
                   stack: list[tuple[FsPath, str]]) -> tuple[dict, dict[Path, Mark]]:
    data, positions = load_yaml(text, name) if text is not None else load_yaml_file(fs_path, name)
    if "extends" not in data:
        return data, positions
    parent = data.pop("extends")
    where = positions.pop(("extends",))

    def fail(message: str, hint: str = "") -> SpecError:
        return SpecError([Problem(where.file, where.line, where.col, "extends", message, hint)])

    if not isinstance(parent, str) or not parent:
        raise fail(f"expected the name of a spec file, got {describe_value(parent)}")
    parent_path = fs_path.parent / parent
    parent_name = os.path.normpath(os.path.join(os.path.dirname(name), parent))
    if any(parent_path.resolve() == seen for seen, _ in stack):
        chain = " -> ".join([shown for _, shown in stack] + [parent_name])
        raise fail(f"extends cycle: {chain}", "a spec may not extend itself, directly or indirectly")
    if not parent_path.is_file():
        raise fail(f"cannot read '{parent_name}': no such file",
                   "the path is relative to this file (an absolute path is allowed)")
    if not _looks_like_a_mapping(parent_path):
        # reported here, at the referring line, without showing the other file's content
        raise fail(f"'{parent_name}' is not a spec: its top level is not a mapping (key: value lines)",
                   "extends names another circuit spec file")
    base, base_positions = _load_extended(parent_name, parent_path, None,
                                          stack + [(parent_path.resolve(), parent_name)])
    replaced: list[Path] = []
    merged = deep_merge(base, data, (), replaced)
    kept = {p: m for p, m in base_positions.items()
            if not any(is_under(p, r) and p != r for r in replaced)}
    kept.update(positions)
    return merged, kept


def _looks_like_a_mapping(path: FsPath) -> bool:
    """Whether the YAML document in ``path`` is a mapping (read, not constructed); unreadable or
    malformed files count as mappings here so that the loader reports them in their own words."""
    try:
        with open(path, "rb") as handle:
            for event in yaml.parse(handle, Loader=yaml.SafeLoader):
                if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent,
                                      yaml.AliasEvent)):
                    return isinstance(event, yaml.MappingStartEvent)
    except (OSError, yaml.YAMLError, ValueError):
        return True
    return True  # an empty document: the loader says so


def deep_merge(base: Any, over: Any, path: Path = (), replaced: list[Path] | None = None,
               tp: Any = Spec) -> Any:
    """``over`` merged onto ``base``: mappings recursively, anything else replaces.

    A tagged choice (``rule``, ``init``, ``dynamics``, ``task``) is replaced, not merged,
    when ``over`` picks a different tag: ``{apical_silencing: ...}`` over
    ``{dendritic_prediction: ...}`` means the new rule, not both. ``replaced`` collects
    the paths where ``over`` replaced a value of ``base`` whole.
    """
    both_mappings = isinstance(base, dict) and isinstance(over, dict)
    if both_mappings and not (is_choice(tp) and base.keys().isdisjoint(over)):
        out = dict(base)
        for key, value in over.items():
            if key in base:
                out[key] = deep_merge(base[key], value, path + (key,), replaced, child_type(tp, key))
            else:
                out[key] = value
        return out
    if replaced is not None:
        replaced.append(path)
    return over


# ---------------------------------------------------------------- 2. --set overrides
def apply_overrides(data: dict[str, Any], smap: SourceMap, overrides: Sequence[str],
                    findings: Findings) -> None:
    """Apply ``--set dotted.key=value`` strings in order (the n-th is at ``<command line>:n``).

    The value is parsed as a YAML scalar or flow collection by the same safe loader.
    Numeric segments index lists (``protocol.0.epochs=5``). A key must exist in the
    spec, or be a field the schema allows there, or lie in a free-form mapping
    (``parameters``, ``conductances``, a phase's ``eta``); populations and projections
    cannot be created.
    """
    smap.command_line = list(overrides)
    for index, item in enumerate(overrides):
        for problem in _apply_override(data, smap, index + 1, item):
            findings.add(problem, None)  # the key did not change the spec


def _apply_override(data: dict, smap: SourceMap, line: int, item: str) -> list[Problem]:
    def problem(path: Path, message: str, hint: str = "") -> list[Problem]:
        return [Problem(COMMAND_LINE, line, 1, dotted(path), message, hint)]

    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        return problem((), f"--set {item!r}: expected dotted.key=value", "e.g. --set parameters.g_a=0.08")
    segments = key.split(".")
    if "" in segments:
        return problem((), f"--set {item!r}: empty segment in key '{key}'")
    if segments[0] == "extends":
        return problem(("extends",), "extends cannot be set on the command line", "give that file instead")
    if text.strip() == "":
        value, value_positions = "", {}
    else:
        try:
            value, value_positions = load_yaml(text, COMMAND_LINE, scalar_ok=True, line=line,
                                               col=len(key) + 2)
        except SpecError as exc:
            return [replace(p, path=".".join(filter(None, (key, p.path)))) for p in exc.problems]

    container: Any = data
    tp: Any = Spec
    path: Path = ()
    for n, segment in enumerate(segments):
        step: str | int = segment
        if isinstance(container, list):
            if not segment.isdigit():
                return problem(path + (segment,),
                               f"'{dotted(path)}' is a list: expected an index 0..{len(container) - 1}")
            step = int(segment)
            if step >= len(container):
                return problem(path + (step,),
                               f"index {step} out of range ('{dotted(path)}' has {len(container)} items)")
        elif isinstance(container, dict):
            if segment not in container and not _may_add(path, tp, segment):
                valid = list(container) + [k for k in key_names(tp) if k not in container]
                where = f"'{dotted(path)}'" if path else "the spec"
                return problem(path + (segment,), f"no key '{segment}' in {where} (has: {listing(valid)})",
                               did_you_mean(segment, valid))
        else:
            return problem(path + (segment,),
                           f"'{dotted(path)}' is {describe_value(container)}, not a mapping or list",
                           f"set it whole, e.g. --set '{dotted(path)}={{...}}'")
        inner = child_type(tp, step) if tp is not None else None
        if n == len(segments) - 1:
            container[step] = value
            here = path + (step,)
            positions = {here + sub: mark for sub, mark in value_positions.items()}
            positions[here] = Mark(COMMAND_LINE, line, 1)
            smap.replace_subtree(here, positions)
            return []
        if isinstance(container, dict) and step not in container:
            if not is_container(inner):
                return problem(path + (step,), f"'{dotted(path + (step,))}' takes a value, not keys")
            container[step] = {}
        container, tp, path = container[step], inner, path + (step,)
    return []  # pragma: no cover - the loop always returns


def _may_add(path: Path, tp: Any, key: str) -> bool:
    """May ``--set`` create ``key`` in the mapping at ``path`` (of schema type ``tp``)?"""
    if path == ("parameters",) or key in key_names(tp):
        return True
    value_type = child_type(tp, key)
    return value_type is not None and not key_names(tp) and not is_container(value_type)


# ---------------------------------------------------------------- 4. $references
def resolve_references(data: dict[str, Any], smap: SourceMap, findings: Findings) -> None:
    """Replace every string value ``$name`` by ``parameters[name]`` (in place).

    Parameters themselves may not reference. A string starting with ``$`` that is not a
    plain name (``$g_l*2``) is an error: expressions are never evaluated.
    """
    parameters = data.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    invalid = set()
    for name, value in parameters.items():
        if isinstance(value, str) and value.startswith("$"):
            invalid.add(name)
            findings.add(smap.problem(("parameters", name),
                                      f"parameters may not reference other parameters ({value!r})",
                                      "write the value"), ("parameters", name))

    def visit(node: Any, path: Path) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            here = path + (key,)
            if here == ("parameters",) or here in FREE_TEXT:
                continue
            if isinstance(value, (dict, list)):
                visit(value, here)
            elif isinstance(value, str) and value.startswith("$"):
                match = REFERENCE.fullmatch(value)
                if match is None:
                    message = f"{value!r} is not a reference: expressions are not evaluated"
                    findings.add(smap.problem(here, message, "put the value in parameters and write '$name'"),
                                 here)
                elif match.group(1) not in parameters:
                    name = match.group(1)
                    close = difflib.get_close_matches(name, list(parameters), n=1)
                    hint = f"did you mean '${close[0]}'?" if close else f"add {name} to parameters"
                    message = f"undefined reference '{value}' (parameters: {listing(parameters)})"
                    findings.add(smap.problem(here, message, hint), here)
                else:
                    node[key] = copy.deepcopy(parameters[match.group(1)])
                    smap.references[here] = ("parameters", match.group(1))
                    if match.group(1) in invalid:
                        findings.affected.append(here)

    visit(data, ())


# ---------------------------------------------------------------- 5. defaults
_POPULATION_DEFAULTS = PopulationDefaults().model_dump(mode="json", by_alias=True)
_PROJECTION_DEFAULTS = ProjectionDefaults().model_dump(mode="json", by_alias=True)
#: membrane time constant of a prospective cell when neither the population nor ``parameters`` set one, ms
DEFAULT_TAU_M = 10.0


def fill_defaults(data: dict[str, Any], smap: SourceMap, findings: Findings) -> None:
    """Fill missing (or ``null``) population and projection settings in place.

    - each population's ``dynamics``, ``activation``, ``noise``, ``rate_noise``, ``tau_0``, ``bias``
      from ``defaults.population`` (else the schema defaults of PopulationDefaults);
    - each population's missing conductances (per its cell type) from ``parameters``;
      one set in neither place is an error;
    - each prospective population's ``tau_m`` from ``parameters.tau_m``, else :data:`DEFAULT_TAU_M`;
    - each weighted projection's ``rule``, ``init``, ``w_max``, ``tau_w``, ``tau_s``, ``delay``,
      ``precision`` from ``defaults.projection`` (else ProjectionDefaults; ``w_max`` and ``precision``
      stay unset without one). Somatic nudging projections (target ``pop.soma``) get none of these.

    Copied values remember where they came from, so a bad default is reported once, at
    the line that writes it.
    """
    defaults = _mapping(data.get("defaults"))
    parameters = _mapping(data.get("parameters"))
    for name, population in _mapping(data.get("populations")).items():
        if not isinstance(population, dict):
            continue
        path = ("populations", name)
        _fill(population, path, _mapping(defaults.get("population")), ("defaults", "population"),
              _POPULATION_DEFAULTS, smap)
        _fill_conductances(population, path, parameters, smap, findings)
        if population.get("cell") == "prospective" and population.get("tau_m") is None:
            _fill(population, path, parameters, ("parameters",), {"tau_m": DEFAULT_TAU_M}, smap)
    for name, projection in _mapping(data.get("projections")).items():
        if not isinstance(projection, dict) or _is_nudging(projection):
            continue
        _fill(projection, ("projections", name), _mapping(defaults.get("projection")),
              ("defaults", "projection"), _PROJECTION_DEFAULTS, smap)


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _is_nudging(projection: dict) -> bool:
    target = projection.get("target")
    return isinstance(target, str) and target.count(".") == 1 and target.endswith(".soma")


def _fill(entry: dict, path: Path, given: dict, given_path: Path, schema_defaults: dict,
          smap: SourceMap) -> None:
    for key, fallback in schema_defaults.items():
        if entry.get(key) is not None:
            continue
        if key in given:
            entry[key] = copy.deepcopy(given[key])
            smap.origins[path + (key,)] = given_path + (key,)
        elif fallback is not None:
            entry[key] = copy.deepcopy(fallback)


def _fill_conductances(population: dict, path: Path, parameters: dict, smap: SourceMap,
                       findings: Findings) -> None:
    cell = population.get("cell")
    if not isinstance(cell, str) or cell not in CELL_TYPES:
        return  # the semantic pass reports the unknown cell type
    needed = CELL_TYPES.get(cell).conductance_names()
    if not needed:
        return
    conductances = population.setdefault("conductances", {})
    if not isinstance(conductances, dict):
        return  # the structural pass reports the wrong type
    for name in needed:
        if name in conductances:
            continue
        if name in parameters:
            conductances[name] = copy.deepcopy(parameters[name])
            smap.origins[path + ("conductances", name)] = ("parameters", name)
        else:
            findings.add(smap.problem(
                path, f"conductance '{name}' of cell type '{cell}' is set neither in "
                      f"{dotted(path)}.conductances nor in parameters",
                f"add parameters.{name} or a preset ({listing(PRESETS)})"), path + ("conductances",))
