"""Task interface: a task turns its spec parameters into train/validation/test splits.

A task is one class registered in :data:`TASKS`, with the model of its parameters in ``Params``;
the spec schema's :class:`~microcircuit.spec.schema.TaskSpec` has one key per registered task, its
name (``bars``, ``yin_yang``, ``teacher``, ...). Every split a task returns is checked by
:func:`validate_split`.

Units: inputs are rates (dimensionless) fed to the stimulus population; targets are
somatic potentials (dimensionless) for the output population.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from microcircuit.params import Strict
from microcircuit.registry import Registry

if TYPE_CHECKING:
    from microcircuit.spec.schema import TaskSpec

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
#: Most samples a generated split may have (generation is sample by sample; 10^7 already takes minutes).
MAX_SAMPLES = 10_000_000
#: Most elements one array of a run may hold (samples x width of a split, post x pre of a weight matrix):
#: 2^31 - 1, the int32 index range, 8 GiB in float32. Larger arrays fail in numpy/torch or exhaust memory.
MAX_ELEMENTS = 2**31 - 1


@dataclass(frozen=True)
class Split:
    """One data split.

    Attributes:
        inputs: [n_samples, n_inputs] float64, input rates.
        targets: [n_samples, n_outputs] float64, somatic target potentials of the output.
        labels: [n_samples] int64 class indices in [0, n_outputs), or None for regression tasks.
    """

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.targets.shape[1])


@dataclass(frozen=True)
class Architecture:
    """What a task may need to know about the circuit (the teacher task builds a copy of it).

    Attributes:
        sizes: [n_input, n_hidden_1, ..., n_output], population sizes of the forward (W_up) chain.
        attenuation: c_k for areas k = 1..N (``len(sizes) - 1`` entries),
            c_k = g_b / (g_l + g_b + g_a), with g_a = 0 at the output.
        activation: phi, applied elementwise to a numpy array (potential -> rate).
    """

    sizes: list[int]
    attenuation: list[float]
    activation: Callable[[np.ndarray], np.ndarray]

    @property
    def depth(self) -> int:
        """Number of areas N (weight matrices W_1..W_N)."""
        return len(self.sizes) - 1

    def check(self) -> None:
        """Raise ValueError if sizes and attenuations are inconsistent."""
        if len(self.sizes) < 2:
            raise ValueError(f"architecture needs at least an input and an output size, got {self.sizes}")
        if any(int(s) <= 0 for s in self.sizes):
            raise ValueError(f"architecture sizes must be positive, got {self.sizes}")
        if len(self.attenuation) != self.depth:
            raise ValueError(
                f"architecture has {self.depth} areas (sizes {self.sizes}) "
                f"but {len(self.attenuation)} attenuations {self.attenuation}"
            )


def _check_array(arr: Any, what: str, where: str) -> None:
    """A non-empty, finite, 2-D floating-point numpy array [n_samples, n], else ValueError."""
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{where}: {what} must be a numpy array, got {type(arr).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"{where}: {what} must be 2-D [n_samples, n], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{where}: {what} must be floating point, got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise ValueError(f"{where} is empty (0 samples)")
    if arr.shape[1] == 0:
        raise ValueError(f"{where}: zero-width {what} {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{where}: {what} contain {int(bad.sum())} NaN/Inf values (first in sample {row})")


def validate_inputs(inputs: np.ndarray, name: str, n_inputs: int | None = None) -> None:
    """Check stimuli without targets (e.g. the ``random`` phase data): a non-empty, finite, 2-D
    floating-point array [n_samples, n_inputs]; raise ValueError naming ``name`` on a problem."""
    where = f"split '{name}'"
    _check_array(inputs, "inputs", where)
    if n_inputs is not None and inputs.shape[1] != n_inputs:
        raise ValueError(f"{where}: inputs have width {inputs.shape[1]}, expected {n_inputs}")


def validate_split(
    split: Split, name: str, n_inputs: int | None = None, n_outputs: int | None = None
) -> None:
    """Check a split's shapes, dtypes and values; raise ValueError naming ``name`` on a problem.

    Checks: inputs and targets are 2-D with the same, non-zero number of samples; all values
    finite; labels (if any) 1-D integers of the same length in [0, n_outputs); optionally the
    input and output widths equal ``n_inputs`` / ``n_outputs``.
    """
    where = f"split '{name}'"
    inputs, targets, labels = split.inputs, split.targets, split.labels
    validate_inputs(inputs, name, n_inputs)
    _check_array(targets, "targets", where)
    n = inputs.shape[0]
    if targets.shape[0] != n:
        raise ValueError(f"{where}: {n} inputs but {targets.shape[0]} targets")
    if n_outputs is not None and targets.shape[1] != n_outputs:
        raise ValueError(f"{where}: targets have width {targets.shape[1]}, expected {n_outputs}")
    if labels is not None:
        if not isinstance(labels, np.ndarray) or labels.ndim != 1:
            shape = getattr(labels, "shape", type(labels).__name__)
            raise ValueError(f"{where}: labels must be a 1-D numpy array, got {shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{where}: labels must be integers, got dtype {labels.dtype}")
        if labels.shape[0] != n:
            raise ValueError(f"{where}: {n} inputs but {labels.shape[0]} labels")
        n_classes = targets.shape[1]
        out = (labels < 0) | (labels >= n_classes)
        if out.any():
            i = int(np.argmax(out))
            raise ValueError(
                f"{where}: label {int(labels[i])} of sample {i} is outside [0, {n_classes}) "
                f"(the targets have {n_classes} outputs)"
            )


def one_hot_targets(labels: np.ndarray, n_classes: int, low: float, high: float) -> np.ndarray:
    """Targets [n_samples, n_classes] float64: ``high`` at the label, ``low`` elsewhere."""
    targets = np.full((labels.shape[0], n_classes), float(low), dtype=np.float64)
    targets[np.arange(labels.shape[0]), labels] = float(high)
    return targets


class Task(ABC):
    """A data set / target map. Subclasses set ``name`` and ``classification`` and implement
    :meth:`_build_splits`; :meth:`splits` validates what they return.

    Args:
        params: the task's parameters, a ``Params`` model (the spec's ``task.<name>`` block).
    """

    name: ClassVar[str]
    #: the model of the task's parameters, the spec's ``task: {<name>: {...}}`` (its docstring documents it)
    Params: ClassVar[type[Strict]]
    classification: ClassVar[bool]

    def __init__(self, params: Any):
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    @property
    def n_inputs(self) -> int | None:
        """Required size of the stimulus population, None if any size works."""
        return None

    @property
    def n_outputs(self) -> int | None:
        """Required size of the output population, None if any size works."""
        return None

    def split_sizes(self) -> dict[str, int] | None:
        """Samples per split (``train``, ``validation``, ``test``) as the parameters set them, without
        generating any data; None where only the data can tell (files)."""
        return None

    def check_params(self, sizes: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """Problems with the task's parameters, as ``(parameter, message)`` pairs; empty if they are fine.

        Cheap and torch-free (no data is generated), so that the spec's semantic pass reports a bad
        value as a located spec error before anything runs. ``sizes`` are the circuit's forward
        chain [n_input, n_hidden..., n_output] where known. The base class checks that every split's
        data stay within :data:`MAX_SAMPLES` and :data:`MAX_ELEMENTS`; subclasses add their own checks.
        """
        problems = []
        counts = self.split_sizes() or {}
        width = max(sizes[0], sizes[-1]) if sizes else 1
        for split, n in counts.items():
            if n > MAX_SAMPLES:
                problems.append((split, f"{n} samples in split '{split}' exceed the limit of {MAX_SAMPLES:,}"))
            elif n * width > MAX_ELEMENTS:
                problems.append((split, f"{n} samples x {width} values in split '{split}' exceed the limit of "
                                        f"{MAX_ELEMENTS:,} elements per array"))
        return problems

    def data_identity(self) -> dict:
        """What a run's data are, for the run's manifest (a resume refuses other data). Generated data
        are fixed by the task's parameters and the seeds, which the manifest records anyway; tasks that
        read files return their names, sizes and sha256 (after :meth:`splits`)."""
        return {"source": "generated", "task": self.name}

    @abstractmethod
    def _build_splits(self, architecture: Architecture) -> dict[str, Split]:
        """Generate the splits (keys ``train``, ``validation``, ``test``)."""

    def splits(self, architecture: Architecture) -> dict[str, Split]:
        """The task's data: ``{'train', 'validation', 'test'} -> Split``, each validated.

        Raises:
            ValueError: naming the task and split, if a split is missing, malformed (shape, dtype,
                NaN/Inf, labels out of range or missing for a classification task) or does not fit
                the circuit's input and output sizes.
        """
        splits = self._build_splits(architecture)
        if set(splits) != set(SPLIT_NAMES):
            raise ValueError(
                f"task '{self.name}' returned splits {sorted(splits)}, expected {list(SPLIT_NAMES)}"
            )
        n_in = self.n_inputs if self.n_inputs is not None else architecture.sizes[0]
        n_out = self.n_outputs if self.n_outputs is not None else architecture.sizes[-1]
        for key in SPLIT_NAMES:
            if not isinstance(splits[key], Split):
                raise ValueError(f"task '{self.name}': split '{key}' is a {type(splits[key]).__name__}, not a Split")
            validate_split(splits[key], f"{self.name}/{key}", n_in, n_out)
            if self.classification and splits[key].labels is None:
                raise ValueError(f"split '{self.name}/{key}': a classification task needs labels")
        return {key: splits[key] for key in SPLIT_NAMES}

    def check_sizes(self, n_inputs: int, n_outputs: int) -> list[str]:
        """Problems with a circuit of ``n_inputs`` stimulus and ``n_outputs`` output neurons
        (human-readable; empty if the sizes fit the task)."""
        problems = []
        if self.n_inputs is not None and n_inputs != self.n_inputs:
            problems.append(
                f"task '{self.name}' has {self.n_inputs} inputs, "
                f"but the stimulus population has {n_inputs} neurons"
            )
        if self.n_outputs is not None and n_outputs != self.n_outputs:
            problems.append(
                f"task '{self.name}' has {self.n_outputs} outputs, "
                f"but the output population has {n_outputs} neurons"
            )
        return problems


TASKS: Registry[type[Task]] = Registry("task")


def make_task(task_spec: TaskSpec) -> Task:
    """Instantiate the one task named in ``task_spec`` (exactly one field must be set)."""
    chosen = [name for name in type(task_spec).model_fields if getattr(task_spec, name) is not None]
    if not chosen:
        raise ValueError(f"the task spec names no task; give exactly one of: {', '.join(TASKS.names())}")
    if len(chosen) > 1:
        raise ValueError(f"the task spec names {len(chosen)} tasks ({', '.join(chosen)}); give exactly one")
    name = chosen[0]
    return TASKS.get(name)(getattr(task_spec, name))
