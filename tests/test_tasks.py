"""Tasks: exact bars patterns, yin-yang check values (design/datasets.md), teacher targets."""

from __future__ import annotations

import numpy as np
import pytest

from microcircuit.spec.schema import TaskSpec
from microcircuit.tasks import TASKS, Architecture, Split, make_task, validate_split
from microcircuit.tasks.bars import BarsTask
from microcircuit.tasks.teacher import Teacher, TeacherTask
from microcircuit.tasks.yin_yang import YinYangTask, generate_yin_yang, yin_yang_label


def soft_relu(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def arch(sizes: list[int], c: float = 0.5) -> Architecture:
    return Architecture(sizes, [c] * (len(sizes) - 1), soft_relu)


# ------------------------------------------------------------------ registry / make_task
def test_registered_names():
    assert {"bars", "yin_yang", "teacher"} <= set(TASKS.names())


def test_make_task_picks_the_one_field():
    task = make_task(TaskSpec(bars=BarsTask()))
    assert task.name == "bars" and task.classification
    assert make_task(TaskSpec(teacher=TeacherTask())).classification is False


def test_make_task_empty_spec_errors():
    with pytest.raises(ValueError, match="names no task"):
        make_task(TaskSpec())


def test_make_task_several_errors():
    with pytest.raises(ValueError, match="exactly one"):
        make_task(TaskSpec(bars=BarsTask(), teacher=TeacherTask()))


def test_check_sizes():
    bars = make_task(TaskSpec(bars=BarsTask()))
    assert bars.check_sizes(9, 3) == []
    problems = bars.check_sizes(4, 3)
    assert len(problems) == 1 and "9" in problems[0] and "4" in problems[0]
    assert len(bars.check_sizes(4, 2)) == 2
    yy = make_task(TaskSpec(yin_yang=YinYangTask()))
    assert yy.check_sizes(4, 3) == [] and yy.check_sizes(9, 3)
    assert make_task(TaskSpec(teacher=TeacherTask())).check_sizes(7, 5) == []


# ------------------------------------------------------------------ bars
def test_bars_patterns_and_labels():
    splits = make_task(TaskSpec(bars=BarsTask())).splits(arch([9, 30, 3]))
    train = splits["train"]
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 1, 1, 1],
            [1, 0, 0, 1, 0, 0, 1, 0, 0],
            [0, 1, 0, 0, 1, 0, 0, 1, 0],
            [0, 0, 1, 0, 0, 1, 0, 0, 1],
            [1, 0, 0, 0, 1, 0, 0, 0, 1],
            [0, 0, 1, 0, 1, 0, 1, 0, 0],
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(train.inputs, expected)
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 1, 1, 1, 2, 2])
    assert train.inputs.dtype == np.float64 and train.labels.dtype == np.int64
    assert len(train) == 8
    for name in ("validation", "test"):
        np.testing.assert_array_equal(splits[name].inputs, expected)
        np.testing.assert_array_equal(splits[name].labels, train.labels)


def test_bars_targets():
    train = make_task(TaskSpec(bars=BarsTask())).splits(arch([9, 3]))["train"]
    assert train.targets.shape == (8, 3)
    for t, label in zip(train.targets, train.labels, strict=True):
        assert t[label] == 1.0
        assert np.all(np.delete(t, label) == 0.1)
    custom = make_task(TaskSpec(bars=BarsTask(target_low=0.2, target_high=0.8))).splits(arch([9, 3]))
    assert set(np.unique(custom["test"].targets)) == {0.2, 0.8}


def test_bars_noise_deterministic_and_bounded():
    task = make_task(TaskSpec(bars=BarsTask(noise=0.3)))
    a, b = task.splits(arch([9, 3])), task.splits(arch([9, 3]))
    clean = make_task(TaskSpec(bars=BarsTask())).splits(arch([9, 3]))["train"].inputs
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(a[name].inputs, b[name].inputs)
        diff = a[name].inputs - clean
        assert np.all(diff >= 0.0) and np.all(diff < 0.3) and diff.std() > 0
    assert not np.array_equal(a["train"].inputs, a["test"].inputs)


