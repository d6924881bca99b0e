"""Bad data never reaches a run: a clear error before anything is simulated.

- :func:`~microcircuit.tasks.validate_split` (and :func:`~microcircuit.tasks.base.validate_inputs`
  for stimuli without targets) reject NaN/Inf, wrong shapes and dtypes, and labels out of range;
- every task's splits pass through it (:meth:`Task.splits`), so ``Experiment(...)`` raises a
  ValueError naming the task and split before the simulator exists;
- task parameters that could only make bad data (a reversed input range, a seed numpy refuses,
  teacher targets that overflow, sizes that do not fit the task) are spec errors with a location;
- ``microcircuit run`` turns a data error into one line on stderr and exit code 2, no traceback,
  and creates no run directory.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from microcircuit.cli import main
from microcircuit.experiment import Experiment, RunOptions
from microcircuit.spec import SpecError, load_spec, load_spec_text
from microcircuit.tasks import TASKS, Architecture, Bars, Split, make_task, validate_split
from microcircuit.tasks.base import validate_inputs
from tests.conftest import CIRCUITS, ROOT

SHIPPED = sorted(CIRCUITS.glob("*.yaml"))


def good_split(n: int = 4, n_in: int = 3, n_out: int = 2) -> Split:
    labels = np.arange(n) % n_out
    targets = np.full((n, n_out), 0.1)
    targets[np.arange(n), labels] = 1.0
    return Split(np.linspace(0.0, 1.0, n * n_in).reshape(n, n_in), targets, labels.astype(np.int64))


def with_(split: Split, **changes) -> Split:
    return Split(changes.get("inputs", split.inputs), changes.get("targets", split.targets),
                 changes.get("labels", split.labels))


def poisoned(split: Split, value: float = np.nan) -> Split:
    inputs = split.inputs.copy()
    inputs[-1, 0] = value
    return with_(split, inputs=inputs)


# ---------------------------------------------------------------- validate_split
GOOD = good_split()
BAD_SPLITS = {
    "nan input": (poisoned(GOOD), r"split 'bad': inputs contain 1 NaN/Inf values \(first in sample 3\)"),
    "inf input": (poisoned(GOOD, np.inf), r"inputs contain 1 NaN/Inf"),
    "-inf target": (with_(GOOD, targets=np.where(GOOD.targets > 0.5, -np.inf, 0.1)), r"targets contain 4 NaN/Inf"),
    "1-D inputs": (with_(GOOD, inputs=GOOD.inputs[:, 0]), r"inputs must be 2-D \[n_samples, n\], got shape \(4,\)"),
    "3-D targets": (with_(GOOD, targets=GOOD.targets[:, :, None]), r"targets must be 2-D"),
    "integer inputs": (with_(GOOD, inputs=np.ones((4, 3), dtype=np.int64)), r"inputs must be floating point"),
    "a list, not an array": (with_(GOOD, inputs=GOOD.inputs.tolist()), r"inputs must be a numpy array, got list"),
    "no samples": (Split(np.zeros((0, 3)), np.zeros((0, 2)), None), r"split 'bad' is empty \(0 samples\)"),
    "zero-width inputs": (with_(GOOD, inputs=np.zeros((4, 0))), r"zero-width inputs"),
    "fewer targets than inputs": (with_(GOOD, targets=GOOD.targets[:3], labels=None), r"4 inputs but 3 targets"),
    "fewer labels than inputs": (with_(GOOD, labels=GOOD.labels[:2]), r"4 inputs but 2 labels"),
    "label too large": (with_(GOOD, labels=np.array([0, 1, 2, 0])),
                        r"label 2 of sample 2 is outside \[0, 2\) \(the targets have 2 outputs\)"),
    "negative label": (with_(GOOD, labels=np.array([0, -1, 1, 0])), r"label -1 of sample 1 is outside \[0, 2\)"),
    "float labels": (with_(GOOD, labels=GOOD.labels.astype(float)), r"labels must be integers"),
    "2-D labels": (with_(GOOD, labels=GOOD.labels[:, None]), r"labels must be a 1-D numpy array, got \(4, 1\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPLITS))
def test_validate_split_rejects(case: str):
    split, pattern = BAD_SPLITS[case]
    with pytest.raises(ValueError, match=pattern):
        validate_split(split, "bad")


def test_validate_split_checks_the_widths_of_the_circuit():
    validate_split(GOOD, "ok", n_inputs=3, n_outputs=2)
    with pytest.raises(ValueError, match=r"inputs have width 3, expected 9"):
        validate_split(GOOD, "bad", n_inputs=9)
    with pytest.raises(ValueError, match=r"targets have width 2, expected 3"):
        validate_split(GOOD, "bad", n_outputs=3)


def test_validate_inputs_for_stimuli_without_targets():
    """The ``random`` phase data have no targets: validate_inputs checks what they have."""
    validate_inputs(np.random.default_rng(0).uniform(0.0, 1.0, (5, 3)), "random/self_prediction", 3)
    with pytest.raises(ValueError, match=r"split 'random/x': inputs contain 1 NaN/Inf"):
        validate_inputs(poisoned(GOOD).inputs, "random/x")
    with pytest.raises(ValueError, match=r"inputs have width 3, expected 4"):
        validate_inputs(GOOD.inputs, "random/x", 4)


def test_the_random_phase_data_are_valid_stimuli(bars_le):
    """What Experiment.phase_data draws for ``data: random`` passes validate_inputs for every circuit."""
    from microcircuit.spec.schema import Phase

    experiment = Experiment(bars_le, RunOptions(n_seeds=2, progress=False))
    data = experiment.phase_data(Phase(phase="self_prediction", data="random", samples=7))
    assert data.targets is None and tuple(data.inputs.shape) == (2, 7, 9)
    for circuit in data.inputs.numpy():
        validate_inputs(circuit.astype(np.float64), "random/self_prediction", 9)


# ---------------------------------------------------------------- every task validates its splits
ARCH = Architecture([9, 5, 3], [0.5, 0.7], lambda u: np.log1p(np.exp(u)))
TASK_PARAMS = {"bars": {}, "yin_yang": {"train": 5, "validation": 4, "test": 3}, "teacher": {"train": 4, "test": 3}}


@pytest.mark.parametrize("name", sorted(TASK_PARAMS))
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_every_task_validates_every_split(name: str, split: str, monkeypatch):
    from microcircuit.spec.schema import TaskSpec

    task_class = TASKS.get(name)
    task = task_class(getattr(TaskSpec.model_validate({name: TASK_PARAMS[name]}), name))
    arch = ARCH if name != "yin_yang" else Architecture([4, 5, 3], [0.5, 0.7], ARCH.activation)
    good = task._build_splits(arch)
    task.splits(arch)  # as generated: valid

    def corrupt(self, architecture):
        return {**good, split: poisoned(good[split])}

    monkeypatch.setattr(task_class, "_build_splits", corrupt)
    with pytest.raises(ValueError, match=rf"split '{name}/{split}': inputs contain 1 NaN/Inf"):
        task.splits(arch)


def test_task_splits_rejects_missing_splits_and_labels(monkeypatch):
    from microcircuit.tasks.bars import BarsTask

    task = Bars(BarsTask())
    monkeypatch.setattr(Bars, "_build_splits", lambda self, arch: {"train": good_split()})
    with pytest.raises(ValueError, match=r"task 'bars' returned splits \['train'\]"):
        task.splits(ARCH)
    unlabeled = with_(good_split(8, 9, 3), labels=None)
    monkeypatch.setattr(Bars, "_build_splits", lambda self, arch: dict.fromkeys(("train", "validation", "test"),
                                                                                 unlabeled))
    with pytest.raises(ValueError, match=r"split 'bars/train': a classification task needs labels"):
        task.splits(ARCH)
    monkeypatch.setattr(Bars, "_build_splits", lambda self, arch: dict.fromkeys(("train", "validation", "test"),
                                                                                 (1, 2, 3)))
    with pytest.raises(ValueError, match=r"split 'train' is a tuple, not a Split"):
        task.splits(ARCH)


@pytest.mark.parametrize("circuit", SHIPPED, ids=[c.stem for c in SHIPPED])
def test_experiment_refuses_bad_data_before_simulating(circuit, monkeypatch):
    """A corrupt split of any shipped circuit's task stops Experiment(...) before the simulator exists."""
    import microcircuit.experiment as experiment_module

    spec, _, _ = load_spec(circuit)
    task = make_task(spec.task)
    if task.split_sizes() is None:  # a task that reads files: only where this machine has them
        try:
            task.splits(Architecture([784, 10], [0.5], np.tanh))
        except ValueError as err:
            pytest.skip(f"{circuit.stem}: {str(err)[:80]}")
    task_class = type(task)
    original = task_class._build_splits

    def corrupt(self, architecture):
        splits = original(self, architecture)
        return {**splits, "test": poisoned(splits["test"], np.inf)}

    monkeypatch.setattr(task_class, "_build_splits", corrupt)
    simulators = []
    monkeypatch.setattr(experiment_module, "Simulator", lambda *a, **k: simulators.append(a))
    with pytest.raises(ValueError, match=r"/test': inputs contain 1 NaN/Inf values"):
        Experiment(spec, RunOptions(n_seeds=1, progress=False))
    assert simulators == []


