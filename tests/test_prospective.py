"""Prospective (Latent Equilibrium) networks, model.md sec. 10: operators, dynamics, learning, specs.

Tolerances: float64 throughout the analytic checks. Operators against dense or autograd equivalents
agree to rounding (1e-12 relative: a few hundred products of O(1) numbers). The fixed point is exact
in exact arithmetic (u_breve = u + tau_m (W r - u + e)/tau_m = W r + e for any u), so 1e-12. The
weight updates approach backprop's gradient linearly in beta (the nudged state differs from the free
one by O(beta)): at beta = 1e-4 the relative difference is bounded by 100 beta = 1e-2, measured
about 1e-4.
"""

from __future__ import annotations

import copy

import pytest
import torch

from microcircuit.circuit import Circuit
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.model.activations import ACTIVATIONS, DERIVATIVES
from microcircuit.prospective.feedforward import ProspectiveFeedforwardNet
from microcircuit.prospective.layers import Conv, Dense, Pooling
from microcircuit.prospective.simulator import ProspectiveSimulator
from microcircuit.spec import SpecError, load_spec_text
from microcircuit.state import PhasePlan

F64 = torch.float64


def spec_text(*, conv: bool = False, schedule: str = "propagating", dynamics: str = "latent_equilibrium",
              beta: float = 0.1, error: str = "potential", feedback: str = "transpose", extra: str = "",
              epochs: int = 2, t_pres: int = 10, bias: bool = True, pool: str = "max") -> str:
    """A small prospective network on the 3x3 bars: 9-12-3 dense, or conv k2 (4 channels) + max pool."""
    pooling = f" pool: {{{pool}: 2}}," if pool != "none" else ""
    if conv:
        pops = """
  x:   {cell: input, shape: [1, 3, 3]}
  h_1: {cell: prospective, shape: [4, 2, 2]}
  h_2: {cell: prospective, size: 6}
  out: {cell: prospective, size: 3, activation: linear}"""
        projs = f"""
  w_1: {{source: x, target: h_1.basal, conv: {{kernel: 2}}}}
  w_2: {{source: h_1, target: h_2.basal,{pooling} feedback: {feedback}}}
  w_3: {{source: h_2, target: out.basal, feedback: {feedback}}}"""
    else:
        pops = """
  x:   {cell: input, size: 9}
  h_1: {cell: prospective, size: 12}
  out: {cell: prospective, size: 3, activation: linear}"""
        projs = f"""
  w_1: {{source: x, target: h_1.basal}}
  w_2: {{source: h_1, target: out.basal, feedback: {feedback}}}"""
    return f"""
schema: microcircuit/1
name: le_net_test
seed: 3
dt: 0.1
schedule: {schedule}
parameters: {{tau_m: 10.0}}
defaults:
  population: {{dynamics: {dynamics}, activation: soft_relu, bias: {str(bias).lower()}}}
  projection: {{init: {{normal: 0.5}}, rule: {{prospective_error: {{eta: 10.0}}}}}}
populations:{pops}
projections:{projs}
task:
  bars: {{}}
inputs:
  stimulus: {{target: x}}
  teacher: {{target: out.soma, beta: {beta}, error: {error}}}
protocol:
  - {{phase: train, data: train, teacher: true, plastic: all, epochs: {epochs}, t_pres: {t_pres},
     eta_scale: inverse_t_pres}}
  - {{phase: test, data: test, teacher: false, plastic: none, t_pres: {t_pres}}}
{extra}
"""


def build(text: str, seeds=(1, 2), n_batch: int = 4, dtype=F64) -> ProspectiveSimulator:
    spec, _, _ = load_spec_text(text, "le_net_test.yaml")
    return ProspectiveSimulator(Circuit(spec), list(seeds), n_batch=n_batch, dtype=dtype)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ---------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", sorted(ACTIVATIONS.names()))
