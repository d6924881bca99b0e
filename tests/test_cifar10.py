"""The CIFAR-10 task on small synthetic files of the binary version (3073-byte records: a label byte,
then the red, green and blue 32x32 planes), written byte by byte here, independently of the reader."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from microcircuit.spec import load_spec_text
from microcircuit.spec.schema import TaskSpec
from microcircuit.tasks import TASKS, Architecture, Cifar10, make_task
from microcircuit.tasks import cifar10 as cifar10_module
from microcircuit.tasks.cifar10 import Cifar10Task

ARCH = Architecture([3072, 20, 10], [0.5, 0.7], np.tanh)
TRAIN = [f"data_batch_{k}.bin" for k in range(1, 6)]
TEST = "test_batch.bin"
PER_FILE = 7


def write_cifar10(directory: Path, n: int = PER_FILE, n_test: int = PER_FILE) -> dict[str, np.ndarray]:
    """The six files of a tiny CIFAR-10 binary data set: ``n`` records in each training file, ``n_test``
    in the test file, random pixels and labels. Returns the images [N, 3, 32, 32] and labels [N] of
    the training files (in file order) and of the test file."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(7)
    out = {}
    for split, names, count in (("train", TRAIN, n), ("test", [TEST], n_test)):
        images = gen.integers(0, 256, (len(names) * count, 3, 32, 32), dtype=np.uint8)
        labels = gen.integers(0, 10, len(names) * count, dtype=np.uint8)
        for k, name in enumerate(names):
            raw = bytearray()
            for i in range(k * count, (k + 1) * count):
                raw.append(int(labels[i]))
                for channel in range(3):  # red, green, blue planes, each row by row
                    for row in range(32):
                        raw += images[i, channel, row].tobytes()
            (directory / name).write_bytes(bytes(raw))
        out[f"{split}_x"], out[f"{split}_y"] = images, labels
    return out


def task(directory: Path, **params) -> Cifar10:
    return make_task(TaskSpec(cifar10=Cifar10Task(data_dir=str(directory), **params)))


def test_registered():
    assert "cifar10" in TASKS.names()
    made = task(Path("."))
    assert isinstance(made, Cifar10) and made.classification
    assert (made.n_inputs, made.n_outputs) == (3072, 10)
    assert made.check_sizes(3072, 10) == [] and len(made.check_sizes(784, 10)) == 1


