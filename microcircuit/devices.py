"""Device names of the command line and the API (``cpu``, ``cuda``, ``cuda:N``, ``auto``), checked in one place.

:func:`check_device` checks the spelling without importing torch; :func:`resolve_device` then asks
torch whether the device exists and explains when it cannot (a CPU-only torch, no visible GPU).
"""

from __future__ import annotations

import re

#: what ``--device`` accepts, as shown in error messages
VALID = "cpu, cuda, cuda:N (N = 0, 1, ...) or auto"
_NAME = re.compile(r"cpu|cuda(:\d+)?|auto")


def check_device(name: str) -> str:
    """``name`` if it is a device name this package runs on, else ValueError with the valid names."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"unknown device '{name}' (valid: {VALID})")
    return name


def resolve_device(name: str):
    """The ``torch.device`` for ``name``; ``auto`` is CUDA when torch sees a GPU, else the CPU.

    Raises:
        ValueError: an unknown name, a CUDA device with a CPU-only torch build, no visible CUDA
            device, or a device index beyond the visible ones (one line each, saying what to do).
    """
    import torch

    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if torch.version.cuda is None:
            raise ValueError(f"--device {name}: the installed torch ({torch.__version__}) is CPU-only; "
                             "install a CUDA build of torch, or use --device cpu")
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch {torch.__version__} is built for CUDA but sees no CUDA "
                             "device (driver, CUDA_VISIBLE_DEVICES?); use --device cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return torch.device(name)


__all__ = ["VALID", "check_device", "resolve_device"]
