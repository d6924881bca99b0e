"""Initial weights from files: ``init: {file: weights.npz, key: ...}`` (round trip, located errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microcircuit.experiment import Experiment, RunOptions
from microcircuit.spec import SpecError, load_spec
from tests.conftest import CIRCUITS

FAST = ["parameters.t_pres=5", "protocol.0.epochs=3", "protocol.0.validate_every=0", "dtype=float64"]


def spec_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"extends: {CIRCUITS / 'bars_le.yaml'}\nname: from_file\n{body}")
    return path


def run(path: Path, seeds: int = 2) -> Experiment:
    experiment = Experiment(load_spec(path, FAST)[0], RunOptions(n_seeds=seeds, progress=False))
    experiment.run()
    return experiment


def test_a_run_from_its_own_initial_weights_is_the_same_run(tmp_path):
    """Every projection's initial weights, saved per circuit and read back, reproduce the run exactly."""
    original = Experiment(load_spec(CIRCUITS / "bars_le.yaml", FAST)[0], RunOptions(n_seeds=2, progress=False))
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in original.sim.state.weights.items()})
    original.run()
    # relative to the spec file, whatever the working folder
    path = spec_file(tmp_path, "defaults:\n  projection: {init: {file: w.npz}}\n")
    again = run(path)
    for name, w in original.sim.state.weights.items():
        assert torch.equal(w, again.sim.state.weights[name]), name
    assert original.result.rows == again.result.rows


def test_one_matrix_for_every_circuit_and_a_named_key(tmp_path):
    w = np.random.default_rng(0).uniform(-1, 1, (30, 9))
    np.savez(tmp_path / "one.npz", first_layer=w)
    path = spec_file(tmp_path, "projections:\n  up_1: {init: {file: one.npz, key: first_layer}}\n")
    experiment = Experiment(load_spec(path, FAST)[0], RunOptions(n_seeds=3, progress=False))
    for c in range(3):
        np.testing.assert_array_equal(experiment.sim.state.weights["up_1"][c].numpy(), w)


@pytest.mark.parametrize("content, message", [
    (None, r"spec\.yaml:4:17: error: projections\.up_1\.init\.file: .*missing\.npz: no such file"),
    ({"other": np.zeros((30, 9))}, r"no array 'up_1' \(arrays: other\)"),
    ({"up_1": np.zeros((9, 30))}, r"has shape \[9, 30\], projection 'up_1' needs \[post, pre\] = \[30, 9\]"),
    ({"up_1": np.full((30, 9), np.nan)}, r"holds NaN or infinite values"),
    ({"up_1": np.zeros(3)}, r"expected numbers of shape \[post, pre\] or \[circuit, post, pre\]"),
])
def test_bad_weight_files_are_located_spec_errors(tmp_path, content, message):
    name = "missing.npz" if content is None else "bad.npz"
    if content is not None:
        np.savez(tmp_path / name, **content)
    path = spec_file(tmp_path, f"projections:\n  up_1: {{init: {{file: {name}}}}}\n")
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_a_file_that_is_not_an_archive(tmp_path):
    (tmp_path / "w.npz").write_text("not numpy")
    with pytest.raises(SpecError, match=r"cannot be read as an \.npz archive"):
        load_spec(spec_file(tmp_path, "projections:\n  up_1: {init: {file: w.npz}}\n"))


def test_per_circuit_weights_for_fewer_circuits_than_seeds(tmp_path):
    np.savez(tmp_path / "w.npz", up_1=np.zeros((2, 30, 9)))
    path = spec_file(tmp_path, "projections:\n  up_1: {init: {file: w.npz}}\n")
    with pytest.raises(ValueError, match=r"holds weights of 2 circuit\(s\), circuit 2 asked for"):
        Experiment(load_spec(path, FAST)[0], RunOptions(n_seeds=3, progress=False))
