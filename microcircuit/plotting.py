"""Figures from a run directory: learning curves, output traces and apical potentials.

The functions here read what an experiment left in its run directory (see
:mod:`microcircuit.rundir` for the layout) and draw it with seaborn/matplotlib:

* :func:`load_run` reads ``manifest.json``, ``metrics.csv``, ``baseline.csv`` (written by
  ``microcircuit run --baseline``) and ``recordings/index.json`` into a :class:`RunResult`, whose
  :meth:`RunResult.recording` stitches the ``.npz`` chunks (of one epoch, or of a block of epochs with each
  sample's epoch) of one recorded variable together.
* :func:`plot_learning_curves`, :func:`plot_output_traces` and :func:`plot_apical` each return a
  matplotlib :class:`~matplotlib.figure.Figure` and never call ``plt.show()``.
* :func:`plot_run` writes the figures into ``RUN_DIR/figures/`` (what ``microcircuit plot`` does).

Units: time in ms (measured from the start of the run), potentials dimensionless, accuracy in %.

Example usage::

    from microcircuit.plotting import load_run, plot_learning_curves
    run = load_run("runs/yinyang_le/20240611-120000-1a2b3c4d")
    fig = plot_learning_curves(run)
    fig.savefig("curves.png")
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # headless by default; a backend chosen by the user (MPLBACKEND, pyplot) wins

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from microcircuit.rundir import METRIC_COLUMNS, read_metrics_text  # noqa: E402

log = logging.getLogger("microcircuit")

KINDS = ("curves", "traces", "apical")
"""Figure kinds :func:`plot_run` knows, each written to ``figures/<kind>.<fmt>``."""


#: The backprop baseline's phases in ``baseline.csv`` drawn in the curves, and their names there.
BASELINE_PHASES = {"baseline_validate": "backprop validate", "baseline_test": "backprop test"}

#: Preferred order of phases in legends and when choosing a phase to show.
PHASE_ORDER = ("self_prediction", "train", "validate", "test", *BASELINE_PHASES.values())

#: Fixed phase colours (colorblind palette) so a phase looks the same in every figure.
_PALETTE = sns.color_palette("colorblind")
PHASE_COLOURS = {"self_prediction": _PALETTE[4], "train": _PALETTE[0], "validate": _PALETTE[1],
                 "test": _PALETTE[2], "backprop validate": _PALETTE[3], "backprop test": _PALETTE[3]}

#: Line style and marker of the backprop baseline's phases (dashed, diamonds), beside the circuit's.
BASELINE_STYLE = ("--", "D")

#: Titles and y labels of the metric families the experiment writes; others are labelled generically.
FAMILY_LABELS = {
    "accuracy": ("Accuracy", "accuracy (%)"),
    "loss": ("Loss", "mean squared error (dimensionless)"),
    "apical_norm": ("Apical potential", "mean |v_apical| (dimensionless)"),
    "weight_distance": ("Weight distance", "distance (dimensionless)"),
    "angle_to_backprop": ("Angle to backprop", "angle (deg)"),
}
FAMILY_ORDER = ("accuracy", "loss", "apical_norm")

#: Percentage points above chance beyond which the accuracy axis no longer stretches down to chance.
FAR_ABOVE_CHANCE = 40.0

#: Most points drawn per raw line; longer recordings are decimated for drawing (after smoothing).
MAX_POINTS = 20_000

_CHUNK = re.compile(r"epochs?_(\d+)(?:-\d+)?$")  # epoch_<NNNN> or epochs_<first>-<last>


class NoData(LookupError):
    """The run directory holds nothing to draw for the requested figure."""


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class RunResult:
    """A run directory as read from disk.

    Attributes:
        path: the run directory.
        manifest: contents of ``manifest.json`` (empty if missing).
        metrics: long-form table with columns ``phase, epoch, seed, metric, value``
            (``epoch`` and ``seed`` integers, ``value`` float); empty if ``metrics.csv`` is missing.
        index: recorded variables, ``{var: {"every", "reduce", "units", "phases", ...}}``.
        recorded_seeds: the seed of each circuit along the recordings' seed axis.
        baseline: the backprop baseline's rows of ``baseline.csv`` (``run --baseline``), same columns as
            ``metrics``; empty without the file.
    """

    path: Path
    manifest: dict
    metrics: pd.DataFrame
    index: dict[str, dict] = field(default_factory=dict)
    recorded_seeds: list[int] = field(default_factory=list)
    baseline: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(METRIC_COLUMNS)))
    _keys: dict[Path, frozenset[str]] = field(default_factory=dict, init=False, repr=False)
    _config: dict | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        """The run's name (from the manifest, else the directory name)."""
        return str(self.manifest.get("name") or self.path.name)

    @property
    def seeds(self) -> list[int]:
        """Seeds of the independent circuits (recordings index, else manifest, else metrics)."""
        if self.recorded_seeds:
            return list(self.recorded_seeds)
        if self.manifest.get("seeds"):
            return [int(s) for s in self.manifest["seeds"]]
        if not self.metrics.empty:
            return sorted(int(s) for s in self.metrics["seed"].unique())
        return []

    @property
    def dt(self) -> float | None:
        """Integration time step (ms), if the manifest records it."""
        dt = self.manifest.get("dt")
        return None if dt is None else float(dt)

    @property
    def config(self) -> dict:
        """``config.resolved.yaml`` as a dict (empty if missing or unreadable); used for hints only."""
        if self._config is None:
            self._config = {}
            path = self.path / "config.resolved.yaml"
            if path.exists():
                try:
                    import yaml

                    loaded = yaml.safe_load(path.read_text())
                    self._config = loaded if isinstance(loaded, dict) else {}
                except Exception as err:  # a figure must not fail on an unreadable config
                    log.debug("could not read %s: %s", path, err)
        return self._config

    def presentation_ms(self, phase: str) -> float | None:
        """Presentation time per stimulus (ms) in ``phase``, from the resolved config (None if unknown).

        ``validate`` uses the presentation time of the phase that runs the validations.
        """
        protocol = self.config.get("protocol")
        if not isinstance(protocol, list) or self.dt is None:
            return None
        for entry in protocol:
            if not isinstance(entry, dict):
                continue
            if entry.get("phase") == phase or (phase == "validate" and entry.get("validate_every")):
                t_pres = entry.get("t_pres", 100)  # steps; the schema's default
                return float(t_pres) * self.dt if isinstance(t_pres, (int, float)) else None
        return None

    def phase_entry(self, phase: str) -> dict:
        """The resolved config's protocol entry of ``phase`` ({} if unknown)."""
        protocol = self.config.get("protocol")
        for entry in protocol if isinstance(protocol, list) else []:
            if isinstance(entry, dict) and entry.get("phase") == phase:
                return entry
        return {}

    def learning_phase(self, phase: str) -> bool:
        """Whether weights change in ``phase`` (its epochs are training epochs); without a config, the
        phases named train and self_prediction."""
        entry = self.phase_entry(phase)
        if not entry:
            return phase in ("train", "self_prediction")
        return entry.get("plastic", "none") != "none"

    def n_classes(self) -> int | None:
        """Output neurons (classes) of the teacher's population, from the resolved config."""
        pop = _teacher_population(self)
        populations = self.config.get("populations")
        size = populations.get(pop, {}).get("size") if isinstance(populations, dict) and pop else None
        return int(size) if isinstance(size, int) and size > 0 else None

    def seed_label(self, seed_index: int) -> str:
        """``"seed <s>"`` for the circuit at ``seed_index`` of the recordings' seed axis."""
        seeds = self.seeds
        return f"seed {seeds[seed_index]}" if 0 <= seed_index < len(seeds) else f"circuit {seed_index}"

    # ------------------------------------------------------------------ chunks
    def chunks(self, phase: str) -> list[tuple[int, Path]]:
        """``(epoch, file)`` of the phase's recording chunks, ordered by (first) epoch number."""
        folder = self.path / "recordings" / phase
        if not folder.is_dir():
            return []
        found = []
        for f in folder.glob("*.npz"):
            m = _CHUNK.search(f.stem)
            found.append((int(m.group(1)) if m else -1, f))
        return sorted(found, key=lambda item: (item[0], item[1].name))

    def recorded_phases(self) -> list[str]:
        """Phases with a recordings folder, in :data:`PHASE_ORDER` then alphabetical order."""
        folder = self.path / "recordings"
        if not folder.is_dir():
            return []
        return _order_phases([d.name for d in folder.iterdir() if d.is_dir()])

    def _chunk_keys(self, path: Path) -> frozenset[str]:
        if path not in self._keys:
            with np.load(path) as data:
                self._keys[path] = frozenset(data.files)
        return self._keys[path]

    def has_recording(self, phase: str, var: str) -> bool:
        """Whether any chunk of ``phase`` holds ``var``."""
        return any(var in self._chunk_keys(p) for _, p in self.chunks(phase))

    def variables(self, phase: str | None = None) -> list[str]:
        """Recorded variable names (index order first), optionally only those present in ``phase``."""
        names = list(self.index)
        phases = [phase] if phase is not None else self.recorded_phases()
        present: list[str] = []
        for ph in phases:
            for _, p in self.chunks(ph):
                present.extend(k for k in self._chunk_keys(p) if not k.endswith((".t", ".epoch")) and k != "t")
        extra = sorted(set(present) - set(names))
        if phase is None and not present:
            return names + extra
        return [n for n in names if n in present] + extra

    def recording_chunks(self, phase: str, var: str,
                         epochs: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(epoch, t, values)`` for each epoch of ``phase`` with a chunk holding ``var``, in epoch order
        (a chunk of a block of epochs yields each of its epochs, by ``<var>.epoch``).

        ``t`` [n] is in ms from the start of the run; ``values`` is [n, seed, batch(, neuron)].
        """
        for epoch, path in self.chunks(phase):
            if var not in self._chunk_keys(path):
                continue
            labels = None
            with np.load(path) as data:
                values = np.asarray(data[var])
                if f"{var}.t" in data.files:
                    t = np.asarray(data[f"{var}.t"], dtype=float)
                elif "t" in data.files and len(data["t"]) == len(values):
                    t = np.asarray(data["t"], dtype=float)
                else:
                    t = self._fallback_times(var, len(values))
                if f"{var}.epoch" in data.files:
                    labels = np.asarray(data[f"{var}.epoch"], dtype=np.int64)
            if len(t) != len(values) or (labels is not None and len(labels) != len(values)):
                raise ValueError(f"{path}: '{var}' has {len(values)} samples but '{var}.t' has {len(t)}"
                                 + ("" if labels is None else f" and '{var}.epoch' {len(labels)}"))
            if labels is None:
                parts = [(epoch, slice(None))]
            else:  # the runs of equal labels, in sample order
                starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
                parts = [(int(labels[a]), slice(a, b)) for a, b in zip(starts, [*starts[1:], len(labels)], strict=True)]
            for label, part in parts:
                if epochs is None or label in epochs:
                    yield label, t[part], values[part]

    def _fallback_times(self, var: str, n: int) -> np.ndarray:
        every = float(self.index.get(var, {}).get("every", 1))
        return np.arange(n) * every * (self.dt or 1.0)

    def recording(self, phase: str, var: str,
                  epochs: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One recorded variable over a whole phase: the epoch chunks concatenated in epoch order.

        Args:
            phase: phase folder under ``recordings/`` (``train``, ``test``, ...).
            var: recorded variable, e.g. ``out.soma.u`` or ``target``.
            epochs: only these chunks (by epoch number); all if None.

        Returns:
            ``(t, values)``: times [n] in ms from the start of the run, and float values
            [n, seed, batch, neuron] (reduce ``none``) or [n, seed, batch] (reduce ``mean``/``norm``).

        Raises:
            NoData: no chunk of ``phase`` holds ``var``.
        """
        parts = list(self.recording_chunks(phase, var, epochs))
        if not parts:
            known = ", ".join(self.variables(phase)) or "none"
            raise NoData(f"no recording of '{var}' in phase '{phase}' of {self.path} "
                         f"(recorded there: {known})")
        t = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
        return t, values

    def info(self, var: str) -> dict:
        """The index entry of ``var`` (empty if unknown)."""
        return dict(self.index.get(var, {}))

    def units(self, var: str) -> str:
        """Units of ``var`` from the index; potentials are dimensionless by default."""
        return str(self.info(var).get("units") or "potential (dimensionless)")

    def reduce(self, var: str, values: np.ndarray | None = None) -> str:
        """How ``var`` was reduced over neurons (``none``, ``mean`` or ``norm``)."""
        reduce = self.info(var).get("reduce")
        if reduce:
            return str(reduce)
        return "none" if values is None or values.ndim >= 4 else "mean"


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_metrics(path: Path) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                          zip(METRIC_COLUMNS, (str, int, int, str, float), strict=True)})
    if not path.exists() or path.stat().st_size == 0:
        return empty
    df = pd.read_csv(io.StringIO(read_metrics_text(path)))  # torn or malformed lines dropped
    missing = [c for c in METRIC_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(expected {','.join(METRIC_COLUMNS)})")
    if df.empty:
        return empty
    df = df.loc[:, list(METRIC_COLUMNS)].copy()
    df["phase"] = df["phase"].astype(str)
    df["metric"] = df["metric"].astype(str)
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce").fillna(0).astype(int)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").fillna(-1).astype(int)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    return df.reset_index(drop=True)


