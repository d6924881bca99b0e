"""Figures from a synthetic run directory (no simulation: metrics and recordings are made up here)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import matplotlib.patches
import numpy as np
import pandas as pd
import pytest

from microcircuit.plotting import (
    NoData,
    load_run,
    output_variable,
    plot_apical,
    plot_learning_curves,
    plot_output_traces,
    plot_run,
)

SEEDS = [11, 12, 13]
EPOCHS = 20
DT = 0.1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_metrics(path: Path, classification: bool = True, epochs: int = EPOCHS) -> None:
    """Long-form metrics: self-prediction (2 epochs), train, validate every 5 epochs, one test row."""
    rng = np.random.default_rng(0)
    rows = []

    def add(phase: str, epoch: int, progress: float) -> None:
        for seed in SEEDS:
            noise = rng.normal(0.0, 0.02)
            rows.append((phase, epoch, seed, "loss", 0.2 * np.exp(-3 * progress) + abs(noise)))
            if classification:
                rows.append((phase, epoch, seed, "accuracy", min(1.0, 0.4 + 0.5 * progress + noise)))
            for pop, scale in (("pyr_1", 1.0), ("pyr_2", 0.3)):
                rows.append((phase, epoch, seed, f"apical_norm/{pop}", scale * np.exp(-4 * progress) + 1e-3))

    for epoch in (1, 2):
        for seed in SEEDS:
            rows.append(("self_prediction", epoch, seed, "apical_norm/pyr_1", 2.0 / epoch))
            rows.append(("self_prediction", epoch, seed, "apical_norm/pyr_2", 1.0 / epoch))
    for epoch in range(1, epochs + 1):
        add("train", epoch, epoch / epochs)
        if epoch % 5 == 0:
            add("validate", epoch, epoch / epochs)
    add("test", epochs, 1.0)
    pd.DataFrame(rows, columns=["phase", "epoch", "seed", "metric", "value"]).to_csv(path, index=False)


def write_chunk(run: Path, phase: str, epoch: int, t0: float, n: int = 50, n_out: int = 3,
                teacher: bool = True, skip: tuple[str, ...] = ()) -> None:
    """One recordings chunk: output potentials, target, a norm-reduced and an unreduced apical potential."""
    t = t0 + np.arange(n) * 1.0  # every 10 steps of 0.1 ms
    n_seeds = len(SEEDS)
    phase_shift = np.arange(n_out)[None, None, None, :]
    u = 0.5 + 0.4 * np.sin(t[:, None, None, None] / 5.0 + phase_shift) * np.ones((1, n_seeds, 1, 1))
    square = np.where(np.sin(t[:, None, None, None] / 5.0 + phase_shift) > 0, 1.0, 0.1)
    target = square * np.ones((1, n_seeds, 1, 1))
    if not teacher:
        target = np.full_like(target, np.nan)
    decay = np.exp(-t / 60.0)[:, None, None]
    apical_norm = decay * (1.0 + 0.1 * np.arange(n_seeds))[None, :, None]
    apical = np.sin(t[:, None, None, None] + np.arange(4)) * decay[..., None] * np.ones((1, n_seeds, 1, 4))
    arrays = {"out.soma.u": u, "target": target, "pyr_1.apical.v": apical_norm, "pyr_2.apical.v": apical}
    chunk = {}
    for var, value in arrays.items():
        if var in skip:
            continue
        chunk[var] = value.astype(np.float32)
        chunk[f"{var}.t"] = t
    folder = run / "recordings" / phase
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"epoch_{epoch:04d}.npz", **chunk)


def make_run(root: Path, classification: bool = True, recordings: bool = True,
             nested_index: bool = False) -> Path:
    """A synthetic run directory as the experiment writes it (no figures folder yet)."""
    run = root / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"name": "synthetic", "seeds": SEEDS, "dt": DT}))
    write_metrics(run / "metrics.csv", classification=classification)
    if recordings:
        units = "potential (dimensionless)"
        variables = {
            "out.soma.u": {"every": 10, "reduce": "none", "units": units, "phases": None},
            "target": {"every": 10, "reduce": "none", "units": units, "phases": None},
            "pyr_1.apical.v": {"every": 10, "reduce": "norm", "units": units, "phases": None},
            "pyr_2.apical.v": {"every": 10, "reduce": "none", "units": units, "phases": ["train"]},
        }
        index = {"seeds": SEEDS, "variables": variables} if nested_index else {"seeds": SEEDS, **variables}
        (run / "recordings").mkdir()
        (run / "recordings" / "index.json").write_text(json.dumps(index))
        write_chunk(run, "train", 1, t0=0.0)
        write_chunk(run, "train", 2, t0=50.0)
        write_chunk(run, "test", EPOCHS, t0=100.0, teacher=False, skip=("pyr_2.apical.v",))
    return run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path} is not a PNG"
    assert len(data) > 5000, f"{path} is suspiciously small ({len(data)} bytes)"


def test_plot_run_writes_every_kind(run_dir: Path):
    written = plot_run(run_dir)
    assert [p.name for p in written] == ["curves.png", "traces.png", "apical.png"]
    for path in written:
        assert path.parent == run_dir / "figures"
        assert_png(path)
        assert path.stat().st_mode & 0o044, "figures should be readable like any other file"
    leftovers = [p.name for p in (run_dir / "figures").iterdir() if p.name not in {"curves.png", "traces.png",
                                                                                   "apical.png"}]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_plot_run_leaves_global_style_alone(run_dir: Path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    plot_run(run_dir, kinds=["curves"])
    changed = {k for k, v in matplotlib.rcParams.items() if before.get(k) != v}
    assert not changed, f"rcParams changed: {sorted(changed)}"


def test_plot_run_other_format_and_kind_subset(run_dir: Path):
    written = plot_run(run_dir, kinds=["apical"], fmt="pdf")
    assert written == [run_dir / "figures" / "apical.pdf"]
    assert written[0].read_bytes().startswith(b"%PDF")


def test_plot_run_rejects_unknown_kind(run_dir: Path):
    with pytest.raises(ValueError, match="unknown figure kind.*weights"):
        plot_run(run_dir, kinds=["weights"])


def test_missing_recordings_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    run = make_run(tmp_path, recordings=False)
    with caplog.at_level(logging.INFO, logger="microcircuit"):
        written = plot_run(run)
    assert [p.name for p in written] == ["curves.png"]
    assert_png(written[0])
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert any("traces" in m for m in skipped) and any("apical" in m for m in skipped), skipped
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_missing_variable_in_one_phase_is_skipped(run_dir: Path, caplog: pytest.LogCaptureFixture):
    shutil.rmtree(run_dir / "recordings" / "train")
    run = load_run(run_dir)
    with pytest.raises(NoData, match="pyr_1.apical.v.*train"):
        run.recording("train", "pyr_1.apical.v")
    with pytest.raises(NoData, match="apical"):
        plot_apical(run, phase="train")
    fig = plot_apical(run)  # the test phase still has pyr_1.apical.v (pyr_2 was recorded in train only)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["pyr_1.apical.v"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "test" in legend and "train" not in legend  # no key for what is not drawn
    with caplog.at_level(logging.INFO, logger="microcircuit"):
        written = plot_run(run_dir)
    assert len(written) == 3  # traces fall back to the test phase, without target
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_empty_run_dir_draws_nothing(tmp_path: Path):
    assert plot_run(tmp_path) == []
    assert (tmp_path / "figures").exists() is False


def test_recording_concatenates_chunks_in_epoch_order(run_dir: Path):
    # an epoch number past the 4-digit padding must still sort numerically, not by name
    write_chunk(run_dir, "train", 10000, t0=1000.0, n=7)
    run = load_run(run_dir)
    t, u = run.recording("train", "out.soma.u")
    assert t.shape == (107,) and u.shape == (107, 3, 1, 3)
    assert np.all(np.diff(t) > 0), "chunks were not concatenated in order"
    with np.load(run_dir / "recordings" / "train" / "epoch_0002.npz") as chunk:
        np.testing.assert_array_equal(u[50:100], chunk["out.soma.u"])
    t1, _ = run.recording("train", "out.soma.u", epochs=[2])
    np.testing.assert_array_equal(t1, t[50:100])
    _, norm = run.recording("train", "pyr_1.apical.v")
    assert norm.shape == (107, 3, 1)
    assert run.recorded_phases() == ["train", "test"]


@pytest.mark.parametrize("nested", [False, True])
def test_load_run_reads_both_index_layouts(tmp_path: Path, nested: bool):
    run = load_run(make_run(tmp_path, nested_index=nested))
    assert run.name == "synthetic" and run.dt == DT and run.seeds == SEEDS
    assert set(run.index) == {"out.soma.u", "target", "pyr_1.apical.v", "pyr_2.apical.v"}
    assert run.reduce("pyr_1.apical.v") == "norm"
    assert list(run.metrics.columns) == ["phase", "epoch", "seed", "metric", "value"]
    assert run.metrics["epoch"].dtype.kind == "i" and run.metrics["seed"].dtype.kind == "i"
    assert output_variable(run) == "out.soma.u"


def panel_titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


def test_learning_curves_classification(run_dir: Path):
    fig = plot_learning_curves(load_run(run_dir))
    assert panel_titles(fig) == ["Accuracy", "Loss", "Apical potential"]
    accuracy = fig.axes[0]
    assert accuracy.get_ylabel() == "accuracy (%)"
    assert accuracy.get_ylim()[1] > 50  # in percent, not a fraction
    assert all(ax.get_xlabel().startswith("epoch") for ax in fig.axes)
    (phase_legend,) = fig.legends  # phases share one legend: the colours are the same in every panel
    phases = [t.get_text() for t in phase_legend.get_texts()]
    assert phases == ["self prediction", "train", "validate", "test"]
    populations = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert populations == ["pyr_1", "pyr_2"]


def write_baseline(run: Path) -> None:
    """baseline.csv as ``run --baseline`` writes it: validation every 5 epochs, then final rows."""
    rows = []
    for seed in SEEDS:
        for epoch in range(5, EPOCHS + 1, 5):
            rows += [("baseline_validate", epoch, seed, "loss", 0.05 / epoch),
                     ("baseline_validate", epoch, seed, "accuracy", 0.97)]
        for split in ("train", "validation", "test"):
            rows += [(f"baseline_{split}", EPOCHS, seed, "loss", 0.01),
                     (f"baseline_{split}", EPOCHS, seed, "accuracy", 0.97)]
    pd.DataFrame(rows, columns=["phase", "epoch", "seed", "metric", "value"]).to_csv(run / "baseline.csv", index=False)


def test_learning_curves_draw_the_backprop_baseline_beside_the_run(run_dir: Path):
    without = plot_learning_curves(load_run(run_dir))
    n_lines = len(without.axes[0].get_lines())
    write_baseline(run_dir)
    run = load_run(run_dir)
    assert set(run.baseline["phase"]) == {"baseline_validate", "baseline_train", "baseline_validation",
                                          "baseline_test"}
    fig = plot_learning_curves(run)
    assert panel_titles(fig) == ["Accuracy", "Loss", "Apical potential"]  # no panel of its own
    (phase_legend,) = fig.legends
    phases = [t.get_text() for t in phase_legend.get_texts()]
    assert phases == ["self prediction", "train", "validate", "test", "backprop validate", "backprop test"]
    dashed = [h.get_linestyle() for h in phase_legend.legend_handles if h.get_label() == "backprop validate"]
    assert dashed == ["--"]
    accuracy = fig.axes[0]
    assert len(accuracy.get_lines()) > n_lines
    # the validation curve at 97 % over epochs 5..20 and the test point (a diamond) at epoch 20
    curves = [ln for ln in accuracy.get_lines() if ln.get_linestyle() == "--"]
    assert any(np.allclose(ln.get_xdata(), [5, 10, 15, 20]) and np.allclose(ln.get_ydata(), 97.0) for ln in curves)
    diamonds = [ln for ln in accuracy.get_lines() if ln.get_marker() == "D"]
    assert any(np.allclose(ln.get_xdata(), [EPOCHS]) and np.allclose(ln.get_ydata(), 97.0) for ln in diamonds)
    assert not any(np.allclose(ln.get_ydata(), 97.0) for ln in without.axes[0].get_lines())
    written = plot_run(run_dir, kinds=["curves"])
    assert_png(written[0])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_accuracy_axis_stays_on_curves_far_above_chance(run_dir: Path):
    """Ten classes (chance 10 %) and every accuracy above 80 %: the axis is not stretched down to chance,
    the title says where chance is; near chance (the synthetic curves start at 40 %) it is drawn."""
    (run_dir / "config.resolved.yaml").write_text(
        "populations: {out: {size: 10}}\ninputs: {teacher: {target: out.soma}}\n")
    near = plot_learning_curves(load_run(run_dir)).axes[0]
    assert near.get_title() == "Accuracy" and near.get_ylim()[0] <= 5.0
    assert "chance (1/10)" in [t.get_text() for t in near.texts]
    metrics = pd.read_csv(run_dir / "metrics.csv")
    accuracy = metrics["metric"] == "accuracy"
    metrics.loc[accuracy, "value"] = 0.8 + 0.1 * metrics.loc[accuracy, "value"]
    metrics.to_csv(run_dir / "metrics.csv", index=False)
    far = plot_learning_curves(load_run(run_dir)).axes[0]
    assert far.get_title() == "Accuracy (chance 1/10 = 10 %)"
    assert far.get_ylim()[0] > 70.0 and "chance (1/10)" not in [t.get_text() for t in far.texts]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_learning_curves_regression_task(tmp_path: Path):
    run = load_run(make_run(tmp_path, classification=False, recordings=False))
    fig = plot_learning_curves(run)
    assert panel_titles(fig) == ["Loss", "Apical potential"]
    assert "accuracy" not in " ".join(ax.get_ylabel() for ax in fig.axes)


def test_learning_curves_generic_metric_and_given_axes(run_dir: Path):
    import matplotlib.pyplot as plt

    with (run_dir / "metrics.csv").open("a") as f:
        for epoch in range(1, EPOCHS + 1):
            for seed in SEEDS:
                f.write(f"train,{epoch},{seed},weight_distance/up_1,{1.0 / epoch}\n")
    run = load_run(run_dir)
    fig = plot_learning_curves(run)
    assert panel_titles(fig)[-1] == "Weight distance"
    fig_given, ax = plt.subplots()
    assert plot_learning_curves(run, ax=ax, metrics=["loss"]) is fig_given
    with pytest.raises(ValueError, match="need as many axes"):
        plot_learning_curves(run, ax=ax)
    plt.close("all")


def test_output_traces(run_dir: Path):
    run = load_run(run_dir)
    fig = plot_output_traces(run, phase="train", seed_index=1)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("time in the")  # from the shown window's start
    assert ax.get_ylabel() == "output somatic potential u (dimensionless)"
    assert min(line.get_xdata()[0] for line in ax.get_lines()) == 0.0
    assert "seed 12" in ax.get_title() and "epoch 2" in ax.get_title()
    assert len(ax.get_lines()) == 6  # 3 outputs + 3 dashed targets
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "teacher target (dashed)" in labels and "neuron 2" in labels
    test = plot_output_traces(run)  # teacher off in the test phase: potentials only
    assert len(test.axes[0].get_lines()) == 3
    with pytest.raises(NoData):
        plot_output_traces(run, phase="validate")


def test_apical_panels(run_dir: Path):
    run = load_run(run_dir)
    fig = plot_apical(run)
    assert len(fig.axes) == 2
    norm_ax, neuron_ax = fig.axes
    assert norm_ax.get_yscale() == "log"
    assert norm_ax.get_ylabel() == "RMS v_apical (dimensionless)"  # a norm recording, labelled as such
    assert neuron_ax.get_ylabel() == "mean |v_apical| (dimensionless)"  # per neuron: the curves' measure
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)  # as in curves.png
    for ax in fig.axes:
        legend = ax.get_legend()
        keys = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
        drawn = {tuple(np.round(line.get_color(), 3)) if not isinstance(line.get_color(), str) else
                 line.get_color() for line in ax.get_lines()}
        for seed in SEEDS:  # each seed's key has the colour of its lines
            colour = keys[f"seed {seed}"].get_color()
            assert (tuple(np.round(colour, 3)) if not isinstance(colour, str) else colour) in drawn
        assert not any(isinstance(h, matplotlib.patches.Patch) for h in keys.values())  # no shadings
    only_test = plot_apical(run, phase="test")
    assert len(only_test.axes) == 1


def test_apical_across_phases_with_different_batch_sizes(tmp_path: Path):
    """A real run whose train (batch 8) and test (batch 100) phases both record the apical potentials."""
    from microcircuit.cli import main

    code = main(["run", "circuits/yinyang_le.yaml", "--out", str(tmp_path), "-q",
                 "--set", "task.yin_yang.train=40", "--set", "protocol.0.epochs=1",
                 "--set", "protocol.0.validate_every=0",
                 "--set", "record=[{var: pyr_1.apical.v, every: 5, reduce: norm}]"])
    assert code == 0
    run_dir = next(p for p in (tmp_path / "yinyang_le").iterdir() if p.is_dir())
    fig = plot_apical(load_run(run_dir))
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) >= 1
    assert_png(run_dir / "figures" / "apical.png")


def test_bars_figures_mark_classes_chance_and_the_teacher(tmp_path: Path):
    """On a real bars run: traces.png names the class of each presentation above it; curves.png marks
    chance (1/3) and says that train accuracy is measured with the teacher on; apical.png is over epochs."""
    from microcircuit.cli import main

    assert main(["run", "--out", str(tmp_path), "-q", "--no-plot", "--set", "parameters.t_pres=10",
                 "--set", "protocol.0.epochs=5", "--set", "protocol.0.validate_every=5"]) == 0
    run = load_run(next(p for p in (tmp_path / "bars_le").iterdir() if p.is_dir()))
    traces = plot_output_traces(run).axes[0]
    classes = [t.get_text() for t in traces.texts]
    assert len(classes) >= 6 and set(classes) <= {"0", "1", "2"}
    assert traces.get_ylabel() == "output rate potential ŭ (dimensionless)"
    accuracy = plot_learning_curves(run).axes[0]
    notes = [t.get_text() for t in accuracy.texts]
    assert "chance (1/3)" in notes and "train: measured with the teacher on" in notes
    apical = plot_apical(run).axes[0]
    assert apical.get_xlabel() == "epoch" and apical.get_ylabel().startswith("mean |v_apical|")
