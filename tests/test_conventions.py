"""Run and phase conventions (model.md sec. 9): each key changes exactly what it names. float64, CPU."""

from __future__ import annotations

import pytest
import torch

from microcircuit.circuit import Circuit
from microcircuit.engine import Simulator
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.spec import SpecError
from microcircuit.spec.conventions import (
    PACKAGE,
    REFERENCE_CODE,
    average_from_steps,
    reference_lag_ms,
    resolve_conventions,
)
from microcircuit.state import Probe
from tests.conftest import CIRCUITS, build, chain_spec

F64 = torch.float64
BARS_LE, BARS_ORIG = CIRCUITS / "bars_le.yaml", CIRCUITS / "bars_orig.yaml"


def sim_of(path, *overrides: str) -> Simulator:
    return Simulator(Circuit(build(path, ("dtype=float64", *overrides))), [3], dtype=F64)


def pattern(sim: Simulator, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stimulus [1, 1, 9] and target [1, 1, 3] of a fixed bars-like pattern k."""
    g = torch.Generator().manual_seed(k)
    x = torch.rand(1, 1, 9, generator=g, dtype=F64)
    t = torch.full((1, 1, 3), 0.1, dtype=F64)
    t[..., k % 3] = 1.0
    return x, t


def test_the_presets_resolve_to_their_tables_and_keys_override_them():
    assert resolve_conventions(build(BARS_LE)).__dict__ == PACKAGE
    assert resolve_conventions(build(BARS_LE, ("conventions=reference_code",))).__dict__ == REFERENCE_CODE
    mixed = resolve_conventions(build(BARS_LE, ("conventions={base: reference_code, reset_state: false}",)))
    assert mixed.reset_state is False and mixed.initial_target == "zero"
    assert resolve_conventions(build(BARS_LE, ("conventions={initial_target: zero}",))).teacher_switch == "boundary"
    with pytest.raises(SpecError, match="conventions"):
        build(BARS_LE, ("conventions=reference",))


def test_initial_target_zero_nudges_the_first_step_towards_zero():
    """D1: with an LE output the target lags one step; before the first presentation it is zero."""
    applied = {}
    for value in ("first", "zero"):
        sim = sim_of(BARS_LE, f"conventions={{initial_target: {value}}}")
        x, t = pattern(sim, 0)
        sim.present(x, t, 1, [])  # one step: the delayed (previous) target applies
        applied[value] = sim.state.applied_target
    assert torch.equal(applied["first"], t) and torch.equal(applied["zero"], torch.zeros_like(t))
    # after the first presentation both follow the task's targets again
    for value in ("first", "zero"):
        sim = sim_of(BARS_LE, f"conventions={{initial_target: {value}}}")
        for k in range(2):
            x, t = pattern(sim, k)
            sim.present(x, t, 3, [])
        assert torch.equal(sim.state.applied_target, t)


def _first_step_after_switch(switch: str, on_then_off: bool) -> torch.Tensor:
    sim = sim_of(BARS_LE, f"conventions={{teacher_switch: {switch}}}")
    x, t = pattern(sim, 0)
    sim.present(x, t, 5, [], teacher=on_then_off)
    x2, t2 = pattern(sim, 1)
    sim.present(x2, t2, 1, [], teacher=not on_then_off)
    return sim.state.u["out"].clone()


def _one_step_by_hand(on_then_off: bool, nudged: bool) -> torch.Tensor:
    sim = sim_of(BARS_LE)
    x, t = pattern(sim, 0)
    sim.present(x, t, 5, [], teacher=on_then_off)
    x2, _ = pattern(sim, 1)
    sim.step(x2, t if nudged else None, [])  # the delayed target is the previous presentation's
    return sim.state.u["out"].clone()


@pytest.mark.parametrize("on_then_off", [True, False])
def test_teacher_switch_delayed_lags_the_on_off_flag_by_the_target_delay(on_then_off):
    """D2: after teacher on -> off the first step is still nudged (towards the previous target);
    after off -> on the first step is not. At the boundary (package) the flag switches at once."""
    assert torch.equal(_first_step_after_switch("boundary", on_then_off),
                       _one_step_by_hand(on_then_off, nudged=not on_then_off))
    assert torch.equal(_first_step_after_switch("delayed", on_then_off),
                       _one_step_by_hand(on_then_off, nudged=on_then_off))
    assert not torch.equal(_first_step_after_switch("delayed", on_then_off),
                           _first_step_after_switch("boundary", on_then_off))


def test_teacher_off_relaxation_with_teacher_relaxes_at_gl_gb_gsom_towards_the_same_potential():
    """D3: one step from rest with the teacher off: du/dt scales by (g_l + g_B + g_som) / (g_l + g_B)
    for an orig output (0.19/0.13 at the reference conductances); an LE output's u_breve is unchanged."""
    ratio = (0.03 + 0.1 + 0.06) / (0.03 + 0.1)
    for path in (BARS_ORIG, BARS_LE):
        u, sent = {}, {}
        for value in ("dendritic", "with_teacher"):
            sim = sim_of(path, f"conventions={{teacher_off_relaxation: {value}}}")
            x, _ = pattern(sim, 0)
            sim.step(x, None, [])
            u[value], sent[value] = sim.state.u["out"], sim.state.u_breve["out"]
        torch.testing.assert_close(u["with_teacher"], u["dendritic"] * ratio, rtol=1e-12, atol=0)
        if path == BARS_LE:  # u_breve = u + du / g_rate = I / (g_l + g_B) either way
            torch.testing.assert_close(sent["with_teacher"], sent["dendritic"], rtol=1e-12, atol=1e-15)
    # with the teacher on, nothing changes
    outs = []
    for value in ("dendritic", "with_teacher"):
        sim = sim_of(BARS_ORIG, f"conventions={{teacher_off_relaxation: {value}}}")
        x, t = pattern(sim, 0)
        sim.step(x, t, [])
        outs.append(sim.state.u["out"])
    assert torch.equal(*outs)


def test_average_from_averages_the_output_after_the_lag():
    """D4: two presentations of 10 steps averaged from step 4 equal the mean of the recorded outputs."""
    spec = build(BARS_ORIG, ("dtype=float64", "parameters.t_pres=10", "protocol.1.average_from=0.4"))
    sim = Simulator(Circuit(spec), [3], dtype=F64, engine="eager")
    lag = average_from_steps(spec, spec.protocol[1], output_is_le=False)
    assert lag == 4
    xs, ts = zip(*(pattern(sim, k) for k in range(2)), strict=True)
    res = sim.present_many(torch.stack(xs), torch.stack(ts), 10, sim.plastic_plan({}),
                           [Probe("u_breve", "out", 1)], average_from=lag)
    trace = res.samples[0][:, 0, 0]  # [step, n_out]
    expected = torch.stack([trace[4:10].mean(0), trace[14:20].mean(0)])
    torch.testing.assert_close(res.outputs[:, 0, 0], expected, rtol=1e-12, atol=1e-15)


def test_reference_lag_follows_the_reference_configs():
    assert [reference_lag_ms(t) for t in (3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)] == \
        [0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 15.0, 40.0, 80.0, 80.0, 80.0]
    spec = build(BARS_ORIG, ("conventions=reference_code",))
    assert average_from_steps(spec, spec.protocol[0], output_is_le=False) == 50  # t_pres 100 dt: 5 ms
    assert average_from_steps(spec, spec.protocol[0], output_is_le=True) == 0
    with pytest.raises(ValueError, match="averaged from step 100"):
        Experiment(build(BARS_ORIG, ("protocol.1.average_from=10",)), RunOptions(progress=False))


class _Sink:
    """A run writer that keeps the recording chunks in memory."""

    def __init__(self):
        self.chunks = {}

    def append_metrics(self, rows):
        pass

    def write_chunk(self, phase, epoch, arrays):
        self.chunks[phase] = arrays

    def write_checkpoint(self, name, payload):
        pass

    def metrics_mark(self):
        return {}


def _test_phase(reset: bool) -> tuple[torch.Tensor, Experiment]:
    """out.soma.u at every step of the test phase after 2 training epochs, [step, n_out]; the experiment."""
    overrides = ("dtype=float64", "parameters.t_pres=5", "protocol.0.epochs=2", "protocol.0.validate_every=0",
                 f"protocol.1.reset_state={str(reset).lower()}", "protocol.1.shuffle=false",
                 "record=[{var: out.soma.u, every: 1, phases: [test]}]")
    sink = _Sink()
    experiment = Experiment(build(BARS_LE, overrides), RunOptions(progress=False, engine="eager"), run_dir=sink)
    experiment.run()
    values = torch.as_tensor(sink.chunks["test"]["out.soma.u"])  # [sample, circuit, batch, neuron]
    return values[:, 0, 0], experiment


def test_reset_state_starts_the_phase_from_rest():
    """D5: with reset_state the test phase of a trained circuit starts from rest: its first step equals
    one step of a fresh simulator holding the trained weights; without it, it does not."""
    trace, experiment = _test_phase(reset=True)
    fresh = Simulator(experiment.circuit, experiment.seeds, dtype=F64, engine="eager")
    for name, w in experiment.sim.state.weights.items():
        fresh.state.weights[name] = w.clone()
    x = torch.as_tensor(experiment.splits["test"].inputs[:1], dtype=F64)[None]
    fresh.step(x, None, [])
    # (recordings are stored in float32: 1e-6 relative)
    torch.testing.assert_close(trace[0].double(), fresh.state.u["out"][0, 0], rtol=1e-6, atol=1e-9)
    carried, _ = _test_phase(reset=False)
    assert not torch.allclose(carried[0], trace[0], rtol=1e-6, atol=1e-9)


def test_teacher_delay_one_step_is_the_reference_rule_beyond_one_hidden_area():
    """D6: an LE output of a 3-area chain lags depth - 1 = 2 steps (package) or 1 step (reference)."""
    assert Simulator(Circuit(build(chain_spec(3))), [0], dtype=F64).target_delay == 2
    one = build(chain_spec(3), ("conventions={teacher_delay: one_step}",))
    assert Simulator(Circuit(one), [0], dtype=F64).target_delay == 1
    assert Simulator(Circuit(build(chain_spec(3, dynamics="orig"), ("conventions=reference_code",))), [0],
                     dtype=F64).target_delay == 0


@pytest.mark.parametrize("path", [CIRCUITS / "bars_le_refcode.yaml", CIRCUITS / "bars_orig_refcode.yaml"])
def test_the_compiled_engine_runs_the_reference_conventions_as_the_eager_one(path):
    """Every convention on the fused kernel: the same run as the eager engine to 1e-12 (float64)."""
    overrides = ("dtype=float64", "parameters.t_pres=20", "protocol.0.epochs=3", "protocol.1.shuffle=false")
    runs = {}
    for engine in ("eager", "compiled"):
        experiment = Experiment(build(path, overrides), RunOptions(n_seeds=2, progress=False, engine=engine))
        assert experiment.sim.engine == engine
        experiment.run()
        runs[engine] = experiment
    for name, w in runs["eager"].sim.state.weights.items():
        torch.testing.assert_close(runs["compiled"].sim.state.weights[name], w, rtol=1e-12, atol=1e-13)
    for a, b in zip(runs["eager"].result.rows, runs["compiled"].result.rows, strict=True):
        assert a[:4] == b[:4] and a[4] == pytest.approx(b[4], rel=1e-12, abs=1e-13)


# ---------------------------------------------------------------------- a golden trace of the reference
def _soft_relu(x):
    import numpy as np

    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _golden_run(experiment: Experiment, le: bool) -> tuple[dict, list[float]]:
    """The bars run of ``experiment`` as the reference program's description has it (written here
    from that description, independently of the engine): every area reads the previous step, the
    LE target and teacher flag lag one step and start at zero, the orig output is averaged after
    out_lag and relaxes with g_l + g_B + g_som, training and evaluation each start from rest, a
    validation of the 8 patterns after every epoch. Returns the final weights and the losses of
    the validations and the test, in order."""
    import numpy as np

    from microcircuit.seeds import rng

    gl, gb, ga, gd, gs, dt = 0.03, 0.1, 0.06, 0.1, 0.06, 0.1
    w = {k: v[0].numpy().copy() for k, v in experiment.sim.state.weights.items()}
    train, val, test = (experiment.splits[k] for k in ("train", "validation", "test"))
    phase = experiment.spec.protocol[0]
    eta = experiment.learning_rates(phase)
    t_pres = phase.t_pres
    lag = 0 if le else int(round(reference_lag_ms(t_pres) / dt))
    act = _soft_relu
    state = {}

    def reset():
        state.update(u_p=np.zeros(30), f_p=np.zeros(30), u_i=np.zeros(3), f_i=np.zeros(3), u_o=np.zeros(3),
                     f_o=np.zeros(3), tgt_last=np.zeros(3), on_last=None)

    def present(x, target, nudge, learn):
        if state["on_last"] is None:
            state["on_last"] = nudge
        out = np.zeros(3)
        for i in range(t_pres):
            tgt, on = (state["tgt_last"], state["on_last"]) if le else (target, nudge)
            r_p, r_i, r_o = act(state["f_p"]), act(state["f_i"]), act(state["f_o"])
            basal = w["up_1"] @ x
            apical = w["down_1"] @ r_o + w["pi_1"] @ r_i
            dend_i = w["ip_1"] @ r_p
            basal_o = w["up_2"] @ r_p
            ss_p = (gb * basal + ga * apical) / (gl + gb + ga)
            ss_i = (gd * dend_i + gs * state["f_o"]) / (gl + gd + gs)
            ss_o = (gb * basal_o + gs * tgt) / (gl + gb + gs) if on else gb * basal_o / (gl + gb)
            du_p = (gl + gb + ga) * (ss_p - state["u_p"])
            du_i = (gl + gd + gs) * (ss_i - state["u_i"])
            du_o = (gl + gb + gs) * (ss_o - state["u_o"])  # with the teacher off too (D3)
            new = {"p": state["u_p"] + (du_p / (gl + gb + ga) if le else dt * du_p),
                   "i": state["u_i"] + (du_i / (gl + gd + gs) if le else dt * du_i),
                   "o": state["u_o"] + (du_o / (gl + gb + gs) if le else dt * du_o)}
            if learn:
                d_up1 = np.outer(act(new["p"]) - act(gb / (gl + gb + ga) * basal), x)
                d_ip = np.outer(act(new["i"]) - act(gd / (gl + gd) * dend_i), r_p)
                d_up2 = np.outer(act(new["o"]) - act(gb / (gl + gb) * basal_o), r_p)
            state["f_p"], state["f_i"], state["f_o"] = new["p"], new["i"], new["o"]
            state["u_p"] = state["u_p"] + dt * du_p
            state["u_i"] = state["u_i"] + dt * du_i
            state["u_o"] = state["u_o"] + dt * du_o
            if not le:
                state["f_p"], state["f_i"], state["f_o"] = state["u_p"], state["u_i"], state["u_o"]
            if learn:
                w["up_1"] = np.clip(w["up_1"] + dt * eta["up_1"] * d_up1, -4.0, 4.0)
                w["ip_1"] = w["ip_1"] + dt * eta["ip_1"] * d_ip
                w["up_2"] = np.clip(w["up_2"] + dt * eta["up_2"] * d_up2, -5.0, 5.0)
            if i >= lag:
                out += state["f_o"]
            state["tgt_last"], state["on_last"] = target, nudge
        return out / (t_pres - lag)

    order_rng = rng(experiment.seeds[0], "order")
    losses = []
    reset()
    for _epoch in range(phase.epochs):
        for k in order_rng.permutation(len(train.inputs)):
            present(train.inputs[k], train.targets[k], True, True)
        outs = [present(val.inputs[k], val.targets[k], False, False) for k in range(len(val.inputs))]
        losses.append(float(np.mean((np.array(outs) - val.targets) ** 2)))
    reset()
    order = order_rng.permutation(len(test.inputs))
    outs = [present(test.inputs[k], test.targets[k], False, False) for k in order]
    losses.append(float(np.mean((np.array(outs) - test.targets[order]) ** 2)))
    return w, losses


@pytest.mark.parametrize("path", [CIRCUITS / "bars_le_refcode.yaml", CIRCUITS / "bars_orig_refcode.yaml"])
def test_reference_code_matches_a_golden_trace_of_the_reference_description(path):
    """``conventions: reference_code`` on bars LE and orig: 3 epochs at t_pres 20 dt from the package's
    initial weights and stimulus order equal the description's run to 1e-10 (float64; the two codes
    sum in different orders)."""
    spec = build(path, ("dtype=float64", "parameters.t_pres=20", "protocol.0.epochs=3"))
    experiment = Experiment(spec, RunOptions(progress=False))
    golden_w, golden_losses = _golden_run(experiment, le="le" in path.name.split("_")[1])
    result = experiment.run()
    losses = [v for phase, _e, _s, metric, v in result.rows if metric == "loss" and phase in ("validate", "test")]
    assert losses == pytest.approx(golden_losses, rel=1e-10, abs=1e-13)
    for name in ("up_1", "up_2", "ip_1"):
        torch.testing.assert_close(experiment.sim.state.weights[name][0], torch.as_tensor(golden_w[name]),
                                   rtol=1e-10, atol=1e-12)
    # and the package's own conventions give other numbers on the same run
    package = Experiment(build(path, ("dtype=float64", "parameters.t_pres=20", "protocol.0.epochs=3",
                                      "conventions=package")), RunOptions(progress=False)).run()
    other = [v for phase, _e, _s, metric, v in package.rows if metric == "loss" and phase in ("validate", "test")]
    assert other != pytest.approx(golden_losses, rel=1e-6)
