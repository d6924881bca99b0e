"""Initial weights and stimulus orders from files (``init: {file: ...}``, ``order: {file: ...}``).

A weight file is a numpy ``.npz`` archive (``numpy.savez``), read without pickles. Its path is made
absolute, relative to the spec file that wrote it, when the spec is resolved, so that the resolved
spec of a run directory still finds it; the arrays are checked (present, shape, finite) when the
spec is validated, each problem located at the ``file`` key.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

import numpy as np

from microcircuit.spec.loader import SourceMap
from microcircuit.spec.schema import FileInit, OrderFile, Spec


def anchor_files(data: dict[str, Any], smap: SourceMap) -> None:
    """Make every relative ``init.file`` (weights) and ``protocol.N.order.file`` (stimulus order) of
    ``data`` absolute, relative to the file that wrote it (the working folder for a ``--set``)."""
    def mapping(value: Any) -> dict:  # (a malformed spec is reported by the structural pass)
        return value if isinstance(value, dict) else {}

    places = [(("projections", name), proj, "init") for name, proj in mapping(data.get("projections")).items()]
    places.append((("defaults", "projection"), mapping(data.get("defaults")).get("projection"), "init"))
    protocol = data.get("protocol")
    if isinstance(protocol, list):
        places += [(("protocol", k), phase, "order") for k, phase in enumerate(protocol)]
    for path, holder, key in places:
        entry = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        file = entry["file"]
        if os.path.isabs(file):
            continue
        _, mark = smap.locate(path + (key, "file"))
        written_in = mark.file if mark is not None else ""
        base = FsPath(written_in).parent if written_in and not written_in.startswith("<") else FsPath.cwd()
        entry["file"] = os.path.normpath(os.path.abspath(base / file))


def read_order_file(order: OrderFile) -> np.ndarray:
    """The sample indices of an order file as int64, [sample], [epoch, sample] or [circuit, epoch, sample].

    Raises:
        ValueError: naming the file: missing, unreadable, no such array, not integers, or of rank > 3.
    """
    path = FsPath(order.file)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                key = order.key or "order"
                if key not in archive.files:
                    raise ValueError(f"{path}: no array '{key}' (arrays: {', '.join(archive.files) or 'none'})")
                array = np.asarray(archive[key])
        elif path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            array = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot be read as an order file ({type(err).__name__})") from None
    if array.ndim not in (1, 2, 3) or array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)) \
            or not np.all(array == np.round(array)):
        raise ValueError(f"{path}: expected whole sample indices of shape [sample], [epoch, sample] or "
                         f"[circuit, epoch, sample], got {array.dtype} of shape {array.shape}")
    return array.astype(np.int64)


def read_weight_file(init: FileInit, projection: str) -> np.ndarray:
    """The array of ``init`` as float64, [post, pre] or [circuit, post, pre].

    Raises:
        ValueError: naming the file: unreadable, not an .npz archive, no such array (listing those
            there), an array of the wrong rank, or values that are not finite.
    """
    key = init.key or projection
    try:
        archive = np.load(init.file, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{init.file}: no such file") from None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:  # (ValueError: pickled or garbage)
        raise ValueError(f"{init.file}: cannot be read as an .npz archive ({type(err).__name__})") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{init.file}: a single array, expected an .npz archive (numpy.savez)")
    with archive:
        if key not in archive.files:
            raise ValueError(f"{init.file}: no array '{key}' (arrays: {', '.join(archive.files) or 'none'})")
        try:
            array = np.asarray(archive[key])
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
            raise ValueError(f"{init.file}: array '{key}' cannot be read ({type(err).__name__})") from None
    if array.dtype.kind not in "fiu" or array.ndim not in (2, 3):
        raise ValueError(f"{init.file}: '{key}' is a {array.dtype} array of shape {array.shape}; expected "
                         "numbers of shape [post, pre] or [circuit, post, pre]")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{init.file}: '{key}' holds NaN or infinite values")
    return array


def check_weight_files(spec: Spec, error: Callable[[tuple, str, str], None]) -> None:
    """Report every ``init: {file: ...}`` whose array cannot be read or has the wrong [post, pre] shape."""
    for name, proj in spec.projections.items():
        if not isinstance(proj.init, FileInit):
            continue
        path = ("projections", name, "init", "file")
        try:
            array = read_weight_file(proj.init, name)
        except ValueError as err:
            error(path, str(err), "save it with numpy.savez(file, name=array)")
            continue
        target, source = proj.target.split(".")[0], proj.source.split(".")[0]
        pops = spec.populations
        if target in pops and source in pops:
            expected = (pops[target].size, pops[source].size)
            if tuple(array.shape[-2:]) != expected:
                error(path, f"'{proj.init.key or name}' in {proj.init.file} has shape {list(array.shape)}, "
                      f"projection '{name}' needs [post, pre] = {list(expected)} (or [circuit, post, pre])", "")


__all__ = ["anchor_files", "check_weight_files", "read_order_file", "read_weight_file"]
