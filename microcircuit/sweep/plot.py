"""``microcircuit plot SWEEP_DIR --x AXIS --metric NAME [--hue AXIS]``: a metric of a sweep against an axis.

Reads ``results.csv`` (long form) and draws with seaborn the mean over seeds (line and markers) and the
spread over seeds (band: min to max; dots: the seeds). A numeric axis whose positive values span more than
a decade is drawn on a log scale. Other axes than ``--x`` and ``--hue`` are averaged over (the title says so).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from microcircuit.analysis.figures import save_figure, styled


def averaged_over(data: pd.DataFrame, columns: list[str], x: str, hue: str | None) -> list[str]:
    """The axis columns a point of the plot averages over: those that take more than one value at some
    (x, hue) point; a zip member that moves with ``x`` or ``hue`` is not one of them."""
    keys = [x] if hue is None else [x, hue]
    others = [c for c in columns if c not in keys]
    if data.empty:
        return others
    return [c for c in others if data.groupby(keys, dropna=False)[c].nunique(dropna=False).max() > 1]


def plot_sweep(sweep_dir: Path, x: str, metric: str, hue: str | None = None, path: Path | None = None) -> Path:
    """Draw ``metric`` against axis ``x`` (one line per value of ``hue``); returns the PNG's path
    (default ``SWEEP_DIR/figures/<metric>_vs_<x>[_by_<hue>].png``)."""
    import seaborn as sns
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    sweep_dir = Path(sweep_dir)
    info = json.loads((sweep_dir / "sweep.json").read_text())
    table = pd.read_csv(sweep_dir / "results.csv")
    columns = info["columns"]
    for name, what in ((x, "--x"), (hue, "--hue")):
        if name is not None and name not in columns:
            raise ValueError(f"{what} {name!r} is not an axis of this sweep (axes: {', '.join(columns) or 'none'})")
    metrics = sorted(table["metric"].unique())
    if metric not in metrics:
        raise ValueError(f"--metric {metric!r} is not in results.csv (metrics: {', '.join(metrics) or 'none'})")
    data = table[table["metric"] == metric].copy()
    others = averaged_over(data, columns, x, hue)
    if path is None:
        stem = f"{metric.replace('/', '_')}_vs_{x}" + (f"_by_{hue}" if hue else "")
        path = sweep_dir / "figures" / f"{stem}.png"
    numeric = pd.api.types.is_numeric_dtype(data[x])
    log_x = bool(numeric and (data[x] > 0).all() and data[x].max() / data[x].min() > 10)
    groups = list(dict.fromkeys(data[hue])) if hue else [None]
    palette = dict(zip(groups, sns.color_palette("colorblind", len(groups)), strict=True))
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        rng = np.random.default_rng(0)
        for g in groups:
            sub = data if g is None else data[data[hue] == g]
            stats = sub.groupby(x, sort=True)["value"].agg(["mean", "min", "max", "count"])
            xs = stats.index.to_numpy()
            colour = palette[g]
            n_seeds = sub["seed"].nunique()
            label = (f"{hue}={g}: " if hue else "") + f"mean and range over {n_seeds} seed(s)"
            if numeric:
                ax.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=0.2, lw=0)
                ax.plot(xs, stats["mean"], marker="o", color=colour, label=label)
                jitter = np.exp(rng.uniform(-0.05, 0.05, len(sub))) if log_x else 1.0
                ax.scatter(sub[x] * jitter, sub["value"], s=10, color=colour, alpha=0.5, lw=0)
            else:
                sns.pointplot(data=sub, x=x, y="value", errorbar=("pi", 100), color=colour, ax=ax, label=label)
        points = sorted(data[x].unique()) if numeric else []
        if log_x:
            ax.set_xscale("log")
            ax.set_xlim(points[0] / 1.5, points[-1] * 1.5)
        if numeric and len(points) <= 12:  # a tick at every value of the axis
            ax.xaxis.set_major_locator(FixedLocator(points))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        title = f"{info.get('name', 'sweep')}: {metric} against {x}"
        if others:
            title += f"\n(averaged over {', '.join(others)})"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, frameon=True, loc="best")
        fig.tight_layout()
        save_figure(fig, path)
    return path


def main(sweep_dir: Path, x: str | None, metric: str | None, hue: str | None) -> int:
    """The command: exit 0 and print the figure's path, or 2 with a message."""
    if x is None or metric is None:
        print("error: plotting a sweep needs --x AXIS and --metric NAME (e.g. --x t_pres --metric test/accuracy)",
              file=sys.stderr)
        return 2
    if not (Path(sweep_dir) / "results.csv").exists():
        print(f"error: {sweep_dir} has no results.csv (has the sweep finished?)", file=sys.stderr)
        return 2
    try:
        path = plot_sweep(Path(sweep_dir), x, metric, hue)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
