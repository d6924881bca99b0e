"""CIFAR-10 classification from the local files of its binary version (never downloaded).

CIFAR-10 (Krizhevsky 2009) holds 32x32 colour images in 10 classes, 50000 training and 10000
test images. Its binary version (``cifar-10-binary.tar.gz``, which unpacks to a folder
``cifar-10-batches-bin``) stores them in six files: ``data_batch_1.bin`` ... ``data_batch_5.bin``
(the training set, in that order) and ``test_batch.bin``, each a plain sequence of 3073-byte
records without header:

    byte  0         the label, 0..9 (``batches.meta.txt`` names the classes)
    bytes 1-1024    red plane, 32 rows of 32 pixels (row-major)
    bytes 1025-2048 green plane
    bytes 2049-3072 blue plane

Inputs are the 3072 pixel bytes as they are stored, channel, row, column, scaled from 0..255 to
[0, 1]: a population of ``shape: [3, 32, 32]`` reads them as the image. Targets are output
potentials, ``target_high`` (1.0) at the true class and ``target_low`` (0.1) elsewhere, as for MNIST.

Splits (as for MNIST, the training files read as one sequence): validation = the *last*
``validation`` training images (the end of ``data_batch_5.bin`` by default); train = the first
``train`` (default: all) of the remaining training images; test = the first ``test`` (default: all)
images of ``test_batch.bin``. Only the records of the splits are read (the files are seeked, not
streamed through), so a quick run with small ``train`` and ``test`` opens only the files it needs.

Every file's size must be a whole number of records (a truncated copy, a gzip file or CIFAR-100's
3074-byte records fail) and at most :func:`~microcircuit.tasks.idx.max_idx_bytes`
(``$MICROCIRCUIT_MAX_IDX_BYTES``); every label byte read must be 0..9.

Where the files are looked for, in this order (the first folder holding all six wins):

1. the task's ``data_dir`` (if given, only there);
2. ``$MICROCIRCUIT_DATA/cifar-10-batches-bin``, ``$MICROCIRCUIT_DATA/cifar10``, then ``$MICROCIRCUIT_DATA``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from microcircuit.checksums import file_sha256
from microcircuit.tasks.base import TASKS, Architecture, Split, Task, one_hot_targets
from microcircuit.tasks.idx import MAX_BYTES_ENV, max_idx_bytes
from microcircuit.tasks.mnist import DATA_ENV, MnistTask

N_CLASSES = 10
#: channels, rows, columns of an image
IMAGE_SHAPE = (3, 32, 32)
IMAGE_SIZE = 3 * 32 * 32
#: bytes of one record: the label byte and the pixels
RECORD_BYTES = 1 + IMAGE_SIZE
#: the training files, in the order their records are numbered
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
TEST_FILE = "test_batch.bin"
FILES: tuple[str, ...] = (*TRAIN_FILES, TEST_FILE)
#: subfolders of $MICROCIRCUIT_DATA looked in, before the folder itself
FOLDERS: tuple[str, ...] = ("cifar-10-batches-bin", "cifar10")
#: records read per block (about 3 MB), so that reading needs no second copy of a whole file
_BLOCK_RECORDS = 1024

HOW_TO_GET = ("Get the binary version of CIFAR-10 (cifar-10-binary.tar.gz from "
              "https://www.cs.toronto.edu/~kriz/cifar.html), unpack it (tar xzf cifar-10-binary.tar.gz "
              "gives the folder cifar-10-batches-bin) and name that folder with task.cifar10.data_dir, "
              f"or it or the folder holding it with --data-dir DIR or ${DATA_ENV}.")


def record_count(path: str | os.PathLike) -> int:
    """The number of records in the CIFAR-10 binary file ``path``, from its size (no data are read).

    Raises:
        ValueError: naming ``path`` if it is missing, empty, larger than :func:`max_idx_bytes`, or
            not a whole number of 3073-byte records.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected a CIFAR-10 binary file)")
    size = path.stat().st_size
    limit = max_idx_bytes()
    if size > limit:
        raise ValueError(f"{path}: {size:,} bytes, above the limit of {limit:,} bytes (${MAX_BYTES_ENV} changes it)")
    if size == 0 or size % RECORD_BYTES:
        raise ValueError(f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte records "
                         f"({size // RECORD_BYTES} records and {size % RECORD_BYTES} bytes over): truncated, "
                         "compressed, or not a CIFAR-10 binary file")
    return size // RECORD_BYTES


