"""Second pass: the meaning of a structurally valid spec.

:func:`check` collects *all* problems of a typed :class:`~microcircuit.spec.schema.Spec`:
references between populations, projections, phases and recordings; the circuit's
topology (compartments, nudging, interneuron sizes, self-predicting initialisation); and
physics (forward-Euler stability of every soma, learning-rate sizes). Each problem is
located at the key that causes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from microcircuit.model.cells import CELL_TYPES, CellType
from microcircuit.spec.errors import Problem, did_you_mean, listing
from microcircuit.spec.loader import Path, SourceMap, is_under
from microcircuit.spec.schema import (
    ApicalSilencingRule,
    DendriticPredictionRule,
    HebbianAlignmentRule,
    Spec,
    TiedRule,
)

#: Activation names of the engine's registry (microcircuit.model.activations.ACTIVATIONS).
#: That module imports torch, which the spec layer must not, so the names are repeated
#: here; tests/test_spec.py checks that the two lists agree.
ACTIVATION_NAMES: tuple[str, ...] = ("hard_sigmoid", "linear", "relu", "sigmoid", "soft_relu", "tanh")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYRAMIDAL = ("pyramidal", "output_pyramidal")
#: dt above this fraction of the smallest tau_eff draws a warning (integration error).
DT_WARN_FRACTION = 0.1


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
        self.check_protocol()
        self.check_record()
        if physics:
            self.check_time_step()
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
            if pop.activation is not None and pop.activation not in ACTIVATION_NAMES:
                self.error(path + ("activation",),
                           f"unknown activation '{pop.activation}' (valid: {listing(ACTIVATION_NAMES)})",
                           did_you_mean(pop.activation, ACTIVATION_NAMES))
        unknown = any(p.cell not in CELL_TYPES for p in self.spec.populations.values())
        for cell, role in (("input", "the stimulus"), ("output_pyramidal", "the teacher")):
            if cell not in cells and not unknown:
                self.error(("populations",), f"no population of cell type '{cell}' (needed for {role})")

    # -------------------------------------------------------- projections
    def check_projections(self) -> None:
        for name, proj in self.spec.projections.items():
            edge = self._edge(name, proj.source, proj.target)
            if edge is None:
                self.unresolved = True
                continue
            self.edges[name] = edge
            path = ("projections", name)
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
            if isinstance(proj.rule, TiedRule) and name in self.edges:
                self._check_tied(name, proj.rule.tied.to)
            if isinstance(proj.rule, HebbianAlignmentRule) and name in self.edges:
                post = self.spec.populations[self.edges[name].target]
                noise = post.noise if post.noise is not None else self.spec.defaults.population.noise
                if not noise:
                    self.warn(("projections", name, "rule"), f"hebbian_alignment on '{name}' learns from the "
                              f"fluctuations of '{self.edges[name].target}', which has no noise",
                              f"give populations.{self.edges[name].target}.noise a value, e.g. 0.05")

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
                if not partners and not self.unresolved:  # else the partner may be the broken one
                    self.error(path, f"init 'self_predicting' of '{name}' sets W_pi = -W_down, but no "
                               f"projection from a pyramidal population targets '{edge.target}.apical'")
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
                if not any(e.source == edge.source and e.target == above and e.target_comp == "basal"
                           for e in self.edges.values()):
                    self.error(path, f"init 'self_predicting' of '{name}' copies W_up from '{edge.source}' "
                               f"to '{above}.basal', but there is no such projection")
            else:
                self.error(path, f"init 'self_predicting' applies to interneuron -> pyramidal.apical (W_pi) "
                           f"or pyramidal -> interneuron.dendrite (W_ip); '{name}' is {source_cell} -> "
                           f"{target_cell}.{edge.target_comp}", "use another init, e.g. {uniform: 1.0}")

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
        outputs = [f"{n}.soma" for n, p in self.spec.populations.items() if p.cell == "output_pyramidal"]
        population, _, compartment = teacher.partition(".")
        if population not in self.spec.populations:
            self.error(path, f"unknown population '{population}' (output populations: {listing(outputs)})",
                       did_you_mean(teacher, outputs))
        elif self.cell_name(population) != "output_pyramidal":
            self.error(path, f"teacher target '{teacher}' must be the soma of an output_pyramidal population "
                       f"('{population}' is '{self.cell_name(population)}')", did_you_mean(teacher, outputs))
        elif compartment != "soma":
            self.error(path, f"teacher target '{teacher}' must be 'population.soma' (the teacher nudges "
                       "a soma)", f"write target: {population}.soma")

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
            if not any(all(map(fnmatchcase, triple, parts)) for triple in known):
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

    # -------------------------------------------------------- physics
    def soma_conductances(self, name: str) -> dict[str, float]:
        """All conductances acting on the soma of ``name``, nudging included (1/ms)."""
        pop = self.spec.populations[name]
        cell = CELL_TYPES.get(pop.cell)
        out = {key: pop.conductances.get(key, 0.0) for key in cell.conductance_names()}
        for edge in self.nudgers.get(name, []):
            out[f"g_som ({edge.name})"] = self.spec.projections[edge.name].conductance or 0.0
        teacher = self.spec.inputs.teacher
        if teacher.target == f"{name}.soma":
            out["g_som (teacher)"] = teacher.conductance
        return out

    def check_time_step(self) -> None:
        """Forward Euler on du/dt = -u/tau_eff + ... is unstable for dt >= tau_eff."""
        dt, smallest = self.spec.dt, None
        for name in self.spec.populations:
            cell = self.cell(name)
            if cell is None or not cell.has_soma:
                continue
            conductances = self.soma_conductances(name)
            total = sum(conductances.values())
            if total <= 0.0:
                self.error(("populations", name, "conductances"), f"all conductances on the soma of "
                           f"'{name}' are zero ({listing(conductances)}): it never relaxes", "set g_l > 0")
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

    def check_learning_rates(self) -> None:
        """Warn where one step changes a weight by more than its own size: dt * eta * scale > 1."""
        dt = self.spec.dt
        for index, phase in enumerate(self.spec.protocol):
            scale = 1.0 / phase.t_pres if phase.eta_scale == "inverse_t_pres" else float(phase.eta_scale)
            if phase.plastic == "none":
                continue
            names = list(self.spec.projections) if phase.plastic == "all" else phase.plastic
            for name in names:
                proj = self.spec.projections.get(name)
                if proj is None:
                    continue
                if name in phase.eta:
                    eta, path = phase.eta[name], ("protocol", index, "eta", name)
                elif isinstance(proj.rule, DendriticPredictionRule):
                    eta, path = proj.rule.dendritic_prediction.eta, ("projections", name, "rule")
                elif isinstance(proj.rule, ApicalSilencingRule):
                    eta, path = proj.rule.apical_silencing.eta, ("projections", name, "rule")
                elif isinstance(proj.rule, HebbianAlignmentRule):
                    eta, path = proj.rule.hebbian_alignment.eta, ("projections", name, "rule")
                else:
                    continue
                step = dt * eta * scale
                if step > 1.0:
                    self.warn(path, f"dt * eta * eta_scale = {dt:g} * {eta:g} * {scale:g} = {step:.3g} > 1 "
                              f"for '{name}' in phase '{phase.phase}': the weight update may be unstable",
                              "lower eta or use eta_scale: inverse_t_pres")