# ---------------------------------------------------------------- task parameters are spec errors
BAD_TASK_PARAMS = [
    ("teacher_le", ["task.teacher.input_low=2.0"], "task.teacher.input_high", r"input_high \(1\) is below input_low"),
    ("teacher_le", ["task.teacher.weight_scale=1e200"], "task.teacher.weight_scale", r"targets could exceed"),
    ("teacher_le", ["task.teacher.seed=-5"], "task.teacher.seed", r"seed -5 is negative"),
    ("teacher_le", ["task.teacher.train=100000000000"], "task.teacher.train", r"exceed the limit"),
    ("yinyang_le", ["task.yin_yang.seed_test=4294967296"], "task.yin_yang.seed_test", r"outside \[0, 2\^32\)"),
    ("yinyang_le", ["populations.out.size=4", "populations.int_1.size=4"], "populations.out.size",
     r"task 'yin_yang' has 3 outputs, but the output population 'out' has 4 neurons"),
    ("bars_le", ["populations.x.size=3"], "populations.x.size",
     r"task 'bars' has 9 inputs, but the stimulus population 'x' has 3 neurons"),
    ("bars_le", ["task.bars.target_high=.nan"], "task.bars.target_high", r"expected a finite number, got \.nan"),
]


@pytest.mark.parametrize("circuit, overrides, path, pattern", BAD_TASK_PARAMS,
                         ids=[f"{c}:{o[0]}" for c, o, _, _ in BAD_TASK_PARAMS])
