"""Analytic facts of the dynamics (model.md sec. 1, 2, 4, 7), in float64 on the CPU.

Each tolerance is stated next to its assertion with the reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from microcircuit.circuit import Circuit
from microcircuit.engine import Simulator
from tests.conftest import build, chain_spec

F64 = torch.float64


def simulator(spec, seeds=(0,)) -> Simulator:
    return Simulator(Circuit(spec), list(seeds), dtype=F64)


def constant_input(sim: Simulator, value: float = 0.7) -> torch.Tensor:
    n_in = sim.circuit.populations[sim.input].size
    x = torch.linspace(0.1, 1.0, n_in, dtype=F64) * value
    return x.expand(sim.n_circuits, 1, n_in).clone()


def settle_step(trace: np.ndarray, tolerance: float = 0.01) -> int:
    """First step (1-based) from which every component stays within ``tolerance`` (relative) of its final value."""
    final = trace[-1]
    scale = np.maximum(np.abs(final), 1e-12)
    outside = np.any(np.abs(trace - final) > tolerance * scale, axis=1)
    bad = np.nonzero(outside)[0]
    return 1 if bad.size == 0 else int(bad[-1]) + 2


def output_trace(sim: Simulator, steps: int) -> np.ndarray:
    """Output rate potential after each of ``steps`` steps of a constant stimulus from rest, teacher off."""
    x = constant_input(sim)
    out = []
    for _ in range(steps):
        sim.step(x, None, [])
        out.append(sim.state.u_breve[sim.output][0, 0].clone())
    return torch.stack(out).numpy()


def test_exponential_relaxation_with_tau_eff():
    """A single orig output neuron with a constant basal input relaxes as u_ss (1 - exp(-t/tau_eff))."""
    sim = simulator(build(chain_spec(1, dynamics="orig")))
    tau = sim.circuit.tau_eff("out", teacher=False)  # 1/(g_l + g_b) = 7.69 ms
    x = constant_input(sim)
    steps = 400
    us = []
    for _ in range(steps):
        sim.step(x, None, [])
        us.append(sim.state.u["out"][0, 0].clone())
    u = torch.stack(us).numpy()
    v_basal = sim.state.v["out.basal"][0, 0].numpy()
    u_ss = sim.circuit.attenuation("out", "basal") * v_basal
    n = np.arange(1, steps + 1)[:, None]
    # forward Euler solves the discrete recursion exactly: u_n = u_ss (1 - (1 - dt/tau)^n); float64 rounding only.
    np.testing.assert_allclose(u, u_ss * (1 - (1 - sim.dt / tau) ** n), rtol=1e-10, atol=1e-12)
    # against the continuous solution the Euler error is first order: |err| <= u_ss * dt/tau (1.3 % here).
    exact = u_ss * (1 - np.exp(-n * sim.dt / tau))
    assert np.max(np.abs(u - exact)) <= np.max(np.abs(u_ss)) * sim.dt / tau


def test_steady_state_is_conductance_weighted_mean(bars_le):
    """Hidden pyramidal soma: u -> (g_b v_b + g_a v_a) / (g_l + g_b + g_a) for constant dendritic input."""
    spec = bars_le.model_copy(update={"dtype": "float64"})
    sim = simulator(spec)
    x = constant_input(sim)
    target = torch.tensor([[[1.0, 0.1, 0.1]]], dtype=F64)
    for _ in range(3000):  # 57 tau_eff: exp(-57) is far below float64 resolution
        sim.step(x, target, [])
    g = sim.circuit.populations["pyr_1"].conductances
    v_b, v_a = sim.state.v["pyr_1.basal"], sim.state.v["pyr_1.apical"]
    expected = (g["g_b"] * v_b + g["g_a"] * v_a) / (g["g_l"] + g["g_b"] + g["g_a"])
    assert v_a.abs().max() > 1e-3  # the teacher makes the apical input non-trivial
    torch.testing.assert_close(sim.state.u["pyr_1"], expected, rtol=0, atol=1e-10)


def test_le_prospective_potential_is_instantaneous_steady_state(bars_le):
    """u_breve = u + tau_eff du/dt equals u_ss of the current inputs at every step (tolerance 1e-6, float64)."""
    sim = simulator(bars_le.model_copy(update={"dtype": "float64"}))
    x = constant_input(sim)
    target = torch.tensor([[[1.0, 0.1, 0.1]]], dtype=F64)
    g = sim.circuit.populations["pyr_1"].conductances
    for _ in range(5):  # early steps: u is far from u_ss, so this is not trivially true
        sim.step(x, target, [])
        v_b, v_a = sim.state.v["pyr_1.basal"], sim.state.v["pyr_1.apical"]
        u_ss = (g["g_b"] * v_b + g["g_a"] * v_a) / (g["g_l"] + g["g_b"] + g["g_a"])
        assert (sim.state.u_breve["pyr_1"] - u_ss).abs().max() < 1e-6
    assert (sim.state.u["pyr_1"] - sim.state.u_breve["pyr_1"]).abs().max() > 1e-2


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_le_answers_within_depth_steps(depth):
    """Reference schedule: every area reads the previous step, so LE settles (1 %) within ``depth`` steps."""
    le = simulator(build(chain_spec(depth, "latent_equilibrium")))
    steps = int(depth * 12 * le.circuit.tau_eff("out", teacher=False) / le.dt)
    assert settle_step(output_trace(le, steps)) <= depth


def test_orig_needs_at_least_tau_eff_more_per_area():
    """orig: each area is a first-order lag, so the output of a depth-d chain follows an Erlang(d) step response.

    With a linear phi every input-output path has length d, so this is exact; the 1 % settling time
    then grows by more than tau_eff per added area (Erlang quantiles: 4.6, 6.6, 10.0, 15.7 tau for d = 1, 2, 4, 8).
    """
    settle = {}
    for depth in (1, 2, 4, 8):
        orig = simulator(build(chain_spec(depth, "orig", activation="linear")))
        taus = [orig.circuit.tau_eff(p, teacher=False) / orig.dt for p in orig.circuit.update_order()]
        settle[depth] = (settle_step(output_trace(orig, int(30 * sum(taus)))), min(taus))
    for shallow, deep in ((1, 2), (2, 4), (4, 8)):
        (s_shallow, _), (s_deep, tau_min) = settle[shallow], settle[deep]
        assert s_deep - s_shallow >= (deep - shallow) * tau_min, settle


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_propagating_schedule_answers_in_one_step(depth):
    sim = simulator(build(chain_spec(depth, "latent_equilibrium", schedule="propagating")))
    assert settle_step(output_trace(sim, 50)) == 1


def test_analytic_self_predicting_state_silences_apical(bars_le):
    """With W_pi = -W_down and W_ip from the area above, |v_apical| < 1e-6 once settled, teacher off."""
    for dynamics in ("latent_equilibrium", "orig"):
        spec = build(bars_le.model_dump(by_alias=True) | {"dtype": "float64"},
                     overrides=(f"defaults.population.dynamics={dynamics}",))
        sim = simulator(spec, seeds=(0, 1, 2))
        x = constant_input(sim)
        for _ in range(2500):  # 47 tau_eff of settling for orig
            sim.step(x, None, [])
        assert sim.state.v["pyr_1.apical"].abs().max() < 1e-6, dynamics
    # the state is not trivially silent: the top-down input itself is large.
    down = torch.bmm(sim.state.rate["out"], sim.state.weights["down_1"].transpose(1, 2))
    assert down.abs().max() > 0.1


def test_batched_circuits_equal_circuits_run_alone(bars_le):
    """Circuit i of a batched run equals the same seed run alone (with noise: per-circuit noise streams)."""
    spec = build(bars_le.model_dump(by_alias=True) | {"dtype": "float64"},
                 overrides=("defaults.population.noise=0.01",))
    circuit = Circuit(spec)
    batched = Simulator(circuit, [5, 6, 7], dtype=F64)
    alone = Simulator(circuit, [6], dtype=F64)
    plastic_b = batched.plastic_plan({"up_1": 0.05, "up_2": 0.01, "ip_1": 0.02})
    plastic_a = alone.plastic_plan({"up_1": 0.05, "up_2": 0.01, "ip_1": 0.02})
    x = torch.rand(3, 1, 9, dtype=F64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([1.0, 0.1, 0.1], dtype=F64).expand(3, 1, 3)
    for _ in range(3):
        batched.present(x, target, 20, plastic_b)
        alone.present(x[1:2], target[1:2], 20, plastic_a)
    for name, w in batched.state.weights.items():
        # identical arithmetic per circuit; bmm over a different batch size may reorder sums (1e-12)
        torch.testing.assert_close(w[1:2], alone.state.weights[name], rtol=0, atol=1e-12)
    torch.testing.assert_close(batched.state.u["out"][1:2], alone.state.u["out"], rtol=0, atol=1e-12)


def test_tau_w_low_pass_filters_the_update(bars_le):
    """With tau_w the weight change is the low-pass of dW/dt: its first step is dt/tau_w of the unfiltered one."""
    spec = bars_le.model_copy(update={"dtype": "float64"})
    plain = simulator(spec)
    filtered_spec = build(spec.model_dump(by_alias=True), overrides=("projections.up_2.tau_w=2.0",))
    filtered = simulator(filtered_spec)
    x = constant_input(plain)
    target = torch.tensor([[[1.0, 0.1, 0.1]]], dtype=F64)
    for sim in (plain, filtered):
        for _ in range(3):
            sim.step(x, target, [])
    w0 = plain.state.weights["up_2"].clone()
    plain.step(x, target, plain.plastic_plan({"up_2": 0.1}))
    filtered.step(x, target, filtered.plastic_plan({"up_2": 0.1}))
    d_plain = plain.state.weights["up_2"] - w0
    d_filtered = filtered.state.weights["up_2"] - w0
    torch.testing.assert_close(d_filtered, d_plain * (plain.dt / 2.0), rtol=1e-10, atol=1e-15)


def test_weight_clipping(bars_le):
    sim = simulator(bars_le.model_copy(update={"dtype": "float64"}))
    x = constant_input(sim)
    target = torch.tensor([[[1.0, 0.1, 0.1]]], dtype=F64)
    sim.present(x, target, 50, sim.plastic_plan({"up_2": 1e3}))
    assert sim.state.weights["up_2"].abs().max() <= 5.0 + 1e-12
    assert math.isclose(float(sim.state.weights["up_2"].abs().max()), 5.0)


def test_noise_has_the_requested_stationary_variance():
    """Orig soma with noise sigma: stationary variance of u is sigma^2 / (2 g_tot) (Ornstein-Uhlenbeck),
    up to the Euler factor 1 / (1 - dt g_tot / 2)."""
    sigma = 0.05
    spec = build(chain_spec(1, "orig"), overrides=(f"defaults.population.noise={sigma}",))
    sim = simulator(spec, seeds=tuple(range(64)))
    x = torch.zeros(64, 1, sim.circuit.populations["x"].size, dtype=F64)
    sim.present(x, None, 500, [])  # 6.5 tau_eff burn-in
    samples = []
    for _ in range(40):
        sim.present(x, None, 50, [])
        samples.append(sim.state.u["out"].flatten())
    var = torch.cat(samples).var().item()
    g = 1.0 / sim.circuit.tau_eff("out", teacher=False)
    expected = sigma**2 / (2 * g) / (1 - sim.dt * g / 2)
    # 64 circuits x 2 neurons x 40 correlated samples: about 10 % standard error
    assert abs(var - expected) / expected < 0.25
