"""Typed model of a circuit spec (``schema: microcircuit/1``).

Structure and types only; cross-references (does the target compartment exist,
do the interneuron sizes match, ...) are checked by :mod:`microcircuit.spec.semantic`.
Every model forbids unknown keys so that a typo is an error, never ignored.

The choices of plasticity rule, dynamics and task are built from their registries
(:data:`~microcircuit.model.rules.RULES`, :data:`~microcircuit.model.dynamics.DYNAMICS`,
:data:`~microcircuit.tasks.TASKS`) when this module is imported: names, parameter models
(each class's ``Params``) and docstrings, so that a new rule, dynamics or task is one
registered class. Activations and cell types are plain names here, checked against their
registries by the semantic pass.

Units: time in ms, conductances in 1/ms, potentials and rates dimensionless,
learning rates ``eta`` in 1/ms (the weight change per step is ``dt * eta * ...``),
presentation times ``t_pres`` in integration steps.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field, PositiveFloat, PositiveInt, create_model, model_validator

from microcircuit.model.dynamics import DYNAMICS
from microcircuit.model.rules import RULES
from microcircuit.params import NonNegFloat, NonNegInt, Strict
from microcircuit.registry import Registry
from microcircuit.tasks import TASKS

SCHEMA_VERSION = "microcircuit/1"


# ---------------------------------------------------------------- tagged choices from the registries
def _one_key_model(name: str, suffix: str, entry: type, field: tuple[Any, Any]) -> type[Strict]:
    """The model of ``{name: ...}`` for a registered class, e.g. ``DendriticPredictionRule`` for the rule
    ``dendritic_prediction``; its docstring is the class's (the rule's section of docs/spec.md)."""
    title = "".join(part.capitalize() for part in name.split("_")) + suffix
    return create_model(title, __base__=Strict, __module__=__name__, __doc__=inspect.cleandoc(entry.__doc__ or ""),
                        **{name: field})


def tagged_choice(registry: Registry, suffix: str, bare_with_params: bool) -> Any:
    """The spec type of a choice among a registry's classes, each with its ``Params`` model (or None).

    A class without ``Params`` is written as its bare name, one with ``Params`` as the one-key mapping
    ``{name: {parameters}}``; with ``bare_with_params`` the bare name also stands for the class with its
    default parameters, and a class without ``Params`` may also be written ``{name: {}}``. Names and
    mappings come in the order of registration (the order of the error messages and docs/spec.md).
    """
    bare = [name for name, entry in registry.items() if entry.Params is None or bare_with_params]
    models = []
    for name, entry in registry.items():
        if entry.Params is not None:
            models.append(_one_key_model(name, suffix, entry, (entry.Params, ...)))
        elif bare_with_params:
            models.append(_one_key_model(name, suffix, entry, (dict[str, float], Field(max_length=0))))
    return Union[tuple(([Literal[tuple(bare)]] if bare else []) + models)]  # noqa: UP007 (members in a list)


# ---------------------------------------------------------------- dynamics
#: a bare name or ``{name: {params}}`` (:data:`microcircuit.model.dynamics.DYNAMICS`)
DynamicsSpec = tagged_choice(DYNAMICS, "Dynamics", bare_with_params=True)


# ---------------------------------------------------------------- populations
class Population(Strict):
    """A named population of one cell type.

    ``cell``: ``input`` (rate source), ``pyramidal`` (soma, basal, apical),
    ``output_pyramidal`` (soma, basal), ``interneuron`` (soma, dendrite).
    ``conductances``: keys of the cell type (g_l, g_b, g_a / g_l, g_d); missing ones
    are taken from the ``parameters`` block under the same name.
    ``noise``: sigma of the somatic white noise (potential / sqrt(ms)); it enters u, so in LE
    (whose rate follows the input, not u) it shows in the rates only through tau_r mismatch.
    ``rate_noise``: standard deviation of white noise added to the rate potential every step
    (potential units; noise on what a neuron transmits).
    ``tau_0``: low-pass time constant of an input population (ms, 0 = none).
    ``shape``: [channels, height, width] of an area that convolutions read or write (``size`` is then
    its product and may be left out). ``tau_m``: membrane time constant of a ``prospective`` cell (ms,
    default ``parameters.tau_m``, else 10). ``bias``: a learned bias on a ``prospective`` cell's basal
    input (default false).
    """

    cell: str
    size: PositiveInt
    shape: Annotated[list[PositiveInt], Field(min_length=1, max_length=3)] | None = None
    conductances: dict[str, NonNegFloat] = Field(default_factory=dict)
    dynamics: DynamicsSpec | None = None
    activation: str | None = None
    noise: NonNegFloat | None = None
    rate_noise: NonNegFloat | None = None
    tau_0: NonNegFloat | None = None
    tau_m: PositiveFloat | None = None
    bias: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _size_from_shape(cls, data):
        """``shape: [channels, height, width]`` (or [height, width], [n]) gives ``size`` = its product;
        with both, they must agree."""
        if isinstance(data, dict) and isinstance(data.get("shape"), list) and all(
                isinstance(n, int) and n > 0 for n in data["shape"]):
            size = math.prod(data["shape"])
            if "size" not in data:
                data = {**data, "size": size}
            elif data["size"] != size:
                raise ValueError(f"size {data['size']} differs from the product of shape {data['shape']} ({size}); "
                                 "give one of them")
        return data


# ---------------------------------------------------------------- plasticity rules
#: ``fixed`` or ``{name: {params}}`` (:data:`microcircuit.model.rules.RULES`)
RuleSpec = tagged_choice(RULES, "Rule", bare_with_params=False)


def rule_name(rule: Any) -> str:
    """The name of a spec's ``rule`` value: a bare name, a one-key model of :data:`RuleSpec`, or None (fixed)."""
    if rule is None or isinstance(rule, str):
        return rule or "fixed"
    return next(iter(type(rule).model_fields))


