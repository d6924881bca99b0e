"""``microcircuit plot SWEEP_DIR --x AXIS --metric NAME [--hue AXIS] [--style AXIS]``: a metric of a sweep
against an axis.

Reads ``results.csv`` (long form) and draws with seaborn the mean over seeds (line and markers) and the
spread over seeds (band: min to max; dots: the seeds), one line per value of ``--hue`` (colour) and of
``--style`` (line style and marker). A numeric axis whose positive values span more than a decade is drawn
on a log scale. Other axes than ``--x``, ``--hue`` and ``--style`` are averaged over (the title says so).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from microcircuit.analysis.figures import save_figure, styled

LINE_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))
"""(line style, marker) of the values of ``--style``, in order of appearance; more values repeat them."""


def averaged_over(data: pd.DataFrame, columns: list[str], x: str, hue: str | None,
                  style: str | None = None) -> list[str]:
    """The axis columns a point of the plot averages over: those that take more than one value at some
    (x, hue, style) point; a zip member that moves with ``x``, ``hue`` or ``style`` is not one of them."""
    keys = [k for k in (x, hue, style) if k is not None]
    others = [c for c in columns if c not in keys]
    if data.empty:
        return others
    return [c for c in others if data.groupby(keys, dropna=False)[c].nunique(dropna=False).max() > 1]


def plot_sweep(sweep_dir: Path, x: str, metric: str, hue: str | None = None, path: Path | None = None,
               style: str | None = None) -> Path:
    """Draw ``metric`` against axis ``x``, one line per value of ``hue`` (colour) and of ``style`` (line
    style and marker); returns the PNG's path (default
    ``SWEEP_DIR/figures/<metric>_vs_<x>[_by_<hue>][_and_<style>].png``)."""
    import seaborn as sns
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    sweep_dir = Path(sweep_dir)
    info = json.loads((sweep_dir / "sweep.json").read_text())
    table = pd.read_csv(sweep_dir / "results.csv")
    columns = info["columns"]
    for name, what in ((x, "--x"), (hue, "--hue"), (style, "--style")):
        if name is not None and name not in columns:
            raise ValueError(f"{what} {name!r} is not an axis of this sweep (axes: {', '.join(columns) or 'none'})")
    if style is not None and style in (x, hue):
        raise ValueError(f"--style {style!r} is already {'--x' if style == x else '--hue'}; name another axis")
    metrics = sorted(table["metric"].unique())
    if metric not in metrics:
        raise ValueError(f"--metric {metric!r} is not in results.csv (metrics: {', '.join(metrics) or 'none'})")
    data = table[table["metric"] == metric].copy()
    others = averaged_over(data, columns, x, hue, style)
    if path is None:
        stem = (f"{metric.replace('/', '_')}_vs_{x}" + (f"_by_{hue}" if hue else "")
                + (f"_and_{style}" if style else ""))
        path = sweep_dir / "figures" / f"{stem}.png"
    numeric = pd.api.types.is_numeric_dtype(data[x])
    log_x = bool(numeric and (data[x] > 0).all() and data[x].max() / data[x].min() > 10)
    groups = list(dict.fromkeys(data[hue])) if hue else [None]
    styles = list(dict.fromkeys(data[style])) if style else [None]
    palette = dict(zip(groups, sns.color_palette("colorblind", len(groups)), strict=True))
    looks = {s: LINE_STYLES[k % len(LINE_STYLES)] for k, s in enumerate(styles)}
    band = 0.2 if len(styles) == 1 else 0.12  # the min-max bands' opacity: fainter where they overlap
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        rng = np.random.default_rng(0)
        for g in groups:
            for s in styles:
                sub = data if g is None else data[data[hue] == g]
                sub = sub if s is None else sub[sub[style] == s]
                if sub.empty:
                    continue
                stats = sub.groupby(x, sort=True)["value"].agg(["mean", "min", "max", "count"])
                xs = stats.index.to_numpy()
                colour = palette[g]
                line, marker = looks[s]
                n_seeds = sub["seed"].nunique()
                names = [f"{a}={v}" for a, v in ((hue, g), (style, s)) if a is not None]
                label = (", ".join(names) + ": " if names else "") + f"mean and range over {n_seeds} seed(s)"
                if numeric:
                    ax.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=band, lw=0)
                    ax.plot(xs, stats["mean"], marker=marker, ls=line, color=colour, label=label)
                    jitter = np.exp(rng.uniform(-0.05, 0.05, len(sub))) if log_x else 1.0
                    ax.scatter(sub[x] * jitter, sub["value"], s=10, color=colour, alpha=0.5, lw=0, marker=marker)
                else:
                    sns.pointplot(data=sub, x=x, y="value", errorbar=("pi", 100), color=colour, ax=ax,
                                  label=label, markers=marker, linestyles=line)
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


def main(sweep_dir: Path, x: str | None, metric: str | None, hue: str | None, style: str | None = None) -> int:
    """The command: exit 0 and print the figure's path, or 2 with a message."""
    if x is None or metric is None:
        print("error: plotting a sweep needs --x AXIS and --metric NAME (e.g. --x t_pres --metric test/accuracy)",
              file=sys.stderr)
        return 2
    if not (Path(sweep_dir) / "results.csv").exists():
        print(f"error: {sweep_dir} has no results.csv (has the sweep finished?)", file=sys.stderr)
        return 2
    try:
        path = plot_sweep(Path(sweep_dir), x, metric, hue, style=style)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
