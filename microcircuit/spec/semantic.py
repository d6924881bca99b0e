"""Second pass: the meaning of a structurally valid spec.

:func:`check` collects *all* problems of a typed :class:`~microcircuit.spec.schema.Spec`:
references between populations, projections, phases and recordings; the circuit's
topology (compartments, nudging, interneuron sizes, self-predicting initialisation, no
bottom-up cycle, one chain of basal projections from the stimulus to the output); the task
(its parameters, its input and output sizes against the circuit's, batches against its data);
resources (no array beyond 2^31 - 1 elements, every number within float32); and physics
(forward-Euler stability of every soma and filter, learning-rate sizes). Each problem is
located at the key that causes it. A spec that passes builds and runs: whatever would make
``Experiment(...)`` or a run raise is reported here instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel

from microcircuit.model.activations import ACTIVATIONS
from microcircuit.model.cells import CELL_TYPES, CellType
from microcircuit.model.rules import RULES
from microcircuit.spec.data_files import check_weight_files
from microcircuit.spec.errors import Problem, did_you_mean, listing
from microcircuit.spec.loader import Path, SourceMap, is_under
from microcircuit.spec.prospective_checks import check_microcircuit_keys, check_prospective, is_prospective
from microcircuit.spec.schema import Spec, rule_name, rule_params
from microcircuit.tasks import make_task

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYRAMIDAL = ("pyramidal", "output_pyramidal")
#: dt above this fraction of the smallest tau_eff draws a warning (integration error).
DT_WARN_FRACTION = 0.1
#: Most elements one array of a run may hold (weights post x pre, a batch of states, a phase's stimuli);
#: the same limit as microcircuit.tasks.base.MAX_ELEMENTS (2^31 - 1: int32 indexing, 8 GiB in float32).
MAX_ELEMENTS = 2**31 - 1
#: Largest float32 (a run may compute in float32 whatever the spec's dtype: ``--dtype``); larger
#: numbers overflow to inf there, or make torch refuse them as scalars.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class _Edge:
    """A projection whose endpoints resolve: ``source[.source_comp] -> target.target_comp``."""

    name: str
    source: str
    source_comp: str | None
    target: str
    target_comp: str

    @property
    def nudging(self) -> bool:
        return self.target_comp == "soma"


def check(spec: Spec, smap: SourceMap, skip: Sequence[Path] = (), physics: bool = True) -> list[Problem]:
    """All semantic problems (errors and warnings) of ``spec``.

    Args:
        spec: the validated spec.
        smap: where each key was written.
        skip: paths removed or already reported by earlier passes; problems at, above
            or below them are not reported (they would be consequences).
        physics: also run the numerical checks (dt against tau_eff, learning rates).
    """
    checker = _Checker(spec, smap, skip)
    checker.run(physics)
    return checker.problems


class _Checker:
    def __init__(self, spec: Spec, smap: SourceMap, skip: Sequence[Path]):
        self.spec, self.smap, self.skip = spec, smap, list(skip)
        self.problems: list[Problem] = []
        self.edges: dict[str, _Edge] = {}
        self.nudgers: dict[str, list[_Edge]] = {}  # interneuron -> nudging projections into it
        self.unresolved = False  # some projection did not resolve (so a partner may be missing)
        self.chain: list[str] | None = None  # populations of the forward chain, stimulus to output
        #: a prospective network (model.md sec. 10): its output is a prospective population
        self.prospective = is_prospective(spec)
        self.output_cell = "prospective" if self.prospective else "output_pyramidal"

    # -------------------------------------------------------- reporting
    def _report(self, path: Path, message: str, hint: str, warning: bool) -> None:
        # a consequence of a skipped path: at or below it, or an entry (not a section) above it
        if any(is_under(path, s) or (len(path) >= 2 and is_under(s, path)) for s in self.skip):
            return
        self.problems.append(self.smap.problem(path, message, hint, warning))

    def error(self, path: Path, message: str, hint: str = "") -> None:
        self._report(path, message, hint, warning=False)

    def warn(self, path: Path, message: str, hint: str = "") -> None:
        self._report(path, message, hint, warning=True)

    # -------------------------------------------------------- helpers
    def cell(self, population: str) -> type[CellType] | None:
        """The cell type of a population, or None if either is unknown."""
        pop = self.spec.populations.get(population)
        return CELL_TYPES.get(pop.cell) if pop is not None and pop.cell in CELL_TYPES else None

    def cell_name(self, population: str) -> str:
        return self.spec.populations[population].cell

    def population_ref(self, path: Path, name: str, what: str = "population") -> bool:
        """Check that ``name`` is a population; report (with suggestions) if not."""
        if name in self.spec.populations:
            return True
        names = list(self.spec.populations)
        self.error(path, f"unknown {what} '{name}' (populations: {listing(names)})",
                   did_you_mean(name, names))
        return False

    def run(self, physics: bool) -> None:
        self.check_names()
        self.check_populations()
        self.check_projections()
        self.check_interneurons()
        self.check_self_predicting()
        self.check_task()
        self.check_inputs()
        check_weight_files(self.spec, self.error)
        self.check_topology()
        self.check_task_fits()
        self.check_protocol()
        self.check_record()
        self.check_resources()
        self.check_ranges()
        if self.prospective:
            check_prospective(self.spec, self.error, self.warn, physics)
        else:
            check_microcircuit_keys(self.spec, self.error)
        if physics:
            if not self.prospective:
                self.check_time_step()
            self.check_filters()
            self.check_learning_rates()

    # -------------------------------------------------------- names and populations
    def check_names(self) -> None:
        for section in ("populations", "projections"):
            for name in getattr(self.spec, section):
                if not _IDENTIFIER.fullmatch(name):
                    self.error((section, name), f"name '{name}' is not an identifier",
                               "use letters, digits and '_' (names become recording keys)")

    def check_populations(self) -> None:
        cells = set()
        valid_cells = CELL_TYPES.names()
        for name, pop in self.spec.populations.items():
            path = ("populations", name)
            if pop.cell not in CELL_TYPES:
                self.error(path + ("cell",),
                           f"unknown cell type '{pop.cell}' (valid: {listing(valid_cells)})",
                           did_you_mean(pop.cell, valid_cells))
                continue
            cells.add(pop.cell)
            own = CELL_TYPES.get(pop.cell).conductance_names()
            for key in pop.conductances:
                if key not in own:
                    self.error(path + ("conductances", key),
                               f"cell type '{pop.cell}' has no conductance '{key}' (has: {listing(own)})",
                               did_you_mean(key, own))
            if pop.activation is not None and pop.activation not in ACTIVATIONS:
                self.error(path + ("activation",),
                           f"unknown activation '{pop.activation}' (valid: {listing(ACTIVATIONS.names())})",
                           did_you_mean(pop.activation, ACTIVATIONS.names()))
        unknown = any(p.cell not in CELL_TYPES for p in self.spec.populations.values())
        for cell, role in (("input", "the stimulus"), (self.output_cell, "the teacher")):
            if cell not in cells and not unknown:
                self.error(("populations",), f"no population of cell type '{cell}' (needed for {role})")

    # -------------------------------------------------------- projections
    def check_projections(self) -> None:
        for name, proj in self.spec.projections.items():
            edge = self._edge(name, proj.source, proj.target)
            if edge is None:
                self.unresolved = True
                continue
            path = ("projections", name)
            if edge.nudging and edge.source_comp is None and proj.conductance is None:
                edge = self._forward_into_soma(edge, path)  # one message, then checked as what was meant
            self.edges[name] = edge
            if edge.nudging:
                self._check_nudging(edge, path)
            else:
                if edge.source_comp is not None:
                    self.error(path + ("source",),
                               f"source '{proj.source}' names a compartment, but a weighted projection "
                               "reads the rate of a population",
                               f"write source: {edge.source} (a potential 'pop.soma' only nudges a soma)")
                if proj.conductance is not None:
                    self.error(path + ("conductance",),
                               "'conductance' belongs to somatic nudging projections only (target "
                               f"'population.soma'); '{name}' targets '{proj.target}'")
        for name, proj in self.spec.projections.items():
            rule = rule_name(proj.rule)
            if rule == "tied" and name in self.edges:
                self._check_tied(name, proj.rule.tied.to)
            if rule == "hebbian_alignment" and name in self.edges:
                target_cell = self.cell(self.edges[name].target)
                if target_cell is not None and "basal" not in target_cell.dendrites:
                    self.error(("projections", name, "rule"), f"hebbian_alignment on '{name}' learns from the basal "
                               f"prediction of its target, but '{self.edges[name].target}' (cell type "
                               f"'{target_cell.name}') has no basal dendrite", "use it on top-down projections "
                               "into pyramidal.apical")
                    continue
                post = self.spec.populations[self.edges[name].target]
                noise = post.noise if post.noise is not None else self.spec.defaults.population.noise
                if not noise:
                    self.warn(("projections", name, "rule"), f"hebbian_alignment on '{name}' learns from the "
                              f"fluctuations of '{self.edges[name].target}', which has no noise",
                              f"give populations.{self.edges[name].target}.noise a value, e.g. 0.05")

            if rule == "pal" and name in self.edges:
                target = self.edges[name].target
                post = self.spec.populations[target]
                noise = post.rate_noise if post.rate_noise is not None else self.spec.defaults.population.rate_noise
                if not noise:
                    self.error(("projections", name, "rule"), f"pal on '{name}' correlates the rate noise of "
                               f"'{target}' with the answer of '{self.edges[name].source}', but '{target}' "
                               "has no rate_noise", f"give populations.{target}.rate_noise a value, e.g. 0.05")

    def _check_tied(self, name: str, to: str) -> None:
        """A tied projection mirrors a weighted projection running the other way (W = W_to^T)."""
        path = ("projections", name, "rule", "tied", "to")
        partner = self.edges.get(to)
        if partner is None:
            names = [n for n, e in self.edges.items() if not e.nudging and n != name]
            self.error(path, f"tied to unknown projection '{to}' (weighted projections: {listing(names)})",
                       did_you_mean(to, names))
            return
        edge = self.edges[name]
        if partner.nudging or (partner.source, partner.target) != (edge.target, edge.source):
            self.error(path, f"'{name}' ({edge.source} -> {edge.target}) cannot be tied to '{to}' "
                       f"({partner.source} -> {partner.target}): W = W_to^T needs the reverse direction")

    def _edge(self, name: str, source: str, target: str) -> _Edge | None:
        """Parse and resolve a projection's endpoints, reporting what does not resolve."""
        path = ("projections", name)
        ok = True
        source_parts = source.split(".")
        if len(source_parts) > 2:
            self.error(path + ("source",), f"source '{source}' must be 'population' or 'population.soma'")
            ok = False
        elif self.population_ref(path + ("source",), source_parts[0]):
            if len(source_parts) == 2:
                cell = self.cell(source_parts[0])
                if source_parts[1] != "soma":
                    self.error(path + ("source",), f"source '{source}': only 'population' (its rate) or "
                               "'population.soma' (its potential, for nudging) can be a source",
                               did_you_mean(source_parts[1], ["soma"]))
                    ok = False
                elif cell is not None and not cell.has_soma:
                    self.error(path + ("source",), f"'{source_parts[0]}' (cell type '{cell.name}') has no "
                               "somatic potential to nudge with")
                    ok = False
        else:
            ok = False

        target_parts = target.split(".")
        if len(target_parts) != 2:
            self.error(path + ("target",), f"target '{target}' must be 'population.compartment'",
                       "e.g. target: pyr_1.basal")
            return None
        population, compartment = target_parts
        if not self.population_ref(path + ("target",), population):
            return None
        cell = self.cell(population)
        if cell is None:
            return None
        if cell.name == "input":
            self.error(path + ("target",), f"'{population}' is an input population: nothing can project "
                       "into it (its rate is the stimulus)")
            return None
        compartments = cell.compartments()
        if compartment not in compartments:
            self.error(path + ("target",), f"compartment '{compartment}' not on cell type '{cell.name}' "
                       f"(has: {listing(compartments)})", did_you_mean(compartment, compartments))
            return None
        if not ok:
            return None
        return _Edge(name, source_parts[0], source_parts[1] if len(source_parts) == 2 else None,
                     population, compartment)

    def _forward_into_soma(self, edge: _Edge, path: Path) -> _Edge:
        """A projection from a population's rate into ``pop.soma`` without a conductance is a forward (weighted)
        projection given the wrong compartment: say so once, then treat it as going to the dendrite meant
        (the basal one where there is one), so that nothing else is reported as a consequence."""
        cell = self.cell(edge.target)
        dendrites = list(cell.dendrites) if cell is not None else []
        meant = "basal" if "basal" in dendrites else (dendrites[0] if dendrites else None)
        proj = self.spec.projections[edge.name]
        self.error(path + ("target",), f"'{proj.target}' is a soma, but '{edge.name}' reads the rate of "
                   f"'{edge.source}' (a weighted projection): weights end on a dendrite of '{edge.target}' "
                   f"(has: {listing(dendrites)}); into a soma go only nudging projections, with source "
                   "'population.soma' and a conductance",
                   f"did you mean target: {edge.target}.{meant}?" if meant else "")
        if meant is None:
            return edge
        return _Edge(edge.name, edge.source, None, edge.target, meant)

    def _check_nudging(self, edge: _Edge, path: Path) -> None:
        proj = self.spec.projections[edge.name]
        for key in ("rule", "init", "w_max", "tau_w", "tau_s", "delay", "precision"):
            if getattr(proj, key) is not None:
                self.error(path + (key,), f"'{key}' on a somatic nudging projection: projections into a "
                           "soma carry a conductance, not weights", f"remove '{key}'")
        if edge.source_comp != "soma":
            self.error(path + ("source",), f"a nudging projection into '{proj.target}' needs a somatic "
                       f"potential as source", f"write source: {edge.source}.soma")
        target_cell = self.cell_name(edge.target)
        if target_cell != "interneuron":
            extra = "; the output is nudged by inputs.teacher" if target_cell == "output_pyramidal" else ""
            self.error(path + ("target",), f"only interneurons are nudged by projections; '{edge.target}' "
                       f"is a '{target_cell}' population{extra}")
        else:
            self.nudgers.setdefault(edge.target, []).append(edge)
        if proj.conductance is None:
            self.error(path, f"nudging projection '{edge.name}' needs a 'conductance' (1/ms)",
                       "e.g. conductance: $g_som")

    def check_interneurons(self) -> None:
        """|I_k| = |P_{k+1}|: each interneuron copies one neuron of the population nudging it."""
        for name, pop in self.spec.populations.items():
            if pop.cell != "interneuron":
                continue
            nudgers = self.nudgers.get(name, [])
            if not nudgers:
                self.warn(("populations", name), f"interneuron population '{name}' is not nudged by any "
                          "population, so it has nothing to learn to predict",
                          f"add a projection {{source: <pyramidal>.soma, target: {name}.soma}}")
                continue
            for extra in nudgers[1:]:
                self.error(("projections", extra.name, "target"), f"'{name}' is already nudged by projection "
                           f"'{nudgers[0].name}'; an interneuron has one nudging population")
            source = nudgers[0].source
            size = self.spec.populations[source].size
            if pop.size != size:
                self.error(("populations", name, "size"),
                           f"interneuron population '{name}' has size {pop.size} but is nudged one-to-one by "
                           f"'{source}' of size {size} (projection '{nudgers[0].name}'); |I_k| must equal "
                           "|P_k+1|", f"set size: {size}")

    def check_self_predicting(self) -> None:
        """W_pi = -W_down and W_ip = c * W_up(above) need their partner projections (model.md sec. 4)."""
        for name, edge in self.edges.items():
            if self.spec.projections[name].init != "self_predicting":
                continue
            path = ("projections", name, "init")
            source_cell, target_cell = self.cell_name(edge.source), self.cell_name(edge.target)
            if source_cell not in CELL_TYPES:
                continue  # reported as an unknown cell type
            if source_cell == "interneuron" and target_cell == "pyramidal" and edge.target_comp == "apical":
                partners = [e for e in self.edges.values() if e.name != name and e.target == edge.target
                            and e.target_comp == "apical" and self.cell_name(e.source) in _PYRAMIDAL]
                nudgers = [e.source for e in self.nudgers.get(edge.source, [])]
                if self.unresolved:
                    continue  # the partner may be the projection already reported
                if not partners:
                    self.error(path, f"init 'self_predicting' of '{name}' sets W_pi = -W_down, but no "
                               f"projection from a pyramidal population targets '{edge.target}.apical'")
                elif not nudgers:
                    self.error(path, f"init 'self_predicting' of '{name}' sets W_pi = -W_down of the population "
                               f"that nudges '{edge.source}', but nothing nudges it",
                               f"add a projection {{source: <pyramidal>.soma, target: {edge.source}.soma}}")
                elif not any(e.source in nudgers for e in partners):
                    self.error(path, f"init 'self_predicting' of '{name}' sets W_pi = -W_down, but no projection "
                               f"from '{nudgers[0]}' (which nudges '{edge.source}') targets '{edge.target}.apical'")
            elif (source_cell in _PYRAMIDAL and target_cell == "interneuron"
                  and edge.target_comp == "dendrite"):
                nudgers = self.nudgers.get(edge.target)
                if self.unresolved:
                    continue  # the partner may be the projection already reported
                if not nudgers:
                    self.error(path, f"init 'self_predicting' of '{name}' copies W_up of the population that "
                               f"nudges '{edge.target}', but nothing nudges it")
                    continue
                above = nudgers[0].source
                ups = [e.name for e in self.edges.values()
                       if e.source == edge.source and e.target == above and e.target_comp == "basal"]
                if not ups:
                    self.error(path, f"init 'self_predicting' of '{name}' copies W_up from '{edge.source}' "
                               f"to '{above}.basal', but there is no such projection")
                elif len(ups) > 1:
                    self.error(path, f"init 'self_predicting' of '{name}' copies W_up from '{edge.source}' to "
                               f"'{above}.basal', but {len(ups)} projections ({listing(ups)}) run there")
                elif not self.spec.populations[edge.target].conductances.get("g_d", 0.0) > 0.0:
                    self.error(path, f"init 'self_predicting' of '{name}' sets W_ip = W_up c (g_l + g_d) / g_d, "
                               f"which needs g_d > 0 on '{edge.target}'", "use another init, e.g. zeros")
            else:
                self.error(path, f"init 'self_predicting' applies to interneuron -> pyramidal.apical (W_pi) "
                           f"or pyramidal -> interneuron.dendrite (W_ip); '{name}' is {source_cell} -> "
                           f"{target_cell}.{edge.target_comp}", "use another init, e.g. {uniform: 1.0}")

    # -------------------------------------------------------- topology
    def check_topology(self) -> None:
        """Bottom-up projections form no cycle, and one chain of basal projections leads from the
        stimulus to the output (the equivalent feedforward network, model.md sec. 5)."""
        self._check_cycles()
        self._check_forward_chain()

    def _check_cycles(self) -> None:
        """Populations are updated bottom-up (a topological order of every projection except the
        apical ones), so only apical projections may point back."""
        forward: dict[str, list[_Edge]] = {}
        for edge in self.edges.values():
            if edge.target_comp != "apical":
                forward.setdefault(edge.source, []).append(edge)
        state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
        stack: list[_Edge] = []

        def visit(population: str) -> None:
            state[population] = 1
            for edge in forward.get(population, []):
                if state.get(edge.target) == 1:
                    start = next((i for i, e in enumerate(stack) if e.source == edge.target), len(stack))
                    cycle = stack[start:] + [edge]
                    names = [e.name for e in cycle]
                    loop = " -> ".join([e.source for e in cycle] + [edge.target])
                    self.error(("projections", edge.name, "target"),
                               f"projection{'s' if len(names) > 1 else ''} {listing(names)} form a bottom-up "
                               f"cycle {loop}: populations are updated bottom-up, so only apical (top-down) "
                               "projections may point back", "target an apical dendrite instead")
                elif edge.target not in state:
                    stack.append(edge)
                    visit(edge.target)
                    stack.pop()
            state[population] = 2

        for population in self.spec.populations:
            if population not in state:
                visit(population)

    def _check_forward_chain(self) -> None:
        stimulus, teacher = self.spec.inputs.stimulus.target, self.spec.inputs.teacher.target
        output = teacher.partition(".")[0]
        if (self.unresolved or stimulus not in self.spec.populations or output not in self.spec.populations
                or self.cell_name(stimulus) != "input" or self.cell_name(output) != self.output_cell):
            return  # reported elsewhere; the chain would only repeat it
        chain, population = [output], output
        while population != stimulus:
            basal = [e for e in self.edges.values() if e.target == population and e.target_comp == "basal"]
            if len(basal) != 1:
                if basal:
                    self.error(("projections", basal[1].name, "target"),
                               f"'{population}' has {len(basal)} basal projections ({listing(e.name for e in basal)});"
                               f" every area of the forward chain from '{stimulus}' to '{output}' has exactly one",
                               "target another compartment, or merge them")
                elif chain[-1] == output:
                    self.error(("populations", population), f"the output '{output}' has no basal projection: "
                               f"nothing carries the stimulus from '{stimulus}' to it",
                               f"add a projection {{source: <area below>, target: {output}.basal}}")
                else:
                    into = next(e for e in self.edges.values()
                                if e.source == population and e.target == chain[-2] and e.target_comp == "basal")
                    cell = self.cell_name(population)
                    what = ("has no basal dendrite" if cell not in _PYRAMIDAL + ("prospective",)
                            else "has no basal projection")
                    self.error(("projections", into.name, "source"),
                               f"the forward chain from '{stimulus}' to '{output}' runs through '{population}' "
                               f"(cell type '{cell}'), which {what}: it cannot reach the stimulus",
                               f"the basal projections must lead from '{output}' down to '{stimulus}'")
                return
            edge = basal[0]
            population = edge.source
            if population in chain:
                return  # a cycle, reported by _check_cycles
            chain.append(population)
            if population != stimulus and self.cell_name(population) == "input":
                self.error(("projections", edge.name, "source"),
                           f"the forward chain to '{output}' starts at input population '{population}', but the "
                           f"stimulus goes to '{stimulus}'", f"write source: {stimulus}, or inputs.stimulus.target: "
                           f"{population}")
                return
        self.chain = chain[::-1]

    # -------------------------------------------------------- task, inputs
    def check_task(self) -> None:
        tasks = list(type(self.spec.task).model_fields)
        chosen = [name for name in tasks if getattr(self.spec.task, name) is not None]
        if len(chosen) != 1:
            choices = listing(tasks)
            got = f"got {listing(chosen)}" if chosen else "got none"
            self.error(("task",), f"set exactly one task ({choices}); {got}")

    def check_inputs(self) -> None:
        stimulus = self.spec.inputs.stimulus.target
        path = ("inputs", "stimulus", "target")
        inputs = [n for n, p in self.spec.populations.items() if p.cell == "input"]
        if stimulus in self.spec.populations:
            if self.cell_name(stimulus) != "input":
                self.error(path, f"stimulus target '{stimulus}' is a '{self.cell_name(stimulus)}' "
                           f"population; it must be an input population ({listing(inputs)})")
        else:
            self.error(path, f"unknown population '{stimulus}' (input populations: {listing(inputs)})",
                       did_you_mean(stimulus, list(self.spec.populations)))

        teacher = self.spec.inputs.teacher.target
        path = ("inputs", "teacher", "target")
        outputs = [f"{n}.soma" for n, p in self.spec.populations.items() if p.cell == self.output_cell]
        population, _, compartment = teacher.partition(".")
        if population not in self.spec.populations:
            self.error(path, f"unknown population '{population}' (output populations: {listing(outputs)})",
                       did_you_mean(teacher, outputs))
        elif self.cell_name(population) != self.output_cell:
            self.error(path, f"teacher target '{teacher}' must be the soma of an {self.output_cell} population "
                       f"('{population}' is '{self.cell_name(population)}')", did_you_mean(teacher, outputs))
        elif compartment != "soma":
            self.error(path, f"teacher target '{teacher}' must be 'population.soma' (the teacher nudges "
                       "a soma)", f"write target: {population}.soma")
        delay = self.spec.inputs.teacher.delay
        if delay != "auto" and delay < 0:
            self.error(("inputs", "teacher", "delay"), f"delay {delay} is negative: the target can only lag the "
                       "stimulus", "use a delay >= 0 steps, or auto")

    def check_task_fits(self) -> None:
        """The task's own parameters, and its input and output sizes against the circuit's."""
        chosen = [name for name in type(self.spec.task).model_fields if getattr(self.spec.task, name) is not None]
        if len(chosen) != 1:
            return  # reported by check_task
        name, task = chosen[0], make_task(self.spec.task)
        sizes = [self.spec.populations[p].size for p in self.chain] if self.chain else None
        for key, message in task.check_params(sizes):
            self.error(("task", name, key), f"task '{name}': {message}")
        stimulus, output = self.spec.inputs.stimulus.target, self.spec.inputs.teacher.target.partition(".")[0]
        for population, needed, what in ((stimulus, task.n_inputs, "inputs"), (output, task.n_outputs, "outputs")):
            pop = self.spec.populations.get(population)
            if needed is None or pop is None or pop.size == needed:
                continue
            role = "stimulus" if what == "inputs" else "output"
            if (role == "stimulus" and pop.cell != "input") or (role == "output" and pop.cell != self.output_cell):
                continue  # the wrong population is reported by check_inputs
            self.error(("populations", population, "size"), f"task '{name}' has {needed} {what}, but the {role} "
                       f"population '{population}' has {pop.size} neurons", f"set size: {needed}")
        counts = task.split_sizes() or {}
        for index, phase in enumerate(self.spec.protocol):
            n = phase.samples if phase.data == "random" else counts.get(phase.data)
            if n is not None and phase.batch > n:
                self.error(("protocol", index, "batch"), f"batch {phase.batch} exceeds the {n} stimuli of "
                           f"{'the random data' if phase.data == 'random' else f'split {phase.data!r}'}",
                           f"use batch <= {n}")

    # -------------------------------------------------------- protocol, recording
    def check_protocol(self) -> None:
        projections = list(self.spec.projections)
        seen: dict[str, int] = {}
        for index, phase in enumerate(self.spec.protocol):
            path = ("protocol", index)
            if phase.phase in seen:
                self.error(path + ("phase",), f"duplicate phase name '{phase.phase}' (also "
                           f"protocol.{seen[phase.phase]})", "give each phase its own name")
            seen.setdefault(phase.phase, index)
            if isinstance(phase.plastic, list):
                for k, name in enumerate(phase.plastic):
                    self._check_plastic(path + ("plastic", k), name, projections)
            for name in phase.eta:
                if name not in self.spec.projections:
                    self.error(path + ("eta", name), f"unknown projection '{name}' (projections: "
                               f"{listing(projections)})", did_you_mean(name, projections))
                elif name in self.edges and self.edges[name].nudging:
                    self.error(path + ("eta", name), f"'{name}' is a nudging projection and has no weights")

    def _check_plastic(self, path: Path, name: str, projections: list[str]) -> None:
        if name not in self.spec.projections:
            self.error(path, f"unknown projection '{name}' (projections: {listing(projections)})",
                       did_you_mean(name, projections))
        elif name in self.edges and self.edges[name].nudging:
            self.error(path, f"'{name}' is a nudging projection and has no weights to learn")
        elif self.spec.projections[name].rule == "fixed":
            self.warn(path, f"projection '{name}' is listed as plastic but its rule is 'fixed'",
                      "give it a rule, e.g. {dendritic_prediction: {eta: 0.1}}")

    def check_record(self) -> None:
        phases = [phase.phase for phase in self.spec.protocol]
        for index, recording in enumerate(self.spec.record):
            path = ("record", index)
            self._check_variable(path + ("var",), recording.var)
            for k, phase in enumerate(recording.phases or []):
                if phase not in phases:
                    self.error(path + ("phases", k), f"unknown phase '{phase}' (protocol: {listing(phases)})",
                               did_you_mean(phase, phases))

    def _variables(self) -> list[tuple[str, str, str]]:
        out = []
        for name in self.spec.populations:
            cell = self.cell(name)
            if cell is not None:
                out += [(name, comp, var) for comp in cell.compartments() for var in cell.variables(comp)]
        return out

    def _check_variable(self, path: Path, var: str) -> None:
        if var == "target":
            return
        parts = var.split(".")
        if len(parts) != 3:
            self.error(path, f"'{var}' is not a variable: expected 'population.compartment.variable' "
                       "(e.g. 'out.soma.rate', '*.soma.rate') or 'target'")
            return
        known = self._variables()
        if any(ch in var for ch in "*?["):
            if parts[0] != "*" or any(ch in part for part in parts[1:] for ch in "*?["):
                self.error(path, f"'{var}': only the whole population may be a wildcard ('*.compartment.variable')",
                           f"write '*.{parts[1]}.{parts[2]}' or name the population")
            elif not any(all(map(fnmatchcase, triple, parts)) for triple in known):
                self.error(path, f"'{var}' matches no variable of this circuit")
            return
        population, compartment, variable = parts
        if not self.population_ref(path, population):
            return
        cell = self.cell(population)
        if cell is None:
            return
        if compartment not in cell.compartments():
            compartments = cell.compartments()
            self.error(path, f"compartment '{compartment}' not on cell type '{cell.name}' "
                       f"(has: {listing(compartments)})", did_you_mean(compartment, compartments))
        elif variable not in cell.variables(compartment):
            options = cell.variables(compartment)
            self.error(path, f"no variable '{variable}' on {population}.{compartment} "
                       f"(has: {listing(options)})", did_you_mean(variable, options))

    # -------------------------------------------------------- resources
    def check_resources(self) -> None:
        """Arrays a run allocates stay within :data:`MAX_ELEMENTS`: weight matrices (post x pre), the
        stimuli of a ``random`` phase (samples x inputs), the neuron states of a batch, the noise drawn
        per presentation (t_pres x batch x neurons)."""
        limit = f"the limit of {MAX_ELEMENTS:,} elements per array"
        for name, edge in self.edges.items():
            if edge.nudging:
                continue
            post, pre = self.spec.populations[edge.target].size, self.spec.populations[edge.source].size
            if self.spec.projections[name].conv is not None:
                continue  # a shared kernel (its size is checked with the convolution)
            if post * pre > MAX_ELEMENTS:
                self.error(("projections", name), f"the weight matrix of '{name}' ({post} x {pre} = {post * pre:,}"
                           f" weights per circuit) exceeds {limit}", "use smaller populations")
        sizes = [p.size for p in self.spec.populations.values()]
        largest = max(sizes, default=1)
        noisy = [p.size for p in self.spec.populations.values()
                 if (p.noise if p.noise is not None else self.spec.defaults.population.noise)]
        stimulus = self.spec.populations.get(self.spec.inputs.stimulus.target)
        for index, phase in enumerate(self.spec.protocol):
            path = ("protocol", index)
            if phase.data == "random" and stimulus is not None and phase.samples * stimulus.size > MAX_ELEMENTS:
                self.error(path + ("samples",), f"{phase.samples} random stimuli x {stimulus.size} inputs exceed "
                           f"{limit}")
            if phase.batch * largest > MAX_ELEMENTS:
                self.error(path + ("batch",), f"batch {phase.batch} x {largest} neurons exceeds {limit}")
            elif noisy and phase.t_pres * phase.batch * max(noisy) > MAX_ELEMENTS:
                self.error(path + ("t_pres",), f"the somatic noise of a presentation ({phase.t_pres} steps x batch "
                           f"{phase.batch} x {max(noisy)} neurons) exceeds {limit}", "use a shorter t_pres")

    def check_ranges(self) -> None:
        """Every number fits float32 (``parameters`` are checked where a ``$reference`` puts them)."""
        for path, value in _floats(self.spec, ()):
            if path[:1] != ("parameters",) and abs(value) > FLOAT32_MAX:
                self.error(path, f"{value:g} is outside the float32 range (|x| <= {FLOAT32_MAX:.3g}) that a run "
                           "may compute in", "use a physically meaningful value")

    # -------------------------------------------------------- physics
    def soma_terms(self, name: str, teacher: bool = True) -> tuple[dict[str, float], dict[str, float], float | None]:
        """The conductances acting on the soma of ``name`` (1/ms): the cell type's by name, the nudging
        projections' g_som by projection, and the teacher's g_som (None without ``teacher``, where the teacher
        nudges another soma, or where its conductance is missing, which is reported elsewhere)."""
        pop = self.spec.populations[name]
        own = {key: pop.conductances.get(key, 0.0) for key in CELL_TYPES.get(pop.cell).conductance_names()}
        nudging = {edge.name: self.spec.projections[edge.name].conductance or 0.0
                   for edge in self.nudgers.get(name, [])}
        spec_teacher = self.spec.inputs.teacher
        by_teacher = spec_teacher.conductance if teacher and spec_teacher.target == f"{name}.soma" else None
        return own, nudging, by_teacher

    def soma_conductances(self, name: str) -> dict[str, float]:
        """:meth:`soma_terms` (teacher on) as one mapping for messages: ``g_l``, ..., ``g_som (<projection>)``,
        ``g_som (teacher)``."""
        own, nudging, by_teacher = self.soma_terms(name)
        out = {**own, **{f"g_som ({projection})": g for projection, g in nudging.items()}}
        if by_teacher is not None:
            out["g_som (teacher)"] = by_teacher
        return out

    def g_tot(self, name: str, teacher: bool = True) -> float:
        """The total conductance of the soma of ``name`` (1/ms), summed as the circuit and the engine sum it
        (:meth:`~microcircuit.model.cells.CellType.soma_conductance`)."""
        own, nudging, by_teacher = self.soma_terms(name, teacher)
        return CELL_TYPES.get(self.spec.populations[name].cell).soma_conductance(own, nudging.values(),
                                                                                 by_teacher or 0.0)

    def check_time_step(self) -> None:
        """Forward Euler on du/dt = -u/tau_eff + ... is unstable for dt >= tau_eff."""
        dt, smallest = self.spec.dt, None
        for name in self.spec.populations:
            cell = self.cell(name)
            if cell is None or not cell.has_soma:
                continue
            conductances = self.soma_conductances(name)
            total = self.g_tot(name)
            if total <= 0.0:
                self.error(("populations", name, "conductances"), f"all conductances on the soma of "
                           f"'{name}' are zero ({listing(conductances)}): it never relaxes", "set g_l > 0")
                continue
            own = cell.conductance_names()
            if not cell.dendritic_conductance(self.soma_terms(name)[0]) > 0.0:
                self.error(("populations", name, "conductances"), f"{' + '.join(own)} = 0 on '{name}': its "
                           f"dendritic attenuation c = g / ({' + '.join(own)}) is undefined, and without nudging "
                           "its soma would never relax", "set g_l > 0")
                continue
            if smallest is None or 1.0 / total < smallest[0]:
                smallest = (1.0 / total, name, conductances)
        if smallest is None:
            return
        tau, name, conductances = smallest
        terms = " + ".join(f"{v:g}" for v in conductances.values())
        detail = f"tau_eff = {tau:.4g} ms of '{name}' (1/({terms}))"
        hint = f"use dt <= {DT_WARN_FRACTION * tau:.3g} ms"
        if dt >= tau:
            self.error(("dt",), f"dt = {dt:g} ms >= {detail}: forward Euler unstable", hint)
        elif dt > DT_WARN_FRACTION * tau:
            self.warn(("dt",), f"dt = {dt:g} ms > {DT_WARN_FRACTION:g} * {detail}: "
                      "integration error may be large", hint)

    def check_filters(self) -> None:
        """A low-pass filter x += dt / tau (y - x) overshoots for tau < dt (and oscillates for tau < dt/2):
        every time constant of a filter is 0 (off) or at least dt."""
        dt = self.spec.dt
        found: list[tuple[Path, float | None]] = [(("inputs", "teacher", "tau_0"), self.spec.inputs.teacher.tau_0),
                                                  (("defaults", "population", "tau_0"),
                                                   self.spec.defaults.population.tau_0)]
        found += [(("populations", name, "tau_0"), pop.tau_0) for name, pop in self.spec.populations.items()]
        for key in ("tau_w", "tau_s"):
            found.append((("defaults", "projection", key), getattr(self.spec.defaults.projection, key, None)))
            found += [(("projections", name, key), getattr(proj, key, None))
                      for name, proj in self.spec.projections.items()]
        for name, proj in self.spec.projections.items():  # a rule's parameters tau_* are filter time constants
            params = rule_params(proj.rule)
            found += [(("projections", name, "rule", rule_name(proj.rule), key), getattr(params, key))
                      for key in (type(params).model_fields if params is not None else ()) if key.startswith("tau_")]
        for path, tau in found:  # the message does not name the entry: a copied default is reported once
            if tau is not None and 0.0 < tau < dt:
                self.error(path, f"{path[-1]} = {tau:g} ms < dt = {dt:g} ms: the low-pass filter's Euler step "
                           "overshoots", f"use 0 (no filter) or a value >= {dt:g} ms")

    def check_learning_rates(self) -> None:
        """Warn where one step of a rule corrects its own error by more than the error's size.

        A rule's update feeds back on its error with the gain dt * eta * eta_scale times how strongly the
        weights move that error (per unit presynaptic rate), as the rule's ``error_feedback`` says. For
        apical silencing and learned top-down weights (``direct``) that is the step itself. For dendritic
        prediction (``nudged``) the error is phi(u) - phi(c v): the soma follows the dendrite with the same
        attenuation c except for the part held by somatic nudging, so the gain is step * c * lambda
        (lambda = nudging conductance / total); a population without nudging (a hidden pyramidal area)
        does not feed its own error back at all.
        """
        dt = self.spec.dt
        for index, phase in enumerate(self.spec.protocol):
            scale = phase.eta_factor
            if phase.plastic == "none":
                continue
            names = list(self.spec.projections) if phase.plastic == "all" else phase.plastic
            for name in names:
                proj = self.spec.projections.get(name)
                if proj is None:
                    continue
                feedback = RULES.get(rule_name(proj.rule)).error_feedback
                if feedback is None:
                    continue
                eta, path = rule_params(proj.rule).eta, ("projections", name, "rule")
                if name in phase.eta:
                    eta, path = phase.eta[name], ("protocol", index, "eta", name)
                step = dt * eta * scale
                formula = f"dt * eta * eta_scale = {dt:g} * {eta:g} * {scale:g} = {step:.3g}"
                if step > FLOAT32_MAX:
                    self.error(path, f"{formula} for '{name}' in phase '{phase.phase}' is outside the float32 "
                               "range", "lower eta or eta_scale")
                    continue
                gain, why = step, ""
                if feedback == "nudged":
                    nudged = self.prediction_feedback(proj.target, phase.teacher)
                    if nudged is not None:
                        gain = step * nudged[0]
                        why = f", times c * lambda = {nudged[0]:.3g} ({nudged[1]})"
                if gain > 1.0:
                    self.warn(path, f"{formula}{why} = {gain:.3g} > 1 for '{name}' in phase '{phase.phase}': "
                              "one step overcorrects the rule's own error; the update may oscillate or diverge",
                              "lower eta or use eta_scale: inverse_t_pres")

    def prediction_feedback(self, target: str, teacher: bool) -> tuple[float, str] | None:
        """(c * lambda, explanation) of a dendritic-prediction target ``pop.compartment``; None if unknown."""
        population, _, compartment = target.partition(".")
        cell = self.cell(population)
        if cell is None or compartment not in cell.dendrites:
            return None
        conductances = self.soma_terms(population, teacher)[0]
        own = cell.dendritic_conductance(conductances)
        total = self.g_tot(population, teacher)
        if own <= 0.0 or total <= 0.0:
            return None
        c = cell.attenuation(conductances, compartment)
        nudging = total - own
        if nudging <= 0.0:
            return 0.0, f"'{population}' has no somatic nudging"
        return c * nudging / total, f"c = {c:.3g}, lambda = {nudging / total:.3g} of '{population}'"


def _floats(value: Any, path: Path) -> list[tuple[Path, float]]:
    """(path, value) of every float in a validated spec, by the keys written in YAML (aliases)."""
    if isinstance(value, float):
        return [(path, value)]
    if isinstance(value, BaseModel):
        items = [(info.alias or name, getattr(value, name)) for name, info in type(value).model_fields.items()]
    elif isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return []
    return [found for key, item in items for found in _floats(item, path + (key,))]
