"""A new plasticity rule, dynamics, activation or task is one registered class.

The spec schema takes the names of rules, dynamics and tasks and their parameter models (``Params``) from
the registries, the semantic checks take the activations and cell types from theirs, and docs/spec.md and
``validate --schema`` are generated from the schema; the registries' modules load torch only when a
method computes (:mod:`microcircuit.lazy`). The spec layer is torch-free: torch runs in subprocesses only.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any, Literal, get_args, get_origin

from microcircuit.model.activations import ACTIVATIONS
from microcircuit.model.cells import CELL_TYPES
from microcircuit.model.dynamics import DYNAMICS
from microcircuit.model.rules import RULES
from microcircuit.spec import SpecError, load_spec_text
from microcircuit.spec.schema import DynamicsSpec, RuleSpec, TaskSpec
from microcircuit.spec.structural import members
from microcircuit.tasks import TASKS
from tests.conftest import CIRCUITS, ROOT

BARS = (CIRCUITS / "bars_le.yaml").read_text()


def choice(tp: Any) -> tuple[list[str], dict[str, Any]]:
    """(bare names, {key: parameter type} of the one-key mappings) that a tagged choice of the schema accepts."""
    bare, mappings = [], {}
    for arm in members(tp):
        if get_origin(arm) is Literal:
            bare += list(get_args(arm))
        else:
            ((key, field),) = arm.model_fields.items()
            mappings[key] = field.annotation
    return bare, mappings


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_the_schema_offers_exactly_the_registered_rules_dynamics_and_tasks():
    bare, mappings = choice(RuleSpec)
    assert bare == [name for name, rule in RULES.items() if rule.Params is None]
    assert mappings == {name: rule.Params for name, rule in RULES.items() if rule.Params is not None}
    assert set(bare) | set(mappings) == set(RULES.names())

    bare, mappings = choice(DynamicsSpec)  # a dynamics is a bare name or {name: {parameters}}
    assert bare == [name for name, _ in DYNAMICS.items()]
    assert list(mappings) == bare
    assert all(mappings[name] is dynamics.Params for name, dynamics in DYNAMICS.items() if dynamics.Params)

    assert {name: field.annotation for name, field in TaskSpec.model_fields.items()} == {
        name: task.Params | None for name, task in TASKS.items()}


def test_the_semantic_checks_list_the_registered_activations_and_cell_types():
    text = BARS.replace("out:   {cell: output_pyramidal, size: 3}",
                        "out:   {cell: output_pyramidal, size: 3, activation: softrelu}")
    text = text.replace("int_1: {cell: interneuron, size: 3}", "int_1: {cell: interneurone, size: 3}")
    try:
        load_spec_text(text, "bars.yaml")
    except SpecError as err:
        message = str(err)
    assert f"unknown activation 'softrelu' (valid: {', '.join(ACTIVATIONS.names())})" in message
    assert f"unknown cell type 'interneurone' (valid: {', '.join(CELL_TYPES.names())})" in message


def test_the_registries_load_torch_only_when_a_method_computes():
    result = run_python("""
        import sys
        import numpy as np
        from microcircuit.model.activations import ACTIVATIONS, numpy_activation
        from microcircuit.model.dynamics import DYNAMICS
        from microcircuit.model.rules import RULES
        import microcircuit.spec
        assert RULES.get("pal").Params and DYNAMICS.get("latent_equilibrium").Params and ACTIVATIONS.names()
        assert "torch" not in sys.modules, "registering the classes or reading their models loaded torch"
        assert abs(numpy_activation("soft_relu")(np.zeros(1))[0] - np.log(2.0)) < 1e-12
        assert "torch" in sys.modules
    """)
    assert result.returncode == 0, result.stderr


def test_one_registered_class_is_a_new_rule_dynamics_activation_or_task_everywhere():
    """A throwaway rule, dynamics, activation and task, each one class registered before the spec layer is
    imported (in a subprocess, so nothing stays registered): the spec accepts their names and parameters,
    rejects bad ones with located messages that list them, the reference and the JSON schema show them,
    and the engine runs the rule."""
    result = run_python(f"""
        import json, sys
        import numpy as np
        from pydantic import PositiveFloat
        from microcircuit.lazy import lazy_import
        from microcircuit.model.activations import ACTIVATIONS
        from microcircuit.model.dynamics import DYNAMICS, Dynamics
        from microcircuit.model.rules import RULES, Rule
        from microcircuit.params import NonNegFloat, Strict
        from microcircuit.tasks.base import TASKS, Split, Task

        torch = lazy_import("torch")

        class WeightDecayParams(Strict):
            eta: NonNegFloat
            tau_avg: PositiveFloat = 1.0

        @RULES.register("weight_decay")
        class WeightDecay(Rule):
            '''dW/dt = -eta W: the weights decay to zero.'''
            name = "weight_decay"
            Params = WeightDecayParams
            def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt, memory):
                return -weights

        @DYNAMICS.register("instant")
        class Instant(Dynamics):
            '''r = phi(u) of the updated potential.'''
            name = "instant"
            def rate_potential(self, u, du, u_next, g_tot, factor):
                return u_next

        ACTIVATIONS.register("softsign")(lambda u: u / (1.0 + u.abs()))

        class ConstantTask(Strict):
            '''One input pattern of ones.'''
            samples: int = 4

        @TASKS.register("constant")
        class Constant(Task):
            name = "constant"
            Params = ConstantTask
            classification = False
            def _build_splits(self, architecture):
                n = self.params.samples
                split = Split(np.ones((n, architecture.sizes[0])), np.zeros((n, architecture.sizes[-1])), None)
                return {{"train": split, "validation": split, "test": split}}

        from microcircuit.spec import SpecError, load_spec_text
        from microcircuit.spec.reference import reference
        from microcircuit.spec.schema import Spec
        assert "torch" not in sys.modules

        bars = {BARS!r}
        up_1 = "rule: {{dendritic_prediction: {{eta: 5.0}}}}}}"
        def edited(rule, more=()):
            text = bars.replace(up_1, "rule: " + rule + "}}", 1)
            for old, new in more:
                text = text.replace(old, new, 1)
            return text
        def error(text):
            try:
                load_spec_text(text, "bars.yaml")
            except SpecError as err:
                return str(err)
            raise AssertionError("accepted")

        new_things = [("pyr_1: {{cell: pyramidal, size: 30}}",
                       "pyr_1: {{cell: pyramidal, size: 30, dynamics: instant, activation: softsign}}"),
                      ("task:\\n  bars: {{noise: 0.0, target_low: 0.1, target_high: 1.0}}",
                       "task:\\n  constant: {{samples: 3}}")]
        spec = load_spec_text(edited("{{weight_decay: {{eta: 0.5}}}}", new_things), "bars.yaml")[0]
        assert spec.projections["up_1"].rule.weight_decay == WeightDecayParams(eta=0.5, tau_avg=1.0)
        assert spec.populations["pyr_1"].dynamics == "instant" and spec.task.constant.samples == 3
        as_mapping = ("pyr_1: {{cell: pyramidal, size: 30}}",
                      "pyr_1: {{cell: pyramidal, size: 30, dynamics: {{instant: {{}}}}}}")
        assert load_spec_text(edited("{{weight_decay: {{eta: 0.5}}}}", [as_mapping]),
                              "bars.yaml")[0].populations["pyr_1"].dynamics.instant == {{}}

        line = bars[:bars.index(up_1)].count("\\n") + 1
        message = error(edited("{{weight_decay: {{eta: -1}}}}"))
        assert f"bars.yaml:{{line}}:" in message, message
        assert "projections.up_1.rule.weight_decay.eta: input should be greater than or equal to 0" in message
        message = error(edited("{{weight_decay: {{eta: 1, nope: 2}}}}"))
        assert "projections.up_1.rule.weight_decay.nope: unknown key 'nope' (valid: eta, tau_avg)" in message
        message = error(edited("{{weight_decay: {{eta: 1, tau_avg: 0.01}}}}"))  # a rule's tau_* is a filter
        assert "projections.up_1.rule.weight_decay.tau_avg: tau_avg = 0.01 ms < dt = 0.1 ms" in message
        message = error(edited("{{weight_decy: {{eta: 1}}}}"))
        assert "{{weight_decay: {{...}}}}; got a mapping with keys weight_decy; did you mean 'weight_decay'?" in message
        def line_of(message, start):
            return next(line for line in message.splitlines() if start in line)
        message = error(edited("{{weight_decay: {{eta: 1}}}}", [(
            "pyr_1: {{cell: pyramidal, size: 30}}", "pyr_1: {{cell: pyramidal, size: 30, dynamics: instnt}}")]))
        assert "expected 'orig', 'latent_equilibrium' or 'instant', or one of {{orig: {{...}}}}, " \
            "{{latent_equilibrium: {{...}}}}, {{instant: {{...}}}}; got 'instnt'; did you mean 'instant'?" in message
        message = error(edited("{{weight_decay: {{eta: 1}}}}", [(
            "pyr_1: {{cell: pyramidal, size: 30}}", "pyr_1: {{cell: pyramidal, size: 30, activation: softsing}}")]))
        assert "softsign" in line_of(message, "unknown activation 'softsing' (valid: ")
        assert message.endswith("did you mean 'softsign'?")
        message = error(edited("{{weight_decay: {{eta: 1}}}}", [("task:\\n  bars:", "task:\\n  constnt:")]))
        assert line_of(message, "unknown key 'constnt'").endswith(", constant); did you mean 'constant'?")

        docs = reference()
        assert "## WeightDecayRule\\n\\ndW/dt = -eta W: the weights decay to zero." in docs
        assert "## WeightDecayParams" in docs and "## InstantDynamics" in docs and "## ConstantTask" in docs
        schema = json.dumps(Spec.model_json_schema(by_alias=True))
        assert "WeightDecayRule" in schema and "InstantDynamics" in schema and "ConstantTask" in schema
        assert "torch" not in sys.modules

        from microcircuit.circuit import Circuit
        from microcircuit.engine import Simulator
        sim = Simulator(Circuit(spec), [0], dtype=torch.float64)
        before = sim.state.weights["up_1"].clone()
        stimulus = torch.ones(1, 1, 9, dtype=torch.float64)
        sim.step(stimulus, None, sim.plastic_plan({{"up_1": 0.5}}))
        assert torch.allclose(sim.state.weights["up_1"], before * (1.0 - spec.dt * 0.5))
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