def rule_params(rule: Any) -> Strict | None:
    """The parameters (the rule's ``Params`` model) of a spec's ``rule`` value, None for a bare name."""
    return None if rule is None or isinstance(rule, str) else getattr(rule, rule_name(rule))


# ---------------------------------------------------------------- initialisation
class UniformInit(Strict):
    """Weights uniform in [-uniform, uniform]."""

    uniform: NonNegFloat


class NormalInit(Strict):
    """Weights normal with mean 0 and standard deviation ``normal``."""

    normal: NonNegFloat


class ConstantInit(Strict):
    constant: float


class FileInit(Strict):
    """Weights read from a numpy ``.npz`` file (model.md sec. 8): array ``key`` (default: the
    projection's name), [post, pre] for every circuit or [circuit, post, pre] one per circuit.
    ``file`` is relative to the spec that names it (an absolute path is allowed)."""

    file: str
    key: str | None = None


# ``self_predicting``: W_pi = -W_down, W_ip = analytic value from the area above (model.md sec. 4).
InitSpec = Literal["zeros", "self_predicting"] | UniformInit | NormalInit | ConstantInit | FileInit


# ---------------------------------------------------------------- projections
class DelaySpec(Strict):
    """Transmission delay in steps; with ``jitter`` each circuit draws its delay uniformly from
    steps - jitter .. steps + jitter (clipped at 0), one value per projection (synapse group)."""

    steps: NonNegInt
    jitter: NonNegInt = 0


class PrecisionSpec(Strict):
    """Limited-precision weights: 2^bits levels evenly spaced in [-range, range], rounded after
    initialisation and after every update. ``rounding: nearest`` discards every update smaller than
    half a level; ``stochastic`` rounds up with probability equal to the remainder (in level units),
    so that small updates survive on average (one random stream per circuit)."""

    bits: Annotated[int, Field(ge=1, le=32)]
    range: PositiveFloat
    rounding: Literal["nearest", "stochastic"] = "nearest"


