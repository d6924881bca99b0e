"""Tests of the spec layer: loading, resolution, validation and error reporting.

Invalid fixtures live in tests/spec/invalid/: each starts with ``# expect: <regex>`` (the
message that must appear), may give ``# set: key=value`` lines (``--set`` overrides), and
marks the offending line with a trailing ``# <-`` comment; the error must be reported on
that line of that file. Most fixtures extend tests/spec/base.yaml and change one thing.

The spec layer is torch-free: nothing here imports torch.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from microcircuit.spec import (
    Problem,
    Spec,
    SpecError,
    SpecWarning,
    format_problems,
    load_spec,
    load_spec_text,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(__file__).resolve().parent / "spec"
BASE = SPEC_DIR / "base.yaml"
FIXTURES = sorted((SPEC_DIR / "invalid").glob("*.yaml"))
CIRCUITS = sorted((ROOT / "circuits").glob("*.yaml"))


def header(fixture: Path) -> tuple[str, list[str], int | None]:
    """(expected regex, --set overrides, 1-based line marked '# <-' or None) of a fixture."""
    lines = fixture.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{fixture.name} must start with '# expect: <regex>'"
    overrides = [line.removeprefix("# set: ") for line in lines if line.startswith("# set: ")]
    marked = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# <-")]
    return lines[0].removeprefix("# expect: "), overrides, (marked[0] if marked else None)


def errors_of(text: str, overrides: tuple[str, ...] = (), filename: str = "t.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, filename, list(overrides))
    return info.value


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


# ---------------------------------------------------------------- invalid fixtures
def test_there_is_a_fixture_per_kind_of_mistake():
    names = {f.stem for f in FIXTURES}
    required = {"typo_top_level", "typo_nested", "wrong_type", "yaml11_boolean", "duplicate_key",
                "dangling_ref", "unknown_population", "interneuron_size", "apicl", "unknown_cell_type",
                "unknown_activation", "dt_unstable", "extends_cycle_a", "extends_cycle_b", "not_a_mapping",
                "empty", "bad_set_key"}
    assert required <= names, f"missing fixtures: {sorted(required - names)}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_invalid_fixture(fixture: Path):
    expect, overrides, marked_line = header(fixture)
    with pytest.raises(SpecError) as info:
        load_spec(fixture, overrides)
    message = str(info.value)
    assert re.search(expect, message), f"expected /{expect}/ in:\n{message}"
    assert "Traceback" not in message
    if marked_line is not None:
        located = [(Path(p.file).name, p.line) for p in info.value.errors]
        assert (fixture.name, marked_line) in located, f"no error on {fixture.name}:{marked_line}:\n{message}"


# ---------------------------------------------------------------- valid specs
def test_base_fixture_is_valid():
    spec, resolved, warnings = load_spec(BASE)
    assert isinstance(spec, Spec) and warnings == []
    assert "extends" not in resolved


@pytest.mark.parametrize("circuit", CIRCUITS, ids=[c.stem for c in CIRCUITS])
def test_shipped_circuits_validate(circuit: Path):
    spec, _, _ = load_spec(circuit)
    assert spec.name


def test_bars_le_resolves_preset_refs_and_defaults():
    spec, resolved, warnings = load_spec(ROOT / "circuits" / "bars_le.yaml")
    assert warnings == []
    assert spec.dt == 0.1  # from the haider2021 preset
    assert spec.populations["pyr_1"].conductances == {"g_l": 0.03, "g_b": 0.1, "g_a": 0.06}
    assert spec.populations["int_1"].conductances == {"g_l": 0.03, "g_d": 0.1}
    assert spec.projections["nudge_1"].conductance == 0.06  # $g_som
    assert spec.projections["nudge_1"].rule is None and spec.projections["nudge_1"].init is None
    assert spec.projections["down_1"].init.uniform == 1.0  # defaults.projection
    assert spec.protocol[0].t_pres == spec.protocol[1].t_pres == 100  # $t_pres
    assert resolved["parameters"]["g_som"] == 0.06


def test_set_parameter_flows_through_references():
    spec, resolved, _ = load_spec(ROOT / "circuits" / "bars_le.yaml", ["parameters.t_pres=10"])
    assert [phase.t_pres for phase in spec.protocol] == [10, 10]
    assert resolved["parameters"]["t_pres"] == 10


def test_set_indexes_lists_and_parses_flow_values():
    overrides = ["protocol.0.epochs=3", "protocol.0.plastic=[up_1, ip_1]", "projections.up_1.w_max=2.5",
                 "parameters.new_key=1.0e-3", "dtype=float64"]
    spec, _, _ = load_spec(BASE, overrides)
    assert spec.protocol[0].epochs == 3
    assert spec.protocol[0].plastic == ["up_1", "ip_1"]
    assert spec.projections["up_1"].w_max == 2.5
    assert spec.parameters["new_key"] == 1e-3
    assert spec.dtype == "float64"


def test_set_errors_point_at_the_command_line():
    err = errors_of(BASE.read_text(), ("dt=0.05", "projections.up_1.rulee=fixed", "populations.new.size=3"))
    assert [(p.file, p.line) for p in err.errors] == [("<command line>", 2), ("<command line>", 3)]
    assert "did you mean 'rule'?" in str(err)
    err = errors_of(BASE.read_text(), ("projections.up_1.rule.dendritic_prediction.eta=yes",))
    (problem,) = err.errors
    assert (problem.file, problem.line, problem.col) == ("<command line>", 1, 48)
    assert problem.path == "projections.up_1.rule.dendritic_prediction.eta"


def test_set_error_in_value_is_located_after_the_key():
    err = errors_of(BASE.read_text(), ("projections.up_1.rule={dendritic_prediction: {eta: 1, etta: 2}}",))
    (problem,) = err.errors
    assert problem.file == "<command line>"
    assert problem.col == len("projections.up_1.rule={dendritic_prediction: {eta: 1, ") + 1
    assert problem.path == "projections.up_1.rule.dendritic_prediction.etta"


def test_preset_is_overridden_by_explicit_parameters_and_dt():
    text = BASE.read_text().replace("  t_pres: 20\n", "  t_pres: 20\n  g_som: 0.03\n") + "dt: 0.05\n"
    spec, resolved, _ = load_spec_text(text, str(SPEC_DIR / "t.yaml"))
    assert spec.parameters["g_som"] == 0.03 and spec.parameters["g_l"] == 0.03  # explicit and preset
    assert spec.projections["nudge_1"].conductance == 0.03
    assert spec.dt == 0.05
    spec, _, _ = load_spec(BASE, ["preset=sacramento2018", "dt=0.01"])
    assert spec.populations["pyr_1"].conductances == {"g_l": 0.1, "g_b": 1.0, "g_a": 0.8}


def test_explicit_conductances_win_over_parameters():
    spec, _, _ = load_spec(BASE, ["populations.pyr_1.conductances.g_a=0.2"])
    assert spec.populations["pyr_1"].conductances == {"g_a": 0.2, "g_l": 0.03, "g_b": 0.1}


# ---------------------------------------------------------------- extends
def test_extends_merges_and_reports_the_child_file(tmp_path: Path):
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {BASE}\nname: child\nprojections:\n  up_1: {{w_max: 3.0}}\n"
                     "  up_2: {rule: {apical_silencing: {eta: 0.1}}}\n")
    spec, resolved, _ = load_spec(child)
    assert spec.name == "child"
    assert spec.projections["up_1"].w_max == 3.0 and spec.projections["up_1"].source == "x"  # merged
    assert resolved["projections"]["up_2"]["rule"] == {"apical_silencing": {"eta": 0.1}}  # a new tag replaces

    child.write_text(f"extends: {BASE}\nname: child\nprojections:\n  pi_1: {{target: pyr_1.apicl}}\n")
    err = errors_of(child.read_text(), filename=str(child))
    (problem,) = err.errors
    assert (problem.file, problem.line) == (str(child), 4)

    child.write_text(f"extends: {BASE}\nname: child\n")  # an error in the parent, found through the child
    err = errors_of(child.read_text(), ("populations.pyr_1.cell=pyramdal",), filename=str(child))
    (problem,) = err.errors
    assert problem.file == "<command line>"


def test_extends_chain_reports_the_defining_file(tmp_path: Path):
    middle = tmp_path / "middle.yaml"
    middle.write_text(f"extends: {BASE}\nrecord:\n  - {{var: out.soma.uu}}\n")
    leaf = tmp_path / "leaf.yaml"
    leaf.write_text("extends: middle.yaml\nname: leaf\n")
    with pytest.raises(SpecError) as info:
        load_spec(leaf)
    (problem,) = info.value.errors
    assert (Path(problem.file).name, problem.line, problem.path) == ("middle.yaml", 3, "record.0.var")


# ---------------------------------------------------------------- positions and messages
def test_line_and_column_of_the_offending_key():
    text = BASE.read_text().replace("size: 3}", "size: 3, noise: -1}")
    err = errors_of(text)
    (problem,) = err.errors
    assert problem.line == line_of(text, "noise: -1")
    assert problem.col == text.splitlines()[problem.line - 1].index("noise") + 1
    assert problem.path == "populations.pyr_1.noise"


def test_list_items_are_located_by_index():
    text = BASE.read_text().replace("plastic: none, t_pres: $t_pres}", "plastic: none, t_pres: 0}")
    err = errors_of(text)
    (problem,) = err.errors
    assert problem.path == "protocol.1.t_pres" and problem.line == line_of(text, "t_pres: 0}")


def test_a_bad_default_is_reported_once_where_it_is_written():
    text = BASE.read_text().replace("{init: {uniform: 1.0}}", "{init: {uniform: -1.0}}")
    err = errors_of(text)
    assert len(err.errors) == 1
    assert err.errors[0].path == "defaults.projection.init.uniform"
    assert err.errors[0].line == line_of(text, "projection: {init")


def test_multiple_errors_are_reported_at_once():
    text = (BASE.read_text()
            .replace("size: 3}", "size: 3, sise: 4}")                      # structural: unknown key
            .replace("cell: interneuron, size: 2", "cell: interneuron, size: 5")  # semantic: size
            .replace("target: pyr_1.apical,   init", "target: pyr_1.apicl,   init")  # semantic: compartment
            .replace("conductance: $g_som}\n\ntask", "conductance: $g_sm}\n\ntask"))  # reference
    err = errors_of(text)
    paths = {p.path for p in err.errors}
    assert paths == {"populations.pyr_1.sise", "populations.int_1.size", "projections.pi_1.target",
                     "projections.nudge_1.conductance"}, str(err)
    assert len(str(err).splitlines()) == 4


def test_problem_format_and_warnings():
    problem = Problem("c.yaml", 26, 28, "projections.pi_1.target", "compartment 'apicl' not on cell type "
                      "'pyramidal' (has: soma, basal, apical)", "did you mean 'apical'?")
    assert str(problem) == ("c.yaml:26:28: error: projections.pi_1.target: compartment 'apicl' not on cell "
                            "type 'pyramidal' (has: soma, basal, apical); did you mean 'apical'?")
    warning = SpecWarning("c.yaml", 3, 1, "dt", "large")
    assert str(warning) == "c.yaml:3:1: warning: dt: large"
    assert format_problems([warning, problem]).splitlines()[0].startswith("c.yaml:26:28: error")


def test_physically_questionable_values_are_warnings():
    _, _, warnings = load_spec(BASE, ["dt=1.0", "protocol.0.eta_scale=1.0", "protocol.0.eta.up_2=20.0",
                                      "protocol.0.eta.up_1=20.0"])
    text = format_problems(warnings)
    assert all(w.severity == "warning" for w in warnings)
    assert re.search(r"<command line>:1:1: warning: dt: dt = 1 ms > 0\.1 \* tau_eff = 5\.263 ms", text), text
    # the output's own error feeds back with c * lambda = 0.769 * 0.316 (teacher nudging): gain 4.86
    assert re.search(r"warning: protocol\.0\.eta\.up_2: dt \* eta \* eta_scale = 1 \* 20 \* 1 = 20, times "
                     r"c \* lambda = 0\.243 \(c = 0\.769, lambda = 0\.316 of 'out'\) = 4\.86 > 1", text), text
    # a hidden area has no nudging: its error phi(u) - phi(c v_B) does not depend on its own W_up
    assert "up_1" not in text


def test_nudging_counts_towards_tau_eff():
    # interneuron: g_l + g_d + g_som = 0.03 + 0.1 + 1.0; tau_eff = 0.885 ms < dt = 1.0
    err = errors_of(BASE.read_text(), ("dt=1.0", "projections.nudge_1.conductance=1.0"))
    assert re.search(r"dt = 1 ms >= tau_eff = 0\.885 ms of 'int_1' \(1/\(0\.03 \+ 0\.1 \+ 1\)\)", str(err))


# ---------------------------------------------------------------- loader robustness
@pytest.mark.parametrize("content, pattern", [
    (b"name: a\x00b\n", r"t\.yaml:1:8: error: binary file"),
    ("name: caf\xe9\n".encode("latin-1"), r"t\.yaml:1:10: error: not UTF-8 text"),
    ("name: a\x07b\n", r"t\.yaml:1:8: error: unacceptable character U\+0007"),
    ("name: !!python/object:os.system x\n", r"t\.yaml:1:7: error: name: unsupported YAML tag '!!python/"),
    ("a: &x {b: 1}\nc:\n  <<: *x\n", r"t\.yaml:3:3: error: c: merge keys \('<<'\) are not supported"),
    ("a: [1, 2\n", r"t\.yaml:2:1: error: invalid YAML"),
    ("on: 1\n", r"t\.yaml:1:1: error: on: key 'on' is a YAML 1\.1 boolean"),
    ("just a string\n", r"t\.yaml:1:1: error: a spec must be a mapping \(key: value\), got a single value"),
])
def test_loader_rejects_unsafe_or_malformed_input(content, pattern):
    err = errors_of(content)
    assert re.search(pattern, str(err)), str(err)


def test_missing_file_is_a_spec_error(tmp_path: Path):
    with pytest.raises(SpecError, match=r"nope\.yaml: error: cannot read spec"):
        load_spec(tmp_path / "nope.yaml")


def test_yaml12_numbers_and_quoted_booleans():
    text = BASE.read_text().replace("  t_pres: 20\n", "  t_pres: 20\n  small: 1e-3\n  word: 'yes'\n")
    spec, _, _ = load_spec_text(text, str(SPEC_DIR / "t.yaml"))
    assert spec.parameters["small"] == 1e-3 and spec.parameters["word"] == "yes"


# ---------------------------------------------------------------- resolved output
def test_resolved_dict_round_trips(tmp_path: Path):
    for circuit in [BASE, ROOT / "circuits" / "bars_le.yaml"]:
        spec, resolved, _ = load_spec(circuit, ["parameters.t_pres=10"])
        dumped = yaml.safe_dump(resolved, sort_keys=False)
        again, resolved_again, _ = load_spec_text(dumped, str(tmp_path / "config.resolved.yaml"))
        assert again == spec
        assert resolved_again == resolved
        assert "$" not in dumped


# ---------------------------------------------------------------- layering
def test_importing_the_spec_layer_does_not_import_torch():
    code = "import sys, microcircuit.spec; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


