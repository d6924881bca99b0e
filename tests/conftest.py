"""Shared test helpers (small circuits built from YAML text through the real spec loader) and the test tiers.

Tiers: ``pytest`` runs the default tier (every analytic, error and short training test, a few minutes);
``pytest -m slow`` runs the long training runs, analysis programs at full size and the fuzzing campaigns;
``pytest -m ''`` runs both. CI runs the default tier, then the slow one. ``gpu`` tests run only where
torch sees a CUDA device.

Torch is not imported here, so that the spec tests run without it; torch starts with one thread
(``OMP_NUM_THREADS=1`` unless set), since tests share machines.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before any test imports torch

from microcircuit.analysis.chains import chain_spec  # noqa: E402, F401 (re-exported for the tests)

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = ROOT / "circuits"

#: tests of the slow tier, each a long training run, a full analysis program, a signal test that waits
#: for a run to reach an epoch, or a fuzzing campaign; seconds measured on a shared 2-core machine
SLOW: dict[str, str] = {
    "test_analyses.py::test_tpres_sweep_le_learns_at_short_presentation_times": "120 s, trains 22 circuits",
    "test_analyses.py::test_sweep_circuit_equals_a_single_run": "40 s, two sweeps of bars",
    "test_analyses.py::test_self_prediction": "21 s, the full program",
    "test_robustness.py::test_robustness_quick": "50 s, two knobs swept with training",
    "test_error_vs_backprop.py::test_error_vs_backprop_quick": "48 s, nudging sweep and bars training",
    "test_cli.py::test_sigint_checkpoints_and_exits_130": "60 s, a run in a subprocess",
    "test_cli.py::test_kill_9_leaves_valid_metrics_and_recordings": "60 s, a run in a subprocess",
    "test_backprop.py::test_feedback_alignment_during_training_on_bars": "14 s of bars training",
    "test_backprop.py::test_hebbian_alignment_turns_w_down_towards_w_up_transpose": "11 s of training",
    "test_pal.py::test_alignment_learning_quick": "38 s, the quick program for two activations",
    "test_robustness.py::test_mimic_quick": "16 s, the mimic program",
    "test_cli.py::test_resume_after_sigint_gives_the_same_floats": "4 runs in subprocesses, stopped and resumed",
    "test_cli.py::test_engine_and_threads_are_chosen_logged_and_recorded": "runs in subprocesses, each compiling",
    "test_conventions.py::test_reference_code_matches_a_golden_trace_of_the_reference_description":
        "two bars circuits stepped against a golden trace, about 40 s of CPU",
    "test_sweep.py::test_in_process_and_a_local_cluster_give_the_same_table": "starts a local Dask cluster",
    "test_sweep.py::test_a_sweep_killed_mid_way_reruns_only_the_unfinished_runs": "a sweep in a subprocess, killed",
    "test_benchmarks.py::test_a_benchmark_runs": "60 s, the benchmark scripts at their smallest settings",
    "test_prospective.py::test_a_prospective_network_learns_bars_and_batched_equals_alone":
        "20 s, bars training of dense and convolutional prospective networks",
    "test_analyses.py::test_latency_vs_depth": "10 s, the program for several depths",
    "test_pal.py::test_pal_aligns_in_a_short_run": "7 s of training with noise",
}


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    """Mark the :data:`SLOW` tests ``slow``; skip ``gpu`` tests when torch sees no CUDA device."""
    for item in items:
        name = f"{Path(str(item.fspath)).name}::{item.originalname or item.name}"
        if name in SLOW:
            item.add_marker(pytest.mark.slow)
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items:
        import torch

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs a CUDA device")
            for item in gpu_items:
                item.add_marker(skip)


def build(spec: dict | str | Path, overrides: tuple[str, ...] = ()):
    """Load a spec (dict, YAML text or file) through the spec layer; return the validated Spec."""
    from microcircuit.spec import load_spec, load_spec_text

    if isinstance(spec, Path):
        return load_spec(spec, list(overrides))[0]
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    return load_spec_text(text, "test.yaml", list(overrides))[0]


@pytest.fixture
def bars_le():
    return build(CIRCUITS / "bars_le.yaml")
