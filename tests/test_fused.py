"""The compiled engine (microcircuit.fused) against the eager reference path, and the state that both share.

Tolerances: float64 runs agree to 1e-12 relative (the kernel sums in another order and evaluates
soft_relu by its own series, both exact to ~1e-15 per operation; over a few thousand steps of a
contracting dynamics the differences stay far below 1e-12). float32 runs agree to 1e-5 relative on
every state tensor (float32 rounding, ~6e-8 per operation, accumulated over the run with plasticity).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from microcircuit.analysis.specs import microcircuit_spec
from microcircuit.circuit import Circuit
from microcircuit.engine import PhasePlan, Probe, Simulator, State
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.fused import _softplus, choose_engine, unsupported_features
from microcircuit.spec import load_spec, load_spec_text
from tests.conftest import CIRCUITS, build

F64 = torch.float64
#: relative tolerance by dtype (see the module docstring)
RTOL = {"float64": 1e-12, "float32": 1e-5}


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / max(float(a.abs().max()), 1e-30))


def assert_states_match(a: State, b: State, rtol: float) -> None:
    fa, fb = a.tensors(), b.tensors()
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if name == "clock":
            assert int(fa[name]) == int(fb[name])
            continue
        assert fa[name].shape == fb[name].shape, name
        assert relative_difference(fa[name], fb[name]) <= rtol, (name, relative_difference(fa[name], fb[name]))


def run_both(spec, n_seeds: int = 2, dtype: str = "float64"):
    """The same spec on both engines; returns the two experiments after their runs."""
    runs = []
    for engine in ("eager", "compiled"):
        experiment = Experiment(spec, RunOptions(n_seeds=n_seeds, dtype=dtype, engine=engine, progress=False))
        assert experiment.sim.engine == engine, experiment.sim.engine_reason
        experiment.run()
        runs.append(experiment)
    return runs


def assert_runs_match(eager: Experiment, compiled: Experiment, rtol: float) -> None:
    assert eager.result.status == compiled.result.status == "done"
    assert len(eager.result.rows) == len(compiled.result.rows)
    for a, b in zip(eager.result.rows, compiled.result.rows, strict=True):
        assert a[:4] == b[:4]
        assert abs(a[4] - b[4]) <= rtol * max(abs(a[4]), 1.0) * 10, (a, b)  # metrics are sums of many terms
    assert_states_match(eager.sim.state, compiled.sim.state, rtol)


FAST = ("parameters.t_pres=20", "protocol.0.epochs=3", "protocol.0.validate_every=1")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["bars_le", "bars_orig", "teacher_le"])
def test_compiled_equals_eager_on_shipped_circuits(name, dtype):
    overrides = FAST if name.startswith("bars") else (
        "protocol.0.epochs=1", "protocol.1.epochs=2", "protocol.0.t_pres=20", "protocol.1.t_pres=20",
        "protocol.2.t_pres=20")
    eager, compiled = run_both(build(CIRCUITS / f"{name}.yaml", overrides), dtype=dtype)
    assert_runs_match(eager, compiled, RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_circuit_equals_eager(dtype):
    """One circuit takes the kernel's own paths (partial sums of four, plasticity along whole rows)."""
    eager, compiled = run_both(build(CIRCUITS / "bars_le.yaml", FAST), n_seeds=1, dtype=dtype)
    assert_runs_match(eager, compiled, RTOL[dtype])


def test_compiled_equals_eager_on_yinyang_with_batches():
    spec = build(CIRCUITS / "yinyang_le.yaml", ("task.yin_yang.train=64", "task.yin_yang.validation=16",
                                                "task.yin_yang.test=16", "protocol.0.epochs=2", "protocol.1.batch=16",
                                                "protocol.0.validate_every=1"))
    eager, compiled = run_both(spec)
    assert_runs_match(eager, compiled, RTOL["float64"])


