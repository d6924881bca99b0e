"""Spec errors in plain words, each at the place to fix: indentation, bad parameters, bad --set values,
a forward projection into a soma, nesting too deep. Torch-free."""

from __future__ import annotations

import re

import pytest

from microcircuit.spec import SpecError, load_spec_text
from tests.conftest import CIRCUITS

BARS = (CIRCUITS / "bars_le.yaml").read_text()


def errors(text: str, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "bars.yaml", list(overrides))
    return info.value


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_indentation_error_says_so_and_shows_the_line():
    text = BARS.replace("\n  pyr_1: ", "\n    pyr_1: ")
    err = errors(text)
    (problem,) = err.problems
    n = line_of(text, "    pyr_1: ")
    assert problem.line == n and problem.message.startswith(f"check the indentation of line {n}")
    shown = str(err).splitlines()
    assert shown[1].strip().startswith(f"{n} |") and "pyr_1: {cell: pyramidal" in shown[1]
    assert shown[2].strip().endswith("^")


def test_colon_in_a_value_suggests_quoting():
    err = errors(BARS.replace("name: bars_le", "name: bars: le"))
    assert "quote" in str(err) and "check the indentation of line" in str(err)


def test_bad_parameter_is_reported_where_it_is_defined_with_its_uses_as_notes():
    text = BARS.replace("  t_pres: 100 ", "  t_pres: 0 ")
    err = errors(text)
    (problem,) = err.errors
    assert (problem.path, problem.line) == ("parameters.t_pres", line_of(text, "  t_pres: 0 "))
    assert "greater than 0" in problem.message
    assert len(problem.notes) == 2  # the train and the test phase use $t_pres
    assert all(re.match(r"bars\.yaml:\d+:\d+: note: protocol\.[01]\.t_pres uses \$t_pres here", n)
               for n in problem.notes)


def test_bad_set_value_is_reported_against_the_command_line():
    err = errors(BARS, ("parameters.t_pres=0",))
    (problem,) = err.errors
    assert (problem.file, problem.line, problem.path) == ("<command line>", 1, "parameters.t_pres")
    assert "(--set parameters.t_pres=0)" in problem.message
    err = errors(BARS, ("seed=2", "protocol.0.epochs=-3"))
    (problem,) = err.errors
    assert (problem.file, problem.line, problem.path) == ("<command line>", 2, "protocol.0.epochs")
    assert "--set protocol.0.epochs=-3" in problem.message


def test_forward_projection_into_a_soma_gets_one_message():
    text = BARS.replace("target: out.basal,", "target: out.soma,")
    err = errors(text)
    (problem,) = err.problems
    assert problem.path == "projections.up_2.target"
    assert "'out.soma' is a soma" in problem.message and problem.hint == "did you mean target: out.basal?"


def test_deep_flow_nesting_is_located():
    text = "schema: microcircuit/1\nname: " + "[" * 3000 + "]" * 3000 + "\n"
    (problem,) = errors(text).problems
    assert "nested too deeply" in problem.message
    assert problem.line == 2 and problem.col > 60


def test_deep_block_nesting_is_located():
    lines = ["schema: microcircuit/1", "deep:"] + ["  " * i + "k:" for i in range(1, 3000)] + ["  " * 3000 + "x"]
    (problem,) = errors("\n".join(lines) + "\n").problems
    assert "nested too deeply" in problem.message and problem.line > 2
