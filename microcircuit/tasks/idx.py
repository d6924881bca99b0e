"""Reader for MNIST-format idx files (MNIST, Fashion-MNIST), plain or gzip-compressed.

An idx file is a header followed by raw data:

    bytes 0-1  zero
    byte  2    element type (0x08 = unsigned byte, the only type used by MNIST-format data sets)
    byte  3    number of dimensions d
    then d big-endian int32 sizes, then prod(sizes) uint8 values (row-major)

so the magic number (first four bytes, big-endian) is 0x00000803 for image files
[n, rows, cols] and 0x00000801 for label files [n]. Every problem (missing, truncated,
wrong magic, image and label counts that disagree) raises a :class:`ValueError` that names
the file and says what was expected. Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

#: magic number of an idx file of unsigned bytes with 3 dimensions [n, rows, cols]
IMAGES_MAGIC = 0x00000803
#: magic number of an idx file of unsigned bytes with 1 dimension [n]
LABELS_MAGIC = 0x00000801

#: base names of the four files of an MNIST-format data set, by split and kind
FILES: dict[str, dict[str, str]] = {
    "train": {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"},
    "test": {"images": "t10k-images-idx3-ubyte", "labels": "t10k-labels-idx1-ubyte"},
}


def find_idx_file(directory: str | os.PathLike, base_name: str) -> Path | None:
    """The file ``base_name`` or ``base_name.gz`` in ``directory`` (plain first), None if neither exists."""
    directory = Path(directory)
    for candidate in (directory / base_name, directory / f"{base_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected an MNIST-format idx file)")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: cannot be read as {'gzip' if path.name.endswith('.gz') else 'an idx file'}: "
                         f"{err}") from err


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one idx file of unsigned bytes.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed with gzip.
        magic: the expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns:
        uint8 array of the shape stored in the header ([n, rows, cols] or [n]).

    Raises:
        ValueError: naming ``path`` if the file is missing, unreadable, has another magic number,
            or holds fewer or more data bytes than its header announces.
    """
    path = Path(path)
    data = _read_bytes(path)
    kind = {IMAGES_MAGIC: "images [n, rows, cols]", LABELS_MAGIC: "labels [n]"}.get(magic, f"magic {magic:#010x}")
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, too short for an idx header "
                         f"(expected idx {kind}, magic {magic:#010x})")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: wrong magic number {found:#010x}, expected {magic:#010x} (idx {kind}); "
                         "is it the right file, or a compressed file without the .gz suffix?")
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(data) < header:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, the header of idx {kind} needs {header}")
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">i4", count=n_dims, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    got = len(data) - header
    if got < expected:
        raise ValueError(f"{path}: truncated: header announces shape {shape} = {expected} bytes of data, "
                         f"found {got}")
    if got > expected:
        raise ValueError(f"{path}: {got - expected} bytes of trailing data after shape {shape} "
                         f"({expected} bytes expected)")
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(shape)


def read_images_labels(images_path: str | os.PathLike, labels_path: str | os.PathLike
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, rows, cols] (uint8) and labels [n] (uint8) from a matching pair of idx files.

    Raises:
        ValueError: as :func:`read_idx`, or if the two files hold different numbers of items.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                         f"{labels.shape[0]} labels; expected the same count (files from different data sets?)")
    return images, labels


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array of 1 or 3 dimensions as an idx file (gzip if ``path`` ends in ``.gz``).

    For tests and for converting other sources to the format the tasks read.
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim not in (1, 3):
        raise ValueError(f"idx writer supports labels [n] or images [n, rows, cols], got shape {array.shape}")
    header = (0x0800 + array.ndim).to_bytes(4, "big") + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = header + array.tobytes()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


__all__ = [
    "FILES",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "find_idx_file",
    "read_idx",
    "read_images_labels",
    "write_idx",
]
