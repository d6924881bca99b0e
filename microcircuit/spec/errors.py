"""Problems found in a spec, and the exception that carries them.

Every problem is printed compiler style, one per line, so that editors and CI can
jump to it::

    circuits/x.yaml:26:28: error: projections.pi_1.target: compartment 'apicl' not on cell type
    'pyramidal' (has: soma, basal, apical); did you mean 'apical'?

Errors make a spec unusable; warnings (:class:`SpecWarning`) flag physically
questionable but legal values and are printed the same way with ``warning:``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem in a spec.

    Attributes:
        file: the file that defines the offending key (``<command line>`` for ``--set``).
        line: 1-based line of the offending key (0 if unknown).
        col: 1-based column of the offending key (0 if unknown).
        path: dotted path of the key, e.g. ``projections.pi_1.target`` (list items by index).
        message: what is wrong, naming the operands, the expected and the actual.
        hint: an optional suggestion, e.g. ``did you mean 'apical'?``.
        severity: ``error`` or ``warning``.
        notes: further places, each printed on its own ``file:line:col: note: ...`` line (e.g. the
            places that use a bad value of ``parameters``).
    """

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        what = f"{self.path}: {self.message}" if self.path else self.message
        hint = f"; {self.hint}" if self.hint else ""
        return "\n".join([f"{where}: {self.severity}: {what}{hint}", *self.notes])

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class SpecWarning(Problem):
    """A physically questionable but legal value (e.g. a large dt or learning rate)."""

    severity: Severity = "warning"


def merge_problems(problems: Iterable[Problem]) -> list[Problem]:
    """The problems with duplicates merged: one problem per place and message, its notes joined (a bad
    parameter used in three places is one error with three notes), in first-seen order."""
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (type(p), p.file, p.line, p.col, p.path, p.message, p.hint, p.severity)
        seen = merged.get(key)
        if seen is None:
            merged[key] = p
        elif p.notes:
            notes = seen.notes + tuple(n for n in p.notes if n not in seen.notes)
            merged[key] = type(p)(p.file, p.line, p.col, p.path, p.message, p.hint, p.severity, notes)
    return list(merged.values())


def format_problems(problems: Iterable[Problem]) -> str:
    """All problems, one per line (and one per note), errors first, each group in file/line order."""
    ordered = sorted(merge_problems(problems), key=lambda p: (not p.is_error, p.file, p.line, p.col))
    return "\n".join(str(p) for p in ordered)


class SpecError(Exception):
    """A spec that cannot be used; ``problems`` lists every error (and any warnings) found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = merge_problems(problems)
        super().__init__(format_problems(self.problems))

    def __str__(self) -> str:
        return format_problems(self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]


def did_you_mean(name: object, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest candidate to ``name``, or ``""``."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def listing(names: Iterable[str]) -> str:
    """``a, b, c`` (or ``none``) for messages such as ``(has: soma, basal)``."""
    names = list(names)
    return ", ".join(names) if names else "none"