def load_run(run_dir: str | os.PathLike) -> RunResult:
    """Read a run directory's manifest, metrics, backprop baseline (``baseline.csv``) and recordings index.

    Missing pieces are tolerated (a run still in progress, or one without recordings): the
    manifest and index are then empty and the metrics table has no rows.

    Args:
        run_dir: the run directory (holding ``metrics.csv``, ``manifest.json``, ``recordings/``).

    Returns:
        The :class:`RunResult`; recordings are read lazily by :meth:`RunResult.recording`.

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {path} does not exist")
    manifest = _read_json(path / "manifest.json")
    metrics = _read_metrics(path / "metrics.csv")
    raw = _read_json(path / "recordings" / "index.json")
    # Two layouts: {"seeds": [...], "variables": {var: {...}}} and {"seeds": [...], var: {...}, ...}.
    variables = raw.get("variables") if isinstance(raw.get("variables"), dict) else raw
    index = {k: v for k, v in variables.items() if isinstance(v, dict)}
    seeds = [int(s) for s in raw.get("seeds") or manifest.get("seeds") or []]
    baseline = _read_metrics(path / "baseline.csv")
    return RunResult(path=path, manifest=manifest, metrics=metrics, index=index, recorded_seeds=seeds,
                     baseline=baseline)


# ---------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _style() -> Iterator[None]:
    """seaborn's whitegrid/paper look for the figures made inside, leaving global rcParams untouched."""
    with matplotlib.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1):
        yield


