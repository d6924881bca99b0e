"""MNIST and Fashion-MNIST classification from local idx files (never downloaded).

Both data sets are 28x28 grey-level images in 10 classes, 60000 training and 10000 test
images, stored as four idx files (see :mod:`microcircuit.tasks.idx`). Inputs are the
flattened images (row-major, 784 rates) with pixels scaled from 0..255 to [0, 1]; targets
are output potentials, ``target_high`` (1.0) at the true class and ``target_low`` (0.1)
elsewhere, as for bars.

Splits: validation = the *last* ``validation`` images of the training file (held out of
training); train = the first ``train`` (default: all) of the remaining training images;
test = the first ``test`` (default: all) images of the test file.

Where the files are looked for, in this order (the first folder holding all four wins):

1. the task's ``data_dir`` (if given, only there);
2. ``$MICROCIRCUIT_DATA/<folder>`` (``mnist`` or ``fashion-mnist``), then ``$MICROCIRCUIT_DATA`` itself;
3. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package
   ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import PositiveInt

from microcircuit.checksums import file_sha256
from microcircuit.params import Strict
from microcircuit.tasks.base import TASKS, Architecture, Split, Task, one_hot_targets
from microcircuit.tasks.idx import FILES, IMAGES_MAGIC, find_idx_file, idx_shape, read_images_labels

#: environment variable naming the data folder
DATA_ENV = "MICROCIRCUIT_DATA"
#: where Debian's ``dataset-fashion-mnist`` installs the four .gz files
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
N_CLASSES = 10
IMAGE_SIZE = 28 * 28


@lru_cache(maxsize=4)
def _load_cached(images: str, labels: str, items: tuple[tuple[int, int], ...] | None,
                 stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_images_labels(images, labels, None if items is None else list(items))
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def split_files(directory: Path, split: str) -> tuple[Path, Path]:
    """The images and labels files of ``split`` (``train`` or ``test``) in ``directory``."""
    paths = []
    for kind in ("images", "labels"):
        found = find_idx_file(directory, FILES[split][kind])
        if found is None:
            raise ValueError(f"{directory}: no {FILES[split][kind]}[.gz]")
        paths.append(found)
    return paths[0], paths[1]


def load_idx_split(directory: Path, split: str, items: list[tuple[int, int]] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Raw images [n, 28, 28] (uint8) and labels [n] (uint8) of ``split`` (``train`` or ``test``)
    from ``directory``, only the ``(start, stop)`` item ranges of ``items`` if given (the rest is
    streamed past, never held); cached per process while the files are unchanged (read-only arrays)."""
    paths = split_files(directory, split)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    key = None if items is None else tuple((int(a), int(b)) for a, b in items)
    return _load_cached(str(paths[0]), str(paths[1]), key, stamp)


def missing_files(directory: Path) -> list[str]:
    """Base names of the four idx files that are in ``directory`` neither plain nor as .gz."""
    return [name for kinds in FILES.values() for name in kinds.values() if find_idx_file(directory, name) is None]


class MnistTask(Strict):
    """MNIST digits read from the four idx files (``train-images-idx3-ubyte`` ..., optionally ``.gz``).

    ``data_dir``: the folder holding them (``~`` expanded, relative to the working directory);
    default: the environment variable ``MICROCIRCUIT_DATA``. Nothing is downloaded.
    ``validation``: the last this many training images are held out as the validation split.
    ``train`` / ``test``: use only the first this many images of the remaining training images /
    of the test set (quick runs; default all). Pixels are scaled to [0, 1].
    """

    data_dir: str | None = None
    validation: PositiveInt = 10000
    train: PositiveInt | None = None
    test: PositiveInt | None = None
    target_low: float = 0.1
    target_high: float = 1.0


class FashionMnistTask(MnistTask):
    """Fashion-MNIST, same files and parameters as :class:`MnistTask`; ``data_dir`` defaults to
    ``MICROCIRCUIT_DATA``, else ``/usr/share/datasets/fashion-mnist`` (Debian package
    ``dataset-fashion-mnist``)."""


