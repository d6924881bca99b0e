"""The sweep layer: sweep files with located errors, batching of runs into simulations (a grouped run equals
the run alone), executors (in this process and on a Dask LocalCluster give the same table), restart after
SIGKILL, failed runs recorded while the others finish, the results table and its plot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from microcircuit.cli import main as cli
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.spec import SpecError
from microcircuit.spec.conventions import average_from_steps
from microcircuit.sweep import execute, load_sweep, plan
from microcircuit.sweep.grouping import separating_keys
from microcircuit.sweep.runner import describe
from microcircuit.sweep.worker import _simulate
from tests.conftest import CIRCUITS, ROOT

BARS = (CIRCUITS / "bars_le.yaml").as_posix()


def sweep_file(tmp_path: Path, body: str, name: str = "small", sets: str = "") -> Path:
    text = f"""schema: microcircuit-sweep/1
name: {name}
circuit: {BARS}
set:
  protocol.0.validate_every: 0
  record: []
{sets}{body}"""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


SMALL = """axes:
  t_pres:
    key: parameters.t_pres
    values: [3, 5]
  eta:
    key: projections.up_1.rule.dendritic_prediction.eta
    values: [5.0, 10.0]
seeds: 2
metrics: [test/accuracy, test/loss]
curves: [train/accuracy]
"""


SHIPPED_SWEEPS = sorted((CIRCUITS / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_plan(path: Path):
    """Every shipped sweep file expands into valid circuits (what ``--dry-run`` checks), one run per point of
    its axes, each in exactly one simulation."""
    sweep = load_sweep(path)
    p = plan(sweep)
    points = 1
    for axis in sweep.axes:
        points *= len(axis)
    assert len(p.runs) == points > 1
    assert sorted(id(r) for t in p.tasks for r in t.runs) == sorted(id(r) for r in p.runs)


def test_both_conventions_sweep_batches_what_the_engine_allows():
    """The Fig. 3 sweep under both conventions: under each, LE and orig of one presentation time share a
    simulation (under the reference program's, each circuit's output window follows its dynamics)."""
    p = plan(load_sweep(CIRCUITS / "sweeps" / "tpres_bars_conventions.yaml"))
    sizes = {}
    for task in p.tasks:
        conventions = {r.axes["conventions"] for r in task.runs}
        assert len(conventions) == 1
        sizes.setdefault(conventions.pop(), []).append(task.n_circuits)
    assert sizes == {"package": [20] * 11, "reference_code": [20] * 11}


# ---------------------------------------------------------------------- batching
def assert_equals_the_run_alone(grouped: dict, k: int, experiment: Experiment) -> None:
    """Run ``experiment`` (one run of a sweep, built alone); its weights and metric rows equal those of the
    ``k``-th run of the ``grouped`` simulation to 1e-12 (float64)."""
    alone = experiment.run()
    for name, w in experiment.sim.state.weights.items():
        torch.testing.assert_close(grouped["weights"][k][name], w, rtol=0, atol=1e-12)
    rows = [r for r in grouped["rows"][k] if r[0] != "run"]
    assert len(rows) == len(alone.rows)
    for (p1, e1, s1, m1, v1), (p2, e2, s2, m2, v2) in zip(rows, alone.rows, strict=True):
        assert (p1, e1, s1, m1) == (p2, e2, s2, m2) and abs(v1 - v2) <= 1e-12


def assert_one_batch_equals_each_run_alone(path: Path, batched_over: list[str], engine: str = "compiled") -> dict:
    """The sweep file ``path`` (two seeds per run, float64) plans one simulation batched over ``batched_over``,
    which runs on ``engine``, and each of its runs equals the run alone (1e-12); returns the outcome."""
    p = plan(load_sweep(path))
    assert len(p.tasks) == 1 and p.tasks[0].batched_over == batched_over
    grouped = _simulate(p.runs, "cpu")
    assert grouped["status"] == "done" and grouped["engine"] == engine, grouped["diagnosis"]
    for k, run in enumerate(p.runs):
        assert_equals_the_run_alone(grouped, k, Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0],
                                                                                progress=False)))
    return grouped


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_grouped_run_equals_the_run_alone(tmp_path, dtype):
    """Runs that differ in learning rates (a rule's eta and a phase's eta_scale) and in the LE mismatch share
    one simulation; each run's circuits give the numbers of the run alone, the alignment with backprop
    included (float64 to 1e-12; float32 to its rounding)."""
    path = sweep_file(tmp_path, """axes:
  lr:
    zip:
      eta_up_1: {key: projections.up_1.rule.dendritic_prediction.eta, values: [5.0, 12.0, 2.0]}
      scale: {key: protocol.0.eta_scale, values: [inverse_t_pres, 0.05, inverse_t_pres]}
      mismatch:
        key: defaults.population.dynamics
        values: [latent_equilibrium, {latent_equilibrium: {mismatch: {spread: 0.2}}},
                 {latent_equilibrium: {mismatch: {distribution: normal, spread: 0.1}}}]
