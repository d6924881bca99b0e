"""The error_vs_backprop analysis program, quick mode, as a user runs it."""

from __future__ import annotations

import pandas as pd

from microcircuit.cli import main


def test_error_vs_backprop_quick(tmp_path):
    out = tmp_path / "evb"
    assert main(["analyse", "error_vs_backprop", "--quick", "--seeds", "2", "--epochs", "10", "--out", str(out)]) == 0
    nudging = pd.read_csv(out / "nudging.csv")
    steady = nudging[(nudging["mode"] == "steady") & (nudging["metric"].str.startswith("apical/"))]
    tied_weak = steady[(steady["top_down"] == "tied") & (steady["g_som"] == 0.001)]
    assert (tied_weak["cosine"] > 0.99).all()
    random = steady[steady["top_down"] == "random"]
    assert random["cosine"].mean() < 0.5
    strong = steady[(steady["top_down"] == "tied") & (steady["g_som"] == 1.0)]
    assert strong["cosine"].mean() < tied_weak["cosine"].mean()
    training = pd.read_csv(out / "training.csv")
    assert {"angle_apical_bp/pyr_1", "angle_dW_bp/up_1", "angle_Wdown_WupT/down_1"} <= set(training["metric"])
    for name in ("nudging.png", "training.png"):
        assert (out / name).stat().st_size > 20_000