KNOBS = {
    "propagating schedule": ("schedule=propagating",),
    "transmission delays with jitter": ("defaults.projection.delay={steps: 2, jitter: 1}",),
    "synaptic filter tau_s": ("defaults.projection.tau_s=1.5",),
    "somatic and rate noise": ("defaults.population.noise=0.05", "defaults.population.rate_noise=0.02"),
    "nearest-rounded precision": ("projections.up_2.precision={bits: 6, range: 5.0}",),
    "stochastic-rounded precision": ("projections.up_1.precision={bits: 8, range: 4.0, rounding: stochastic}",
                                     "projections.up_2.precision={bits: 6, range: 5.0, rounding: stochastic}"),
    "tau_w low-pass": ("defaults.projection.tau_w=3.0",),
    "teacher and input filters": ("inputs.teacher.tau_0=2.0", "populations.x.tau_0=1.0"),
    "tau_r mismatch and learning": (
        "defaults.population.dynamics={latent_equilibrium: {mismatch: {distribution: lognormal, spread: 0.3}}}",
        "protocol.0.tau_r_eta=5.0"),
    "fixed tau_r": ("defaults.population.dynamics={latent_equilibrium: {tau_r: 3.0}}",),
    "sigmoid activation": ("defaults.population.activation=sigmoid",),
}


@pytest.mark.parametrize("knob", list(KNOBS))
def test_compiled_equals_eager_with_each_knob(knob):
    eager, compiled = run_both(build(CIRCUITS / "bars_le.yaml", FAST + KNOBS[knob]))
    assert_runs_match(eager, compiled, RTOL["float64"])


@pytest.mark.parametrize("top_down", ["tied", "learned"])
def test_compiled_equals_eager_for_top_down_rules(top_down):
    """tied (W^down = W^up^T after every update) and hebbian_alignment (its filters in the state)."""
    d = microcircuit_spec([5, 12, 4], top_down=top_down, dtype="float64")
    spec = load_spec_text(yaml.safe_dump(d), "generated.yaml")[0]
    circuit = Circuit(spec)
    sims = [Simulator(circuit, [0, 1], dtype=F64, engine=e) for e in ("eager", "compiled")]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, 1, 5, dtype=F64, generator=gen)
    y = torch.rand(6, 2, 1, 4, dtype=F64, generator=gen)
    learning = {n: q.eta for n, q in circuit.projections.items() if q.kind == "weighted" and q.rule != "fixed"}
    for sim in sims:
        sim.present_many(x, y, 25, sim.plastic_plan(learning))
    assert_states_match(sims[0].state, sims[1].state, RTOL["float64"])
    if top_down == "learned":
        assert sims[1].state.rule_memory  # the rule's filters are state


def test_per_circuit_learning_rates_and_probes():
    spec = build(CIRCUITS / "bars_le.yaml")
    circuit = Circuit(spec)
    sims = [Simulator(circuit, [3, 4, 5], dtype=F64, engine=e) for e in ("eager", "compiled")]
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 1, 9, dtype=F64, generator=gen)
    y = torch.rand(4, 3, 1, 3, dtype=F64, generator=gen)
    probes = [Probe("u_breve", "out", 1), Probe("v", "pyr_1.apical", 7, "norm"), Probe("target", "", 5, "mean"),
              Probe("rate", "x", 3), Probe("u", "int_1", 4, "mean")]
    results = []
    for sim in sims:
        plan = sim.plastic_plan({"up_1": torch.tensor([0.01, 0.05, 0.1]), "up_2": 0.02, "ip_1": 0.03})
        results.append(sim.present_many(x, y, 30, plan, probes, step_offset=11, apical=["pyr_1"]))
    a, b = results
    assert relative_difference(a.outputs, b.outputs) <= 1e-12
    assert relative_difference(a.apical, b.apical) <= 1e-12
    for sa, sb, steps_a, steps_b in zip(a.samples, b.samples, a.sample_steps, b.sample_steps, strict=True):
        assert steps_a == steps_b and sa.shape == sb.shape
        assert relative_difference(sa, sb) <= 1e-12
    assert_states_match(sims[0].state, sims[1].state, 1e-12)


