"""The circuits shipped with the package (``circuits/`` of the source tree, ``microcircuit.circuits`` installed).

The same files are read whether the package is installed from a wheel or editable from a checkout,
so that every command runs from any folder::

    from microcircuit.shipped import DEFAULT_SPEC, shipped_circuit
    shipped_circuit("yinyang_le.yaml")         # a Path to the packaged copy
    shipped_circuits()                         # ['bars_le.yaml', 'bars_orig.yaml', ...]

A shipped spec's ``extends:`` names a file beside it, so it resolves inside the package too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "microcircuit.circuits"
#: the circuit that ``run``, ``describe`` and ``baseline`` use when no spec is given
DEFAULT_NAME = "bars_le.yaml"


def circuits_dir() -> Path:
    """The folder of the shipped circuits, as a file-system path.

    The package is installed as plain files (a wheel or an editable install, never a zip), so
    :func:`importlib.resources.files` is a real directory.
    """
    root = resources.files(PACKAGE)
    path = Path(str(root))
    if not path.is_dir():  # pragma: no cover - a zipped install, which setuptools does not produce
        raise FileNotFoundError(f"the shipped circuits ({PACKAGE}) are not a folder on disk: {root}")
    return path


def shipped_circuit(name: str) -> Path:
    """Path of the shipped circuit ``name`` (e.g. ``"bars_le.yaml"`` or ``"sweeps/tpres_bars.yaml"``).

    Raises:
        FileNotFoundError: no shipped circuit of that name (the message lists those that exist).
    """
    path = circuits_dir().joinpath(*Path(name).parts)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped circuit '{name}' (shipped: {', '.join(shipped_circuits())})")
    return path


def shipped_circuits() -> list[str]:
    """Names of every shipped circuit, relative to the circuits folder, sorted."""
    root = circuits_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))


DEFAULT_SPEC: Path = shipped_circuit(DEFAULT_NAME)

__all__ = ["DEFAULT_NAME", "DEFAULT_SPEC", "circuits_dir", "shipped_circuit", "shipped_circuits"]