seeds: 2
metrics: [test/accuracy, test/loss, train/angle_apical_bp/pyr_1, run/tau_r_error_initial]
""", sets=f"  protocol.0.epochs: 3\n  parameters.t_pres: 5\n  dtype: {dtype}\n  compare_backprop: true\n")
    p = plan(load_sweep(path))
    assert len(p.tasks) == 1 and p.tasks[0].n_circuits == 6
    assert p.tasks[0].batched_over == ["seed", "eta_up_1", "scale", "mismatch"]
    grouped = _simulate(p.runs, "cpu")
    assert grouped["status"] == "done"
    tol = {"rtol": 0, "atol": 1e-12} if dtype == "float64" else {"rtol": 2e-5, "atol": 2e-6}
    for k, run in enumerate(p.runs):
        experiment = Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0], progress=False))
        if k == 1:
            assert not torch.equal(experiment.sim.state.tau_r_factor["pyr_1"], torch.ones_like(
                experiment.sim.state.tau_r_factor["pyr_1"]))
        alone = experiment.run()
        for name, w in experiment.sim.state.weights.items():
            torch.testing.assert_close(grouped["weights"][k][name], w, **tol)
        rows = [r for r in grouped["rows"][k] if r[0] != "run"]  # not the run-level rows (diverged, ...)
        assert {r[2] for r in grouped["rows"][k] if r[0] == "run"} == set(run.seeds)
        assert any(r[3] == "angle_apical_bp/pyr_1" for r in rows) and len(rows) == len(alone.rows)
        for (p1, e1, s1, m1, v1), (p2, e2, s2, m2, v2) in zip(rows, alone.rows, strict=True):
            assert (p1, e1, s1, m1) == (p2, e2, s2, m2)
            # float32: angles (degrees, near 0 here) amplify the rounding of their cosines
            assert abs(v1 - v2) <= (1e-12 if dtype == "float64" else 1e-4 * max(1.0, abs(v2)))


def test_noise_levels_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in somatic and rate noise levels (0 included: no draws from that circuit's stream) share
    one simulation on the compiled engine and on the eager one; each equals the run alone (float64, 1e-12)."""
    for engine in ("compiled", "eager"):
        path = sweep_file(tmp_path, """axes:
  level:
    zip:
      soma: {key: populations.pyr_1.noise, values: [0.0, 0.05, 0.0]}
      rate: {key: populations.out.rate_noise, values: [0.02, 0.0, 0.0]}
seeds: 2
metrics: [test/accuracy, test/loss]
""", name=f"noise_{engine}", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n"
                          f"  engine: {engine}\n")
        p = plan(load_sweep(path))
        assert len(p.tasks) == 1 and p.tasks[0].batched_over == ["seed", "soma", "rate"]
        grouped = _simulate(p.runs, "cpu")
        assert grouped["status"] == "done" and grouped["engine"] == engine
        for k, run in enumerate(p.runs):
            assert_equals_the_run_alone(grouped, k, Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0],
                                                                                    progress=False)))


def test_fixed_tau_r_values_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs whose LE somas have different fixed tau_r (tau_eff among them), with orig beside them, share one
    simulation; each equals the run alone (float64, 1e-12)."""
    path = sweep_file(tmp_path, """axes:
  tau_r:
    key: defaults.population.dynamics
    values:
      tau_eff: latent_equilibrium
      fast: {latent_equilibrium: {tau_r: 0.3}}
      slow: {latent_equilibrium: {tau_r: 0.8}}
      orig: orig
seeds: 2
metrics: [test/accuracy, test/loss]
""", name="tau_r", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n")
    p = plan(load_sweep(path))
    assert len(p.tasks) == 1 and p.tasks[0].n_circuits == 8 and p.tasks[0].batched_over == ["seed", "tau_r"]
    grouped = _simulate(p.runs, "cpu")
    assert grouped["status"] == "done" and grouped["engine"] == "compiled"
    for k, run in enumerate(p.runs):
        assert_equals_the_run_alone(grouped, k, Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0],
                                                                                progress=False)))
    losses = {run.axes["tau_r"]: [r[4] for r in grouped["rows"][k] if r[3] == "loss"] for k, run in enumerate(p.runs)}
    assert losses["fast"] != losses["tau_eff"] != losses["slow"]  # the values do reach the simulation


def test_nudging_conductances_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in g_som (``parameters.g_som``: the interneurons' nudging and the teacher's) share one
    simulation, under the reference conventions' teacher-off relaxation with g_som too; each equals the run
    alone (float64, 1e-12)."""
    path = sweep_file(tmp_path, """axes:
  g_som: {key: parameters.g_som, values: [0.02, 0.06, 0.15]}
seeds: 2
metrics: [test/accuracy, test/loss]
""", name="g_som", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n"
                        "  conventions: reference_code\n")
    grouped = assert_one_batch_equals_each_run_alone(path, ["seed", "g_som"])
    losses = [[r[4] for r in rows if r[3] == "loss"] for rows in grouped["rows"]]
    assert losses[0] != losses[1] != losses[2]  # the values do reach the simulation


