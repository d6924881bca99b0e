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


#: largest data an idx file may declare, in bytes (Fashion-MNIST's training images are 47 MB);
#: ``$MICROCIRCUIT_MAX_IDX_BYTES`` raises or lowers it
MAX_IDX_BYTES = 2 << 30
MAX_BYTES_ENV = "MICROCIRCUIT_MAX_IDX_BYTES"
#: deflate (gzip) compresses at most about 1032:1, so a gzip file of c bytes holds less than this times c
MAX_GZIP_RATIO = 1100
_BLOCK = 1 << 20


def max_idx_bytes() -> int:
    """The limit on an idx file's declared data (:data:`MAX_IDX_BYTES` or ``$MICROCIRCUIT_MAX_IDX_BYTES``)."""
    value = os.environ.get(MAX_BYTES_ENV, "")
    return int(value) if value.isdigit() else MAX_IDX_BYTES


def _open(path: Path):
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected an MNIST-format idx file)")
    try:
        return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    except OSError as err:
        raise ValueError(f"{path}: cannot be read: {err.strerror or err}") from err


def _read(handle, n: int, path: Path) -> bytes:
    try:
        return handle.read(n)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: cannot be read as {'gzip' if path.name.endswith('.gz') else 'an idx file'}: "
                         f"{err}") from err


def _header(handle, path: Path, magic: int) -> tuple[tuple[int, ...], int]:
    """Shape and header length of the idx file open in ``handle``; every header problem is a ValueError."""
    kind = {IMAGES_MAGIC: "images [n, rows, cols]", LABELS_MAGIC: "labels [n]"}.get(magic, f"magic {magic:#010x}")
    head = _read(handle, 4, path)
    if len(head) < 4:
        raise ValueError(f"{path}: truncated: {len(head)} bytes, too short for an idx header "
                         f"(expected idx {kind}, magic {magic:#010x})")
    found = int.from_bytes(head, "big")
    if found != magic:
        raise ValueError(f"{path}: wrong magic number {found:#010x}, expected {magic:#010x} (idx {kind}); "
                         "is it the right file, or a compressed file without the .gz suffix?")
    n_dims = magic & 0xFF
    sizes = _read(handle, 4 * n_dims, path)
    if len(sizes) < 4 * n_dims:
        raise ValueError(f"{path}: truncated: {4 + len(sizes)} bytes, the header of idx {kind} needs "
                         f"{4 + 4 * n_dims}")
    shape = tuple(int(x) for x in np.frombuffer(sizes, dtype=">i4"))
    if any(size < 0 for size in shape):
        raise ValueError(f"{path}: negative size in the header's shape {shape}")
    return shape, 4 + 4 * n_dims


def _check_declared(path: Path, shape: tuple[int, ...], header: int) -> int:
    """The declared number of data bytes, after checking it against the limit and the file's size
    (before any data is read)."""
    expected = int(np.prod(shape, dtype=np.int64))
    limit = max_idx_bytes()
    if expected > limit:
        raise ValueError(f"{path}: the header declares shape {shape} = {expected:,} bytes, above the limit of "
                         f"{limit:,} bytes (${MAX_BYTES_ENV} changes it)")
    size = path.stat().st_size
    if path.name.endswith(".gz"):
        if expected > MAX_GZIP_RATIO * size + (1 << 16):
            raise ValueError(f"{path}: the header declares shape {shape} = {expected:,} bytes, more than a gzip "
                             f"file of {size:,} bytes can hold: the file is damaged or forged")
    elif size - header < expected:
        raise ValueError(f"{path}: truncated: header announces shape {shape} = {expected} bytes of data, "
                         f"found {size - header}")
    elif size - header > expected:
        raise ValueError(f"{path}: {size - header - expected} bytes of trailing data after shape {shape} "
                         f"({expected} bytes expected)")
    return expected


def read_idx(path: str | os.PathLike, magic: int, items: list[tuple[int, int]] | None = None) -> np.ndarray:
    """Read one idx file of unsigned bytes, or only some of its items.

    The declared size is checked before any data are read: against :func:`max_idx_bytes`, against
    the file's size (plain files) or the most a gzip file of its size can hold. The data are then
    streamed, so that only the asked-for items are kept in memory; the whole file is still read to
    check its length.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed with gzip.
        magic: the expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.
        items: ``(start, stop)`` ranges of items (images or labels) to keep, in order; None for all.

    Returns:
        uint8 array [n, rows, cols] or [n] with the items of ``items`` (all items if None).

    Raises:
        ValueError: naming ``path`` if the file is missing, unreadable, has another magic number,
            declares more data than allowed, holds fewer or more data bytes than its header
            announces, or ``items`` lie outside the file.
    """
    path = Path(path)
    with _open(path) as handle:
        shape, header = _header(handle, path, magic)
        expected = _check_declared(path, shape, header)
        n = shape[0] if shape else 0
        item = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
        ranges = [(0, n)] if items is None else [(int(a), int(b)) for a, b in items]
        for a, b in ranges:
            if not 0 <= a <= b <= n:
                raise ValueError(f"{path}: items {a}..{b} asked for, the file holds {n}")
        out = np.empty((sum(b - a for a, b in ranges), *shape[1:]), dtype=np.uint8)
        flat = out.reshape(-1)
        wanted = sorted((a * item, b * item, sum(bb - aa for aa, bb in ranges[:k]) * item)
                        for k, (a, b) in enumerate(ranges))
        position = 0  # bytes of data read so far
        while True:
            block = _read(handle, _BLOCK, path)
            if not block:
                break
            end = position + len(block)
            if end > expected:
                raise ValueError(f"{path}: {end - expected}+ bytes of trailing data after shape {shape} "
                                 f"({expected} bytes expected)")
            for lo, hi, at in wanted:
                a, b = max(lo, position), min(hi, end)
                if a < b:
                    flat[at + a - lo:at + b - lo] = np.frombuffer(block, dtype=np.uint8)[a - position:b - position]
            position = end
        if position < expected:
            raise ValueError(f"{path}: truncated: header announces shape {shape} = {expected} bytes of data, "
                             f"found {position}")
    return out


def idx_shape(path: str | os.PathLike, magic: int) -> tuple[int, ...]:
    """The shape an idx file's header declares (checked as by :func:`read_idx`; no data are read)."""
    path = Path(path)
    with _open(path) as handle:
        shape, header = _header(handle, path, magic)
        _check_declared(path, shape, header)
    return shape


def read_images_labels(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                       items: list[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, rows, cols] (uint8) and labels [n] (uint8) from a matching pair of idx files
    (only the ``(start, stop)`` item ranges of ``items`` if given; see :func:`read_idx`).

    Raises:
        ValueError: as :func:`read_idx`, or if the two files hold different numbers of items.
    """
    n_images = idx_shape(images_path, IMAGES_MAGIC)[0]
    n_labels = idx_shape(labels_path, LABELS_MAGIC)[0]
    if n_images != n_labels:
        raise ValueError(f"{images_path} holds {n_images} images but {labels_path} holds "
                         f"{n_labels} labels; expected the same count (files from different data sets?)")
    return read_idx(images_path, IMAGES_MAGIC, items), read_idx(labels_path, LABELS_MAGIC, items)


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
    "MAX_IDX_BYTES",
    "find_idx_file",
    "idx_shape",
    "max_idx_bytes",
    "read_idx",
    "read_images_labels",
    "write_idx",
]