def test_every_derivative_is_phi_prime(name):
    u = torch.linspace(-3.0, 3.0, 601, dtype=F64)
    u = u[(u.abs() > 1e-6) & ((u - 1.0).abs() > 1e-6)]  # away from the kinks of relu and hard_sigmoid
    x = u.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ACTIVATIONS.get(name)(x).sum(), x)
    torch.testing.assert_close(DERIVATIVES.get(name)(u), grad, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- operators
@pytest.mark.parametrize("kernel,stride,padding,size", [(3, 1, 0, 6), (3, 2, 1, 7), (2, 2, 0, 5), (5, 1, 2, 6)])
def test_conv_and_its_transpose_equal_the_unfolded_dense_matrix(kernel, stride, padding, size):
    gen = torch.Generator().manual_seed(0)
    op = Conv((3, size, size), 4, kernel, stride, padding)
    w = torch.randn(2, *op.weight_shape, generator=gen, dtype=F64)
    x = torch.randn(2, 5, op.pre_size, generator=gen, dtype=F64)
    e = torch.randn(2, 5, op.post_size, generator=gen, dtype=F64)
    dense = op.unfolded(w)  # [circuit, post, pre]
    torch.testing.assert_close(op.forward(w, x), torch.bmm(x, dense.transpose(1, 2)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.backward(w, e), torch.bmm(e, dense), rtol=1e-12, atol=1e-12)
    # the kernel update sums the local updates of every position: the gradient of <e, W x> / batch
    leaf = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((e * op.forward(leaf, x)).sum() / x.shape[1], leaf)
    torch.testing.assert_close(op.weight_update(e, x), grad, rtol=1e-12, atol=1e-12)
    bias = torch.randn(2, op.bias_size, generator=gen, dtype=F64).requires_grad_(True)
    (grad,) = torch.autograd.grad((e * op.expand_bias(bias)).sum() / x.shape[1], bias)
    torch.testing.assert_close(op.bias_update(e), grad, rtol=1e-12, atol=1e-12)


def test_dense_update_is_the_batch_mean_outer_product():
    gen = torch.Generator().manual_seed(1)
    op = Dense(7, 4)
    w = torch.randn(3, 4, 7, generator=gen, dtype=F64)
    x, e = torch.randn(3, 6, 7, generator=gen, dtype=F64), torch.randn(3, 6, 4, generator=gen, dtype=F64)
    torch.testing.assert_close(op.forward(w, x), torch.einsum("cpq,cbq->cbp", w, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.backward(w, e), torch.einsum("cpq,cbp->cbq", w, e), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.weight_update(e, x), torch.einsum("cbp,cbq->cpq", e, x) / 6, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("size", [4, 5])
def test_unpool_is_the_transpose_of_pool(kind, size):
    gen = torch.Generator().manual_seed(2)
    pooling = Pooling(kind, 2, (3, size, size))
    r = torch.randn(2, 4, 3 * size * size, generator=gen, dtype=F64)
    g = torch.randn(2, 4, pooling.shape[0] * pooling.shape[1] * pooling.shape[2], generator=gen, dtype=F64)
    leaf = r.clone().requires_grad_(True)
    pooled, indices = pooling.pool(leaf)
    (vjp,) = torch.autograd.grad((pooled * g).sum(), leaf)
    torch.testing.assert_close(pooling.unpool(g, indices), vjp, rtol=1e-12, atol=1e-12)


def test_max_pooling_passes_the_error_only_through_the_selected_positions():
    pooling = Pooling("max", 2, (1, 4, 4))
    r = torch.arange(16, dtype=F64).reshape(1, 1, 16)  # the maximum of each window is its bottom-right
    _, indices = pooling.pool(r)
    back = pooling.unpool(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]], dtype=F64), indices).reshape(4, 4)
    expected = torch.zeros(4, 4, dtype=F64)
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1.0, 2.0, 3.0, 4.0
    assert torch.equal(back, expected)


# ---------------------------------------------------------------------- dynamics
@pytest.mark.parametrize("conv", [False, True])
def test_prospective_potential_is_the_instantaneous_fixed_point(conv):
    """tau_r = tau_m: u_breve = W r + e for any u, so the free network answers at once (one step per area
    under the reference schedule, one step in all under the propagating one); orig does not."""
    for schedule, steps in (("propagating", 1), ("reference", 2 + conv)):
        sim = build(spec_text(conv=conv, schedule=schedule))
        gen = torch.Generator().manual_seed(5)
        for name in sim.state.u:
            sim.state.u[name] = torch.randn(sim.state.u[name].shape, generator=gen, dtype=F64)
        x = torch.rand(2, 4, 9, generator=gen, dtype=F64)
        for _ in range(steps):
            sim.step(x, None, PhasePlan())
        net = ProspectiveFeedforwardNet(sim.circuit, sim.state.weights, sim.state.bias)
        expected = net.potentials(x)
        for area, u in zip(sim.areas, expected, strict=True):
            torch.testing.assert_close(sim.state.u_breve[area.name], u, rtol=1e-12, atol=1e-12)
    sim = build(spec_text(conv=conv, dynamics="orig"))
    for name in sim.state.u:
        sim.state.u[name] = torch.randn(sim.state.u[name].shape, generator=gen, dtype=F64)
    sim.step(x, None, PhasePlan())
    net = ProspectiveFeedforwardNet(sim.circuit, sim.state.weights, sim.state.bias)
    assert relative(sim.state.u_breve["out"], net.potentials(x)[-1]) > 0.1


def settle_and_learn(sim: ProspectiveSimulator, x: torch.Tensor, target: torch.Tensor, steps: int = 30):
    """Hold x and the target until the errors settle, then take one learning step; the weight and bias
    changes divided by dt."""
    for _ in range(steps):
        sim.step(x, target, PhasePlan())
    before = copy.deepcopy((sim.state.weights, sim.state.bias))
    plan = sim.plastic_plan({name: 1.0 for name in sim.state.weights})
    sim.step(x, target, plan)
    dw = {k: (sim.state.weights[k] - before[0][k]) / sim.dt for k in before[0]}
    db = {k: (sim.state.bias[k] - before[1][k]) / sim.dt for k in before[1]}
    return dw, db


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("error", ["potential", "rate"])
@pytest.mark.parametrize("schedule", ["propagating", "reference"])
def test_weight_updates_equal_backprop_for_small_beta(conv, error, schedule):
    """dW_l / beta -> -dL/dW_l of L = 1/2 |target - output|^2 (batch mean) at the free fixed point,
    by autograd on the same network; biases too. Under the reference schedule the answer needs one
    step per area and the errors one step per area back: 30 steps of a held stimulus cover both."""
    beta = 1e-4
    sim = build(spec_text(conv=conv, beta=beta, error=error, schedule=schedule))
    gen = torch.Generator().manual_seed(7)
    for name in sim.state.bias:
        sim.state.bias[name] = 0.3 * torch.randn(sim.state.bias[name].shape, generator=gen, dtype=F64)
    x = torch.rand(2, 4, 9, generator=gen, dtype=F64)
    target = torch.rand(2, 4, 3, generator=gen, dtype=F64)
    net = ProspectiveFeedforwardNet(sim.circuit, sim.state.weights, sim.state.bias)
    _, grads, bias_grads = net.loss_and_grads(x, target)
    dw, db = settle_and_learn(sim, x, target)
    for name, grad in zip(net.chain, grads, strict=True):
        assert relative(dw[name] / beta, -grad) < 100 * beta, name
    for (name, change), grad in zip(db.items(), bias_grads, strict=True):
        assert relative(change / beta, -grad) < 100 * beta, name


def test_feedback_alignment_sends_the_error_through_the_fixed_matrix():
    sim = build(spec_text(feedback="random", beta=0.5))
    x = torch.rand(2, 4, 9, generator=torch.Generator().manual_seed(8), dtype=F64)
    target = torch.full((2, 4, 3), 0.5, dtype=F64)
    for _ in range(200):  # the errors settle by about a factor 0.86 per step (1e-12 after 180 steps)
        sim.step(x, target, PhasePlan())
    b = sim.feedback["w_2"]
    assert relative(b, sim.state.weights["w_2"]) > 0.5
    hidden = sim.areas[0]
    expected = DERIVATIVES.get("soft_relu")(sim.state.u_breve["h_1"]) * torch.bmm(sim.state.error["out"], b)
    torch.testing.assert_close(sim.state.error[hidden.name], expected, rtol=1e-10, atol=1e-12)


def test_tau_r_learning_drives_the_mismatch_to_one():
    extra = ""
    text = spec_text(extra=extra).replace("dynamics: latent_equilibrium,",
                                          "dynamics: {latent_equilibrium: {mismatch: {distribution: normal, "
                                          "spread: 0.3}}},")
    sim = build(text)
    before = (sim.state.tau_r_factor["h_1"] - 1).abs().mean()
    assert before > 0.1
    gen = torch.Generator().manual_seed(9)
    plan = PhasePlan((), tau_r_eta=50.0)
    for _ in range(400):  # a new stimulus every 10 steps keeps du/dt away from zero
        sim.present(torch.rand(2, 4, 9, generator=gen, dtype=F64), None, 10, plan, teacher=False)
    after = (sim.state.tau_r_factor["h_1"] - 1).abs().mean()
    assert after < 0.5 * before


# ---------------------------------------------------------------------- experiments
class Collect:
    """A run writer that keeps the checkpoints in memory."""

    def __init__(self):
        self.checkpoints: dict[str, dict] = {}

    def append_metrics(self, rows):
        pass

    def write_chunk(self, phase, epoch, arrays):
        pass

    def write_checkpoint(self, name, payload):
        self.checkpoints[name] = copy.deepcopy(payload)

    def metrics_mark(self):
        return {}


def experiment(text: str, seeds=None, n_seeds: int = 2, run_dir=None) -> Experiment:
    spec, _, _ = load_spec_text(text, "le_net_test.yaml")
    return Experiment(spec, RunOptions(n_seeds=n_seeds, seeds=seeds, dtype="float64", progress=False), run_dir)


@pytest.mark.parametrize("conv", [False, True])
def test_a_prospective_network_learns_bars_and_batched_equals_alone(conv):
    """The dense 9-12-3 network and the convolutional one (read flattened by the dense area above) solve
    bars in 100 epochs. (With max pooling, equal patches of a bar tie exactly, and a rounding difference
    of 1e-16 between one and two grouped convolutions picks another maximum: batched and alone then
    part after a few epochs, as any two programs would; the operator tests cover pooling.)"""
    text = spec_text(conv=conv, epochs=100, t_pres=10, pool="none")
    both = experiment(text, seeds=[4, 5])
    result = both.run()
    assert result.status == "done"
    acc = result.metric("test", "accuracy")
    assert all(value == 1.0 for value in acc.values()), acc
    alone = experiment(text, seeds=[5])
    alone.run()
    for name, w in alone.sim.state.weights.items():
        torch.testing.assert_close(both.sim.state.weights[name][1:], w, rtol=1e-12, atol=1e-12)


def test_resume_from_a_checkpoint_gives_the_same_floats():
    text = spec_text(conv=True, epochs=4).replace("seed: 3", "seed: 3\ncheckpoint_every: 1")
    writer = Collect()
    whole = experiment(text, run_dir=writer)
    whole.run()
    resumed = experiment(text, run_dir=Collect())
    resumed.restore(writer.checkpoints["train_epoch_0002"])
    resumed.run()
    for group in ("weights", "bias", "u", "error"):
        for name, value in getattr(whole.sim.state, group).items():
            assert torch.equal(getattr(resumed.sim.state, group)[name], value), (group, name)


# ---------------------------------------------------------------------- specs
def errors_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "net.yaml")
    return str(info.value)


