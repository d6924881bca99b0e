"""Backprop baseline: the circuit's equivalent feedforward network trained with SGD."""

from __future__ import annotations

import csv

import pytest
import torch

from microcircuit.baseline import main, run_baseline, training_phases
from microcircuit.circuit import Circuit
from microcircuit.reference.backprop import backprop_reference
from microcircuit.reference.network import FeedforwardNet
from tests.conftest import CIRCUITS, build, chain_spec


def test_bars_reaches_100_percent():
    """bars_le's network (9-30-3) learns the 8 patterns with SGD in the spec's 1000 epochs."""
    spec = build(CIRCUITS / "bars_le.yaml")
    result = run_baseline(spec, [1, 2])
    assert result["epochs"] == 1000 and result["batch"] == 1
    assert result["test"]["accuracy"] == [1.0, 1.0]
    assert max(result["test"]["loss"]) < 1e-3


def test_result_shapes_and_rows():
    spec = build(CIRCUITS / "bars_le.yaml")
    result = run_baseline(spec, [5, 6, 7], epochs=20, lr=0.05, batch=4, validate_every=10)
    assert (result["epochs"], result["lr"], result["batch"], result["seeds"]) == (20, 0.05, 4, [5, 6, 7])
    for split in ("train", "validation", "test"):
        assert len(result[split]["loss"]) == 3 and len(result[split]["accuracy"]) == 3
        assert all(0.0 <= a <= 1.0 for a in result[split]["accuracy"])
    phases = {(row[0], row[1]) for row in result["rows"]}
    assert phases == {("baseline_validate", 10), ("baseline_validate", 20), ("baseline_train", 20),
                      ("baseline_validation", 20), ("baseline_test", 20)}
    assert len(result["rows"]) == 5 * 3 * 2  # 5 evaluations x 3 seeds x (loss, accuracy)


def test_deterministic_and_batched_seeds_equal_single_runs():
    spec = build(CIRCUITS / "bars_le.yaml")
    first = run_baseline(spec, [1, 2], epochs=30, dtype="float64")
    again = run_baseline(spec, [1, 2], epochs=30, dtype="float64")
    assert first["test"] == again["test"] and first["rows"] == again["rows"]
    alone = run_baseline(spec, [2], epochs=30, dtype="float64")
    assert alone["test"]["loss"][0] == pytest.approx(first["test"]["loss"][1], rel=1e-10)


def test_forward_is_the_backprop_reference_network():
    """Same network as the analyses' backprop reference: y_N = c_N W_N phi(... phi(c_1 W_1 x))."""
    spec = build(chain_spec(3, sizes=5))
    circuit = Circuit(spec)
    weights = circuit.init_weights([0, 1], torch.float64)
    x = torch.rand(2, 7, 5, dtype=torch.float64)
    net = FeedforwardNet(circuit, weights)
    reference = backprop_reference(circuit, weights, x, torch.zeros(2, 7, 2, dtype=torch.float64))
    torch.testing.assert_close(net.forward(x), reference.potentials["out"], rtol=1e-12, atol=1e-12)


def test_sgd_step_lowers_the_loss_and_keeps_the_initial_weights_apart():
    spec = build(chain_spec(2, sizes=4))
    circuit = Circuit(spec)
    weights = circuit.init_weights([3], torch.float64)
    net = FeedforwardNet(circuit, weights)
    x = torch.rand(1, 8, 4, dtype=torch.float64)
    t = torch.rand(1, 8, 2, dtype=torch.float64)
    before = (net.forward(x) - t).square().mean()
    net.sgd_step(x, t, lr=0.01)
    assert (net.forward(x) - t).square().mean() < before
    assert not torch.equal(net.weights[0], weights["up_1"])  # the circuit's weights are not touched


def test_regression_task_has_no_accuracy():
    spec = build(chain_spec(2, protocol=[{"phase": "train", "data": "train", "teacher": True, "plastic": "all",
                                          "epochs": 3, "t_pres": 10}]))
    assert len(training_phases(spec)) == 1
    result = run_baseline(spec, [0])
    assert result["epochs"] == 3 and result["test"]["accuracy"] is None
    assert all(row[3] == "loss" for row in result["rows"])


def test_needs_epochs_without_a_training_phase():
    spec = build(chain_spec(2))
    with pytest.raises(ValueError, match="no training phase"):
        run_baseline(spec, [0])
    assert run_baseline(spec, [0], epochs=1)["epochs"] == 1


def test_main_prints_a_table_and_writes_csv_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(CIRCUITS / "bars_le.yaml")
    assert main([spec, "--seeds", "2", "--epochs", "50"]) == 0
    out = capsys.readouterr().out
    assert "backprop baseline of bars_le" in out and "test acc %" in out and "mean" in out
    assert list(tmp_path.iterdir()) == []
    assert main([spec, "--epochs", "5", "--out", str(tmp_path / "b.csv")]) == 0
    with open(tmp_path / "b.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["phase", "epoch", "seed", "metric", "value"] and len(rows) > 1
    assert main([spec, "--set", "protocol.0.epochs=zero"]) == 2
    assert main([spec, "--seeds", "0"]) == 2


def test_run_with_baseline_writes_both_accuracies(tmp_path, capsys):
    """`microcircuit run SPEC --baseline`: the microcircuit's and backprop's test accuracy from one command."""
    from pathlib import Path

    from microcircuit.cli import main as cli_main

    code = cli_main(["run", str(CIRCUITS / "bars_le.yaml"), "--seeds", "2", "--baseline", "--no-plot", "-q",
                 "--out", str(tmp_path), "--set", "parameters.t_pres=5", "--set", "protocol.0.epochs=20",
                 "--set", "protocol.0.validate_every=0"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("test accuracy:") for line in lines)
    assert any(line.startswith("backprop baseline (SGD, lr 0.1) test accuracy:") for line in lines)
    run_dir = Path(lines[-1])
    with open(run_dir / "baseline.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    test = [r for r in rows if r["phase"] == "baseline_test" and r["metric"] == "accuracy"]
    assert [r["seed"] for r in test] == ["1", "2"]  # the run's seeds (master 1 + i)
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in test)
    assert {r["epoch"] for r in test} == {"20"}  # as many epochs as the run trained