def read_records(path: str | os.PathLike, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 3072] (uint8, channel-row-column order) and labels [n] (uint8) of records
    ``start`` .. ``stop`` of the CIFAR-10 binary file ``path``; only those records are read.

    Raises:
        ValueError: naming ``path``: as :func:`record_count`, if the range lies outside the file, the
            file ends early, or a label byte is not 0..9.
    """
    path = Path(path)
    n_file = record_count(path)
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop <= n_file:
        raise ValueError(f"{path}: records {start}..{stop} asked for, the file holds {n_file}")
    records = np.empty((stop - start, RECORD_BYTES), dtype=np.uint8)
    flat = memoryview(records.reshape(-1))
    try:
        with open(path, "rb") as handle:
            handle.seek(start * RECORD_BYTES)
            at = 0
            while at < len(flat):
                got = handle.readinto(flat[at:at + _BLOCK_RECORDS * RECORD_BYTES])
                if not got:
                    raise ValueError(f"{path}: truncated while reading: records {start}..{stop} asked for, "
                                     f"the data end after {start + at // RECORD_BYTES}")
                at += got
    except OSError as err:
        raise ValueError(f"{path}: cannot be read: {err.strerror or err}") from err
    labels = records[:, 0].copy()
    bad = labels >= N_CLASSES
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{path}: record {start + i} has label byte {int(labels[i])}, expected 0..{N_CLASSES - 1} "
                         "(not a CIFAR-10 binary file?)")
    return records[:, 1:], labels


@lru_cache(maxsize=16)
def _read_cached(path: str, start: int, stop: int, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_records(path, start, stop)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_records(path: Path, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_records`, cached per process while the file is unchanged (read-only arrays)."""
    stat = path.stat()
    return _read_cached(str(path), int(start), int(stop), (stat.st_mtime_ns, stat.st_size))


def missing_files(directory: Path) -> list[str]:
    """Names of the six binary files that are not in ``directory``."""
    return [name for name in FILES if not (directory / name).is_file()]


class Cifar10Task(MnistTask):
    """CIFAR-10 (Krizhevsky 2009) read from the binary version's six files ``data_batch_1.bin`` ...
    ``data_batch_5.bin`` (training, in that order) and ``test_batch.bin``, each a sequence of 3073-byte
    records (a label byte, then the red, green and blue 32x32 planes, rows in order).

    ``data_dir``: the folder holding them (``~`` expanded); default: ``MICROCIRCUIT_DATA/cifar-10-batches-bin``,
    ``MICROCIRCUIT_DATA/cifar10``, then ``MICROCIRCUIT_DATA``. Nothing is downloaded.
    ``validation``: the last this many training images (the end of ``data_batch_5.bin``) are held out
    as the validation split. ``train`` / ``test``: use only the first this many of the remaining
    training images / of the test set (only those records are read; default all). Inputs are the
    3072 pixels in channel, row, column order (a population of ``shape: [3, 32, 32]``), scaled to [0, 1].
    The keys are those of :class:`MnistTask`.
    """