def test_task_parameters_that_make_bad_data_are_spec_errors(circuit, overrides, path, pattern):
    with pytest.raises(SpecError) as info:
        load_spec(CIRCUITS / f"{circuit}.yaml", overrides)
    found = [p for p in info.value.errors if p.path == path]
    assert found and re.search(pattern, found[0].message), str(info.value)
    assert found[0].line >= 1 and found[0].col >= 1


def test_task_size_errors_point_at_the_size_in_the_file():
    text = (CIRCUITS / "bars_le.yaml").read_text().replace("x:     {cell: input, size: 9}", "x: {cell: input, size: 4}")
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "bars4.yaml")
    (problem,) = info.value.errors
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "size: 4}" in row)
    assert str(problem).startswith(f"bars4.yaml:{line}:") and problem.path == "populations.x.size"
    assert problem.hint == "set size: 9"


def test_validating_a_spec_with_its_task_checks_does_not_import_torch():
    code = ("import sys; from microcircuit.spec import load_spec\n"
            f"for path in {[str(c) for c in SHIPPED]!r}: load_spec(path)\n"
            "assert 'microcircuit.tasks' in sys.modules\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- the command line
def test_run_with_bad_data_exits_2_with_one_line_and_no_run_directory(tmp_path, monkeypatch, capsys):
    original = Bars._build_splits

    def corrupt(self, architecture):
        splits = original(self, architecture)
        labels = splits["train"].labels.copy()
        labels[5] = 7
        return {**splits, "train": with_(splits["train"], labels=labels)}

    monkeypatch.setattr(Bars, "_build_splits", corrupt)
    code = main(["run", str(CIRCUITS / "bars_le.yaml"), "--out", str(tmp_path / "runs"), "--no-plot", "-q",
                 "--set", "protocol.0.epochs=1", "--set", "parameters.t_pres=3"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert re.fullmatch(r".*bars_le\.yaml: error: split 'bars/train': label 7 of sample 5 is outside \[0, 3\).*",
                        lines[0]), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "runs").exists()


def test_run_with_bad_task_parameters_exits_2_with_located_errors(tmp_path, capsys):
    code = main(["run", str(CIRCUITS / "teacher_le.yaml"), "--out", str(tmp_path / "runs"), "--no-plot", "-q",
                 "--set", "task.teacher.input_low=5", "--set", "task.teacher.weight_scale=1e200"])
    captured = capsys.readouterr()
    assert code == 2
    assert re.search(r"<command line>:1:1: error: task\.teacher\.input_low|"
                     r"teacher_le\.yaml:\d+:\d+: error: task\.teacher\.input_high", captured.err), captured.err
    assert "Traceback" not in captured.err and not (tmp_path / "runs").exists()

