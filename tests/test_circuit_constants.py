"""One home per derived quantity, checked on every shipped circuit so that a second definition that
drifted fails here.

- The soma's conductances: the total g_tot = g_l + sum_c g_c + sum of nudging g_som (+ the teacher's),
  the conductance without nudging and the dendritic attenuation c are sums of
  :class:`~microcircuit.model.cells.CellType`; the spec's physics checks, the circuit's derived
  constants and the engine's per-soma plans (the eager step and the compiled kernel's tables) give the
  same numbers.
- The defaults: :func:`microcircuit.spec.resolve.fill_defaults` applies them, once; the circuit and the
  engines read the values it set (a circuit refuses a spec without them).
"""

from __future__ import annotations

import pytest
import torch

from microcircuit.circuit import Circuit, tagged
from microcircuit.engine import Simulator
from microcircuit.spec import load_spec
from microcircuit.spec.prospective_checks import is_prospective
from microcircuit.spec.resolve import DEFAULT_TAU_M, load_chain, resolve
from microcircuit.spec.schema import PopulationDefaults, ProjectionDefaults
from microcircuit.spec.semantic import _Checker
from tests.conftest import CIRCUITS

ALL = sorted(CIRCUITS.glob("*.yaml"))
#: the shipped microcircuits (the cells of prospective networks have no conductances)
SHIPPED = [path for path in ALL if not is_prospective(load_spec(path)[0])]


def microcircuit(path):
    """(spec, semantic checker with its graph resolved, circuit, simulator) of a shipped microcircuit."""
    spec = load_spec(path)[0]
    circuit = Circuit(spec)
    data, smap = load_chain(path)
    resolve(data, smap)
    checker = _Checker(spec, smap, ())
    checker.run(physics=False)
    return spec, checker, circuit, Simulator(circuit, [0], dtype=torch.float64)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_spec_checks_circuit_and_engine_sum_the_same_conductances(path):
    spec, checker, circuit, sim = microcircuit(path)
    somas = {soma.name: soma for soma in sim.somas}
    assert set(somas) == {n for n, p in circuit.populations.items() if p.cell.has_soma}
    for name, soma in somas.items():
        for teacher, engine in ((False, soma.g_tot), (True, soma.g_tot_teacher)):
            g_tot = circuit.soma_conductance(name, teacher)
            assert checker.g_tot(name, teacher) == g_tot == engine, (name, teacher)
            assert circuit.tau_eff(name, teacher) == 1.0 / g_tot
        # the compiled kernel sums its tables in the same order: g_dendritic, each nudging g_som, the teacher's
        fused = soma.g_dendritic
        for _, g in soma.nudges:
            fused += g
        assert fused == soma.g_tot and fused + soma.teacher_g == soma.g_tot_teacher
        for dendrite in soma.dendrites:
            c = circuit.attenuation(name, dendrite.compartment)
            assert dendrite.attenuation == c
            assert dendrite.g == circuit.populations[name].conductances[circuit.populations[name].cell.dendrites[
                dendrite.compartment]]
    plan = sim.plastic_plan({q: 1.0 for q in circuit.learning_projections()})
    for plastic, _ in plan.plastic:
        assert plastic.attenuation == circuit.attenuation(plastic.target, plastic.predicted_from)


def test_the_one_sum_is_the_model_md_formula_on_bars():
    """g_tot of bars_le's areas by hand from the haider2021 conductances (1/ms)."""
    spec, checker, circuit, sim = microcircuit(CIRCUITS / "bars_le.yaml")
    g = {"g_l": 0.03, "g_b": 0.1, "g_a": 0.06, "g_d": 0.1, "g_som": 0.06}
    assert circuit.soma_conductance("pyr_1") == pytest.approx(g["g_l"] + g["g_b"] + g["g_a"], abs=1e-15)
    assert circuit.soma_conductance("int_1") == pytest.approx(g["g_l"] + g["g_d"] + g["g_som"], abs=1e-15)
    assert circuit.soma_conductance("out", teacher=False) == pytest.approx(g["g_l"] + g["g_b"], abs=1e-15)
    assert circuit.soma_conductance("out") == pytest.approx(g["g_l"] + g["g_b"] + g["g_som"], abs=1e-15)
    assert circuit.attenuation("pyr_1", "basal") == pytest.approx(g["g_b"] / (g["g_l"] + g["g_b"] + g["g_a"]))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_resolve_applies_every_default_and_the_circuit_and_engine_read_it(path):
    spec = load_spec(path)[0]
    circuit = Circuit(spec)
    for name, p in spec.populations.items():
        info = circuit.populations[name]
        for key in PopulationDefaults.model_fields:
            assert getattr(p, key) is not None, (name, key)
            assert getattr(info, key) == getattr(p, key), (name, key)
        if p.cell == "prospective":
            assert info.tau_m == p.tau_m == spec.parameters.get("tau_m", DEFAULT_TAU_M)
    for name, q in spec.projections.items():
        info = circuit.projections[name]
        if info.kind == "nudging":
            assert (q.rule, q.init, info.rule, info.tau_w, info.delay_steps) == (None, None, "fixed", 0.0, 0)
            continue
        for key, field in ProjectionDefaults.model_fields.items():
            assert field.default is None or getattr(q, key) is not None, (name, key)
        assert (info.rule, info.rule_params) == tagged(q.rule) and info.init is q.init
        assert (info.w_max, info.tau_w, info.tau_s, info.precision) == (q.w_max, q.tau_w, q.tau_s, q.precision)
        delay = q.delay if isinstance(q.delay, int) else q.delay.steps
        assert info.delay_steps == delay
    if not circuit.is_prospective:
        for soma in Simulator(circuit, [0], dtype=torch.float64).somas:
            p = spec.populations[soma.name]
            assert (soma.noise, soma.rate_noise) == ((p.noise,), (p.rate_noise,))  # one level per circuit
            assert soma.dynamics.name == tagged(p.dynamics)[0]


def test_a_circuit_refuses_a_spec_whose_defaults_were_not_applied():
    spec = load_spec(CIRCUITS / "bars_le.yaml")[0]
    populations = {**spec.populations, "pyr_1": spec.populations["pyr_1"].model_copy(update={"dynamics": None})}
    with pytest.raises(ValueError, match=r"defaults are not applied \(populations\.pyr_1\.dynamics unset\)"):
        Circuit(spec.model_copy(update={"populations": populations}))
