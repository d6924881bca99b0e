"""Fuzzing the spec layer: a mutated spec either runs or is a located SpecError, never a crash.

Every shipped circuit (``circuits/*.yaml``) is mutated, either as a parsed YAML tree (keys
deleted, renamed or added; values replaced by other types, zero, negative, huge, infinite or
NaN numbers, dangling ``$references``, wrong or unknown population names, unicode, code-like
strings, other plausible rules / inits / dynamics ...) and dumped back to YAML, or as text
(truncated, a line duplicated or deleted, garbage bytes inserted, an empty file, a list or a
scalar document, binary content). Each mutant must either

- fail validation with a :class:`~microcircuit.spec.SpecError` whose every error is located
  (``file:line:col: error: ...``), or
- validate, then build an :class:`~microcircuit.experiment.Experiment` and run its protocol,
  shortened (one epoch per phase, 3 steps per stimulus, at most 3 stimuli per phase), without
  any exception (a run that diverges is a result, not a crash).

The default suite runs a few hundred mutants with ``derandomize=True`` (deterministic in CI);
the ``slow`` test runs a few thousand more from a fixed seed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from microcircuit.experiment import Experiment, RunOptions
from microcircuit.spec import SpecError, load_spec_text
from microcircuit.tasks import Split, make_task

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = sorted((ROOT / "circuits").glob("*.yaml"))
TEXTS = {path.stem: path.read_text(encoding="utf-8") for path in CIRCUITS}
TREES = {name: yaml.safe_load(text) for name, text in TEXTS.items()}

#: one located error line: ``file:line:col: error: message``
LOCATED = re.compile(r"^.+:\d+:\d+: error: ", re.MULTILINE)
#: stimuli per phase, steps per stimulus in the shortened run
SHORT_SAMPLES, SHORT_STEPS = 3, 3

# Values a mutation writes: every YAML type, edge numbers, bad references and names that mean
# something somewhere in a spec (so that mutants also reach the semantic checks).
EDGE_VALUES: list[Any] = [
    0, -1, 1, 2, 3, 9, -0.5, 0.0, 1e-300, 5e-324, 1e300, -1e300, 1.7e308, math.inf, -math.inf, math.nan,
    10**12, 2**64, -(2**63), True, False, None, [], {}, "", " ", "\t", "0.1", "1e-3",
    "$nope", "$t_pres", "$g_som", "$g_l*2", "$", "${t_pres}", "__import__('os').system('true')",
    "!!python/object/apply:os.system", "yes", "on", "null", "~", "ünïcødé", "🧠", "a\u202eb", "\u2028",
    "nope", "nope.soma", "x", "x.soma", "out", "out.soma", "out.basal", "pyr_1", "pyr_1.soma",
    "pyr_1.basal", "pyr_1.apical", "pyr_1.apicl", "pyr_1.dendrite", "int_1", "int_1.soma",
    "int_1.dendrite", "int_1.basal", "pyr_1.basal.extra", "up_1", "up_2", "ip_1", "pi_1", "down_1",
    "nudge_1",
    "fixed", "zeros", "self_predicting", {"uniform": -1.0}, {"uniform": 1e300}, {"normal": 0.0},
    {"constant": math.nan}, {"constant": 1e300}, {"dendritic_prediction": {"eta": 1e300}},
    {"dendritic_prediction": {"eta": -1.0}}, {"apical_silencing": {"eta": 1.0}},
    {"hebbian_alignment": {"eta": 1.0}}, {"tied": {"to": "up_2"}}, {"tied": {"to": "nope"}},
    {"fixed": {}}, "orig", "latent_equilibrium", {"orig": {}},
    {"latent_equilibrium": {"tau_r": 1e-9, "mismatch": {"distribution": "normal", "spread": 10.0}}},
    {"latent_equilibrium": {"tau_r": 1e300}}, "input", "pyramidal", "output_pyramidal", "interneuron",
    "sigmoid", "linear", "relu", "tanh", "hard_sigmoid", "random", "train", "validation", "test", "all",
    "none", "inverse_t_pres", "reference", "propagating", "float64", "float16", "haider2021",
    "sacramento2018", ["up_1", "nope"], ["pi_1", "nudge_1"], ["test"], [1, 2],
    {"bars": {}}, {"yin_yang": {"train": 3, "validation": 2, "test": 2}}, {"teacher": {}},
    {"teacher": {"input_low": 1.0, "input_high": 0.0}}, {"teacher": {"weight_scale": 1e300}},
    {"bars": {}, "teacher": {}}, {"target": "x"}, {"target": "out.soma", "conductance": 0.06},
    {"var": "*.soma.rate"}, {"var": "p*.soma.u"}, {"var": "target", "every": 1},
    {"phase": "extra", "data": "random", "plastic": "all", "samples": 2},
    {"cell": "pyramidal", "size": 3}, {"source": "x", "target": "out.basal"},
    {"source": "out", "target": "pyr_1.basal"}, {"source": "pyr_1", "target": "pyr_1.basal"},
]

#: Tags a text mutation puts before a value: unsafe ones, and standard ones that may not fit the value.
YAML_TAGS = ["!!python/object/apply:os.system", "!!python/name:os.system", "!!python/object/new:os.system",
             "!custom", "!!binary", "!!set", "!!omap", "!!timestamp", "!!str", "!!int", "!!float", "!!bool",
             "!!null", "!!map", "!!seq"]

scalars = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
new_keys = st.one_of(
    st.sampled_from(["size", "sise", "g_l", "cell", "rule", "eta", "target", "source", "extends", "schema",
                     "dt", "seed", "<<", "on", "y", "1", "ünï", "🧠", "", " ", "a.b", "$ref", "delay"]),
    st.text(max_size=8),
)


@dataclass(frozen=True)
class Mutant:
    """A mutated spec: its content (text or bytes), the circuit it came from and what was done."""

    circuit: str
    content: str | bytes
    steps: tuple[str, ...]

    def __repr__(self) -> str:  # shown by hypothesis on failure
        content = self.content if len(self.content) < 4000 else self.content[:4000]
        return f"Mutant({self.circuit}, steps={list(self.steps)}, content=\n{content!s}\n)"


# ---------------------------------------------------------------- mutations
def node_paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key / list-item path of a parsed YAML tree (the root excluded)."""
    paths = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        paths.append(prefix + (key,))
        paths += node_paths(value, prefix + (key,))
    return paths