class _IdxClassification(Task):
    """Shared code of the MNIST-format tasks; subclasses set the names and the install hint."""

    classification = True
    #: subfolder of $MICROCIRCUIT_DATA looked in first
    folder: ClassVar[str]
    #: further folders looked in after the environment variable
    default_dirs: ClassVar[tuple[str, ...]] = ()
    #: how to get the files (for the error message)
    how_to_get: ClassVar[str]
    params: MnistTask

    @property
    def n_inputs(self) -> int:
        return IMAGE_SIZE

    @property
    def n_outputs(self) -> int:
        return N_CLASSES

    def candidate_dirs(self) -> list[Path]:
        """Folders looked in, in order (see the module docstring)."""
        if self.params.data_dir is not None:
            return [Path(self.params.data_dir).expanduser()]
        dirs = []
        env = os.environ.get(DATA_ENV)
        if env:
            dirs += [Path(env).expanduser() / self.folder, Path(env).expanduser()]
        dirs += [Path(d) for d in self.default_dirs]
        return dirs

    def data_dir(self) -> Path:
        """The first candidate folder that holds all four idx files.

        Raises:
            ValueError: saying where it looked, what was missing and how to get the files.
        """
        looked = []
        for directory in self.candidate_dirs():
            if not directory.is_dir():
                looked.append(f"{directory} (no such folder)")
                continue
            missing = missing_files(directory)
            if not missing:
                return directory
            looked.append(f"{directory} (missing {', '.join(m + '[.gz]' for m in missing)})")
        where = "; ".join(looked) if looked else (
            f"nowhere: task.{self.name}.data_dir is not set and ${DATA_ENV} is not set")
        raise ValueError(f"task '{self.name}': the four idx files were not found. Looked in: {where}. "
                         f"{self.how_to_get} Nothing is downloaded by microcircuit.")

    def data_identity(self) -> dict:
        """The four idx files read (after :meth:`splits`): base name -> bytes and sha256 of the file."""
        directory = self.data_dir()
        files = {}
        for kinds in FILES.values():
            for base in kinds.values():
                path = find_idx_file(directory, base)
                files[path.name] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        return {"source": "files", "task": self.name, "files": files}

    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        p = self.params
        directory = self.data_dir()
        n_file = idx_shape(split_files(directory, "train")[0], IMAGES_MAGIC)[0]
        n_test_file = idx_shape(split_files(directory, "test")[0], IMAGES_MAGIC)[0]
        if p.validation >= n_file:
            raise ValueError(f"task '{self.name}': validation = {p.validation} leaves no training images "
                             f"({directory} holds {n_file}); use fewer")
        n_pool = n_file - p.validation
        n_train = n_pool if p.train is None else p.train
        if n_train > n_pool:
            raise ValueError(f"task '{self.name}': train = {p.train}, but only {n_pool} training images remain "
                             f"after holding out validation = {p.validation} of {n_file}")
        n_test = n_test_file if p.test is None else p.test
        if n_test > n_test_file:
            raise ValueError(f"task '{self.name}': test = {p.test}, but {directory} holds only "
                             f"{n_test_file} test images")
        # only the images asked for are kept: the first n_train, the last `validation`, the first n_test
        train_x, train_y = load_idx_split(directory, "train", [(0, n_train), (n_pool, n_file)])
        test_x, test_y = load_idx_split(directory, "test", [(0, n_test)])
        return {
            "train": self._split(train_x[:n_train], train_y[:n_train]),
            "validation": self._split(train_x[n_train:], train_y[n_train:]),
            "test": self._split(test_x, test_y),
        }

    def _split(self, images: np.ndarray, labels: np.ndarray) -> Split:
        """Split with inputs [n, rows*cols] float32 in [0, 1] (float32 halves the memory of 60000 images;
        the simulation casts to its own dtype anyway), targets [n, 10] float64, labels [n] int64."""
        inputs = images.reshape(images.shape[0], -1).astype(np.float32)
        inputs /= np.float32(255.0)  # in place: no second copy of the images
        labels = labels.astype(np.int64)
        if labels.size and labels.max() >= N_CLASSES:
            raise ValueError(f"task '{self.name}': label {int(labels.max())} outside 0..{N_CLASSES - 1}")
        targets = one_hot_targets(labels, N_CLASSES, self.params.target_low, self.params.target_high)
        return Split(inputs, targets, labels)


@TASKS.register("mnist")
class Mnist(_IdxClassification):
    """MNIST handwritten digits (LeCun et al.): 784 inputs, 10 classes. The user brings the files."""

    name = "mnist"
    Params = MnistTask
    folder = "mnist"
    params: MnistTask
    how_to_get = ("MNIST is not packaged by Debian: put the four files train-images-idx3-ubyte, "
                  "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may be .gz) "
                  f"in a folder and name it with --data-dir DIR, task.mnist.data_dir or ${DATA_ENV}.")


@TASKS.register("fashion_mnist")
class FashionMnist(_IdxClassification):
    """Fashion-MNIST (Xiao et al. 2017): 784 inputs, 10 clothing classes."""

    name = "fashion_mnist"
    Params = FashionMnistTask
    folder = "fashion-mnist"
    default_dirs = (DEBIAN_FASHION_MNIST,)
    params: FashionMnistTask
    how_to_get = ("On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist (installs the files in "
                  f"{DEBIAN_FASHION_MNIST}); or put the four idx files in a folder and set "
                  f"task.fashion_mnist.data_dir or ${DATA_ENV}.")


__all__ = ["DATA_ENV", "DEBIAN_FASHION_MNIST", "FashionMnist", "Mnist", "load_idx_split", "missing_files"]
