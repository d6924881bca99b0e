"""The dataset folder of the command line: ``--data-dir DIR``, the same as ``$MICROCIRCUIT_DATA``.

Shared by every command that reads a spec's dataset (``validate``, ``describe``, ``run``, ``baseline``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """Add the ``--data-dir`` option to ``parser``."""
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="folder of dataset files (MNIST-format idx files, CIFAR-10 binary batches), as "
                             "$MICROCIRCUIT_DATA; a task's own data_dir takes precedence")


def use_data_dir(path: Path | None) -> None:
    """Make ``path`` (``--data-dir``) the dataset folder of this process (the tasks read $MICROCIRCUIT_DATA)."""
    from microcircuit.tasks.mnist import DATA_ENV

    if path is not None:
        os.environ[DATA_ENV] = str(path.expanduser().resolve())


__all__ = ["data_dir_arg", "use_data_dir"]