def test_a_convolution_into_the_wrong_shape_is_a_located_error():
    text = spec_text(conv=True).replace("h_1: {cell: prospective, shape: [4, 2, 2]}",
                                        "h_1: {cell: prospective, shape: [4, 3, 3]}")
    message = errors_of(text)
    assert "net.yaml:" in message and "populations.h_1.shape" in message
    assert "use shape: [4, 2, 2]" in message


def test_microcircuit_rules_and_cells_are_errors_in_a_prospective_network():
    text = spec_text().replace("w_1: {source: x, target: h_1.basal}",
                               "w_1: {source: x, target: h_1.basal, rule: {dendritic_prediction: {eta: 1.0}}}")
    assert "projections.w_1.rule" in errors_of(text)
    text = spec_text().replace("h_1: {cell: prospective, size: 12}", "h_1: {cell: pyramidal, size: 12}")
    assert "populations.h_1.cell" in errors_of(text)
    text = spec_text().replace("beta: 0.1, ", "conductance: 0.8, ")
    message = errors_of(text)
    assert "inputs.teacher.conductance" in message and "beta" in message


def test_prospective_keys_are_errors_in_a_microcircuit():
    from microcircuit.shipped import DEFAULT_SPEC

    text = DEFAULT_SPEC.read_text().replace("rule: {dendritic_prediction: {eta: 5.0}}}",
                                            "rule: {dendritic_prediction: {eta: 5.0}}, conv: {kernel: 2}}")
    assert "projections.up_1.conv" in errors_of(text)


