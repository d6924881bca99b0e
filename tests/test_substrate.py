"""Substrate imperfections (Haider 2021, sec. 6-7): mismatch, noise, synaptic filters, delays,
limited precision, and the local rule that learns tau_r. float64, CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microcircuit.circuit import Circuit
from microcircuit.engine import Simulator
from microcircuit.experiment import Experiment, RunOptions
from tests.conftest import CIRCUITS, build, chain_spec
from tests.test_dynamics import output_trace, settle_step

F64 = torch.float64


def test_zero_knobs_reproduce_the_unperturbed_run_exactly():
    fast = ("parameters.t_pres=5", "protocol.0.epochs=5", "protocol.0.validate_every=0")
    zero = fast + ("defaults.population.noise=0.0", "defaults.population.rate_noise=0.0",
                   "defaults.population.dynamics={latent_equilibrium: {mismatch: {spread: 0.0}}}",
                   "defaults.projection.delay={steps: 0, jitter: 0}", "defaults.projection.tau_s=0.0")
    runs = []
    for overrides in (fast, zero):
        experiment = Experiment(build(CIRCUITS / "bars_le.yaml", overrides), RunOptions(n_seeds=2, progress=False))
        experiment.run()
        runs.append(experiment)
    for name, w in runs[0].sim.state.weights.items():
        assert torch.equal(w, runs[1].sim.state.weights[name]), name
    assert runs[0].result.rows == runs[1].result.rows


@pytest.mark.parametrize("delay", [1, 3])
def test_delays_shift_the_output_by_d_steps_per_area(delay):
    depth = 3
    plain = Simulator(Circuit(build(chain_spec(depth))), [0], dtype=F64)
    delayed = Simulator(Circuit(build(chain_spec(depth), (f"defaults.projection.delay={delay}",))), [0], dtype=F64)
    steps = 40
    for sim in (plain, delayed):  # start from the equilibrium with zero input (the initial rest state is not one)
        sim.present(torch.zeros(1, 1, 4, dtype=F64), None, 50, [])
    a, b = output_trace(plain, steps), output_trace(delayed, steps)
    shift = depth * delay
    # LE rates are memoryless functions of their inputs, so the delayed output is the plain one shifted exactly
    np.testing.assert_allclose(b[shift:], a[: steps - shift], rtol=0, atol=1e-12)
    assert settle_step(b) == settle_step(a) + shift


def test_delay_jitter_draws_per_circuit_delays():
    spec = build(chain_spec(1), ("defaults.projection.delay={steps: 3, jitter: 2}",))
    sim = Simulator(Circuit(spec), list(range(20)), dtype=F64)
    delays = sim.synapses["up_1"].delays
    assert int(delays.min()) >= 1 and int(delays.max()) <= 5 and len(set(delays.tolist())) > 1


def test_synaptic_filter_relaxes_with_tau_s():
    """A depth-1 LE chain with tau_s: the output follows the input through one exponential low-pass."""
    tau_s = 2.0
    sim = Simulator(Circuit(build(chain_spec(1), (f"defaults.projection.tau_s={tau_s}",))), [0], dtype=F64)
    trace = output_trace(sim, 300)
    decay = 1 - sim.dt / tau_s
    final = trace[-1] / (1 - decay**300)
    n = np.arange(1, 301)[:, None]
    # input at rest is 0; the filtered input after n steps is (1 - (1 - dt/tau_s)^n) x, the output linear in it
    np.testing.assert_allclose(trace, final * (1 - (1 - sim.dt / tau_s) ** n), rtol=1e-9, atol=1e-12)


def test_limited_precision_weights_stay_on_the_grid():
    spec = build(CIRCUITS / "bars_le.yaml", ("projections.up_2.precision={bits: 4, range: 5.0}",))
    sim = Simulator(Circuit(spec), [0, 1], dtype=F64)
    grid_step = 10.0 / 15

    def on_grid(w):
        k = (w + 5.0) / grid_step
        return torch.allclose(k, k.round(), atol=1e-9)

    assert on_grid(sim.state.weights["up_2"])
    x = torch.rand(2, 1, 9, dtype=F64, generator=torch.Generator().manual_seed(0))
    target = torch.full((2, 1, 3), 1.0, dtype=F64)
    sim.present(x, target, 50, sim.plastic_plan({"up_2": 5.0}))
    assert on_grid(sim.state.weights["up_2"]) and len(torch.unique(sim.state.weights["up_2"])) <= 16


def test_stochastic_rounding_is_unbiased_and_keeps_small_updates():
    from microcircuit.engine import quantize_
    from microcircuit.spec.schema import PrecisionSpec

    precision = PrecisionSpec(bits=4, range=5.0, rounding="stochastic")
    grid_step = 10.0 / 15
    x = torch.full((200_000,), 0.3 * grid_step - 5.0, dtype=F64)  # 0.3 of a level above a grid point
    uniform = torch.rand(x.shape, dtype=F64, generator=torch.Generator().manual_seed(0))
    rounded = quantize_(x.clone(), precision, uniform)
    # two levels only, the upper one with probability 0.3: mean within 4 standard errors (sd 0.46 level)
    assert set(torch.unique(rounded).tolist()) == {-5.0, -5.0 + grid_step}
    assert abs(float((rounded + 5.0).mean()) / grid_step - 0.3) < 4 * 0.46 / 200_000**0.5

    # updates far below half a level: nearest rounding keeps the weights, stochastic rounding moves them
    x_in = torch.rand(2, 1, 9, dtype=F64, generator=torch.Generator().manual_seed(1))
    target = torch.full((2, 1, 3), 1.0, dtype=F64)
    moved = {}
    for rounding in ("nearest", "stochastic"):
        spec = build(CIRCUITS / "bars_le.yaml", (f"projections.up_2.precision={{bits: 8, range: 5.0, rounding: "
                                                 f"{rounding}}}",))
        sim = Simulator(Circuit(spec), [0, 1], dtype=F64)
        before = sim.state.weights["up_2"].clone()
        sim.present(x_in, target, 50, sim.plastic_plan({"up_2": 0.05}))
        moved[rounding] = int((sim.state.weights["up_2"] != before).sum())
    assert moved["nearest"] == 0 and moved["stochastic"] > 0


def test_stochastic_rounding_batched_equals_alone():
    spec = build(CIRCUITS / "bars_le.yaml", ("projections.up_2.precision={bits: 6, range: 5.0, rounding: stochastic}",))
    x = torch.rand(3, 1, 9, dtype=F64, generator=torch.Generator().manual_seed(2))
    target = torch.full((3, 1, 3), 1.0, dtype=F64)
    batched = Simulator(Circuit(spec), [4, 5, 6], dtype=F64)
    batched.present(x, target, 30, batched.plastic_plan({"up_2": 1.0}))
    alone = Simulator(Circuit(spec), [5], dtype=F64)
    alone.present(x[1:2], target[1:2], 30, alone.plastic_plan({"up_2": 1.0}))
    assert torch.equal(batched.state.weights["up_2"][1], alone.state.weights["up_2"][0])


@pytest.mark.parametrize("schedule, expected", [("reference", lambda depth, d: depth - 1 + depth * d),
                                                 ("propagating", lambda depth, d: depth * d)])
def test_auto_teacher_delay_includes_transmission_delays(schedule, expected):
    depth, delay = 3, 2
    spec = build(chain_spec(depth), (f"defaults.projection.delay={delay}", f"schedule={schedule}"))
    sim = Simulator(Circuit(spec), [0, 1], dtype=F64)
    assert sim.target_delays.tolist() == [expected(depth, delay)] * 2
    jittered = build(chain_spec(1), ("defaults.projection.delay={steps: 3, jitter: 2}",))
    sim = Simulator(Circuit(jittered), list(range(10)), dtype=F64)
    assert torch.equal(sim.target_delays, sim.synapses["up_1"].delays)  # depth 1: no area lag, the drawn delay


def test_per_circuit_target_delay_switches_each_circuit_on_its_own_step():
    jittered = build(chain_spec(1), ("defaults.projection.delay={steps: 3, jitter: 2}",))
    sim = Simulator(Circuit(jittered), list(range(10)), dtype=F64)
    n_out = sim.circuit.populations[sim.output].size
    n_in = sim.circuit.populations[sim.input].size
    old, new = torch.zeros(10, 1, n_out, dtype=F64), torch.ones(10, 1, n_out, dtype=F64)
    sim.present(torch.zeros(10, 1, n_in, dtype=F64), old, 5, [], teacher=False)
    applied = []
    sim.present(torch.zeros(10, 1, n_in, dtype=F64), new, 8, [], teacher=False,
                observers=[(1, lambda step: applied.append(sim.state.applied_target[:, 0, 0].clone()))])
    switch = torch.stack(applied).argmax(dim=0)  # first step (0-based) at which the new target applies
    assert torch.equal(switch, sim.target_delays)


def test_rate_noise_has_the_requested_spread():
    sigma = 0.05
    sim = Simulator(Circuit(build(chain_spec(1), (f"defaults.population.rate_noise={sigma}",))), list(range(8)),
                    dtype=F64)
    x = torch.zeros(8, 1, 4, dtype=F64)
    samples = []
    for _ in range(200):
        sim.present(x, None, 1, [])
        samples.append(sim.state.u_breve["out"].flatten())
    # LE output at rest: u_breve = 0 + noise; 8 circuits x 2 neurons x 200 independent samples: ~2 % error
    assert abs(torch.cat(samples).std().item() - sigma) / sigma < 0.1


def test_tau_r_learning_removes_mismatch():
    """A 30 % log-normal tau_r spread is reduced at least five-fold by the tau_r learning phase
    (measured: mean |m - 1| 0.22 -> 0.0003 in the hidden area, 0.40 -> 0.010 at the output)."""
    spec = build(CIRCUITS / "bars_le.yaml", (
        "defaults.population.dynamics={latent_equilibrium: {mismatch: {distribution: lognormal, spread: 0.3}}}",
        "protocol=[{phase: tau_r, data: random, samples: 200, teacher: false, plastic: none, t_pres: 20, "
        "tau_r_eta: 10.0}]", "record=[]"))
    experiment = Experiment(spec, RunOptions(n_seeds=2, dtype="float64", progress=False))
    factors = experiment.sim.state.tau_r_factor
    before = {p: float((f - 1).abs().mean()) for p, f in factors.items()}
    experiment.run()
    after = {p: float((f - 1).abs().mean()) for p, f in experiment.sim.state.tau_r_factor.items()}
    for pop in before:
        assert after[pop] < before[pop] / 5, (pop, before[pop], after[pop])