def test_transmission_delays_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in the transmission delay of every weighted projection (``defaults.projection.delay``:
    none, 2 steps, 2 +- 1 steps) and in the dynamics (LE and orig) share one simulation; each equals the run alone
    (float64, 1e-12), and the delays reach the simulation."""
    path = sweep_file(tmp_path, """axes:
  variant: {key: defaults.population.dynamics, values: {LE: latent_equilibrium, orig: orig}}
  delay: {key: defaults.projection.delay, values: [0, 2, {steps: 2, jitter: 1}]}
seeds: 2
metrics: [test/accuracy, test/loss]
""", name="delay", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n")
    grouped = assert_one_batch_equals_each_run_alone(path, ["seed", "variant", "delay"])
    losses = [[r[4] for r in rows if r[3] == "loss"] for rows in grouped["rows"][:3]]
    assert losses[0] != losses[1] != losses[2]


def test_weight_precisions_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in the weight precision (``defaults.projection.precision``: float weights, 6 bits to the
    nearest level, 8 bits stochastic) share one simulation; each equals the run alone (float64, 1e-12)."""
    path = sweep_file(tmp_path, """axes:
  precision:
    key: defaults.projection.precision
    values: {float: null, nearest6: {bits: 6, range: 2.0}, stochastic8: {bits: 8, range: 2.0, rounding: stochastic}}
seeds: 2
metrics: [test/accuracy, test/loss]
""", name="precision", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n")
    grouped = assert_one_batch_equals_each_run_alone(path, ["seed", "precision"])
    losses = [[r[4] for r in rows if r[3] == "loss"] for rows in grouped["rows"]]
    assert losses[0] != losses[1] != losses[2]


def test_conductances_share_a_simulation_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in the leak and dendritic conductances (``parameters.g_a`` of the hidden area and
    ``parameters.g_d`` of the interneurons, which sets their self-predicting weights) share one simulation: each
    relaxes at its own g_tot, predicts with its own attenuation, starts from its own self-predicting weights and
    is compared with backprop through its own attenuations; each equals the run alone (float64, 1e-12). With the
    teacher task the conductances set the targets, so they stay apart."""
    path = sweep_file(tmp_path, """axes:
  g_a: {key: parameters.g_a, values: [0.06, 0.12]}
  g_d: {key: parameters.g_d, values: [0.1, 0.2]}
seeds: 2
metrics: [test/accuracy, test/loss, train/angle_apical_bp/pyr_1]
""", name="conductances", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n"
                              "  compare_backprop: true\n")
    grouped = assert_one_batch_equals_each_run_alone(path, ["seed", "g_a", "g_d"])
    angles = [[r[4] for r in rows if r[3] == "angle_apical_bp/pyr_1"] for rows in grouped["rows"]]
    assert len({tuple(a) for a in angles}) == 4
    teacher = tmp_path / "teacher.yaml"
    teacher.write_text(f"""schema: microcircuit-sweep/1
name: teacher
circuit: {(CIRCUITS / "teacher_le.yaml").as_posix()}
axes:
  g_a: {{key: parameters.g_a, values: [0.06, 0.12]}}
seeds: 1
metrics: [test/loss]
""")
    p = plan(load_sweep(teacher))
    assert len(p.tasks) == 2
    assert separating_keys([r.spec for r in p.runs]) == ["populations.pyr_1.conductances.g_a"]
    assert "the teacher task's targets follow the conductances" in describe(p)


def test_tau_r_learning_rates_share_a_simulation_with_orig_and_each_run_equals_the_run_alone(tmp_path):
    """Runs that differ in a phase's tau_r learning rate, and orig runs beside them, share one simulation; each
    equals the run alone (float64, 1e-12), and only the LE runs report tau_r errors."""
    path = sweep_file(tmp_path, """axes:
  variant:
    key: defaults.population.dynamics
    values: {LE: {latent_equilibrium: {mismatch: {spread: 0.1}}}, orig: orig}
  tau_r_eta: {key: protocol.0.tau_r_eta, values: [0.0, 0.5]}
seeds: 2
metrics: [test/accuracy, test/loss, run/tau_r_error]
""", name="tau_r_eta", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n")
    p = plan(load_sweep(path))
    assert len(p.tasks) == 1 and p.tasks[0].batched_over == ["seed", "variant", "tau_r_eta"]
    grouped = _simulate(p.runs, "cpu")
    assert grouped["status"] == "done" and grouped["engine"] == "compiled"
    errors = {}
    for k, run in enumerate(p.runs):
        assert_equals_the_run_alone(grouped, k, Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0],
                                                                                progress=False)))
        errors[(run.axes["variant"], run.axes["tau_r_eta"])] = [r[4] for r in grouped["rows"][k]
                                                                if r[3] == "tau_r_error"]
    assert not errors[("orig", 0.0)] and not errors[("orig", 0.5)]
    assert errors[("LE", 0.5)] != errors[("LE", 0.0)]  # the learning rate reaches the simulation


def test_divergence_per_circuit_runs_the_other_circuits_alone(tmp_path):
    """``divergence: circuit``: a run's runaway circuits are recorded as diverged, its others are simulated alone
    and give the numbers of ``microcircuit run --seed S``."""
    from microcircuit.sweep.worker import _per_circuit

    path = sweep_file(tmp_path, "seeds: 2\nmetrics: [test/accuracy, run/diverged]\ndivergence: circuit\n",
                      sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n  dtype: float64\n")
    p = plan(load_sweep(path))
    assert p.tasks[0].divergence == "circuit"
    (run,) = p.runs
    batch = _simulate([run], "cpu")
    outcome = _per_circuit(run, "cpu", {**batch, "status": "diverged", "runaway": {0}, "diagnosis": "forced"})
    assert outcome["status"] == "done" and f"seed [{run.seeds[0]}] diverged" in outcome["diagnosis"]
    rows = outcome["rows"][0]
    assert ("run", 0, run.seeds[0], "diverged", 1.0) in rows and ("run", 0, run.seeds[1], "diverged", 0.0) in rows
    assert not [r for r in rows if r[2] == run.seeds[0] and r[0] != "run"]
    alone = Experiment(run.spec, RunOptions(n_seeds=1, seed=run.seeds[1], progress=False)).run()
    assert [r for r in rows if r[0] != "run"] == alone.rows


def test_what_does_not_batch_makes_separate_simulations(tmp_path):
    path = sweep_file(tmp_path, """axes:
  variant: {key: defaults.population.dynamics, values: {LE: latent_equilibrium, orig: orig}}
  t_pres: {key: parameters.t_pres, values: [3, 5]}
  eta: {key: projections.up_2.rule.dendritic_prediction.eta, log: {start: 0.5, stop: 2, num: 3}}
seeds: 3
metrics: [test/accuracy]
""", sets="  protocol.0.epochs: 1\n")
    p = plan(load_sweep(path))
    assert len(p.runs) == 12
    assert [r.axes["eta"] for r in p.runs[:3]] == [0.5, 1.0, 2.0]
    assert [len(t.runs) for t in p.tasks] == [6, 6]  # one per t_pres; the variants and the etas batch
    assert all(t.batched_over == ["seed", "variant", "eta"] for t in p.tasks)
    sweep = load_sweep(path)
    sweep.max_circuits = 4  # batch: {max_circuits: 4}
    small = plan(sweep)
    assert all(t.n_circuits <= 4 for t in small.tasks) and len(small.tasks) == 12
    assert "runs of one structure split at batch.max_circuits = 4 or batch.memory_mb = 1024" in describe(small)


@pytest.mark.parametrize("conventions", ["package", "reference_code"])
def test_le_and_orig_runs_share_a_simulation_and_each_equals_the_run_alone(tmp_path, conventions):
    """orig and LE runs (every soma, or only the output's) batch into one simulation: each circuit takes its
    own rate potential and teacher delay (under the reference conventions also its output window and, at the
    switch to the test phase, the teacher flag during its own delay), with somatic noise on the same streams;
    every run's weights and rows equal the run alone (float64, 1e-12), and only the LE circuits report tau_r
    errors."""
    path = sweep_file(tmp_path, """axes:
  variant:
    key: defaults.population.dynamics
    values: {LE: latent_equilibrium, orig: orig}
  output:
    key: populations.out.dynamics
    values: {same: null, orig: orig}
seeds: 2
metrics: [test/accuracy, test/loss, run/tau_r_error]
""", sets="  protocol.0.epochs: 3\n  parameters.t_pres: 5\n  dtype: float64\n  populations.pyr_1.noise: 0.02\n"
                      f"  conventions: {conventions}\n")
    p = plan(load_sweep(path))
    assert len(p.tasks) == 1 and p.tasks[0].n_circuits == 8
    assert p.tasks[0].batched_over == ["seed", "variant", "output"]
    grouped = _simulate(p.runs, "cpu")
    assert grouped["status"] == "done" and grouped["engine"] == "compiled"
    for k, run in enumerate(p.runs):
        assert_equals_the_run_alone(grouped, k, Experiment(run.spec, RunOptions(n_seeds=2, seed=run.seeds[0],
                                                                                progress=False)))
        tau_r_rows = [r for r in grouped["rows"][k] if r[3] == "tau_r_error"]
        assert len(tau_r_rows) == (2 if run.axes["variant"] == "LE" else 0)  # LE hidden areas: one row per seed


# ---------------------------------------------------------------------- errors
def problems_of(path: Path, **kwargs) -> str:
    with pytest.raises(SpecError) as err:
        plan(load_sweep(path, **kwargs))
    return str(err.value)


def test_bad_sweep_files_get_located_errors(tmp_path):
    path = sweep_file(tmp_path, """axes:
  t_pres:
    key: parameters.t_pres
    valuez: [3, 5]
seeds: 0
metrics: [tset/accuracy]
extra: 1
""")
    text = problems_of(path)
    assert f"{path}:10:5: error: axes.t_pres.valuez: unknown key 'valuez'" in text
    assert "did you mean 'values'?" in text
    assert f"{path}:11:1: error: seeds: seeds must be a positive integer" in text
    assert f"{path}:12:11: error: metrics.0: unknown phase 'tset'" in text and "did you mean 'test'?" in text
    assert f"{path}:13:1: error: extra: unknown key 'extra' in a sweep file" in text

    # a value that makes an expanded circuit invalid is reported at the value, naming the run
    path = sweep_file(tmp_path, """axes:
  rule:
    key: projections.up_1.rule
    values: [fixed, {dendritic_predictoin: {eta: 1.0}}]
metrics: [test/accuracy]
""", name="bad_value")
    text = problems_of(path)
    assert f"{path}:10:21: error: projections.up_1.rule" in text and "(in run rule=" in text

    # zipped members of different lengths; a missing circuit file
    path = sweep_file(tmp_path, """axes:
  lr:
    zip:
      a: {key: projections.up_1.rule.dendritic_prediction.eta, values: [1.0, 2.0]}
      b: {key: projections.up_2.rule.dendritic_prediction.eta, values: [1.0]}
metrics: [test/accuracy]
""", name="zip")
    assert f"{path}:9:5: error: axes.lr.zip: zipped members must have the same number of values" in problems_of(path)
    path.write_text(path.read_text().replace(BARS, "no_such.yaml"))
    assert f"{path}:3:1: error: circuit: cannot read 'no_such.yaml'" in problems_of(path)

    # the command line: --axis of an unknown axis, --set of an unknown key
    path = sweep_file(tmp_path, SMALL, name="cli")
    assert "<command line>:1:1: error: axis: no axis 't_pre' (axes: t_pres, eta); did you mean 't_pres'?" in \
        problems_of(path, axes=["t_pre=3"])
    assert "<command line>:1:1: error: protocol.0.epoch: no key 'epoch'" in problems_of(
        path, sets=["protocol.0.epoch=2"])


def test_dry_run_prints_runs_and_simulations_and_the_directory_last(tmp_path, capsys):
    path = sweep_file(tmp_path, SMALL)
    assert cli(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "out"), "--axis", "t_pres=3,4,5",
                "--seeds", "4", "--set", "protocol.0.epochs=2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == str(tmp_path / "out" / "small")
    assert out[0].startswith("sweep small: 6 run(s) of 4 seed(s)")
    assert sum("circuits; batched over seed, eta" in line for line in out) == 3
    assert ("separate simulations: the runs differ in protocol.0.t_pres, protocol.1.t_pres (held once for all "
            "circuits of a simulation)") in out
    assert not any(line.startswith("runs of one structure split") for line in out)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- executors
def test_in_process_and_a_local_cluster_give_the_same_table(tmp_path, capsys):
    """The same sweep in this process and, through ``microcircuit sweep --scheduler``, on a LocalCluster of two
    worker processes that the test starts on loopback: the same tables, byte for byte."""
    from distributed import LocalCluster

    path = sweep_file(tmp_path, SMALL, sets="  protocol.0.epochs: 3\n")
    alone = execute(plan(load_sweep(path)), tmp_path / "inproc", quiet=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cli(["sweep", str(path), "--out", str(tmp_path / "cluster"), "--scheduler",
                    cluster.scheduler_address, "-q"]) == 0
    cluster_dir = tmp_path / "cluster" / "small"
    assert capsys.readouterr().out.splitlines()[-1] == str(cluster_dir)
    assert len(alone) == 4 * 2 * 2
    assert (tmp_path / "inproc" / "results.csv").read_text() == (cluster_dir / "results.csv").read_text()
    assert (tmp_path / "inproc" / "curves.csv").read_text() == (cluster_dir / "curves.csv").read_text()
    pd.testing.assert_frame_equal(alone, pd.read_csv(cluster_dir / "results.csv"))
    table = pd.read_csv(cluster_dir / "results.csv")
    assert list(table.columns) == ["run", "t_pres", "eta", "seed", "metric", "value"]


def test_a_sweep_killed_mid_way_reruns_only_the_unfinished_runs(tmp_path):
    path = sweep_file(tmp_path, """axes:
  t_pres: {key: parameters.t_pres, values: [20, 21, 22, 23, 24, 25]}
seeds: 2
metrics: [test/accuracy, test/loss]
""", sets="  protocol.0.epochs: 6\n  engine: eager\n")
    command = [sys.executable, "-m", "microcircuit", "sweep", str(path), "--out", str(tmp_path / "out"), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = tmp_path / "out" / "small" / "runs"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(runs.glob("*/done.json"))) < 2:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.parent.name: p.read_text() for p in runs.glob("*/done.json")}
    assert 2 <= len(before) < 6, "the sweep was not killed mid-way"
    restarted = subprocess.run(command[:-1], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.splitlines()[-1] == str(tmp_path / "out" / "small")
    assert f"({len(before)} finished before)" in restarted.stderr
    after = {p.parent.name: p.read_text() for p in runs.glob("*/done.json")}
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())  # the finished runs were not rerun
    uninterrupted = execute(plan(load_sweep(path)), tmp_path / "whole", quiet=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "small" / "results.csv"),
                                  pd.read_csv(tmp_path / "whole" / "results.csv"))
    assert len(uninterrupted) == 6 * 2 * 2


def test_a_diverging_run_is_recorded_and_the_others_finish(tmp_path, capsys):
    """A run of a batch diverges: it is recorded as diverged, the other runs are simulated again in one batch
    without it and finish."""
    path = sweep_file(tmp_path, """axes:
  eta_ip: {key: projections.ip_1.rule.dendritic_prediction.eta, values: [2.0, 1.0e12, 1.0]}
seeds: 2
metrics: [test/accuracy]
""", sets="  protocol.0.epochs: 2\n  parameters.t_pres: 5\n")
    out = tmp_path / "out"
    assert cli(["sweep", str(path), "--out", str(out)]) == 1  # not every run is done
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == str(out / "small")
    assert "1 failed" in captured.err and "diverged" in captured.err
    runs = pd.read_csv(out / "small" / "runs.csv")
    assert list(runs["status"]) == ["done", "diverged", "done"]
    assert "NaN/Inf or exceeds" in runs["error"][1] and "ip_1" in runs["error"][1]
    assert list(runs["n_circuits"]) == [4, 2, 4]  # the runs that did not run away are batched again
    notes = {json.loads(f.read_text())["note"] for f in (out / "small" / "runs").glob("*/done.json")}
    assert any("simulated again without the runs that ran away" in n for n in notes)
    table = pd.read_csv(out / "small" / "results.csv")
    assert sorted(table["eta_ip"].unique()) == [1.0, 2.0] and len(table) == 4
    record = json.loads(next((out / "small" / "runs").glob("*/done.json")).read_text())
    assert set(record) >= {"status", "error", "seeds", "axes", "wall_s"}


def test_plot_a_sweep(tmp_path, capsys):
    path = sweep_file(tmp_path, SMALL, sets="  protocol.0.epochs: 2\n")
    sweep_dir = tmp_path / "out" / "small"
    execute(plan(load_sweep(path)), sweep_dir, quiet=True)
    assert cli(["plot", str(sweep_dir), "--x", "t_pres", "--metric", "test/loss", "--hue", "eta"]) == 0
    figure = Path(capsys.readouterr().out.splitlines()[-1])
    assert figure.parent == sweep_dir / "figures" and figure.stat().st_size > 20_000
    assert cli(["plot", str(sweep_dir), "--x", "t_pre", "--metric", "test/loss"]) == 2
    assert "'t_pre' is not an axis" in capsys.readouterr().err


def test_plot_a_sweep_with_a_style_axis(tmp_path, capsys, monkeypatch):
    """``--style`` draws one line style and marker per value of a second axis beside ``--hue``'s colours:
    2 etas x 2 conventions make 4 lines, labelled by both, and nothing is averaged over."""
    import microcircuit.sweep.plot as sweep_plot

    body = SMALL.replace("seeds: 2", """  conventions:
    key: conventions
    values: [package, reference_code]
seeds: 2""")
    path = sweep_file(tmp_path, body, sets="  protocol.0.epochs: 1\n")
    sweep_dir = tmp_path / "out" / "small"
    execute(plan(load_sweep(path)), sweep_dir, quiet=True)
    drawn = []
    save = sweep_plot.save_figure
    monkeypatch.setattr(sweep_plot, "save_figure", lambda fig, where: (drawn.append(fig), save(fig, where))[1])
    argv = ["plot", str(sweep_dir), "--x", "t_pres", "--metric", "test/loss", "--hue", "eta"]
    assert cli([*argv, "--style", "conventions"]) == 0
    figure = Path(capsys.readouterr().out.splitlines()[-1])
    assert figure == sweep_dir / "figures" / "test_loss_vs_t_pres_by_eta_and_conventions.png"
    ax = drawn[-1].axes[0]
    lines = {line.get_label(): (line.get_linestyle(), line.get_marker()) for line in ax.get_lines()}
    assert lines == {
        "eta=5.0, conventions=package: mean and range over 2 seed(s)": ("-", "o"),
        "eta=5.0, conventions=reference_code: mean and range over 2 seed(s)": ("--", "s"),
        "eta=10.0, conventions=package: mean and range over 2 seed(s)": ("-", "o"),
        "eta=10.0, conventions=reference_code: mean and range over 2 seed(s)": ("--", "s"),
    }
    assert "averaged over" not in ax.get_title()
    assert cli([*argv]) == 0  # without --style the conventions are averaged over, as the title says
    assert "(averaged over conventions)" in drawn[-1].axes[0].get_title()
    capsys.readouterr()
    assert cli([*argv, "--style", "eta"]) == 2
    assert "--style 'eta' is already --hue" in capsys.readouterr().err


# ---------------------------------------------------------------------- prospective networks
def _prospective_sweep(tmp_path: Path, axes: str, schedule: str, sets: str = "") -> Path:
    """A sweep file over a small prospective network (tests/test_prospective.py's, 2 epochs, t_pres 5 dt)."""
    from tests.test_prospective import spec_text

    circuit = tmp_path / "le_net.yaml"
    circuit.write_text(spec_text(epochs=2, t_pres=5, schedule=schedule))
    path = tmp_path / "prospective.yaml"
    path.write_text(f"""schema: microcircuit-sweep/1
name: prospective
circuit: {circuit.as_posix()}
set:
  dtype: float64
{sets}axes:
{axes}seeds: 2
metrics: [test/accuracy, run/tau_r_error]
""")
    return path


def test_prospective_runs_batch_like_microcircuits(tmp_path):
    """Prospective (LE) networks through the sweep layer: runs that differ in the dynamics (orig or LE), the tau_r
    mismatch, a fixed tau_r, the learning rate and tau_r learning (``tau_r_eta``) share one simulation; each
    run's circuits give the numbers of the run alone (float64, 1e-12)."""
    path = _prospective_sweep(tmp_path, """  variant:
    key: defaults.population.dynamics
    values:
      LE: latent_equilibrium
      orig: orig
      LE_0.3: {latent_equilibrium: {mismatch: {distribution: normal, spread: 0.3}}}
      LE_tau_r_5: {latent_equilibrium: {tau_r: 5.0, mismatch: {spread: 0.2}}}
  learning:
    zip:
      eta: {key: defaults.projection.rule.prospective_error.eta, values: [5.0, 10.0]}
      tau_r_eta: {key: protocol.0.tau_r_eta, values: [0.0, 0.5]}
""", "propagating")
    grouped = assert_one_batch_equals_each_run_alone(path, ["seed", "variant", "eta", "tau_r_eta"],
                                                   engine="eager")
    p = plan(load_sweep(path))
    errors = {(r.axes["variant"], r.axes["tau_r_eta"]): [v for ph, _, _, m, v in grouped["rows"][k]
                                                         if (ph, m) == ("run", "tau_r_error")]
              for k, r in enumerate(p.runs)}
    assert errors[("orig", 0.5)] == [0.0, 0.0]  # orig learns no tau_r
    assert errors[("LE_0.3", 0.5)] != errors[("LE_0.3", 0.0)]  # the mismatched LE circuits learn theirs


def test_prospective_noise_and_teacher_delay_batch(tmp_path):
    """Under the reference schedule an LE output's target lags by depth - 1 steps and an orig one's not, and
    averaged from the reference lag an orig output's test window starts later; runs that differ in that and in
    their somatic and rate noise share one simulation, each circuit drawing from its own stream only where its
    level is above 0; each run equals the run alone (float64, 1e-12)."""
    path = _prospective_sweep(tmp_path, """  variant:
    key: defaults.population.dynamics
    values: [latent_equilibrium, orig]
  noise:
    zip:
      somatic: {key: defaults.population.noise, values: [0.0, 0.05, 0.0]}
      rate: {key: defaults.population.rate_noise, values: [0.0, 0.0, 0.02]}
""", "reference", sets="  protocol.1.average_from: reference_lag\n")
    assert_one_batch_equals_each_run_alone(path, ["seed", "variant", "somatic", "rate"], engine="eager")
    p = plan(load_sweep(path))
    sims = [Experiment(r.spec, RunOptions(n_seeds=2, seed=r.seeds[0], progress=False)).sim for r in p.runs]
    assert [s.target_delay for s in sims] == [1, 1, 1, 0, 0, 0]  # LE outputs lag by depth - 1 = 1 step
    assert [s.has_noise for s in sims] == [False, True, True] * 2
    test_phase = p.runs[0].spec.protocol[1]
    assert [average_from_steps(r.spec, test_phase, le) for r in p.runs[:1] for le in (True, False)] == [0, 2]


def test_plot_title_names_only_the_axes_it_averages_over():
    """A zip member that moves with the hue (the fmnist sweep's tau_r_eta beside its variant) is not averaged
    over; an independent axis is."""
    from microcircuit.sweep.plot import averaged_over

    rows = [{"variant": v, "tau_r_eta": r, "t_pres": t, "eta": e, "seed": 1, "value": 0.5}
            for v, r in (("LE", 0.0), ("orig", 0.0), ("LE learnt", 10.0)) for t in (2, 5) for e in (1.0, 2.0)]
    data = pd.DataFrame(rows)
    columns = ["variant", "tau_r_eta", "t_pres", "eta"]
    assert averaged_over(data, columns, "t_pres", "variant") == ["eta"]
    assert averaged_over(data[data["eta"] == 1.0], columns, "t_pres", "variant") == []
    assert averaged_over(data, columns, "t_pres", None) == ["variant", "tau_r_eta", "eta"]


class _Clock:
    """perf_counter stand-in: seconds set by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tasks(*costs: float) -> list:
    from types import SimpleNamespace

    return [SimpleNamespace(number=k, cost=c, runs=[k]) for k, c in enumerate(costs)]


def test_the_time_estimate_schedules_what_is_left_on_the_workers(monkeypatch):
    """Two workers, one simulation of cost 10 and four of cost 1, at 1 s per unit of cost: exact answers
    of the schedule (no tolerance beyond float rounding). The long one runs from 0 to 10 s whatever the
    short ones do, so the estimate is 10 s minus the time now, not the 13 units left at the sweep's mean
    rate (which counted the long one's running time as if it produced nothing)."""
    from microcircuit.sweep import runner

    clock = _Clock()
    monkeypatch.setattr(runner.time, "perf_counter", clock)
    progress = runner.Progress(total=5, skipped=0, quiet=True)
    tasks = _tasks(10.0, 1.0, 1.0, 1.0, 1.0)
    progress.begin(tasks, workers=2)
    assert progress.eta_seconds() is None  # nothing finished: no rate yet
    for k in range(1, 5):
        clock.now = float(k)
        progress.finish(tasks[k], 1.0)
        assert progress.eta_seconds() == pytest.approx(10.0 - k, abs=1e-12)
    clock.now = 10.0
    progress.finish(tasks[0], 10.0)
    assert progress.eta_seconds() == 0.0


def test_the_time_estimate_counts_queued_simulations_and_learns_nothing_from_failures(monkeypatch):
    """One worker. A failed simulation leaves the schedule but teaches no rate; after one of cost 5 took
    10 s (2 s per unit), the running one of cost 1 and the queued one of cost 3 take 2 + 6 s."""
    from microcircuit.sweep import runner

    clock = _Clock()
    monkeypatch.setattr(runner.time, "perf_counter", clock)
    progress = runner.Progress(total=4, skipped=0, quiet=True)
    tasks = _tasks(2.0, 5.0, 1.0, 3.0)
    progress.begin(tasks, workers=1)
    clock.now = 0.5
    progress.finish(tasks[0], None)  # an error after 0.5 s: no rate
    assert progress.eta_seconds() is None
    clock.now = 4.5
    progress.finish(tasks[1], 10.0)
    assert progress.eta_seconds() == pytest.approx(1.0 * 2.0 + 3.0 * 2.0, abs=1e-12)
    clock.now = 5.5  # the running one, started at 4.5, has 1 s left
    assert progress.eta_seconds() == pytest.approx(1.0 + 6.0, abs=1e-12)


def test_a_simulations_wall_time_comes_from_its_finished_runs():
    from microcircuit.sweep.runner import _wall_seconds

    done = [{"status": "done", "started": 100.0, "finished": 130.0}, {"status": "done", "started": 100.0,
                                                                     "finished": 131.0}]
    assert _wall_seconds(done) == 31.0
    assert _wall_seconds([{"status": "error", "started": 100.0, "finished": 100.1}]) is None
    assert _wall_seconds([{"status": "diverged", "started": 100.0, "finished": 101.0}]) is None