def _order_phases(phases) -> list[str]:
    phases = list(dict.fromkeys(phases))
    known = [p for p in PHASE_ORDER if p in phases]
    return known + sorted(p for p in phases if p not in PHASE_ORDER)


def _phase_colour(phase: str, phases: Sequence[str]) -> tuple:
    if phase in PHASE_COLOURS:
        return PHASE_COLOURS[phase]
    others = [p for p in phases if p not in PHASE_COLOURS]
    return _PALETTE[(5 + others.index(phase)) % len(_PALETTE)] if phase in others else _PALETTE[7]


def _family(metric: str) -> tuple[str, str]:
    family, _, member = metric.partition("/")
    return family, member


def _family_labels(family: str) -> tuple[str, str]:
    if family in FAMILY_LABELS:
        return FAMILY_LABELS[family]
    return family.replace("_", " ").capitalize(), family.replace("_", " ")


def _wants_log(values: np.ndarray, decades: float = 1.5) -> bool:
    """Positive values spanning more than ``decades`` orders of magnitude read better on a log axis."""
    v = values[np.isfinite(values)]
    return v.size > 1 and bool(np.all(v > 0)) and math.log10(v.max() / v.min()) > decades


def _stride(n: int, limit: int = MAX_POINTS) -> int:
    return max(1, math.ceil(n / limit))


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 (NaN-aware, same length)."""
    if window <= 1:
        return y
    return pd.DataFrame(y).rolling(window, center=True, min_periods=1).mean().to_numpy()


def _plain_time_axis(ax: Axes) -> None:
    ax.set_xlabel("time (ms)")
    with contextlib.suppress(AttributeError):  # not a ScalarFormatter (e.g. log axis)
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)


def _pick_index(n: int, index: int, what: str) -> int:
    if not -n <= index < n:
        raise IndexError(f"{what} index {index} out of range (recording has {n})")
    return index % n


# ---------------------------------------------------------------------------------------------- curves
def _curve_frame(metrics: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Metrics with ``family``, ``member`` and plotting abscissa ``x`` columns.

    Phases that ran before the first training epoch (such as ``self_prediction``) are shifted so
    their last epoch sits at x = 0, left of training epoch 1. Returns the frame and whether any
    phase was shifted.
    """
    df = metrics.copy()
    parts = df["metric"].map(_family)
    df["family"] = [p[0] for p in parts]
    df["member"] = [p[1] for p in parts]
    df["x"] = df["epoch"].astype(float)
    shifted = False
    if "train" in set(df["phase"]):
        first_train = df.index[df["phase"] == "train"].min()
        for phase, rows in df.groupby("phase", sort=False):
            if phase == "train" or rows.index.max() >= first_train:
                continue
            df.loc[rows.index, "x"] = rows["epoch"] - rows["epoch"].max()
            shifted = True
    accuracy = df["family"] == "accuracy"
    df.loc[accuracy, "value"] = df.loc[accuracy, "value"] * 100.0
    return df, shifted