def test_a_circuit_sliced_out_of_a_batch_equals_the_circuit_run_alone():
    spec = build(CIRCUITS / "bars_le.yaml")
    circuit = Circuit(spec)
    batched = Simulator(circuit, [7, 8, 9], dtype=F64, engine="compiled")
    alone = Simulator(circuit, [8], dtype=F64, engine="compiled")
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 1, 9, dtype=F64, generator=gen)
    y = torch.rand(5, 1, 1, 3, dtype=F64, generator=gen)
    for sim in (batched, alone):
        sim.present_many(x, y, 40, sim.plastic_plan({"up_1": 0.05, "up_2": 0.01, "ip_1": 0.02}))
    assert_states_match(batched.state.select([1]), alone.state, 1e-12)
    joined = State.concat([batched.state.select([0]), batched.state.select([1, 2])])
    assert_states_match(joined, batched.state, 0.0)


def test_softplus_series_matches_torch():
    x = np.concatenate([np.linspace(-40, 40, 20001), [-1e-12, 0.0, 1e-12, 19.999, 20.0, 20.001, 1e3, -1e3]])
    ours = np.array([_softplus(v) for v in x])
    ref = torch.nn.functional.softplus(torch.as_tensor(x, dtype=F64)).numpy()
    inside = x >= -40.0
    assert np.max(np.abs(ours - ref)[inside] / np.abs(ref)[inside]) < 5e-14
    assert np.max(np.abs(ours - ref)[~inside]) < 4.3e-18


def test_auto_chooses_eager_for_large_circuits_and_says_why():
    small = Simulator(Circuit(build(CIRCUITS / "bars_le.yaml")), [0], engine="auto")
    assert small.engine == "compiled" and "pay" in small.engine_reason
    big = Simulator(Circuit(build(CIRCUITS / "fashion_mnist_le.yaml", ("protocol.0.batch=128",))), [0],
                    engine="auto")
    assert big.engine == "eager" and "BLAS" in big.engine_reason


def test_unsupported_features_fall_back_with_the_feature_named(caplog):
    sim = Simulator(Circuit(build(CIRCUITS / "bars_le.yaml")), [0], engine="eager")
    assert unsupported_features(sim) == []
    sim.device = torch.device("meta")  # a device the kernel cannot run on
    with caplog.at_level("WARNING", logger="microcircuit"):
        engine, reason = choose_engine(sim, "compiled")
    assert engine == "eager" and "device meta" in reason
    assert any("device meta" in r.message for r in caplog.records)


def test_checkpointed_state_holds_rule_filters_and_tau_r_factors():
    d = microcircuit_spec([5, 12, 4], top_down="learned", dtype="float64")
    sim = Simulator(Circuit(load_spec_text(yaml.safe_dump(d), "generated.yaml")[0]), [0], dtype=F64,
                    engine="compiled")
    x = torch.rand(2, 1, 1, 5, dtype=F64)
    sim.present_many(x, None, 10, sim.plastic_plan({"down_1": 0.1}), teacher=False)
    flat = sim.state.tensors()
    assert "rule_memory/down_1/low_post" in flat and "rule_memory/down_1/low_pre" in flat
    restored = State()
    restored.load_tensors(flat)
    assert_states_match(restored, sim.state, 0.0)
    assert PhasePlan().learns is False


def le_and_orig_simulator(dynamics: str | None, seeds: list[int], engine: str, sets: list[str] = ()) -> Simulator:
    """The bars circuit in float64 with somatic noise in its hidden area: with ``dynamics`` None circuit 0 LE and
    circuit 1 orig in one simulation (``dynamics_per_circuit``), else every circuit ``dynamics``."""
    sets = ["dtype=float64", "populations.pyr_1.noise=0.02", *sets]
    per_circuit = None
    if dynamics is None:
        per_circuit = {p: ["latent_equilibrium", "orig"] for p in ("pyr_1", "int_1", "out")}
    else:
        sets.append(f"defaults.population.dynamics={dynamics}")
    spec = load_spec(CIRCUITS / "bars_le.yaml", sets)[0]
    sim = Simulator(Circuit(spec), seeds, dtype=F64, engine=engine, dynamics_per_circuit=per_circuit)
    assert sim.engine == engine
    return sim