class ConvSpec(Strict):
    """A convolution (model.md sec. 10): square kernels of ``kernel`` x ``kernel`` positions, one per pair
    of (target, source) channels, shared over positions; ``stride`` and zero ``padding`` in positions.
    ``transposed``: the transposed convolution of a kernel [source channels, target channels, k, k], the
    way back down along a convolution from the target's shape to the source's (a microcircuit's top-down
    and interneuron-to-apical projections)."""

    kernel: PositiveInt
    stride: PositiveInt = 1
    padding: NonNegInt = 0
    transposed: bool = False


class PoolSpec(Strict):
    """Pooling of the source's rates over ``size`` x ``size`` windows (stride ``size``) before the weights:
    ``max`` passes each window's largest rate (and the error back to that position only), ``average``
    their mean."""

    max: PositiveInt | None = None
    average: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.max is None) == (self.average is None):
            raise ValueError("give exactly one of 'max' or 'average' (the window size), e.g. pool: {max: 2}")
        return self

    @property
    def kind(self) -> str:
        return "max" if self.max is not None else "average"

    @property
    def size(self) -> int:
        return self.max if self.max is not None else self.average


class Projection(Strict):
    """A named projection ``source -> target``.

    ``target`` is always ``population.compartment``. A target compartment ``soma``
    makes the projection a somatic nudging connection: its source must be
    ``population.soma`` of the same size (one-to-one), it carries ``conductance``
    (1/ms) and has no weights. Otherwise the source is a population name (its rate)
    and the projection has a weight matrix [post, pre].

    Into ``prospective`` cells (model.md sec. 10): ``conv`` makes the weights a shared kernel
    [target channels, source channels, kernel, kernel] between shaped populations; ``pool`` pools the
    source's rates first; a dense projection from a shaped source reads it flattened (channel, row,
    column). ``feedback``: what carries the error back down, ``transpose`` (W^T, the default) or
    ``random`` (a fixed random matrix of W's shape drawn like W's ``init``: feedback alignment).
    """

    source: str
    target: str
    rule: RuleSpec | None = None
    init: InitSpec | None = None
    w_max: PositiveFloat | None = None
    tau_w: NonNegFloat | None = None
    tau_s: NonNegFloat | None = None
    delay: NonNegInt | DelaySpec | None = None
    precision: PrecisionSpec | None = None
    conductance: NonNegFloat | None = None
    conv: ConvSpec | None = None
    pool: PoolSpec | None = None
    feedback: Literal["transpose", "random"] | None = None


class PopulationDefaults(Strict):
    dynamics: DynamicsSpec = "latent_equilibrium"
    activation: str = "soft_relu"
    noise: NonNegFloat = 0.0
    rate_noise: NonNegFloat = 0.0
    tau_0: NonNegFloat = 0.0
    bias: bool = False


class ProjectionDefaults(Strict):
    rule: RuleSpec = "fixed"
    init: InitSpec = UniformInit(uniform=1.0)
    w_max: PositiveFloat | None = None
    tau_w: NonNegFloat = 0.0
    tau_s: NonNegFloat = 0.0
    delay: NonNegInt | DelaySpec = 0
    precision: PrecisionSpec | None = None


class Defaults(Strict):
    population: PopulationDefaults = PopulationDefaults()
    projection: ProjectionDefaults = ProjectionDefaults()


# ---------------------------------------------------------------- tasks
#: Exactly one task, as a one-key mapping ``{bars: {...}}``: a key per task of
#: :data:`microcircuit.tasks.TASKS`, its value the task's ``Params``.
TaskSpec = create_model("TaskSpec", __base__=Strict, __module__=__name__,
                        __doc__="Exactly one task, as a one-key mapping: ``{bars: {...}}``.",
                        **{name: (task.Params | None, None) for name, task in TASKS.items()})