def _baseline_frame(run: RunResult) -> pd.DataFrame:
    """The backprop baseline's validation curve and test point, under the phase names of
    :data:`BASELINE_PHASES`, for the metric families the run itself has (empty without ``baseline.csv``)."""
    rows = run.baseline[run.baseline["phase"].isin(list(BASELINE_PHASES))].copy()
    if rows.empty or run.metrics.empty:
        return rows
    families = {_family(m)[0] for m in run.metrics["metric"].unique()}
    rows = rows[[_family(m)[0] in families for m in rows["metric"]]]
    rows["phase"] = rows["phase"].map(BASELINE_PHASES)
    return rows


def _is_baseline(phase: str) -> bool:
    return phase in BASELINE_PHASES.values()


def _phase_handles(df: pd.DataFrame, phases: Sequence[str]) -> list[Line2D]:
    """Legend entries for the phases in ``df``: a line for curves, a marker alone for single points
    (the backprop baseline's dashed, with diamonds)."""
    handles = []
    for p in _order_phases(df["phase"].unique()):
        line, marker = BASELINE_STYLE if _is_baseline(p) else ("-", "o")
        curve = df[df["phase"] == p]["x"].nunique() > 1
        handles.append(Line2D([], [], color=_phase_colour(p, phases), marker=marker, ms=4, label=p.replace("_", " "),
                              ls=line if curve else "none",
                              mfc="none" if _is_baseline(p) and not curve else None))
    return handles


def _draw_family(ax: Axes, df: pd.DataFrame, family: str, phases: Sequence[str], phase_legend: bool,
                 n_classes: int | None = None, teacher_on: Sequence[str] = ()) -> None:
    members = sorted(df["member"].unique())
    dashes = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]
    for phase in _order_phases(df["phase"].unique()):
        colour = _phase_colour(phase, phases)
        for k, member in enumerate(members):
            rows = df[(df["phase"] == phase) & (df["member"] == member)]
            if rows.empty:
                continue
            n_x = rows["x"].nunique()
            line, marker = (BASELINE_STYLE if _is_baseline(phase)
                            else (dashes[k % len(dashes)], markers[k % len(markers)]))
            if n_x <= 1:  # e.g. the single test point: marker with a min-max bar over seeds
                stats = rows.groupby("x")["value"].agg(["mean", "min", "max"])
                yerr = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
                hollow = _is_baseline(phase)  # the circuit's own point stays visible inside
                ax.errorbar(stats.index, stats["mean"], yerr=yerr, fmt=marker,
                            color=colour, ms=6 if hollow else 5, capsize=3, mec=colour if hollow else "white",
                            mfc="none" if hollow else colour, mew=1.2 if hollow else 0.6, zorder=4 if hollow else 3)
            else:  # the mean over seeds, with their min-max range as a band
                stats = rows.groupby("x")["value"].agg(["mean", "min", "max"])
                ax.plot(stats.index, stats["mean"], color=colour, linestyle=line, marker=marker if n_x <= 30 else None,
                        markersize=3, markeredgewidth=0)
                if (stats["max"] > stats["min"]).any():
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)
    title, ylabel = _family_labels(family)
    ax.set_ylabel(ylabel)
    if family == "accuracy":
        chance = 100.0 / n_classes if n_classes else None
        far = chance is not None and float(np.nanmin(df["value"])) - chance > FAR_ABOVE_CHANCE
        low = ax.get_ylim()[0] if chance is None or far else min(ax.get_ylim()[0], chance - 5.0)
        ax.set_ylim(max(0.0, low), min(100.0, ax.get_ylim()[1]) + 1.0)
        if far:  # every curve far above chance: keep the axis on the curves and say where chance is
            title = f"{title} (chance 1/{n_classes} = {chance:.0f} %)"
        elif chance is not None:
            ax.axhline(chance, color="0.45", lw=1.0, ls=":", zorder=1)
            ax.annotate(f"chance (1/{n_classes})", (1.0, chance), xycoords=("axes fraction", "data"),
                        xytext=(-3, 3), textcoords="offset points", ha="right", va="bottom", fontsize="x-small",
                        color="0.35")
        if teacher_on:
            ax.text(0.98, 0.03, f"{', '.join(teacher_on)}: measured with the teacher on", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize="x-small", color="0.35",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    elif _wants_log(df["value"].to_numpy()):
        ax.set_yscale("log")
    ax.set_title(title)
    if np.allclose(df["x"], np.round(df["x"])):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs: no ticks between them
    handles = _phase_handles(df, phases) if phase_legend else []
    if len(members) > 1:
        handles += [Line2D([], [], color="0.3", ls=dashes[k % len(dashes)], marker=markers[k % len(markers)],
                           ms=4, label=m or family)
                    for k, m in enumerate(members)]
    if handles:
        ax.legend(handles=handles, fontsize="small", frameon=True, framealpha=0.85)


def plot_learning_curves(run: RunResult, ax: Axes | Sequence[Axes] | None = None,
                         metrics: Sequence[str] | None = None) -> Figure:
    """Learning curves: one panel per metric family, mean and standard deviation over seeds.

    Families are the part of the metric name before ``/``: ``accuracy`` (shown in %), ``loss``,
    ``apical_norm`` (one line style per population), then any other metric, drawn generically.
    x is the epoch (phases run before training, like ``self_prediction``, end at epoch 0), colour
    is the phase; a phase with one epoch (``test``) is drawn as a point with an error bar.
    Positive families spanning orders of magnitude get a log y axis. A backprop baseline written beside
    the run (``baseline.csv``, ``microcircuit run --baseline``) is drawn in the same panels: its
    validation curve (``backprop validate``, dashed) and its test point (``backprop test``, diamond).

    Args:
        run: the loaded run.
        ax: an Axes (only with a single family) or one Axes per family; new figure if None.
        metrics: families to draw (e.g. ``["accuracy", "loss"]``); all if None.

    Returns:
        The figure holding the panels.

    Raises:
        NoData: the run has no metrics (or none of the requested families).
    """
    if run.metrics.empty:
        raise NoData(f"no metrics in {run.path / 'metrics.csv'}")
    baseline = _baseline_frame(run)
    df, shifted = _curve_frame(run.metrics if baseline.empty else
                               pd.concat([run.metrics, baseline], ignore_index=True))
    present = list(dict.fromkeys(df["family"]))
    families = [f for f in FAMILY_ORDER if f in present] + sorted(f for f in present if f not in FAMILY_ORDER)
    if metrics is not None:
        unknown = [m for m in metrics if m not in present]
        if unknown:
            raise NoData(f"no metric family {', '.join(unknown)} in {run.path} (has: {', '.join(families)})")
        families = [f for f in metrics]
    phases = _order_phases(df["phase"].unique())
    n_seeds = df["seed"].nunique()
    with _style():
        if ax is None:
            ncols = min(len(families), 3)
            nrows = math.ceil(len(families) / ncols)
            fig, grid = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows + 0.9), squeeze=False)
            axes = list(grid.ravel())
            for extra in axes[len(families):]:
                extra.set_visible(False)
        else:
            axes = [ax] if isinstance(ax, Axes) else list(ax)
            if len(axes) < len(families):
                raise ValueError(f"{len(families)} metric families ({', '.join(families)}) need as many "
                                 f"axes, got {len(axes)}; pick some with metrics=[...]")
            fig = axes[0].figure
        n_classes = run.n_classes()
        teacher_on = [p.replace("_", " ") for p in phases if run.phase_entry(p).get("teacher")
                      and (df[(df["family"] == "accuracy")]["phase"] == p).any()]
        for family, a in zip(families, axes, strict=False):
            _draw_family(a, df[df["family"] == family], family, phases, phase_legend=ax is not None,
                         n_classes=n_classes, teacher_on=teacher_on)
            a.set_xlabel("epoch (≤ 0: before training)" if shifted and
                         (df[df["family"] == family]["x"] <= 0).any() else "epoch")
        if ax is None:
            spread = "mean and min-max range over" if n_seeds > 1 else "from"
            fig.suptitle(f"{run.name}: learning curves ({spread} {n_seeds} seed{'s' * (n_seeds != 1)})")
            shown = df[df["family"].isin(families)]
            fig.legend(handles=_phase_handles(shown, phases), title="phase", loc="lower center",
                       frameon=False, ncol=len(shown["phase"].unique()), bbox_to_anchor=(0.5, 0.0))
            fig.tight_layout(rect=(0.0, 0.45 / fig.get_figheight(), 1.0, 1.0))
    return fig


