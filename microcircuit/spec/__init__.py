"""The spec layer: load, resolve and validate a circuit spec (torch-free).

Example::

    from microcircuit.spec import SpecError, load_spec

    try:
        spec, resolved, warnings = load_spec("circuits/bars_le.yaml", ["parameters.t_pres=10"])
    except SpecError as err:
        print(err)          # every problem, one per line: file:line:col: error: path: message

Pipeline: safe YAML with positions (:mod:`.loader`) -> ``extends`` chain, ``--set``
overrides, preset, ``$references``, defaults (:mod:`.resolve`, :mod:`.presets`) ->
structure and types with pydantic (:mod:`.structural`, :mod:`.schema`) -> meaning
(:mod:`.semantic`). Problems of every stage are collected and raised together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from microcircuit.spec.errors import Problem, SpecError, SpecWarning, format_problems, merge_problems
from microcircuit.spec.loader import SourceMap
from microcircuit.spec.resolve import load_chain, resolve
from microcircuit.spec.schema import SCHEMA_VERSION, Spec
from microcircuit.spec.semantic import check
from microcircuit.spec.structural import validate_structure

__all__ = [
    "SCHEMA_VERSION",
    "Problem",
    "Spec",
    "SpecError",
    "SpecWarning",
    "format_problems",
    "load_spec",
    "load_spec_text",
]


def load_spec(path: str | os.PathLike, overrides: Sequence[str] = ()
              ) -> tuple[Spec, dict[str, Any], list[Problem]]:
    """Load, resolve and validate the spec file at ``path``.

    Args:
        path: the YAML file; ``extends`` paths are relative to it.
        overrides: ``--set`` strings ``dotted.key=value`` applied after ``extends``.

    Returns:
        ``(spec, resolved, warnings)``: the validated :class:`Spec`, the resolved plain
        mapping (``extends`` merged, overrides, preset, references and defaults applied;
        suitable for ``yaml.safe_dump`` as ``config.resolved.yaml``) and the warnings.

    Raises:
        SpecError: listing every error found (and the warnings).
    """
    data, smap = load_chain(path)
    return _finish(data, smap, overrides)


def load_spec_text(text: str | bytes, filename: str = "<string>", overrides: Sequence[str] = ()
                   ) -> tuple[Spec, dict[str, Any], list[Problem]]:
    """Like :func:`load_spec` for spec text; ``filename`` names it in messages and anchors
    relative ``extends`` paths."""
    data, smap = load_chain(filename, text)
    return _finish(data, smap, overrides)


def _finish(data: dict[str, Any], smap: SourceMap, overrides: Sequence[str]
            ) -> tuple[Spec, dict[str, Any], list[Problem]]:
    findings = resolve(data, smap, overrides)
    problems = list(findings.problems)
    spec, structural, pruned = validate_structure(data, smap, findings.affected)
    problems += structural
    if spec is not None:
        problems += check(spec, smap, skip=pruned + findings.affected, physics=not problems)
    problems = merge_problems(problems)  # a default or parameter used in many places is reported once
    if any(p.is_error for p in problems):
        raise SpecError(problems)
    return spec, data, problems