class StimulusSpec(Strict):
    """Where the task's input goes: an ``input`` population."""

    target: str


class TeacherSpec(Strict):
    """Somatic nudging of the output by the task target.

    ``delay``: steps by which the target lags the stimulus; ``auto`` is the time the stimulus needs
    to reach an LE output: depth - 1 under the reference schedule, plus the transmission delays of the
    bottom-up projections (per circuit when jittered); 0 when the output uses orig dynamics.

    ``conductance`` (1/ms) nudges a microcircuit's output soma. A prospective network's output is
    nudged by the error e = ``beta`` phi'(u_breve) (target - r) (``error: rate``) or
    ``beta`` (target - u_breve) (``error: potential``), model.md sec. 10.
    """

    target: str
    conductance: NonNegFloat | None = None
    tau_0: NonNegFloat = 0.0
    delay: int | Literal["auto"] = "auto"
    beta: NonNegFloat | None = None
    error: Literal["rate", "potential"] = "rate"


class Inputs(Strict):
    stimulus: StimulusSpec
    teacher: TeacherSpec


class Conventions(Strict):
    """Conventions at run and phase boundaries (model.md sec. 9), the package's by default.

    ``base``: ``package`` or ``reference_code`` (the original LE microcircuit program's choices);
    the other keys override single conventions of the base:
    ``initial_target``: the delayed target before the first presentation of a run, ``first`` (the
    first target) or ``zero``. ``teacher_switch``: ``boundary`` (the teacher goes on or off with the
    presentation) or ``delayed`` (its on/off flag lags like the target). ``teacher_off_relaxation``:
    with the teacher off, the output relaxes at ``dendritic`` (g_l + g_B) or ``with_teacher``
    (g_l + g_B + g_som, towards the same potential). ``teacher_delay`` (for ``delay: auto``):
    ``depth`` (depth - 1 steps for an LE output) or ``one_step`` (1 step for an LE output).
    ``average_from``: ms into each presentation after which the output is averaged, a number or
    ``reference_lag`` (the reference's per-t_pres lag for an orig output, 0 for LE); phases may set
    their own. ``reset_state``: reset the neurons (not the weights) at the start of every phase;
    phases may set their own.
    """

    base: Literal["package", "reference_code"] = "package"
    initial_target: Literal["first", "zero"] | None = None
    teacher_switch: Literal["boundary", "delayed"] | None = None
    teacher_off_relaxation: Literal["dendritic", "with_teacher"] | None = None
    teacher_delay: Literal["depth", "one_step"] | None = None
    average_from: NonNegFloat | Literal["reference_lag"] | None = None
    reset_state: bool | None = None


# ---------------------------------------------------------------- protocol
class OrderFile(Strict):
    """A given stimulus order (model.md sec. 8): sample indices [epoch, sample] or [sample] (every
    epoch the same), or [circuit, epoch, sample], in a ``.npy``, an ``.npz`` (array ``key``, default
    ``order``) or a text file (one epoch per line). ``file`` is relative to the spec that names it."""

    file: str
    key: str | None = None