# ---------------------------------------------------------------------------------------------- traces
def _teacher_population(run: RunResult) -> str | None:
    """The population the teacher nudges, from the manifest or the resolved config."""
    if run.manifest.get("output"):
        return str(run.manifest["output"]).split(".")[0]
    inputs = run.config.get("inputs")
    teacher = inputs.get("teacher") if isinstance(inputs, dict) else None
    target = teacher.get("target") if isinstance(teacher, dict) else None
    return target.split(".")[0] if isinstance(target, str) else None


def _trace_window(run: RunResult, phase: str, t: np.ndarray, target: np.ndarray | None,
                  presentations: int) -> float | None:
    """Length (ms) of a window showing about ``presentations`` stimuli (at least 60 samples)."""
    if len(t) < 2:
        return None
    sample = float(np.median(np.diff(t)))
    t_pres = run.presentation_ms(phase)
    if t_pres is None and target is not None:  # stimulus boundaries: where the target changes
        finite = np.isfinite(target).all(axis=1)
        changes = np.flatnonzero(finite[1:] & finite[:-1] & (np.abs(np.diff(target, axis=0)) > 0).any(axis=1))
        if len(changes) > 1:
            t_pres = float(np.median(np.diff(t[changes + 1])))
    if t_pres is None:
        return 500 * sample
    return max(presentations * t_pres, 60 * sample)


def output_variable(run: RunResult) -> str | None:
    """The recorded output potential: ``<teacher population>.soma.u`` (else ``u_breve``, ``rate``).

    Without a resolved config, ``out.*`` is assumed, else the last recorded population (populations
    are listed input to output).
    """
    names = [v for v in run.variables() if v != "target"]
    pop = _teacher_population(run)
    for suffix in ("soma.u", "soma.u_breve", "soma.rate"):
        candidates = [v for v in names if v.endswith("." + suffix)]
        if not candidates:
            continue
        for guess in (pop, "out", "output"):
            if guess and f"{guess}.{suffix}" in candidates:
                return f"{guess}.{suffix}"
        if pop is None:
            return candidates[-1]
    return None