def present_train_test_train(sim: Simulator, average_from: int | list[int],
                             tau_r_eta: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Three calls of plastic presentations, teacher on, off, on (two switches), each circuit's output averaged
    from its own step; the outputs [presentation, circuit, batch, n_out]."""
    gen = torch.Generator().manual_seed(0)
    n = sim.n_circuits
    x = torch.rand(6, 1, 1, 9, generator=gen, dtype=F64).expand(6, n, 1, 9)
    y = torch.rand(6, 1, 1, 3, generator=gen, dtype=F64).expand(6, n, 1, 3)
    plan = sim.plastic_plan({"up_1": 0.05, "up_2": 0.01, "ip_1": 0.02}, tau_r_eta)
    return torch.cat([sim.present_many(x[:3], y[:3], 30, plan, teacher=True, average_from=average_from).outputs,
                      sim.present_many(x[3:], y[3:], 30, plan, teacher=False, average_from=average_from).outputs,
                      sim.present_many(x[:2], y[:2], 30, plan, teacher=True, average_from=average_from).outputs])


def assert_circuits_as_alone(batched: Simulator, alone_of, tau_r_eta: float = 0.0) -> None:
    """Each circuit c of ``batched`` gives the outputs, weights and tau_r factors of ``alone_of(c)``, a simulator
    of that circuit alone, through :func:`present_train_test_train` (float64, 1e-12)."""
    out = present_train_test_train(batched, 0, tau_r_eta)
    for c in range(batched.n_circuits):
        alone = alone_of(c)
        alone_out = present_train_test_train(alone, 0, tau_r_eta)
        assert relative_difference(out[:, c], alone_out[:, 0]) <= 1e-12
        for name, w in alone.state.weights.items():
            assert relative_difference(batched.state.weights[name][c], w[0]) <= 1e-12, name
        for name, f in alone.state.tau_r_factor.items():
            assert relative_difference(batched.state.tau_r_factor[name][c], f[0]) <= 1e-12, name


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_orig_and_le_under_the_reference_conventions_equal_each_circuit_alone(engine):
    """Under ``conventions: reference_code`` an LE and an orig circuit of one simulation differ in their teacher
    delay (1 and 0 steps), so in the steps for which the delayed teacher switch keeps the earlier flag, and in
    their output windows (from steps 0 and 7): each gives the outputs and weights of its run alone, through
    two teacher switches (float64, 1e-12)."""
    windows = {"latent_equilibrium": 0, "orig": 7}

    def simulate(dynamics: str | None, seeds: list[int]):
        sim = le_and_orig_simulator(dynamics, seeds, engine, ["conventions=reference_code"])
        average_from = [windows[d] for d in sim.dynamics_per_circuit["out"]]
        return sim, present_train_test_train(sim, average_from if dynamics is None else average_from[0])

    batched, out = simulate(None, [3, 4])
    assert batched.target_delays.tolist() == [1, 0]
    for c, dynamics in enumerate(["latent_equilibrium", "orig"]):
        alone, alone_out = simulate(dynamics, [3 + c])
        assert relative_difference(out[:, c], alone_out[:, 0]) <= 1e-12
        for name, w in alone.state.weights.items():
            assert relative_difference(batched.state.weights[name][c], w[0]) <= 1e-12, name


@pytest.mark.parametrize("tau_r_eta", [0.0, 0.5])
@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_fixed_tau_r_equal_each_circuit_alone(engine, tau_r_eta):
    """``tau_r_per_circuit``: the hidden and output somas of three circuits with tau_r = tau_eff, 0.5 ms and
    2 ms (and the mismatch drawn per circuit) in one simulation; each gives the outputs, weights and tau_r
    factors of its run alone, with and without tau_r learning, under the reference conventions' teacher-off
    relaxation (float64, 1e-12)."""
    values = [None, 0.5, 2.0]

    def spec_of(tau_r: float | None):
        le = "{latent_equilibrium: {mismatch: {spread: 0.2}" + ("" if tau_r is None else f", tau_r: {tau_r}") + "}}"
        return load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64", "conventions=reference_code",
                                                     f"defaults.population.dynamics={le}"])[0]

    seeds = [5, 6, 7]
    batched = Simulator(Circuit(spec_of(None)), seeds, dtype=F64, engine=engine,
                        tau_r_per_circuit={p: values for p in ("pyr_1", "int_1", "out")})
    assert batched.engine == engine
    assert_circuits_as_alone(batched, lambda c: Simulator(Circuit(spec_of(values[c])), [seeds[c]], dtype=F64,
                                                          engine=engine), tau_r_eta)
    with pytest.raises(ValueError, match="one tau_r > 0 ms"):
        Simulator(Circuit(spec_of(None)), seeds, dtype=F64, tau_r_per_circuit={"out": [1.0, 2.0]})


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_tau_r_learning_rate_equal_each_circuit_alone(engine):
    """A phase plan with one tau_r learning rate per circuit (0, 0.5 and 2 /ms, the mismatch drawn per circuit):
    each circuit gives the outputs, weights and tau_r factors of its run alone; the one with 0 keeps its factors
    (float64, 1e-12)."""
    etas = [0.0, 0.5, 2.0]
    spec = load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64",
                                                 "defaults.population.dynamics={latent_equilibrium: "
                                                 "{mismatch: {spread: 0.3}}}"])[0]
    seeds = [5, 6, 7]
    batched = Simulator(Circuit(spec), seeds, dtype=F64, engine=engine)
    initial = batched.state.tau_r_factor["pyr_1"].clone()
    out = present_train_test_train(batched, 0, torch.tensor(etas, dtype=F64))
    assert torch.equal(batched.state.tau_r_factor["pyr_1"][0], initial[0])
    assert not torch.equal(batched.state.tau_r_factor["pyr_1"][2], initial[2])
    for c, (seed, eta) in enumerate(zip(seeds, etas, strict=True)):
        alone = Simulator(Circuit(spec), [seed], dtype=F64, engine=engine)
        alone_out = present_train_test_train(alone, 0, eta)
        assert relative_difference(out[:, c], alone_out[:, 0]) <= 1e-12
        for name, f in alone.state.tau_r_factor.items():
            assert relative_difference(batched.state.tau_r_factor[name][c], f[0]) <= 1e-12, name


@pytest.mark.parametrize(("conventions", "tau_r_eta"), [("package", 0.0), ("reference_code", 0.5)])
@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_nudging_equal_each_circuit_alone(engine, conventions, tau_r_eta):
    """``nudging_per_circuit``: the interneurons' and the teacher's g_som of three circuits (0.06, 0.02 and
    0.15 /ms) in one simulation; each gives the outputs, weights and tau_r factors of its run alone with that
    g_som, through two teacher switches (under the reference conventions the teacher-off relaxation with g_som
    and tau_r learning too; float64, 1e-12)."""
    values = [0.06, 0.02, 0.15]

    def spec_of(g_som: float):
        return load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64", f"conventions={conventions}",
                                                     f"parameters.g_som={g_som}"])[0]

    seeds = [5, 6, 7]
    batched = Simulator(Circuit(spec_of(values[0])), seeds, dtype=F64, engine=engine,
                        nudging_per_circuit={"nudge_1": values, "teacher": values})
    assert batched.engine == engine
    assert_circuits_as_alone(batched, lambda c: Simulator(Circuit(spec_of(values[c])), [seeds[c]], dtype=F64,
                                                          engine=engine), tau_r_eta)
    with pytest.raises(ValueError, match="nudging projection or the teacher"):
        Simulator(Circuit(spec_of(0.06)), seeds, dtype=F64, nudging_per_circuit={"up_1": values})


@pytest.mark.parametrize("conventions", ["package", "reference_code"])
@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_delays_equal_each_circuit_alone(engine, conventions):
    """``delays_per_circuit``: transmission delays of every weighted projection of four circuits, none, 2 steps,
    5 steps and 3 +- 2 steps (the jitter drawn from each circuit's own stream), in one simulation; each gives the
    outputs, weights and tau_r factors of its run alone with that delay, its automatic teacher delay following its
    own delays, through two teacher switches (float64, 1e-12)."""
    delays = [0, 2, 5, "{steps: 3, jitter: 2}"]

    def spec_of(delay):
        return load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64", f"conventions={conventions}",
                                                     f"defaults.projection.delay={delay}"])[0]

    circuits = [Circuit(spec_of(d)) for d in delays]
    weighted = [q.name for q in circuits[0].projections.values() if q.compartment != "soma"]
    per_circuit = {name: [(c.projections[name].delay_steps, c.projections[name].delay_jitter) for c in circuits]
                   for name in weighted}
    seeds = [5, 6, 7, 8]
    batched = Simulator(circuits[0], seeds, dtype=F64, engine=engine, delays_per_circuit=per_circuit)
    assert batched.engine == engine
    alone = [Simulator(circuits[c], [seeds[c]], dtype=F64, engine=engine) for c in range(4)]
    assert batched.target_delays.tolist() == [int(a.target_delays[0]) for a in alone]
    assert len(set(batched.target_delays.tolist())) == 4
    assert_circuits_as_alone(batched, lambda c: Simulator(circuits[c], [seeds[c]], dtype=F64, engine=engine))
    with pytest.raises(ValueError, match="of a weighted projection"):
        Simulator(circuits[0], seeds, dtype=F64, delays_per_circuit={"nudge_1": [(1, 0)] * 4})
    with pytest.raises(ValueError, match="steps >= 0"):
        Simulator(circuits[0], seeds, dtype=F64, delays_per_circuit={"up_1": [(1, 0)] * 3})


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_weight_precision_equal_each_circuit_alone(engine):
    """``precision_per_circuit``: four circuits with float weights, 6 bits rounded to the nearest level, 8 bits
    rounded stochastically and 4 bits in a wider range, in one simulation; each gives the outputs and weights of
    its run alone with that precision (the stochastic one from its own stream), the rounded ones on their own
    levels (float64, 1e-12)."""
    precisions = ["null", "{bits: 6, range: 2.0}", "{bits: 8, range: 2.0, rounding: stochastic}",
                  "{bits: 4, range: 4.0}"]

    def spec_of(precision: str):
        return load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64", f"defaults.projection.precision={precision}"])[0]

    circuits = [Circuit(spec_of(p)) for p in precisions]
    weighted = [q.name for q in circuits[0].projections.values() if q.compartment != "soma"]
    per_circuit = {name: [c.projections[name].precision for c in circuits] for name in weighted}
    seeds = [5, 6, 7, 8]
    batched = Simulator(circuits[0], seeds, dtype=F64, engine=engine, precision_per_circuit=per_circuit)
    assert batched.engine == engine
    assert_circuits_as_alone(batched, lambda c: Simulator(circuits[c], [seeds[c]], dtype=F64, engine=engine))
    w = batched.state.weights["up_1"]
    for c, (bits, q_range) in enumerate([(6, 2.0), (8, 2.0), (4, 4.0)], start=1):
        levels = (w[c] + q_range) / (2 * q_range / (2**bits - 1))
        assert torch.allclose(levels, levels.round(), atol=1e-9), c
    levels = (w[0] + 2.0) / (4.0 / 63)
    assert not torch.allclose(levels, levels.round(), atol=1e-6)  # the float circuit is not rounded
    with pytest.raises(ValueError, match="of a weighted projection"):
        Simulator(circuits[0], seeds, dtype=F64, precision_per_circuit={"up_1": [None] * 3})


@pytest.mark.parametrize("tau_r_eta", [0.0, 0.5])
@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_circuits_with_their_own_conductances_equal_each_circuit_alone(engine, tau_r_eta):
    """``conductances_per_circuit`` and ``initial_weights``: four circuits with the reference g_l, g_b, g_a, g_d,
    a stronger apical coupling, a weaker leak and stronger interneuron dendrites, and a stronger basal coupling, in
    one simulation; each relaxes at its own g_tot (tau_eff, so its LE tau_r and tau_r learning too), predicts
    with its own attenuation c and starts from its own self-predicting weights, giving the outputs, weights and
    tau_r factors of its run alone (float64, 1e-12)."""
    variants = [[], ["parameters.g_a=0.1"], ["parameters.g_l=0.02", "parameters.g_d=0.2"], ["parameters.g_b=0.2"]]
    circuits = [Circuit(load_spec(CIRCUITS / "bars_le.yaml", ["dtype=float64", *v])[0]) for v in variants]
    somas = [n for n, p in circuits[0].populations.items() if p.cell.has_soma]
    per_circuit = {n: [dict(c.populations[n].conductances) for c in circuits] for n in somas}
    seeds = [5, 6, 7, 8]
    weights = {n: torch.cat([c.init_weights([s], F64)[n] for c, s in zip(circuits, seeds, strict=True)])
               for n in circuits[0].init_weights([1], F64)}
    # the third circuit's self-predicting W^IP follows its own g_l and g_d
    assert not torch.allclose(weights["ip_1"][2], circuits[0].init_weights([seeds[2]], F64)["ip_1"][0])
    batched = Simulator(circuits[0], seeds, dtype=F64, engine=engine, conductances_per_circuit=per_circuit,
                        initial_weights=weights)
    assert batched.engine == engine
    assert isinstance(batched.attenuation("pyr_1", "basal"), torch.Tensor)
    assert_circuits_as_alone(batched, lambda c: Simulator(circuits[c], [seeds[c]], dtype=F64, engine=engine),
                             tau_r_eta)
    with pytest.raises(ValueError, match="one mapping of g_l, g_b, g_a"):
        Simulator(circuits[0], seeds, dtype=F64, conductances_per_circuit={"pyr_1": [{"g_l": 0.1}] * 4})
    with pytest.raises(ValueError, match="initial_weights: expected the shapes"):
        Simulator(circuits[0], seeds, dtype=F64, initial_weights={"up_1": weights["up_1"]})


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_jittered_delays_under_the_delayed_teacher_switch_equal_each_circuit_alone(engine):
    """Seeds whose jittered transmission delays give their targets different lags: under the delayed teacher
    switch each circuit keeps the earlier flag for its own lag, as it does alone (float64, 1e-12)."""
    sets = ["dtype=float64", "conventions={base: reference_code, teacher_delay: depth}",
            "projections.up_1.delay={steps: 2, jitter: 2}", "projections.up_2.delay={steps: 2, jitter: 2}"]
    spec = load_spec(CIRCUITS / "bars_le.yaml", sets)[0]
    seeds = [11, 12, 13, 14]
    batched = Simulator(Circuit(spec), seeds, dtype=F64, engine=engine)
    assert len(set(batched.target_delays.tolist())) > 1

    def alone_of(c: int) -> Simulator:
        alone = Simulator(Circuit(spec), [seeds[c]], dtype=F64, engine=engine)
        assert int(alone.target_delays[0]) == int(batched.target_delays[c])
        return alone

    assert_circuits_as_alone(batched, alone_of)


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_orig_and_le_circuits_of_one_simulation_equal_each_circuit_alone(engine):
    """``dynamics_per_circuit``: circuit 0 LE, circuit 1 orig in one simulation; each gives the outputs, weights
    and teacher delay of its own run alone, with somatic noise on the same streams (float64, 1e-12)."""
    def simulate(dynamics: str | None, seeds: list[int]):
        sim = le_and_orig_simulator(dynamics, seeds, engine)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(6, 1, 1, 9, generator=gen, dtype=F64).expand(6, len(seeds), 1, 9)
        y = torch.rand(6, 1, 1, 3, generator=gen, dtype=F64).expand(6, len(seeds), 1, 3)
        out = sim.present_many(x, y, 30, sim.plastic_plan({"up_1": 0.05, "up_2": 0.01, "ip_1": 0.02}))
        return sim, out

    batched, out = simulate(None, [3, 4])
    assert batched.target_delays.tolist() == [1, 0]  # LE output: one step per area after the first; orig: none
    for c, dynamics in enumerate(["latent_equilibrium", "orig"]):
        alone, alone_out = simulate(dynamics, [3 + c])
        assert int(alone.target_delays[0]) == int(batched.target_delays[c])
        assert relative_difference(out.outputs[:, c], alone_out.outputs[:, 0]) <= 1e-12
        for name, w in alone.state.weights.items():
            assert relative_difference(batched.state.weights[name][c], w[0]) <= 1e-12, name