class Phase(Strict):
    """One protocol phase.

    ``phase``: its name (``self_prediction``, ``train``, ``validate``, ``test`` or any
    identifier). ``data``: which split is presented (``random`` = i.i.d. uniform
    inputs in [0, 1], as for learning the self-predicting state).
    ``plastic``: ``all``, ``none`` or a list of projection names.
    ``eta``: per-projection learning-rate overrides for this phase (1/ms).
    ``eta_scale``: factor on every learning rate, or ``inverse_t_pres`` (1/t_pres).
    ``t_pres``: presentation time per stimulus (steps). ``samples``: stimuli per
    epoch for ``data: random``. ``batch``: stimuli presented in parallel to each circuit, their
    plasticity averaged (a minibatch; the last batch of an epoch is filled up from its start
    and only the real stimuli count in the metrics). ``tau_r_eta``: learning rate of the prospective
    time constants of every LE population in this phase (0 = off; see LatentEquilibrium).
    ``validate_every``: in a training phase, evaluate
    the validation split every K epochs (0 = never).
    """

    phase: str
    data: Literal["train", "validation", "test", "random"] = "train"
    teacher: bool = False
    plastic: Literal["all", "none"] | list[str] = "none"
    eta: dict[str, NonNegFloat] = Field(default_factory=dict)
    eta_scale: NonNegFloat | Literal["inverse_t_pres"] = 1.0
    epochs: PositiveInt = 1
    t_pres: PositiveInt = 100
    samples: PositiveInt = 100
    shuffle: bool = True
    batch: PositiveInt = 1
    tau_r_eta: NonNegFloat = 0.0
    validate_every: int = Field(default=0, ge=0)
    #: ms into each presentation from which the output is averaged (None: the spec's conventions)
    average_from: NonNegFloat | Literal["reference_lag"] | None = None
    #: reset the neurons (not the weights) when the phase starts (None: the spec's conventions)
    reset_state: bool | None = None
    #: the stimulus order from a file instead of shuffling (or not) with the circuit's order stream
    order: OrderFile | None = None

    @property
    def eta_factor(self) -> float:
        """The factor ``eta_scale`` puts on every learning rate of this phase (the one place of this rule):
        1 / t_pres for ``inverse_t_pres`` (the weight change per presentation then does not depend on
        t_pres), else the number itself."""
        return 1.0 / self.t_pres if self.eta_scale == "inverse_t_pres" else float(self.eta_scale)


# ---------------------------------------------------------------- recording
class Recording(Strict):
    """Record ``population.compartment.variable`` every ``every`` steps.

    Variables: ``soma.u`` (potential), ``soma.u_breve`` (prospective potential),
    ``soma.rate``, ``<dendrite>.v`` (dendritic potential), plus the special
    ``target`` (teacher target, output size). ``reduce``: ``none`` keeps every
    neuron, ``mean`` / ``norm`` (root mean square) / ``mean_abs`` (mean |x|, the measure of the
    ``apical_norm`` metric) reduce over neurons. ``phases``: phase names
    (default: all).
    """

    var: str
    every: PositiveInt = 10
    phases: list[str] | None = None
    reduce: Literal["none", "mean", "norm", "mean_abs"] = "none"


# ---------------------------------------------------------------- top level
#: a spec's name names its folder of run directories: one safe path component
RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _check_run_name(name: str) -> str:
    if not RUN_NAME_PATTERN.fullmatch(name):
        raise ValueError("a name must be one folder name (it names the folder of run directories): letters, "
                         "digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters; "
                         "e.g. bars_le or my-run.2")
    return name


RunName = Annotated[str, AfterValidator(_check_run_name)]


class Spec(Strict):
    """A whole circuit spec after ``extends``, presets and ``$references`` are resolved."""

    schema_: Literal["microcircuit/1"] = Field(alias="schema")
    name: RunName
    description: str = ""
    preset: Literal["haider2021", "sacramento2018"] | None = None
    seed: int = Field(default=0, ge=0)
    dt: PositiveFloat
    dtype: Literal["float32", "float64"] = "float32"
    schedule: Literal["reference", "propagating"] = "reference"
    engine: Literal["auto", "eager", "compiled"] = "auto"
    checkpoint_every: int = Field(default=0, ge=0)  # epochs between checkpoints (0: by wall time only)
    checkpoint_minutes: float = Field(default=10.0, ge=0)  # wall-time minutes between checkpoints (0: never)
    compare_backprop: bool = False
    conventions: Literal["package", "reference_code"] | Conventions = "package"
    parameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    defaults: Defaults = Defaults()
    populations: dict[str, Population]
    projections: dict[str, Projection]
    task: TaskSpec
    inputs: Inputs
    protocol: list[Phase] = Field(min_length=1)
    record: list[Recording] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