def _trace_phase(run: RunResult, var: str) -> str | None:
    """A phase to show output traces of: test if the target is known there, else one that has it."""
    phases = [p for p in run.recorded_phases() if run.has_recording(p, var)]
    if not phases:
        return None
    preferred = ["test", "validate", "train"] + [p for p in phases if p not in ("test", "validate", "train")]
    for phase in preferred:
        if phase in phases and run.has_recording(phase, "target"):
            last = run.chunks(phase)[-1][0]
            with contextlib.suppress(NoData):
                if np.isfinite(run.recording(phase, "target", epochs=[last])[1]).any():
                    return phase
    return next(p for p in preferred if p in phases)


def plot_output_traces(run: RunResult, phase: str = "test", seed_index: int = 0, *, batch_index: int = 0,
                       epoch: int | None = None, window_ms: float | None = None, presentations: int = 12,
                       ax: Axes | None = None, var: str | None = None) -> Figure:
    """Output potentials against the teacher target over time.

    One colour per output neuron; the target the output received is dashed in the same colour.
    Where the teacher was off (target not recorded or NaN) only the potentials are drawn.

    Args:
        run: the loaded run.
        phase: which phase's recordings to show.
        seed_index: which circuit (position on the recordings' seed axis).
        batch_index: which batch element.
        epoch: which chunk (epoch number) of the phase; the last one if None.
        window_ms: show the last ``window_ms`` ms of the chunk; None: about ``presentations``
            stimuli (presentation time from the resolved config, else from where the target
            changes, else the last 500 samples); ``math.inf``: the whole chunk.
        presentations: stimuli shown when ``window_ms`` is None.
        ax: draw into this Axes instead of a new figure.
        var: the output variable; found by :func:`output_variable` if None.

    Returns:
        The figure.

    Raises:
        NoData: the output potential was not recorded in ``phase``.
    """
    var = var or output_variable(run)
    if var is None:
        raise NoData(f"no output potential (*.soma.u) recorded in {run.path}")
    chunks = [e for e, p in run.chunks(phase) if var in run._chunk_keys(p)]
    if not chunks:
        raise NoData(f"no recording of '{var}' in phase '{phase}' of {run.path}")
    epoch = chunks[-1] if epoch is None else epoch
    t, u = run.recording(phase, var, epochs=[epoch])
    seed_index = _pick_index(u.shape[1], seed_index, "seed")
    batch_index = _pick_index(u.shape[2], batch_index, "batch")
    u = u[:, seed_index, batch_index]
    u = u[:, None] if u.ndim == 1 else u
    target_t = target = None
    if run.has_recording(phase, "target"):
        with contextlib.suppress(NoData):
            target_t, target = run.recording(phase, "target", epochs=[epoch])
            target = target[:, seed_index, batch_index]
            target = target[:, None] if target.ndim == 1 else target
            if not np.isfinite(target).any():  # teacher off: NaN targets
                target_t = target = None
    if window_ms is None:
        window_ms = _trace_window(run, phase, t, target if target_t is not None and len(target_t) == len(t)
                                  else None, presentations)
    cropped = window_ms is not None and len(t) > 0 and t[-1] - t[0] > window_ms
    if cropped:
        t0 = t[-1] - window_ms
        u, t = u[t >= t0], t[t >= t0]
        if target is not None:
            target, target_t = target[target_t >= t0], target_t[target_t >= t0]
    n_out = u.shape[1]
    colours = sns.color_palette("tab10" if n_out <= 10 else "husl", n_out)
    start = float(t[0]) if len(t) else 0.0  # times are shown from the window's start
    with _style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(8.0, 3.8))
        else:
            fig = ax.figure
        reduced = run.reduce(var, u) != "none" and n_out == 1
        for i in range(n_out):
            label = f"{var.split('.')[0]} ({run.reduce(var)})" if reduced else f"neuron {i}"
            ax.plot(t - start, u[:, i], color=colours[i], lw=1.2, label=label, zorder=2)
        if target is not None:  # on top of the outputs, so that a matched target stays visible
            for i in range(min(n_out, target.shape[1])):
                ax.plot(target_t - start, target[:, i], color=colours[i], lw=1.6, ls="--", zorder=3)
            _mark_classes(ax, run, phase, target_t, target, start, colours)
        _plain_time_axis(ax)
        ax.set_xlabel("time in the window (ms)" if cropped else "time in the epoch (ms)")
        unit = run.units(var).split("(")[-1].rstrip(")") or "dimensionless"
        ax.set_ylabel(f"{_output_words(var)} ({unit})")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="0.3", lw=1.2, label="output potential (solid)"))
        target_label = "teacher target (dashed)" if target is not None else "no target (teacher off)"
        handles.append(Line2D([], [], color="0.3", lw=1.4, ls="--", label=target_label))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                  frameon=False, ncol=1 if n_out <= 12 else 2)
        window = f"last {window_ms:g} ms of " if cropped else ""
        what = "output vs target" if target is not None else "output potential"
        ax.set_title(f"{run.name}: {what} — {phase}, {window}epoch {epoch}, "
                     f"{run.seed_label(seed_index)}" + (f", batch {batch_index}" if batch_index else "")
                     + ("\n(numbers on top: the class of each presentation, the neuron with the high target)"
                        if target is not None and len(ax.texts) else ""), fontsize="medium",
                     pad=16 if len(ax.texts) else 6)
        fig.tight_layout()
    return fig


#: what an output variable is, in words (the y axis of traces.png)
OUTPUT_WORDS = {"soma.u": "output somatic potential u", "soma.u_breve": "output rate potential ŭ",
                "soma.rate": "output rate r = φ(ŭ)"}


def _output_words(var: str) -> str:
    for suffix, words in OUTPUT_WORDS.items():
        if var.endswith("." + suffix):
            return words
    return var