def container_paths(tree: Any) -> list[tuple]:
    """Paths of every mapping and list in the tree (the root included)."""
    found = [()]
    for path in node_paths(tree):
        if isinstance(get(tree, path), (dict, list)):
            found.append(path)
    return found


def get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def deep_copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: deep_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [deep_copy(v) for v in tree]
    return tree


def names_of(tree: Any) -> list[str]:
    """Names a spec value may refer to: populations, their compartments, projections, phases."""
    def section(key: str, kind: type) -> Any:
        value = tree.get(key) if isinstance(tree, dict) else None
        return value if isinstance(value, kind) else kind()

    populations = list(section("populations", dict))
    names = populations + list(section("projections", dict))
    names += [f"{p}.{c}" for p in populations for c in ("soma", "basal", "apical", "dendrite")]
    names += [phase.get("phase") for phase in section("protocol", list) if isinstance(phase, dict)]
    return [n for n in names if isinstance(n, str)] or ["x"]


def nearby(draw, value: Any, tree: Any) -> Any:
    """A value of the same type as ``value``, often still valid: other numbers, other names."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return draw(st.sampled_from([0, -1, 1, 2, value + 1, value - 1, value * 10, 10**12, 2**64]))
    if isinstance(value, float):
        return draw(st.sampled_from([0.0, -value, value * 10, value * 1e-3, value * 1e3, 1e300, math.inf,
                                     math.nan, 5e-324]))
    if isinstance(value, str):
        return draw(st.sampled_from(names_of(tree) + [value + "x", value[:-1], value.upper()]))
    if isinstance(value, list) and value:
        return draw(st.permutations(value))[: draw(st.integers(0, len(value)))]
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: nearby(draw, value[key], tree)}
    return deep_copy(draw(values))


@st.composite
def tree_mutation(draw, tree: Any) -> str:
    """Mutate ``tree`` in place once; return what was done."""
    paths = node_paths(tree)
    kind = draw(st.sampled_from(["delete", "rename", "set", "set", "add", "duplicate"] + ["nearby"] * 6))
    if kind == "add" or not paths:
        path = draw(st.sampled_from(container_paths(tree)))
        parent, value = get(tree, path), deep_copy(draw(values))
        if isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), value)
            return f"insert into {path}: {value!r}"
        key = draw(new_keys)
        parent[key] = value
        return f"add {path + (key,)}: {value!r}"
    path = draw(st.sampled_from(paths))
    parent, key = get(tree, path[:-1]), path[-1]
    if kind == "delete":
        del parent[key]
        return f"delete {path}"
    if kind == "rename" and isinstance(parent, dict):
        new = draw(new_keys)
        parent[new] = parent.pop(key)
        return f"rename {path} -> {new!r}"
    if kind == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, deep_copy(parent[key]))
            return f"duplicate item {path}"
        new = f"{key}_copy"
        parent[new] = deep_copy(parent[key])
        return f"copy {path} to {new!r}"
    value = nearby(draw, parent[key], tree) if kind == "nearby" else deep_copy(draw(values))
    parent[key] = value
    return f"set {path} = {value!r}"


@st.composite
def text_mutation(draw, text: str) -> tuple[str | bytes, str]:
    """One mutation of the spec text (or a replacement of the whole file)."""
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["truncate", "duplicate_line", "delete_line", "garbage", "replace_line",
                                 "tag", "whole"]))
    if kind == "truncate":
        n = draw(st.integers(0, len(text)))
        return text[:n], f"truncate at {n}"
    if kind in ("duplicate_line", "delete_line", "replace_line"):
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "duplicate_line":
            lines.insert(i, lines[i])
        elif kind == "delete_line":
            del lines[i]
        else:
            lines[i] = draw(st.text(max_size=30)) + "\n"
        return "".join(lines), f"{kind} {i + 1}"
    if kind == "tag":
        values_at = [m.end() for m in re.finditer(r": ", text)]
        n = draw(st.sampled_from(values_at))
        tag = draw(st.sampled_from(YAML_TAGS))
        return text[:n] + tag + " " + text[n:], f"tag {tag} at {n}"
    if kind == "garbage":
        data = text.encode("utf-8")
        n = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=12))
        return data[:n] + junk + data[n:], f"insert {junk!r} at byte {n}"
    whole = draw(st.one_of(
        st.sampled_from(["", "\n", "# only a comment\n", "---\n", "- a\n- b\n", "42\n", "null\n", "~\n",
                         "just text\n", "[1, 2\n", "{a: 1}\n---\n{b: 2}\n", "a: &x [*x]\n", "\ufeff",
                         "schema: microcircuit/1\n"]),
        st.binary(max_size=40),
        st.text(max_size=40),
    ))
    return whole, f"replace the file by {whole!r}"


@st.composite
def mutants(draw, circuit: str) -> Mutant:
    """A mutant of one shipped circuit: 1-3 tree mutations, or one text mutation."""
    if draw(st.integers(0, 3)) == 0:
        content, step = draw(text_mutation(TEXTS[circuit]))
        return Mutant(circuit, content, (step,))
    tree = deep_copy(TREES[circuit])
    steps = tuple(draw(tree_mutation(tree)) for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))))
    return Mutant(circuit, yaml.safe_dump(tree, sort_keys=False, allow_unicode=True), steps)


# ---------------------------------------------------------------- the property
def shortened(split: Split) -> Split:
    """The first few stimuli of a split."""
    labels = None if split.labels is None else split.labels[:SHORT_SAMPLES]
    return Split(split.inputs[:SHORT_SAMPLES], split.targets[:SHORT_SAMPLES], labels)


def run_briefly(spec) -> str:
    """Build the experiment of a valid spec and run its protocol, shortened; return the run status.

    ``no data`` where a task that reads its data from files (``split_sizes()`` is None) refuses them
    with its own ValueError (files missing, too few images for the requested splits, a corrupt file):
    only the files can tell, so the spec layer cannot; the command line reports it before the run
    (exit code 2). Tasks that generate their data get no such pass.
    """
    protocol = [phase.model_copy(update={
        "epochs": 1, "t_pres": min(phase.t_pres, SHORT_STEPS), "samples": min(phase.samples, SHORT_SAMPLES),
        "batch": min(phase.batch, 2), "validate_every": min(phase.validate_every, 1)})
        for phase in spec.protocol]
    try:
        experiment = Experiment(spec.model_copy(update={"protocol": protocol}), RunOptions(n_seeds=1, progress=False))
    except ValueError as err:
        task = make_task(spec.task)
        if task.split_sizes() is None and str(err).startswith((f"task '{task.name}'", f"split '{task.name}/")):
            return "no data"
        raise
    experiment.splits = {name: shortened(split) for name, split in experiment.splits.items()}
    return experiment.run().status


def outcome(mutant: Mutant) -> str:
    """``rejected`` (a located SpecError) or the status of the shortened run; anything else raises."""
    filename = str(ROOT / "circuits" / f"{mutant.circuit}.yaml")  # so that extends: bars_le.yaml resolves
    try:
        spec, _, _ = load_spec_text(mutant.content, filename)
    except SpecError as err:
        message = str(err)
        assert err.errors, f"SpecError without errors:\n{message}"
        unlocated = [str(p) for p in err.errors if p.line < 1 or p.col < 1]
        assert not unlocated, "errors without line:col:\n" + "\n".join(unlocated)
        assert LOCATED.search(message) and "Traceback" not in message, message
        return "rejected"
    status = run_briefly(spec)
    assert status in ("done", "diverged", "no data"), status
    return status


def skip_without_data(circuit: str) -> None:
    """Skip a circuit whose task reads data files that this machine does not have."""
    spec, _, _ = load_spec_text(TEXTS[circuit], str(ROOT / "circuits" / f"{circuit}.yaml"))
    if run_briefly(spec) == "no data":
        pytest.skip(f"{circuit}: the data files of its task are not available here")


def fuzz(circuit: str, examples: int, outcomes: Counter, fixed_seed: int | None = None) -> None:
    """Check ``examples`` mutants of ``circuit``, counting outcomes; derandomized unless ``fixed_seed``."""
    @settings(max_examples=examples, derandomize=fixed_seed is None, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mutant=mutants(circuit))
    def check(mutant: Mutant) -> None:
        outcomes[outcome(mutant)] += 1

    if fixed_seed is not None:
        check = seed(fixed_seed)(check)
    check()


@pytest.mark.parametrize("circuit", sorted(TEXTS))
def test_mutated_specs_run_or_fail_with_a_located_spec_error(circuit: str):
    skip_without_data(circuit)
    outcomes: Counter = Counter()
    fuzz(circuit, 100, outcomes)
    print(f"{circuit}: {sum(outcomes.values())} mutants, {dict(outcomes)}")
    assert outcomes["rejected"] > 0 and outcomes["done"] > 0, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("circuit", sorted(TEXTS))
def test_many_mutated_specs_run_or_fail_with_a_located_spec_error(circuit: str):
    skip_without_data(circuit)
    outcomes: Counter = Counter()
    fuzz(circuit, 900, outcomes, fixed_seed=20240517)
    print(f"{circuit}: {sum(outcomes.values())} mutants, {dict(outcomes)}")
    assert outcomes["rejected"] > 0 and outcomes["done"] > 0, outcomes


# ---------------------------------------------------------------- what fuzzing (and reading) found
DELETE = object()


def edited(circuit: str, *changes: tuple[str, Any]) -> str:
    """The YAML of a shipped circuit with ``(dotted.path, value)`` changes (``DELETE`` removes the key)."""
    tree = deep_copy(TREES[circuit])
    for dotted, value in changes:
        keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
        parent = get(tree, tuple(keys[:-1]))
        if value is DELETE:
            del parent[keys[-1]]
        else:
            parent[keys[-1]] = value
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


#: Mutants that crashed (or ran meaninglessly) before the spec layer rejected them: the content, the
#: error path and a pattern of its message. The crash each caused before is noted in its name.
REGRESSIONS = {
    "two basal projections into an area (ValueError in Circuit.forward_chain)": (
        edited("bars_le", ("projections.up_1_copy", {"source": "x", "target": "pyr_1.basal"})),
        "projections.up_1_copy.target", r"'pyr_1' has 2 basal projections \(up_1, up_1_copy\)"),
    "a bottom-up cycle (NetworkXUnfeasible in Circuit.update_order)": (
        edited("bars_le", ("projections.loop", {"source": "int_1", "target": "int_1.dendrite"})),
        "projections.loop.target", r"projection loop form a bottom-up cycle int_1 -> int_1"),
    "an output without a basal projection (ValueError in Circuit.forward_chain)": (
        edited("bars_le", ("projections.up_2", DELETE), ("projections.ip_1.init", "zeros")),
        "populations.out", r"the output 'out' has no basal projection"),
    "a forward chain through an interneuron (ValueError in Circuit.forward_chain)": (
        edited("teacher_le", ("projections.up_2.source", "int_1")),
        "projections.up_2.source", r"runs through 'int_1' \(cell type 'interneuron'\), which has no basal dendrite"),
    "W_pi = -W_down of an interneuron nothing nudges (ValueError: no partner)": (
        edited("bars_le", ("projections.nudge_1", DELETE), ("projections.ip_1.init", "zeros")),
        "projections.pi_1.init", r"sets W_pi = -W_down of the population that nudges 'int_1', but nothing nudges"),
    "a self-predicting W_ip with g_d = 0 (W_ip = W_up c g_l / 0: the run diverged at once)": (
        edited("bars_le", ("populations.int_1.conductances", {"g_d": 0.0})),
        "projections.ip_1.init", r"needs g_d > 0 on 'int_1'"),
    "an interneuron with g_l = g_d = 0 (ZeroDivisionError in Circuit.attenuation)": (
        edited("bars_le", ("populations.int_1.conductances", {"g_l": 0.0, "g_d": 0.0}),
               ("projections.ip_1.init", "zeros")),
        "populations.int_1.conductances", r"g_l \+ g_d = 0 on 'int_1'"),
    "w_max beyond float32 (RuntimeError in clamp_)": (
        edited("bars_le", ("projections.up_1.w_max", 1e300)),
        "projections.up_1.w_max", r"1e\+300 is outside the float32 range"),
    "a learning rate beyond float32 (RuntimeError in add_(alpha=...))": (
        edited("bars_le", ("projections.up_1.rule.dendritic_prediction.eta", 1.55e280)),
        "projections.up_1.rule.dendritic_prediction.eta", r"outside the float32 range"),
    "dt * eta * eta_scale beyond float32 (RuntimeError in add_(alpha=...))": (
        edited("bars_le", ("protocol.0.eta_scale", 1e38), ("projections.up_1.rule.dendritic_prediction.eta", 1e38)),
        "projections.up_1.rule", r"dt \* eta \* eta_scale = .* is outside the float32 range"),
    "an infinite conductance, reported where parameters define it, its uses as notes (was: dt >= tau_eff = 0 ms)": (
        edited("bars_le", ("parameters.g_som", math.inf)),
        "parameters.g_som", r"expected a finite number, got \.inf"),
    "a NaN target": (
        edited("bars_le", ("task.bars.target_low", math.nan)),
        "task.bars.target_low", r"expected a finite number, got \.nan"),
    "a negative yin-yang seed (ValueError in np.random.RandomState)": (
        edited("yinyang_le", ("task.yin_yang.seed_train", -1)),
        "task.yin_yang.seed_train", r"seed -1 outside \[0, 2\^32\)"),
    "teacher weights whose targets overflow (ValueError: targets contain NaN/Inf)": (
        edited("teacher_le", ("task.teacher.weight_scale", 1e200)),
        "task.teacher.weight_scale", r"targets could exceed 1e\+300"),
    "a reversed teacher input range (ValueError in the teacher task)": (
        edited("teacher_le", ("task.teacher.input_low", 2.0)),
        "task.teacher.input_high", r"input_high \(1\) is below input_low \(2\)"),
    "a stimulus population that does not fit the task (ValueError in Experiment)": (
        edited("bars_le", ("populations.x.size", 4)),
        "populations.x.size", r"task 'bars' has 9 inputs, but the stimulus population 'x' has 4 neurons"),
    "a batch larger than the data set (RuntimeError: shape mismatch)": (
        edited("bars_le", ("protocol.0.batch", 20)),
        "protocol.0.batch", r"batch 20 exceeds the 8 stimuli of split 'train'"),
    "hebbian_alignment into an interneuron (KeyError: no basal dendrite)": (
        edited("bars_le", ("projections.ip_1.rule", {"hebbian_alignment": {"eta": 1.0}})),
        "projections.ip_1.rule", r"'int_1' \(cell type 'interneuron'\) has no basal dendrite"),
    "a recording wildcard the recorder cannot expand (KeyError while recording)": (
        edited("bars_le", ("record.2.var", "p*.apical.v")),
        "record.2.var", r"only the whole population may be a wildcard"),
    "a negative teacher delay (ran, meaningless)": (
        edited("bars_le", ("inputs.teacher.delay", -3)),
        "inputs.teacher.delay", r"delay -3 is negative"),
    "an input filter faster than dt (the low-pass overshoots: the run diverged)": (
        edited("bars_le", ("populations.x.tau_0", 0.01)),
        "populations.x.tau_0", r"tau_0 = 0\.01 ms < dt = 0\.1 ms: the low-pass filter's Euler step overshoots"),
    "a huge population (MemoryError)": (
        edited("teacher_le", ("populations.pyr_1.size", 10**12)),
        "projections.up_1", r"exceeds the limit of 2,147,483,647 elements"),
    "a huge random phase (MemoryError when the phase starts)": (
        edited("teacher_le", ("protocol.0.data", "random"), ("protocol.0.samples", 10**12)),
        "protocol.0.samples", r"random stimuli x 1 inputs exceed the limit"),
    "a huge teacher data set (MemoryError)": (
        edited("teacher_le", ("task.teacher.train", 10**12)),
        "task.teacher.train", r"samples in split 'train' exceed the limit"),
    "a standard tag on a value it cannot read (KeyError in PyYAML's constructor)": (
        TEXTS["bars_le"].replace("seed: 1\n", "seed: !!bool maybe\n"), "seed", r"cannot read 'maybe' as !!bool"),
    "an integer of 5000 digits (ValueError: exceeds the limit for integer string conversion)": (
        TEXTS["bars_le"].replace("seed: 1\n", "seed: " + "1" * 5000 + "\n"), "seed",
        r"cannot read '1+\.\.\.' as !!int"),
    "a python tag on a list (was silently dropped: the list was used)": (
        TEXTS["bars_le"].replace("phases: [test]}", "phases: !!python/object/apply:os.system [test]}", 1),
        "record.0.phases", r"unsupported YAML tag '!!python/object/apply:os\.system'"),
    "a recursive YAML alias (RecursionError in the loader)": (
        "a: &x [*x]\n", "a.0", r"recursive alias"),
    "YAML nested deeper than the parser can follow (RecursionError in PyYAML)": (
        "a: " + "[" * 5000 + "]" * 5000 + "\n", "", r"YAML nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_found_by_fuzzing_is_a_located_spec_error(name: str):
    content, path, pattern = REGRESSIONS[name]
    filename = str(ROOT / "circuits" / "mutant.yaml")
    with pytest.raises(SpecError) as info:
        load_spec_text(content, filename)
    matching = [p for p in info.value.errors if p.path == path and re.search(pattern, p.message)]
    assert matching, f"no error at {path!r} matching /{pattern}/ in:\n{info.value}"
    assert all(p.line >= 1 and p.col >= 1 for p in info.value.errors), str(info.value)


def test_negative_zero_is_zero_and_runs():
    """``uniform: -0.0`` passed ``>= 0`` but numpy's uniform(0.0, -0.0) raised ValueError."""
    spec, _, _ = load_spec_text(edited("bars_le", ("defaults.projection.init", {"uniform": -0.0})),
                                str(ROOT / "circuits" / "mutant.yaml"))
    assert math.copysign(1.0, spec.defaults.projection.init.uniform) == 1.0
    assert run_briefly(spec) == "done"


@pytest.mark.parametrize("circuit", sorted(TEXTS))
def test_shipped_circuits_run_briefly(circuit: str):
    skip_without_data(circuit)
    spec, _, _ = load_spec_text(TEXTS[circuit], str(ROOT / "circuits" / f"{circuit}.yaml"))
    assert run_briefly(spec) == "done"