# ------------------------------------------------------------------ yin-yang
def test_yin_yang_check_values_seed42():
    points, labels = generate_yin_yang(5000, 42)
    np.testing.assert_allclose(
        points[:3], [[0.680308, 0.450499], [0.097672, 0.684233], [0.755361, 0.425156]], atol=5e-7
    )
    np.testing.assert_array_equal(labels[:3], [2, 1, 2])
    np.testing.assert_array_equal(np.bincount(labels, minlength=3), [1681, 1702, 1617])


def test_yin_yang_check_values_seed40():
    points, labels = generate_yin_yang(1000, 40)
    np.testing.assert_allclose(points[0], [0.234097, 0.401725], atol=5e-7)
    assert labels[0] == 2
    np.testing.assert_array_equal(np.bincount(labels, minlength=3), [350, 316, 334])


def test_yin_yang_labelling():
    assert yin_yang_label(0.25, 0.5) == 2 and yin_yang_label(0.75, 0.5) == 2
    assert yin_yang_label(0.5, 0.9) == 1  # upper half, away from the right dot
    assert yin_yang_label(0.5, 0.1) == 0  # lower half, away from the left dot
    assert yin_yang_label(0.25, 0.68) == 1  # ring around the left dot
    assert yin_yang_label(0.75, 0.32) == 0  # ring around the right dot


@pytest.fixture(scope="module")
def yin_yang_splits() -> dict[str, Split]:
    return make_task(TaskSpec(yin_yang=YinYangTask())).splits(arch([4, 30, 3]))


def test_yin_yang_splits(yin_yang_splits):
    sizes = {"train": 5000, "validation": 1000, "test": 1000}
    for name, split in yin_yang_splits.items():
        assert len(split) == sizes[name]
        x = split.inputs
        assert x.shape == (sizes[name], 4)
        np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2])
        assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
        np.testing.assert_array_equal(
            [yin_yang_label(px, py) for px, py in x[:, :2]], split.labels
        )
        fractions = np.bincount(split.labels, minlength=3) / len(split)
        np.testing.assert_allclose(fractions, 1 / 3, atol=0.05)
        np.testing.assert_array_equal(np.argmax(split.targets, axis=1), split.labels)
        assert set(np.unique(split.targets)) == {0.1, 1.0}
    train_xy, _ = generate_yin_yang(5000, 42)
    np.testing.assert_array_equal(yin_yang_splits["train"].inputs[:, :2], train_xy)


def test_yin_yang_splits_disjoint(yin_yang_splits):
    rows = {name: {tuple(r) for r in s.inputs[:, :2]} for name, s in yin_yang_splits.items()}
    assert not rows["test"] & rows["train"]
    assert not rows["validation"] & rows["train"]
    assert not rows["validation"] & rows["test"]


def test_yin_yang_cache_returns_copies():
    a, _ = generate_yin_yang(50, 7)
    a[:] = -1.0
    b, _ = generate_yin_yang(50, 7)
    assert np.all(b >= 0.0)


# ------------------------------------------------------------------ teacher
def test_teacher_targets_hand_computed_2_1_1():
    params = TeacherTask(train=5, test=3, seed=3, input_low=0.0, input_high=1.0, weight_scale=2.0)
    architecture = Architecture([2, 1, 1], [0.7, 0.4], soft_relu)
    task = make_task(TaskSpec(teacher=params))
    splits = task.splits(architecture)
    rng = np.random.default_rng(3)
    w1 = rng.uniform(-2.0, 2.0, size=(1, 2))
    w2 = rng.uniform(-2.0, 2.0, size=(1, 1))
    x_train = rng.uniform(0.0, 1.0, size=(5, 2))
    x_test = rng.uniform(0.0, 1.0, size=(3, 2))
    x_val = rng.uniform(0.0, 1.0, size=(3, 2))
    for name, x in (("train", x_train), ("test", x_test), ("validation", x_val)):
        split = splits[name]
        np.testing.assert_array_equal(split.inputs, x)
        assert split.labels is None
        for xi, ti in zip(x, split.targets, strict=True):
            h = np.log1p(np.exp(0.7 * (w1[0, 0] * xi[0] + w1[0, 1] * xi[1])))
            np.testing.assert_allclose(ti, [0.4 * w2[0, 0] * h], rtol=1e-12)
    weights = task.teacher_weights(architecture)
    np.testing.assert_array_equal(weights[0], w1)
    np.testing.assert_array_equal(weights[1], w2)