def _mark_classes(ax: Axes, run: RunResult, phase: str, t: np.ndarray, target: np.ndarray, start: float,
                  colours) -> None:
    """Thin lines between presentations and, above each, its class (the neuron whose target is highest),
    in that neuron's colour. Presentations are t_pres apart, aligned to where the target changes."""
    t_pres = run.presentation_ms(phase)
    finite = np.isfinite(target).all(axis=1)
    if t_pres is None or target.shape[1] < 2 or len(t) < 2 or not finite.any():
        return
    changes = np.flatnonzero(finite[1:] & finite[:-1] & (np.abs(np.diff(target, axis=0)) > 0).any(axis=1))
    sample = float(np.median(np.diff(t)))
    anchor = float(t[changes[0] + 1]) - sample if len(changes) else float(t[0]) - sample
    first = anchor - math.floor((anchor - float(t[0])) / t_pres) * t_pres - t_pres
    edges = np.arange(first, float(t[-1]) + t_pres, t_pres)
    if len(edges) > 60:  # too many to label
        return
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        inside = (t > left) & (t <= right) & finite
        if left > float(t[0]):
            ax.axvline(left - start, color="0.75", lw=0.6, zorder=1)
        if inside.sum() * sample < t_pres / 2:  # a presentation cut by the window's edge: no label
            continue
        middle = np.flatnonzero(inside)[inside.sum() // 2]
        k = int(np.argmax(target[middle]))
        ax.text((max(left, float(t[0])) + min(right, float(t[-1]))) / 2 - start, 1.0, str(k), color=colours[k],
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize="small", fontweight="bold")


# ---------------------------------------------------------------------------------------------- apical
def apical_variables(run: RunResult) -> list[str]:
    """Recorded apical potentials (``*.apical.v``)."""
    return [v for v in run.variables() if v.endswith(".apical.v")]


def _phase_spans(run: RunResult, var: str, phases: Sequence[str]) -> list[tuple[str, float, float]]:
    """Time spans of each phase's chunks, extended to the next chunk and merged within a phase."""
    chunks = []
    for phase in phases:
        for _, t, _ in run.recording_chunks(phase, var):
            if len(t):
                step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
                chunks.append((float(t[0]), float(t[-1]) + step, phase))
    chunks.sort()
    spans: list[tuple[str, float, float]] = []
    for i, (t0, t1, phase) in enumerate(chunks):
        end = chunks[i + 1][0] if i + 1 < len(chunks) else t1  # no white seams between chunks
        if spans and spans[-1][0] == phase and spans[-1][2] >= t0:
            spans[-1] = (phase, spans[-1][1], end)
        else:
            spans.append((phase, t0, end))
    return spans


def _readable_log_axis(ax: Axes, values: np.ndarray) -> None:
    """Log y axis; under 3 decades ticks at 1, 2, 5 x 10^k labelled as plain numbers (0.2, 0.5, 1)."""
    ax.set_yscale("log")
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and math.log10(v.max() / v.min()) < 3.0:
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())


#: the quantity a reduced apical recording holds, in the words of the curves panel
APICAL_QUANTITY = {"mean_abs": "mean |v_apical|", "norm": "RMS v_apical", "mean": "mean v_apical"}


def _apical_series(run: RunResult, phase: str, var: str) -> list[tuple[int, np.ndarray, str]]:
    """(epoch, values [sample, seed], reduce) per chunk of ``phase``: batch 0, unreduced recordings reduced
    to mean |v_apical| over neurons (the measure of the apical_norm metric)."""
    out = []
    for epoch, _t, values in run.recording_chunks(phase, var):
        values = values[:, :, :1] if values.ndim >= 3 else values[:, :, None]  # phases may differ in batch
        reduce = run.reduce(var, values)
        if values.ndim >= 4:
            values, reduce = np.nanmean(np.abs(values.astype(float)), axis=-1), "mean_abs"
        out.append((epoch, values[:, :, 0], reduce))
    return out