@TASKS.register("cifar10")
class Cifar10(Task):
    """CIFAR-10 colour images (Krizhevsky 2009): 3072 inputs, 10 classes. The user brings the files."""

    name = "cifar10"
    Params = Cifar10Task
    classification = True
    params: Cifar10Task

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
        env = os.environ.get(DATA_ENV)
        if not env:
            return []
        root = Path(env).expanduser()
        return [root / folder for folder in FOLDERS] + [root]

    def data_dir(self) -> Path:
        """The first candidate folder that holds all six binary files.

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
            candidates = self.candidate_dirs()
            inside = [f for f in FOLDERS if (directory / f).is_dir() and directory / f not in candidates]
            hint = f"; it has a subfolder {inside[0]}: name that" if inside else ""
            looked.append(f"{directory} (missing {', '.join(missing)}{hint})")
        where = "; ".join(looked) if looked else (
            f"nowhere: task.{self.name}.data_dir is not set and ${DATA_ENV} is not set")
        raise ValueError(f"task '{self.name}': the six CIFAR-10 binary files ({', '.join(FILES)}) were not found. "
                         f"Looked in: {where}. {HOW_TO_GET} Nothing is downloaded by microcircuit.")

    def _plan(self) -> tuple[Path, dict[str, dict[str, list[tuple[int, int]]]]]:
        """The folder and, per split, the ``(start, stop)`` record ranges to read from each file
        (files in order; only files with records to read). Checks every file's size and the split sizes."""
        p = self.params
        directory = self.data_dir()
        counts = {name: record_count(directory / name) for name in FILES}
        n_file = sum(counts[name] for name in TRAIN_FILES)
        n_test_file = counts[TEST_FILE]
        if p.validation >= n_file:
            raise ValueError(f"task '{self.name}': validation = {p.validation} leaves no training images "
                             f"({directory} holds {n_file} in {', '.join(TRAIN_FILES)}); use fewer")
        n_pool = n_file - p.validation
        n_train = n_pool if p.train is None else p.train
        if n_train > n_pool:
            raise ValueError(f"task '{self.name}': train = {p.train}, but only {n_pool} training images remain "
                             f"after holding out validation = {p.validation} of {n_file}")
        n_test = n_test_file if p.test is None else p.test
        if n_test > n_test_file:
            raise ValueError(f"task '{self.name}': test = {p.test}, but {directory / TEST_FILE} holds only "
                             f"{n_test_file} test images")

        def ranges(files: tuple[str, ...], lo: int, hi: int) -> dict[str, list[tuple[int, int]]]:
            """Records lo..hi of ``files`` read as one sequence, as ranges within each file."""
            out, offset = {}, 0
            for name in files:
                a, b = max(lo, offset), min(hi, offset + counts[name])
                if a < b:
                    out[name] = [(a - offset, b - offset)]
                offset += counts[name]
            return out

        plan = {"train": ranges(TRAIN_FILES, 0, n_train),
                "validation": ranges(TRAIN_FILES, n_pool, n_file),
                "test": ranges((TEST_FILE,), 0, n_test)}
        return directory, plan

    def data_identity(self) -> dict:
        """The binary files the splits read: file name -> bytes and sha256 of the file."""
        directory, plan = self._plan()
        used = {name for files in plan.values() for name in files}
        files = {}
        for name in FILES:
            if name in used:
                path = directory / name
                files[name] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        return {"source": "files", "task": self.name, "files": files}

    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        directory, plan = self._plan()
        splits = {}
        for split, files in plan.items():
            parts = [load_records(directory / name, a, b) for name, spans in files.items() for a, b in spans]
            images = parts[0][0] if len(parts) == 1 else np.concatenate([x for x, _ in parts])
            labels = parts[0][1] if len(parts) == 1 else np.concatenate([y for _, y in parts])
            splits[split] = self._split(images, labels)
        return splits

    def _split(self, images: np.ndarray, labels: np.ndarray) -> Split:
        """Split with inputs [n, 3072] float32 in [0, 1] (channel, row, column; float32 as for MNIST),
        targets [n, 10] float64, labels [n] int64."""
        inputs = images.astype(np.float32)
        inputs /= np.float32(255.0)  # in place: no second copy of the images
        labels = labels.astype(np.int64)
        targets = one_hot_targets(labels, N_CLASSES, self.params.target_low, self.params.target_high)
        return Split(inputs, targets, labels)


__all__ = ["FILES", "IMAGE_SHAPE", "RECORD_BYTES", "Cifar10", "load_records", "missing_files", "read_records",
           "record_count"]
