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


# ---------------------------------------------------------------------- stimulus order from a file
def test_a_given_order_that_equals_the_drawn_one_is_the_same_run(tmp_path):
    """The package's own orders (drawn from each circuit's order stream), saved as [circuit, epoch, sample]
    for the training and test phases and read back, reproduce the run exactly."""
    from microcircuit.seeds import rng

    original = Experiment(load_spec(CIRCUITS / "bars_le.yaml", FAST)[0], RunOptions(n_seeds=2, progress=False))
    original.run()
    streams = [rng(seed, "order") for seed in original.seeds]
    train = np.stack([[g.permutation(8) for _ in range(3)] for g in streams])  # 3 epochs of 8 patterns
    test = np.stack([[g.permutation(8)] for g in streams])
    np.save(tmp_path / "train.npy", train)
    np.savez(tmp_path / "test.npz", order=test)
    path = spec_file(tmp_path, "")
    again = Experiment(load_spec(path, [*FAST, f"protocol.0.order={{file: {tmp_path / 'train.npy'}}}",
                                        f"protocol.1.order={{file: {tmp_path / 'test.npz'}}}"])[0],
                       RunOptions(n_seeds=2, progress=False))
    again.run()
    for name, w in original.sim.state.weights.items():
        assert torch.equal(w, again.sim.state.weights[name]), name
    assert original.result.rows == again.result.rows


def test_a_text_order_file_and_its_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a --set path is relative to the working folder
    (tmp_path / "order.txt").write_text("0 1 2 3 4 5 6 7\n7 6 5 4 3 2 1 0\n")
    spec = load_spec(CIRCUITS / "bars_le.yaml", [*FAST, "protocol.0.epochs=2", "protocol.0.order={file: order.txt}"])[0]
    assert spec.protocol[0].order.file == str(tmp_path / "order.txt")
    experiment = Experiment(spec, RunOptions(n_seeds=1, progress=False))
    assert experiment.orders[0].tolist() == [[[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0]]]
    for text, message in (("0 1 2\n0 1 2\n", "3 indices per epoch, the phase presents 8 samples"),
                          ("0 1 2 3 4 5 6 9\n0 1 2 3 4 5 6 7\n", r"indices must lie in 0\.\.7"),
                          ("0 1 2 3 4 5 6 7\n", r"1 epoch row\(s\), the phase has 2 epochs"),
                          ("0 1 2 3 4 5 6 7.5\n0 1 2 3 4 5 6 7\n", "expected whole sample indices")):
        (tmp_path / "order.txt").write_text(text)
        with pytest.raises(ValueError, match=message):
            Experiment(spec, RunOptions(n_seeds=1, progress=False))
