"""idx reader and the MNIST / Fashion-MNIST tasks, on small synthetic files (and the real
Fashion-MNIST files where Debian's dataset-fashion-mnist is installed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from microcircuit.spec.schema import TaskSpec
from microcircuit.tasks import TASKS, Architecture, make_task
from microcircuit.tasks.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_images_labels, write_idx
from microcircuit.tasks.mnist import DEBIAN_FASHION_MNIST, FashionMnistTask, MnistTask
from tests.conftest import CIRCUITS, build

ARCH = Architecture([784, 20, 10], [0.5, 0.7], np.tanh)


def synthetic(n: int, seed: int, rows: int = 28, cols: int = 28) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    return (gen.integers(0, 256, (n, rows, cols), dtype=np.uint8),
            gen.integers(0, 10, n, dtype=np.uint8))


def write_dataset(directory: Path, n_train: int = 30, n_test: int = 12, gz: bool = True) -> dict[str, np.ndarray]:
    """The four idx files of a tiny MNIST-format data set; returns the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    train_x, train_y = synthetic(n_train, 1)
    test_x, test_y = synthetic(n_test, 2)
    for name, array in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                        ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
        write_idx(directory / (name + suffix), array)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


# ------------------------------------------------------------------ the reader
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_plain_and_gzip(tmp_path, suffix):
    images, labels = synthetic(7, 0, rows=4, cols=3)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    x, y = read_images_labels(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert x.dtype == np.uint8 and x.shape == (7, 4, 3) and y.shape == (7,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_header_layout_is_big_endian(tmp_path):
    """Hand-written header: magic 0x00000803, then the sizes 2, 1, 3 as big-endian int32."""
    raw = bytes.fromhex("00000803" "00000002" "00000001" "00000003") + bytes(range(6))
    (tmp_path / "f").write_bytes(raw)
    x = read_idx(tmp_path / "f", IMAGES_MAGIC)
    np.testing.assert_array_equal(x, np.arange(6, dtype=np.uint8).reshape(2, 1, 3))


def test_truncated_file(tmp_path):
    path = write_idx(tmp_path / "img", synthetic(5, 0, 4, 4)[0])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"img: truncated: .*\(5, 4, 4\) = 80 bytes of data, found 77"):
        read_idx(path, IMAGES_MAGIC)
    path.write_bytes(path.read_bytes()[:9])  # inside the header
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "img.gz", synthetic(50, 0)[0])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"img\.gz"):
        read_idx(path, IMAGES_MAGIC)


def test_wrong_magic(tmp_path):
    labels = write_idx(tmp_path / "labels", synthetic(5, 0)[1])
    with pytest.raises(ValueError, match=r"labels: wrong magic number 0x00000801, expected 0x00000803"):
        read_idx(labels, IMAGES_MAGIC)
    gz_bytes = gzip.compress(labels.read_bytes())
    (tmp_path / "labels_compressed").write_bytes(gz_bytes)  # gzip data without the .gz suffix
    with pytest.raises(ValueError, match="without the .gz suffix"):
        read_idx(tmp_path / "labels_compressed", LABELS_MAGIC)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nothing-here: no such file \(expected an MNIST-format idx file\)"):
        read_idx(tmp_path / "nothing-here", LABELS_MAGIC)


def test_count_mismatch(tmp_path):
    write_idx(tmp_path / "img", synthetic(5, 0, 2, 2)[0])
    write_idx(tmp_path / "lab", synthetic(6, 0)[1])
    with pytest.raises(ValueError, match="holds 5 images but .* holds 6 labels"):
        read_images_labels(tmp_path / "img", tmp_path / "lab")


# ------------------------------------------------------------------ the tasks
def test_registered():
    assert {"mnist", "fashion_mnist"} <= set(TASKS.names())