def test_teacher_shapes_and_no_hidden():
    task = make_task(TaskSpec(teacher=TeacherTask(train=4, test=2, input_low=-1.0, input_high=2.0)))
    assert isinstance(task, Teacher) and task.n_inputs is None and task.n_outputs is None
    splits = task.splits(arch([6, 5, 4, 3]))
    assert splits["train"].inputs.shape == (4, 6) and splits["train"].targets.shape == (4, 3)
    assert splits["validation"].inputs.shape == (2, 6)
    assert np.all((splits["train"].inputs >= -1.0) & (splits["train"].inputs <= 2.0))
    assert [w.shape for w in task.teacher_weights(arch([6, 5, 4, 3]))] == [(5, 6), (4, 5), (3, 4)]
    single = task.splits(arch([3, 2], c=0.5))
    w = task.teacher_weights(arch([3, 2], c=0.5))[0]
    np.testing.assert_allclose(single["test"].targets, 0.5 * single["test"].inputs @ w.T)


def test_teacher_bad_architecture():
    task = make_task(TaskSpec(teacher=TeacherTask()))
    with pytest.raises(ValueError, match="attenuations"):
        task.splits(Architecture([2, 3, 1], [0.5], soft_relu))


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize(
    "spec",
    [TaskSpec(bars=BarsTask(noise=0.1)), TaskSpec(teacher=TeacherTask()),
     TaskSpec(yin_yang=YinYangTask(train=200, validation=50, test=50))],
)
def test_determinism(spec):
    a = make_task(spec).splits(arch([4, 3, 3] if spec.yin_yang else [9, 3, 3]))
    b = make_task(spec).splits(arch([4, 3, 3] if spec.yin_yang else [9, 3, 3]))
    assert list(a) == ["train", "validation", "test"]
    for name in a:
        np.testing.assert_array_equal(a[name].inputs, b[name].inputs)
        np.testing.assert_array_equal(a[name].targets, b[name].targets)
        if a[name].labels is not None:
            np.testing.assert_array_equal(a[name].labels, b[name].labels)


# ------------------------------------------------------------------ validate_split
def good_split() -> Split:
    return Split(np.zeros((4, 2)), np.full((4, 3), 0.1), np.array([0, 1, 2, 0], dtype=np.int64))


def test_validate_split_accepts_good():
    validate_split(good_split(), "ok")
    validate_split(Split(np.zeros((2, 2)), np.zeros((2, 1)), None), "regression")


def test_validate_split_nan():
    s = good_split()
    s.inputs[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"split 'bad'.*NaN/Inf.*sample 2"):
        validate_split(s, "bad")
    s = good_split()
    s.targets[0, 0] = np.inf
    with pytest.raises(ValueError, match="targets contain"):
        validate_split(s, "bad")


def test_validate_split_label_range():
    s = Split(np.zeros((2, 2)), np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"label 3 of sample 1 is outside \[0, 3\)"):
        validate_split(s, "bad")
    with pytest.raises(ValueError, match="outside"):
        validate_split(Split(np.zeros((2, 2)), np.zeros((2, 3)), np.array([-1, 0])), "bad")
    with pytest.raises(ValueError, match="integers"):
        validate_split(Split(np.zeros((2, 2)), np.zeros((2, 3)), np.array([0.0, 1.0])), "bad")


def test_validate_split_shapes():
    with pytest.raises(ValueError, match="2-D"):
        validate_split(Split(np.zeros(4), np.zeros((4, 3)), None), "bad")
    with pytest.raises(ValueError, match="4 inputs but 3 targets"):
        validate_split(Split(np.zeros((4, 2)), np.zeros((3, 3)), None), "bad")
    with pytest.raises(ValueError, match="empty"):
        validate_split(Split(np.zeros((0, 2)), np.zeros((0, 3)), None), "bad")
    with pytest.raises(ValueError, match="labels"):
        validate_split(Split(np.zeros((4, 2)), np.zeros((4, 3)), np.array([0, 1])), "bad")
    with pytest.raises(ValueError, match="expected 5"):
        validate_split(good_split(), "bad", n_inputs=5)
