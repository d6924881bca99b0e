"""Conventions at run and phase boundaries (model.md sec. 9): the package's and the reference program's.

The package and the original Latent Equilibrium microcircuit program (numpy, Haider et al. 2021)
integrate the same equations; they differ only in what happens where a run or a phase begins or the
teacher switches. Each difference is one key of the spec's ``conventions`` (``Conventions`` in
:mod:`microcircuit.spec.schema`); ``conventions: reference_code`` sets all of them the reference's way.
"""

from __future__ import annotations

from dataclasses import dataclass

from microcircuit.spec.schema import Conventions, Phase, Spec

#: the reference program's output lag ``out_lag`` (ms) by presentation time (steps of dt = 0.1 ms), for
#: an orig output (its configs of the Fig. 3 sweep); LE outputs use 0
REFERENCE_OUT_LAG_MS: dict[int, float] = {3: 0.0, 5: 0.2, 10: 0.5, 20: 1.0, 50: 2.0, 100: 5.0, 200: 15.0,
                                          500: 40.0, 1000: 80.0, 2000: 80.0, 5000: 80.0}

PACKAGE = {"initial_target": "first", "teacher_switch": "boundary", "teacher_off_relaxation": "dendritic",
           "teacher_delay": "depth", "average_from": 0.0, "reset_state": False}
REFERENCE_CODE = {"initial_target": "zero", "teacher_switch": "delayed", "teacher_off_relaxation": "with_teacher",
                  "teacher_delay": "one_step", "average_from": "reference_lag", "reset_state": True}


@dataclass(frozen=True)
class ResolvedConventions:
    """Every convention with its value (see :class:`~microcircuit.spec.schema.Conventions`)."""

    initial_target: str
    teacher_switch: str
    teacher_off_relaxation: str
    teacher_delay: str
    average_from: float | str
    reset_state: bool

    @property
    def is_package(self) -> bool:
        return all(getattr(self, k) == v for k, v in PACKAGE.items())


def resolve_conventions(spec: Spec) -> ResolvedConventions:
    """The spec's conventions: its base's values, overridden by the keys it sets."""
    given = spec.conventions
    if isinstance(given, str):
        given = Conventions(base=given)
    values = dict(REFERENCE_CODE if given.base == "reference_code" else PACKAGE)
    values.update({k: v for k, v in given.model_dump(exclude={"base"}).items() if v is not None})
    return ResolvedConventions(**values)


def reference_lag_ms(t_pres: int) -> float:
    """The reference's output lag for an orig output at ``t_pres`` steps: its table's value for the
    largest tabulated presentation time not above ``t_pres`` (0 below 3 steps)."""
    known = [t for t in sorted(REFERENCE_OUT_LAG_MS) if t <= t_pres]
    return REFERENCE_OUT_LAG_MS[known[-1]] if known else 0.0


def average_from_steps(spec: Spec, phase: Phase, output_is_le: bool) -> int:
    """Steps into each presentation of ``phase`` after which the output is averaged."""
    value = phase.average_from if phase.average_from is not None else resolve_conventions(spec).average_from
    if value == "reference_lag":
        value = 0.0 if output_is_le else reference_lag_ms(phase.t_pres)
    return int(round(float(value) / spec.dt))


def resets_state(spec: Spec, phase: Phase) -> bool:
    """Whether ``phase`` starts from neurons at rest."""
    return phase.reset_state if phase.reset_state is not None else resolve_conventions(spec).reset_state


__all__ = ["REFERENCE_OUT_LAG_MS", "ResolvedConventions", "average_from_steps", "reference_lag_ms",
           "resets_state", "resolve_conventions"]
