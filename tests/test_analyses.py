"""The analysis programs latency_vs_depth, self_prediction and tpres_sweep, in small versions, as a user runs
them (through ``microcircuit analyse``), and the sweep's batching against single runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from microcircuit.analysis import ANALYSES
from microcircuit.analysis.latency_vs_depth import settle_steps
from microcircuit.analysis.tpres_sweep import Sweep, estimate_wall_time, variant_spec
from microcircuit.cli import main as cli
from microcircuit.experiment import Experiment, RunOptions
from tests.conftest import CIRCUITS, build

TAU_EFF_STEPS = 52.63  # hidden pyramidal tau_eff of the haider2021 preset, in dt


def test_programs_are_registered():
    assert {"latency_vs_depth", "self_prediction", "tpres_sweep"} <= set(ANALYSES)


def test_settle_steps_is_relative_to_the_step_size():
    rest = np.array([[1.0, 0.0]])
    final = np.array([2.0, 1.0])
    trace = np.repeat(final[None, None], 10, axis=0)
    trace[:3, 0, 0] = [1.5, 1.98, 2.02]  # the last excursion beyond 1 % of the step (0.01) is at step 3
    assert settle_steps(trace, rest).tolist() == [4]
    trace[2, 0, 0] = 2.009  # within 1 %: settled after step 2
    assert settle_steps(trace, rest).tolist() == [3]


def test_latency_vs_depth(tmp_path):
    out = tmp_path / "latency"
    assert cli(["analyse", "latency_vs_depth", "--depths", "1", "2", "4", "--seeds", "2", "--horizon", "15",
                "--out", str(out)]) == 0
    df = pd.read_csv(out / "latency.csv")
    le = df[df["dynamics"] == "LE"]
    ref, prop = le[le["schedule"] == "reference"], le[le["schedule"] == "propagating"]
    assert (ref["settle_steps"] <= ref["depth"]).all()  # one step per area, reference schedule
    assert (prop["settle_steps"] == 1).all()  # one step in all, propagating schedule
    for _, orig in df[df["dynamics"] == "orig"].groupby("schedule"):
        mean = orig.groupby("depth")["settle_steps"].mean()
        # measured: 352, 434, 593 dt; each added area costs at least tau_eff (about 1.5 tau_eff here)
        assert mean[2] - mean[1] >= TAU_EFF_STEPS
        assert mean[4] - mean[2] >= 2 * TAU_EFF_STEPS
        assert mean[1] >= 4 * TAU_EFF_STEPS  # a single lagging area already needs several tau_eff
    assert (out / "latency.png").stat().st_size > 20_000


def test_self_prediction(tmp_path):
    out = tmp_path / "self_prediction"
    assert cli(["analyse", "self_prediction", "--quick", "--seeds", "2", "--epochs", "3", "--every", "25",
                "--out", str(out)]) == 0
    df = pd.read_csv(out / "self_prediction.csv")
    assert set(df["circuit"]) == {"bars 9-30-3", "9-20-10-3"}
    for (circuit, dynamics, pop), grp in df.groupby(["circuit", "dynamics", "population"]):
        def series(metric, grp=grp):
            return grp[grp["metric"] == metric].groupby("presentation")["value"].mean()

        settled, online, span = series("settled_apical_norm"), series("apical_norm"), series("ip_span_distance")
        where = (circuit, dynamics, pop)
        assert settled.iloc[-1] < settled.iloc[0] / 4, where  # measured: LE 1.4 -> 0.12, orig 1.4 -> 0.17
        assert online.iloc[-1] < online.iloc[0], where
        assert span.iloc[-1] < span.iloc[0] / 3, where  # W_ip's prediction approaches the analytic one's
        pi = series("pi_distance")
        assert pi.iloc[-1] < pi.iloc[0], where
    for name in ("apical.png", "weights.png"):
        assert (out / name).stat().st_size > 20_000


def test_tpres_sweep_le_learns_at_short_presentation_times(tmp_path):
    out = tmp_path / "sweep"
    assert cli(["analyse", "tpres_sweep", "--points", "3", "10", "--epochs", "300", "--seeds", "2", "--workers", "2",
                "--out", str(out)]) == 0
    acc = pd.read_csv(out / "accuracy.csv")
    mean = acc.groupby(["dynamics", "t_pres"])["test_accuracy"].mean()
    for t_pres in (3, 10):
        assert mean["LE", t_pres] >= mean["orig", t_pres]
        assert mean["orig", t_pres] <= 0.5
    # 300 epochs are enough for LE at t_pres = 10 dt on every seed (100 epochs are not: 62-100 %)
    assert (acc[(acc["dynamics"] == "LE") & (acc["t_pres"] == 10)]["test_accuracy"] == 1.0).all()
    curves = pd.read_csv(out / "curves.csv")
    assert curves.groupby(["dynamics", "t_pres", "seed"])["epoch"].max().eq(300).all()
    for name in ("accuracy.png", "curves.png"):
        assert (out / name).stat().st_size > 20_000


def test_sweep_circuit_equals_a_single_run():
    """Circuit (t_pres, seed) of the batched sweep, with its own schedule, learning rate and test, is the
    run ``microcircuit run`` does with that seed and t_pres (float64; batching may reorder sums: 1e-10)."""
    points, epochs = [3, 5], 3
    for dynamics in ("latent_equilibrium", "orig"):
        result = Sweep(variant_spec(dynamics, epochs, dtype="float64"), points, 2, log=False).run()
        assert set(result.timing["engine"]) == {"compiled"}
        for t_pres in points:
            spec = build(CIRCUITS / "bars_le.yaml", (
                f"defaults.population.dynamics={dynamics}", f"protocol.0.epochs={epochs}",
                "protocol.0.validate_every=0", "dtype=float64", "record=[]", f"parameters.t_pres={t_pres}"))
            experiment = Experiment(spec, RunOptions(n_seeds=2, progress=False))
            single = experiment.run()
            for name, w in experiment.sim.state.weights.items():
                torch.testing.assert_close(result.weights[t_pres][name], w, rtol=0, atol=1e-10)
            acc = result.accuracy[result.accuracy["t_pres"] == t_pres]
            assert dict(zip(acc["seed"], acc["test_accuracy"], strict=True)) == single.metric("test", "accuracy")
            loss = single.metric("test", "loss")
            for seed, value in zip(acc["seed"], acc["test_loss"], strict=True):
                assert abs(value - loss[seed]) < 1e-10


def test_estimate_shares_the_points_among_the_workers():
    # points 3 and 5, 1 epoch of 8 patterns and 8 tests, 2 variants, 1e6 us per step: 4 tasks of 48 and 80 s
    assert estimate_wall_time([3, 5], 1, 1e6, workers=1) == 2 * 48 + 2 * 80
    assert estimate_wall_time([3, 5], 1, 1e6, workers=2) == (2 * 48 + 2 * 80) / 2
    assert estimate_wall_time([3, 5], 1, 1e6, workers=8) == 80  # the longest point bounds the wall time


def test_every_program_has_a_summary():
    from microcircuit.analysis import SUMMARIES

    assert set(SUMMARIES) == set(ANALYSES) and all(SUMMARIES.values())