def _draw_apical(ax: Axes, run: RunResult, var: str, phases: Sequence[str], max_seeds: int = 10) -> None:
    """One panel: the apical measure of every seed against epochs, as in the curves panel.

    Phases that learn are continuous lines over fractional epochs (sample i of epoch e at
    e - 1 + (i + 1) / n), faint per sample with a moving mean on top; evaluation phases (validate,
    test) are one point per chunk at the epoch they follow, their mean over the chunk."""
    series = {p: _apical_series(run, p, var) for p in phases}
    reduces = {r for chunks in series.values() for _, _, r in chunks}
    reduce = "mean_abs" if reduces == {"mean_abs"} else (reduces.pop() if len(reduces) == 1 else "mean_abs")
    n_seeds = max(v.shape[1] for chunks in series.values() for _, v, _ in chunks)
    colours = sns.color_palette("tab10" if n_seeds <= 10 else "husl", n_seeds)
    markers = {"validate": "o", "test": "D"}
    styles = ["-", "--", ":"]
    drawn: list[tuple[str, str, str]] = []  # (phase, linestyle, marker) of what is on the axes
    everything = []
    learning = [p for p in phases if run.learning_phase(p)]
    window = 1
    for phase in phases:
        chunks = series[phase]
        if not chunks:
            continue
        if phase in learning:
            x = np.concatenate([e - 1 + (np.arange(len(v)) + 1) / len(v) for e, v, _ in chunks])
            y = np.concatenate([v for _, v, _ in chunks])
            window = max(1, len(x) // 200) if len(x) > 400 else 1
            smooth = _smooth(y, window)
            step = _stride(len(x))
            ls = styles[learning.index(phase) % len(styles)]
            for i in range(y.shape[1]):
                if window > 1:
                    ax.plot(x[::step], y[::step, i], color=colours[i], lw=0.5, alpha=0.25, ls=ls)
                ax.plot(x[::step], smooth[::step, i], color=colours[i], lw=1.3, ls=ls)
            drawn.append((phase, ls, ""))
        else:
            marker = markers.get(phase, "s")
            x = np.array([e for e, _, _ in chunks], dtype=float)
            y = np.stack([np.nanmean(v, axis=0) for _, v, _ in chunks])  # [chunk, seed]
            for i in range(y.shape[1]):
                ax.plot(x, y[:, i], color=colours[i], marker=marker, ms=4, ls="none", mec="white", mew=0.5,
                        zorder=3)
            drawn.append((phase, "none", marker))
        everything.append(y.ravel())
    values = np.concatenate(everything) if everything else np.array([])
    if reduce in ("mean_abs", "norm") and _wants_log(values, decades=0.0):
        _readable_log_axis(ax, values)
    handles = [Line2D([], [], color=colours[i], lw=1.6, label=run.seed_label(i)) for i in range(min(n_seeds,
                                                                                                   max_seeds))]
    if n_seeds > max_seeds:
        handles.append(Line2D([], [], color="none", label=f"… {n_seeds} seeds in all"))
    handles += [Line2D([], [], color="0.3", ls=ls, marker=marker or None, ms=4, label=p.replace("_", " "))
                for p, ls, marker in drawn]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.set_xlabel("epoch")
    unit = run.units(var).split("(")[-1].rstrip(")") or "dimensionless"
    quantity = APICAL_QUANTITY.get(reduce, "v_apical")
    ax.set_ylabel(f"{quantity} ({unit})")
    smoothing = f"; faint: every sample, line: moving mean of {window}" if window > 1 else ""
    ax.set_title(f"{var}: {quantity} over its neurons, per seed{smoothing}", fontsize="medium")


def plot_apical(run: RunResult, phase: str | None = None, *, max_seeds: int = 10,
                ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Apical potentials against epochs, one panel per recorded ``*.apical.v``, one colour per seed.

    The measure is the curves panel's: mean |v_apical| over the population's neurons (recordings with
    ``reduce: mean_abs``, or unreduced ones reduced here); older ``norm`` (RMS) or ``mean`` recordings are
    drawn as recorded and labelled so. Phases that learn are lines over fractional epochs (long ones
    faint per sample with a moving mean on top); evaluation phases (validate, test) are one point per
    chunk at the epoch they follow. Positive measures spanning a decade get a log axis.

    Args:
        run: the loaded run.
        phase: only this phase; all phases if None.
        max_seeds: seeds named in the legend (all are drawn).
        ax: an Axes, or one per variable; new figure if None.

    Returns:
        The figure.

    Raises:
        NoData: no apical potential was recorded (in ``phase``).
    """
    variables = []
    for var in apical_variables(run):
        phases = [phase] if phase is not None else run.recorded_phases()
        phases = [p for p in phases if run.has_recording(p, var)]
        if phases:
            variables.append((var, phases))
    if not variables:
        where = f"phase '{phase}' of " if phase else ""
        raise NoData(f"no apical potential (*.apical.v) recorded in {where}{run.path}")
    with _style():
        if ax is None:
            fig, grid = plt.subplots(len(variables), 1, figsize=(9.0, 3.2 * len(variables) + 0.4),
                                     squeeze=False)
            axes = list(grid.ravel())
        else:
            axes = [ax] if isinstance(ax, Axes) else list(ax)
            if len(axes) < len(variables):
                raise ValueError(f"{len(variables)} apical recordings need as many axes, got {len(axes)}")
            fig = axes[0].figure
        for (var, phases), a in zip(variables, axes, strict=False):
            _draw_apical(a, run, var, phases, max_seeds)
        if ax is None:
            fig.suptitle(f"{run.name}: apical potentials (errors)")
            fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- run
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _save_atomic(fig: Figure, path: Path, fmt: str, dpi: int) -> None:
    """Save via a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".{fmt}.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, dpi=dpi)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def plot_run(run_dir: str | os.PathLike, kinds: Sequence[str] = KINDS, fmt: str = "png",
             dpi: int = 150) -> list[Path]:
    """Draw a run's figures into ``run_dir/figures/<kind>.<fmt>``.

    Kinds: ``curves`` (:func:`plot_learning_curves`), ``traces`` (:func:`plot_output_traces`, of
    the test phase if the target is known there, else of a phase where it is) and ``apical``
    (:func:`plot_apical`, all phases). A kind without data is skipped with an info message on the
    ``microcircuit`` logger; a kind that fails to draw is logged as a warning, and the others are
    still drawn. Files are written atomically.

    Args:
        run_dir: the run directory.
        kinds: which figures to draw.
        fmt: file format (``png``, ``pdf``, ``svg``, ...).
        dpi: resolution of raster formats.

    Returns:
        Paths of the files written.

    Raises:
        ValueError: an unknown kind.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown figure kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    run = load_run(run_dir)
    written = []
    for kind in dict.fromkeys(kinds):
        fig = None
        try:
            if kind == "curves":
                fig = plot_learning_curves(run)
            elif kind == "traces":
                var = output_variable(run)
                phase = _trace_phase(run, var) if var else None
                if phase is None:
                    raise NoData(f"no output potential (*.soma.u) recorded in {run.path}")
                fig = plot_output_traces(run, phase=phase, var=var)
            else:
                fig = plot_apical(run)
            path = run.path / "figures" / f"{kind}.{fmt}"
            with _style():
                _save_atomic(fig, path, fmt, dpi)
            written.append(path)
            log.info("wrote %s", path)
        except NoData as err:
            log.info("skipping %s figure: %s", kind, err)
        except Exception:
            log.warning("could not draw the %s figure of %s", kind, run.path, exc_info=True)
        finally:
            if fig is not None:
                plt.close(fig)
    return written


__all__ = ["KINDS", "NoData", "RunResult", "apical_variables", "load_run", "output_variable", "plot_apical",
           "plot_learning_curves", "plot_output_traces", "plot_run"]