def test_pooling_a_flat_population_is_an_error():
    text = spec_text().replace("w_2: {source: h_1, target: out.basal,", "w_2: {source: h_1, target: out.basal, "
                               "pool: {max: 2},")
    assert "projections.w_2.pool" in errors_of(text)


def test_recordings_of_a_prospective_network():
    """Errors, basal inputs and rates are recordable (and named with their units in the index)."""
    extra = """record:
  - {var: out.soma.error, every: 5, phases: [train]}
  - {var: h_1.basal.v, every: 10, reduce: mean_abs}
  - {var: "*.soma.rate", every: 10, phases: [test]}"""
    exp = experiment(spec_text(extra=extra, epochs=1), n_seeds=1)
    exp.run()
    chunk = exp.recorder.take_chunk()
    assert chunk["out.soma.error"].shape == (8 * 10 // 5, 1, 1, 3)  # 8 bars, 10 steps, every 5th
    assert chunk["h_1.basal.v"].ndim == 3 and "h_1.soma.rate" in chunk and "out.soma.rate" in chunk
    assert exp.recorder.index()["variables"]["out.soma.error"]["units"].startswith("potential")


def test_the_synaptic_low_pass_delays_the_basal_input_exponentially():
    """With tau_s, the first area's basal input after n steps of a constant input from rest is
    W r (1 - (1 - dt/tau_s)^n) (forward Euler of the low-pass; exact to rounding)."""
    text = spec_text(bias=False).replace("w_1: {source: x, target: h_1.basal}", "w_1: {source: x, target: h_1.basal, "
                                         "tau_s: 1.0}")
    sim = build(text)
    x = torch.rand(2, 4, 9, generator=torch.Generator().manual_seed(10), dtype=F64)
    for n in range(1, 6):
        sim.step(x, None, PhasePlan())
        expected = torch.bmm(x, sim.state.weights["w_1"].transpose(1, 2)) * (1.0 - (1.0 - 0.1 / 1.0) ** n)
        torch.testing.assert_close(sim.state.v["h_1.basal"], expected, rtol=1e-12, atol=1e-12)
