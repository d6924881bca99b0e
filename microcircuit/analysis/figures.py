"""Figure helpers shared by the analysis programs: seaborn styling in a context, atomic PNG writes."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib

from microcircuit.rundir import atomic_write_bytes


@contextlib.contextmanager
def styled() -> Iterator:
    """Yield pyplot inside the project's seaborn style without changing global rcParams."""
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    with plt.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.2):
        yield plt


def save_figure(fig, path: Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