@pytest.mark.parametrize("gz", [True, False])
def test_splits_from_data_dir(tmp_path, gz):
    """validation = the last `validation` training images, train = the first of the rest, pixels / 255."""
    written = write_dataset(tmp_path / "d", gz=gz)
    task = make_task(TaskSpec(mnist=MnistTask(data_dir=str(tmp_path / "d"), validation=10, train=15, test=5)))
    splits = task.splits(ARCH)
    assert {k: len(v) for k, v in splits.items()} == {"train": 15, "validation": 10, "test": 5}
    np.testing.assert_allclose(splits["train"].inputs, written["train_x"][:15].reshape(15, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(splits["validation"].labels, written["train_y"][20:])
    np.testing.assert_array_equal(splits["test"].labels, written["test_y"][:5])
    targets = splits["train"].targets
    assert targets.shape == (15, 10)
    np.testing.assert_array_equal(targets.argmax(axis=1), written["train_y"][:15])
    assert set(np.unique(targets)) == {0.1, 1.0}
    assert splits["test"].inputs.min() >= 0.0 and splits["test"].inputs.max() <= 1.0


def test_default_sizes_use_everything(tmp_path):
    write_dataset(tmp_path)
    splits = make_task(TaskSpec(fashion_mnist=FashionMnistTask(data_dir=str(tmp_path), validation=8))).splits(ARCH)
    assert {k: len(v) for k, v in splits.items()} == {"train": 22, "validation": 8, "test": 12}


def test_environment_variable_and_subfolder(tmp_path, monkeypatch):
    write_dataset(tmp_path / "fashion-mnist", n_train=25)
    write_dataset(tmp_path / "mnist-files-elsewhere", n_train=40)
    monkeypatch.setenv("MICROCIRCUIT_DATA", str(tmp_path))
    fashion = make_task(TaskSpec(fashion_mnist=FashionMnistTask(validation=5)))
    assert fashion.data_dir() == tmp_path / "fashion-mnist"
    assert len(fashion.splits(ARCH)["train"]) == 20
    monkeypatch.setenv("MICROCIRCUIT_DATA", str(tmp_path / "mnist-files-elsewhere"))  # the folder itself
    assert len(make_task(TaskSpec(mnist=MnistTask(validation=5))).splits(ARCH)["train"]) == 35


def test_missing_files_error_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("MICROCIRCUIT_DATA", raising=False)
    with pytest.raises(ValueError, match=r"MICROCIRCUIT_DATA is not set.*MNIST is not packaged by Debian"):
        make_task(TaskSpec(mnist=MnistTask())).splits(ARCH)
    partial = tmp_path / "partial"
    write_dataset(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    task = make_task(TaskSpec(fashion_mnist=FashionMnistTask(data_dir=str(partial))))
    with pytest.raises(ValueError, match=r"partial \(missing t10k-labels-idx1-ubyte\[\.gz\]\).*apt-get install "
                                         r"dataset-fashion-mnist.*Nothing is downloaded"):
        task.splits(ARCH)
    with pytest.raises(ValueError, match=r"nope \(no such folder\)"):
        make_task(TaskSpec(mnist=MnistTask(data_dir=str(tmp_path / "nope")))).splits(ARCH)


def test_sizes_that_do_not_fit(tmp_path):
    write_dataset(tmp_path)
    with pytest.raises(ValueError, match="validation = 30 leaves no training images"):
        make_task(TaskSpec(mnist=MnistTask(data_dir=str(tmp_path), validation=30))).splits(ARCH)
    with pytest.raises(ValueError, match="train = 25, but only 20 training images remain"):
        make_task(TaskSpec(mnist=MnistTask(data_dir=str(tmp_path), validation=10, train=25))).splits(ARCH)
    with pytest.raises(ValueError, match="test = 13, but .* holds only 12 test images"):
        make_task(TaskSpec(mnist=MnistTask(data_dir=str(tmp_path), validation=10, test=13))).splits(ARCH)


def test_shipped_specs_validate_without_the_data():
    """The specs load (schema and semantic checks) without reading any data file."""
    for name, sizes in (("fashion_mnist_le.yaml", [784, 500, 10]), ("mnist_le.yaml", [784, 500, 500, 10])):
        spec = build(CIRCUITS / name)
        task = make_task(spec.task)
        assert task.name in ("mnist", "fashion_mnist")
        pops = spec.populations
        assert [pops[p].size for p in pops if pops[p].cell != "interneuron"] == sizes


def test_spec_with_wrong_task_key_is_an_error():
    from microcircuit.spec import SpecError

    with pytest.raises(SpecError, match="fashion_mnist"):
        build(CIRCUITS / "fashion_mnist_le.yaml", ("task={fashion_mnist: {validaton: 5}}",))


# ------------------------------------------------------------------ the real files
@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(),
                    reason=f"{DEBIAN_FASHION_MNIST} missing (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_files():
    directory = Path(DEBIAN_FASHION_MNIST)
    x, y = read_images_labels(directory / "t10k-images-idx3-ubyte.gz", directory / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [1000] * 10  # the test set is balanced
    x, y = read_images_labels(directory / "train-images-idx3-ubyte.gz", directory / "train-labels-idx1-ubyte.gz")
    assert x.shape == (60000, 28, 28) and y.shape == (60000,) and int(y.max()) == 9
    assert 0 < x.mean() < 255


def test_cli_data_dir_runs_a_spec_on_the_named_folder(tmp_path, monkeypatch, capsys):
    """`microcircuit run SPEC --data-dir DIR` and `microcircuit baseline SPEC --data-dir DIR` read DIR."""
    from microcircuit.baseline import main as baseline_main
    from microcircuit.cli import main

    monkeypatch.delenv("MICROCIRCUIT_DATA", raising=False)
    write_dataset(tmp_path / "data", n_train=40, n_test=10)
    small = ["--set", "task.mnist.validation=8", "--set", "protocol.0.epochs=1", "--set", "protocol.0.batch=8",
             "--set", "protocol.0.validate_every=0", "--set", "protocol.1.batch=10",
             "--set", "parameters.t_pres=3"]
    code = main(["run", str(CIRCUITS / "mnist_le.yaml"), "--data-dir", str(tmp_path / "data"), "--out",
                 str(tmp_path / "runs"), "-q", "--no-plot", *small])
    assert code == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = (run_dir / "metrics.csv").read_text()
    assert any(line.startswith("test,") and ",accuracy," in line for line in metrics.splitlines())
    assert baseline_main([str(CIRCUITS / "mnist_le.yaml"), "--data-dir", str(tmp_path / "data"), *small]) == 0
    assert "test" in capsys.readouterr().out