def test_shapes_labels_and_targets(tmp_path):
    written = write_cifar10(tmp_path)
    splits = task(tmp_path, validation=PER_FILE).splits(ARCH)
    assert {k: len(v) for k, v in splits.items()} == {"train": 28, "validation": 7, "test": 7}
    train = splits["train"]
    assert train.inputs.shape == (28, 3072) and train.inputs.dtype == np.float32
    np.testing.assert_allclose(train.inputs, written["train_x"][:28].reshape(28, 3072) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(train.labels, written["train_y"][:28])
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(splits["test"].labels, written["test_y"])
    np.testing.assert_allclose(splits["test"].inputs, written["test_x"].reshape(7, 3072) / 255.0, rtol=1e-6)
    assert train.targets.shape == (28, 10)
    np.testing.assert_array_equal(train.targets.argmax(axis=1), written["train_y"][:28])
    assert set(np.unique(train.targets)) == {0.1, 1.0}
    custom = task(tmp_path, validation=PER_FILE, target_low=0.0, target_high=0.5).splits(ARCH)
    assert set(np.unique(custom["validation"].targets)) == {0.0, 0.5}


def test_channel_row_column_order(tmp_path):
    """Hand-placed bytes: the input is the image in channel, row, column order, [0, 1] scaled."""
    write_cifar10(tmp_path)
    record = bytearray(3073)
    record[0] = 3  # the label
    record[1 + 0] = 11  # red, row 0, column 0
    record[1 + 1024 + 31] = 22  # green, row 0, column 31
    record[1 + 2048 + 31 * 32] = 33  # blue, row 31, column 0
    record[1 + 1024 + 2 * 32 + 5] = 44  # green, row 2, column 5
    (tmp_path / TEST).write_bytes(bytes(record) * 2)
    test = task(tmp_path, validation=PER_FILE).splits(ARCH)["test"]
    assert len(test) == 2 and test.labels.tolist() == [3, 3]
    image = test.inputs[0].reshape(3, 32, 32) * 255.0
    expected = np.zeros((3, 32, 32))
    expected[0, 0, 0], expected[1, 0, 31], expected[2, 31, 0], expected[1, 2, 5] = 11, 22, 33, 44
    np.testing.assert_allclose(image, expected, atol=1e-4)
    assert image[1, 5, 2] == 0 and image[0, 0, 31] == 0  # not column-major, not channel-last


def test_validation_is_the_end_of_the_training_files_across_files(tmp_path):
    """validation = 10: the last 3 records of data_batch_4 and all 7 of data_batch_5, in order; train =
    the first 25 records (batches 1-3 and 4 records of batch 4), disjoint from it."""
    written = write_cifar10(tmp_path)
    splits = task(tmp_path, validation=10).splits(ARCH)
    assert len(splits["train"]) == 25 and len(splits["validation"]) == 10
    np.testing.assert_array_equal(splits["validation"].labels, written["train_y"][25:])
    np.testing.assert_allclose(splits["validation"].inputs, written["train_x"][25:].reshape(10, -1) / 255.0,
                               rtol=1e-6)
    np.testing.assert_allclose(splits["train"].inputs, written["train_x"][:25].reshape(25, -1) / 255.0, rtol=1e-6)


def test_train_and_test_limits_read_only_the_records_needed(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path)
    reads = []
    original = cifar10_module.read_records

    def counting(path, start, stop):
        reads.append((Path(path).name, start, stop))
        return original(path, start, stop)

    monkeypatch.setattr(cifar10_module, "read_records", counting)
    made = task(tmp_path, validation=3, train=9, test=2)
    splits = made.splits(ARCH)
    assert {k: len(v) for k, v in splits.items()} == {"train": 9, "validation": 3, "test": 2}
    np.testing.assert_array_equal(splits["train"].labels, written["train_y"][:9])
    np.testing.assert_array_equal(splits["validation"].labels, written["train_y"][32:])
    np.testing.assert_array_equal(splits["test"].labels, written["test_y"][:2])
    assert sorted(reads) == [("data_batch_1.bin", 0, 7), ("data_batch_2.bin", 0, 2), ("data_batch_5.bin", 4, 7),
                             ("test_batch.bin", 0, 2)]
    identity = made.data_identity()
    assert identity["source"] == "files" and identity["task"] == "cifar10"
    assert sorted(identity["files"]) == ["data_batch_1.bin", "data_batch_2.bin", "data_batch_5.bin", TEST]
    for name, entry in identity["files"].items():
        data = (tmp_path / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert len(task(tmp_path, validation=3).data_identity()["files"]) == 6


def test_sizes_that_do_not_fit(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="validation = 35 leaves no training images"):
        task(tmp_path, validation=35).splits(ARCH)
    with pytest.raises(ValueError, match="train = 30, but only 28 training images remain"):
        task(tmp_path, validation=7, train=30).splits(ARCH)
    with pytest.raises(ValueError, match=r"test = 8, but .*test_batch\.bin holds only 7 test images"):
        task(tmp_path, validation=7, test=8).splits(ARCH)


def test_environment_variable_folder_order(tmp_path, monkeypatch):
    for folder, n in (("cifar-10-batches-bin", 4), ("cifar10", 5), ("", 6)):
        write_cifar10(tmp_path / folder, n=n)
    monkeypatch.setenv("MICROCIRCUIT_DATA", str(tmp_path))
    made = make_task(TaskSpec(cifar10=Cifar10Task(validation=2)))
    assert made.data_dir() == tmp_path / "cifar-10-batches-bin"
    assert len(made.splits(ARCH)["train"]) == 5 * 4 - 2
    (tmp_path / "cifar-10-batches-bin" / TEST).unlink()
    assert made.data_dir() == tmp_path / "cifar10"
    (tmp_path / "cifar10" / TEST).unlink()
    assert made.data_dir() == tmp_path
    assert len(made.splits(ARCH)["train"]) == 5 * 6 - 2


def test_missing_files_error_says_where_it_looked_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("MICROCIRCUIT_DATA", raising=False)
    with pytest.raises(ValueError, match=r"task 'cifar10': .*Looked in: nowhere: task\.cifar10\.data_dir is not "
                                         r"set and \$MICROCIRCUIT_DATA is not set\. .*cifar-10-binary\.tar\.gz"):
        make_task(TaskSpec(cifar10=Cifar10Task())).splits(ARCH)
    monkeypatch.setenv("MICROCIRCUIT_DATA", str(tmp_path))
    (tmp_path / "data_batch_1.bin").write_bytes(bytes(3073))
    with pytest.raises(ValueError) as info:
        make_task(TaskSpec(cifar10=Cifar10Task())).splits(ARCH)
    message = str(info.value)
    assert "\n" not in message
    assert f"{tmp_path / 'cifar-10-batches-bin'} (no such folder); {tmp_path / 'cifar10'} (no such folder); " \
           f"{tmp_path} (missing data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, " \
           f"test_batch.bin)" in message
    assert "--data-dir" in message and message.endswith("Nothing is downloaded by microcircuit.")
    with pytest.raises(ValueError, match=r"nope \(no such folder\)"):
        task(tmp_path / "nope").splits(ARCH)
    write_cifar10(tmp_path / "unpacked" / "cifar-10-batches-bin")
    with pytest.raises(ValueError, match=r"unpacked \(missing .*; it has a subfolder cifar-10-batches-bin: name that"):
        task(tmp_path / "unpacked").splits(ARCH)


def test_truncated_file_is_an_error_naming_it_and_its_size(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError) as info:
        task(tmp_path, validation=7).splits(ARCH)
    message = str(info.value)
    assert message.startswith(f"{path}: {7 * 3073 - 100} bytes is not a whole number of 3073-byte records")
    assert "\n" not in message
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"data_batch_3\.bin: 0 bytes is not a whole number"):
        task(tmp_path, validation=7, train=1).splits(ARCH)  # checked even where no record is read


def test_label_byte_10_is_an_error(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "data_batch_2.bin"
    raw = bytearray(path.read_bytes())
    raw[4 * 3073] = 10  # the label byte of record 4
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path.name}: record 4 has label byte 10, expected 0\.\.9"):
        task(tmp_path, validation=7).splits(ARCH)
    assert len(task(tmp_path, validation=7, train=7).splits(ARCH)["train"]) == 7  # that file is not read


def test_max_bytes_limit(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    monkeypatch.setenv("MICROCIRCUIT_MAX_IDX_BYTES", str(3 * 3073))
    with pytest.raises(ValueError, match=r"data_batch_1\.bin: 21,511 bytes, above the limit of 9,219 bytes "
                                         r"\(\$MICROCIRCUIT_MAX_IDX_BYTES"):
        task(tmp_path, validation=7).splits(ARCH)


SPEC = """
schema: microcircuit/1
name: cifar10_tiny
seed: 3
dt: 0.1
schedule: propagating
parameters: {{tau_m: 10.0}}
defaults:
  population: {{dynamics: latent_equilibrium, activation: soft_relu}}
  projection: {{init: {{normal: 0.1}}, rule: {{prospective_error: {{eta: 1.0}}}}}}
populations:
  x:   {{cell: input, shape: [3, 32, 32]}}
  h_1: {{cell: prospective, shape: [2, 8, 8]}}
  out: {{cell: prospective, size: 10, activation: linear}}
projections:
  w_1: {{source: x, target: h_1.basal, conv: {{kernel: 4, stride: 4}}}}
  w_2: {{source: h_1, target: out.basal}}
task:
  cifar10: {{data_dir: {data_dir}, validation: 7, train: 6, test: 4}}
inputs:
  stimulus: {{target: x}}
  teacher: {{target: out.soma, beta: 0.1, error: potential}}
protocol:
  - {{phase: train, data: train, teacher: true, plastic: all, epochs: 1, t_pres: 3, batch: 3}}
  - {{phase: test, data: test, teacher: false, plastic: none, t_pres: 3, batch: 4}}
"""


def test_a_prospective_network_on_3x32x32_inputs_runs(tmp_path):
    from microcircuit.experiment import Experiment, RunOptions

    write_cifar10(tmp_path / "data")
    spec, _, _ = load_spec_text(SPEC.format(data_dir=tmp_path / "data"), "cifar10_tiny.yaml")
    experiment = Experiment(spec, RunOptions(progress=False))
    result = experiment.run()
    assert result.status == "done"
    accuracy = result.metric("test", "accuracy")
    assert accuracy and all(0.0 <= value <= 1.0 for value in accuracy.values())
