"""The meaning of the keys of prospective networks and of convolutions (model.md sec. 10), for the
semantic pass.

A spec is a prospective network when any population has cell type ``prospective``; then every
non-input population must be one, the chain of basal projections is the network, and the keys of
microcircuits (conductances, nudging, interneuron rules, conventions) do not apply. In a
microcircuit, the keys of prospective networks are errors. Every problem is located at its key.
Torch-free: shapes are computed here as the engine computes them (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable

from microcircuit.model.rules import RULES
from microcircuit.spec.errors import listing
from microcircuit.spec.schema import FileInit, Spec, rule_name

Report = Callable[..., None]

#: projection keys the prospective engine does not implement
_UNSUPPORTED_PROJECTION_KEYS = ("delay", "precision", "conductance")


def network_rules(network: str) -> list[str]:
    """The rules whose ``networks`` include ``network`` (``microcircuit`` or ``prospective``), in order of
    registration: those its engine runs."""
    return [name for name, rule in RULES.items() if network in rule.networks]


def convolution_rules() -> list[str]:
    """The rules a convolution of a microcircuit may have: those that do not learn, and those whose update is
    a postsynaptic factor times the presynaptic rate (a shared kernel sums it over positions)."""
    return [name for name in network_rules("microcircuit")
            if not RULES.get(name).learns or RULES.get(name).has_post_factor()]


def is_prospective(spec: Spec) -> bool:
    return any(p.cell == "prospective" for p in spec.populations.values())


def image_shape(shape: list[int] | tuple[int, ...] | None, size: int) -> tuple[int, int, int]:
    """[channels, height, width] of a population ([n]: n channels of 1 x 1; [h, w]: one channel)."""
    shape = tuple(shape) if shape else (size,)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, shape[0], shape[1])
    return (shape[0], 1, 1)


def check_prospective(spec: Spec, error: Report, warn: Report, physics: bool = True) -> None:
    """Every problem of a prospective network's own keys (the common checks run as for microcircuits)."""
    for name, pop in spec.populations.items():
        if pop.cell not in ("input", "prospective"):
            error(("populations", name, "cell"), f"'{name}' is a '{pop.cell}' population in a prospective "
                  "network: its areas are all 'prospective' (only the stimulus is 'input')",
                  "use cell: prospective, or build a microcircuit without prospective cells")
        if pop.cell == "prospective":
            if pop.conductances:
                error(("populations", name, "conductances"), "a prospective cell has no conductances: its soma "
                      "integrates tau_m du/dt = W r - u + e", "set tau_m (ms) instead")
            tau_m = pop.tau_m if pop.tau_m is not None else spec.parameters.get("tau_m", 10.0)
            if physics and isinstance(tau_m, (int, float)) and spec.dt >= tau_m:
                error(("populations", name, "tau_m"), f"dt = {spec.dt:g} ms >= tau_m = {tau_m:g} ms of '{name}': "
                      "forward Euler unstable", f"use dt <= {0.1 * tau_m:.3g} ms")
    if spec.compare_backprop:
        error(("compare_backprop",), "compare_backprop measures microcircuits' apical errors; a prospective "
              "network has none", "remove compare_backprop (compare with `microcircuit baseline`)")
    if spec.conventions != "package":
        error(("conventions",), "the conventions of the reference microcircuit program do not apply to "
              "prospective networks", "remove conventions")
    teacher = spec.inputs.teacher
    if teacher.conductance is not None:
        error(("inputs", "teacher", "conductance"), "a prospective network's output is nudged by an error "
              "beta (target - ...), not by a conductance", "write beta: 0.1 instead")
    if teacher.beta is None:
        error(("inputs", "teacher"), "a prospective network's teacher needs 'beta', the strength of the output "
              "error e = beta (target - ...)", "add beta: 0.1")
    for name, proj in spec.projections.items():
        path = ("projections", name)
        target = proj.target.partition(".")[0]
        source = proj.source.partition(".")[0]
        if target not in spec.populations or source not in spec.populations:
            continue  # reported by the common checks
        for key in _UNSUPPORTED_PROJECTION_KEYS:
            if getattr(proj, key) not in (None, 0, 0.0):
                error(path + (key,), f"'{key}' is not available in prospective networks", f"remove '{key}'")
        rule = rule_name(proj.rule if proj.rule is not None else spec.defaults.projection.rule)
        if rule not in network_rules("prospective"):
            learning = [n for n in network_rules("prospective") if RULES.get(n).learns]
            still = [n for n in network_rules("prospective") if not RULES.get(n).learns]
            error(path + ("rule",), f"rule '{rule}' belongs to microcircuits; a prospective network's projections "
                  f"learn by {' or '.join(learning)} or stay {' or '.join(still)} (valid: {listing(learning + still)})",
                  "write rule: {prospective_error: {eta: 1.0}}")
        init = proj.init if proj.init is not None else spec.defaults.projection.init
        if init == "self_predicting":
            error(path + ("init",), "init self_predicting belongs to microcircuits' interneurons",
                  "use {normal: 0.05}, {uniform: ...} or a file")
        if proj.conv is not None and proj.conv.transposed:
            error(path + ("conv", "transposed"), "a prospective network's projections run bottom-up; the "
                  "errors go down by the transposes of their weights", "remove transposed")
        if proj.conv is not None and isinstance(init, FileInit):
            error(path + ("init",), "weights from a file are read for dense projections ([post, pre]); a "
                  "convolution's kernel cannot be given that way yet", "draw the kernel ({normal: 0.05})")
        _check_geometry(spec, name, error)


def _check_geometry(spec: Spec, name: str, error: Report) -> None:
    """Pooling and convolution shapes: the target's shape is what the convolution of the (pooled) source
    gives; a dense projection after pooling has nothing to check beyond the pooled source."""
    proj = spec.projections[name]
    path = ("projections", name)
    source_pop = spec.populations[proj.source.partition(".")[0]]
    target_pop = spec.populations[proj.target.partition(".")[0]]
    shape = image_shape(source_pop.shape, source_pop.size)
    if proj.pool is not None:
        c, h, w = shape
        k = proj.pool.size
        if not source_pop.shape or len(source_pop.shape) < 2:
            error(path + ("pool",), f"pooling needs a source with a shape [channels, height, width]; "
                  f"'{proj.source}' has none", f"give populations.{proj.source}.shape")
            return
        if k > h or k > w:
            error(path + ("pool",), f"a {k} x {k} window does not fit the {h} x {w} positions of '{proj.source}'",
                  f"use a window <= {min(h, w)}")
            return
        shape = (c, h // k, w // k)
    if proj.conv is None:
        return
    conv = proj.conv
    if not source_pop.shape or not target_pop.shape:
        missing = proj.source if not source_pop.shape else proj.target.partition(".")[0]
        error(path + ("conv",), f"a convolution connects shaped populations; '{missing}' has no shape",
              f"give populations.{missing}.shape: [channels, height, width]")
        return
    if conv.transposed:
        _check_transposed(spec, name, error)
        return
    c, h, w = shape
    if conv.kernel > h + 2 * conv.padding or conv.kernel > w + 2 * conv.padding:
        error(path + ("conv", "kernel"), f"kernel {conv.kernel} is larger than the {h} x {w} positions of the "
              f"source (padding {conv.padding})", f"use kernel <= {min(h, w) + 2 * conv.padding}")
        return
    out = ((h + 2 * conv.padding - conv.kernel) // conv.stride + 1,
           (w + 2 * conv.padding - conv.kernel) // conv.stride + 1)
    target_shape = image_shape(target_pop.shape, target_pop.size)
    if tuple(target_shape[1:]) != out:
        pooled = " after pooling" if proj.pool is not None else ""
        error(("populations", proj.target.partition(".")[0], "shape"),
              f"'{name}' convolves {c} x {h} x {w}{pooled} with kernel {conv.kernel}, stride {conv.stride}, "
              f"padding {conv.padding} into {out[0]} x {out[1]} positions, but the target has shape "
              f"{list(target_pop.shape)}", f"use shape: [{target_shape[0]}, {out[0]}, {out[1]}]")


def _check_transposed(spec: Spec, name: str, error: Report) -> None:
    """A transposed convolution goes back along the convolution from the target's shape to the source's:
    that convolution of the target's shape must give the source's positions."""
    proj = spec.projections[name]
    conv = proj.conv
    source = proj.source.partition(".")[0]
    target = proj.target.partition(".")[0]
    c, h, w = image_shape(spec.populations[target].shape, spec.populations[target].size)
    if conv.kernel > h + 2 * conv.padding or conv.kernel > w + 2 * conv.padding:
        error(("projections", name, "conv", "kernel"), f"kernel {conv.kernel} is larger than the {h} x {w} "
              f"positions of '{target}' (padding {conv.padding})")
        return
    out = ((h + 2 * conv.padding - conv.kernel) // conv.stride + 1,
           (w + 2 * conv.padding - conv.kernel) // conv.stride + 1)
    source_shape = image_shape(spec.populations[source].shape, spec.populations[source].size)
    if tuple(source_shape[1:]) != out:
        error(("projections", name, "conv"), f"'{name}' is the transposed convolution of {c} x {h} x {w} with "
              f"kernel {conv.kernel}, stride {conv.stride}, padding {conv.padding}, which has {out[0]} x "
              f"{out[1]} positions, but its source '{source}' has shape {list(spec.populations[source].shape)}",
              "the source must have the shape the convolution of the target's shape gives")


def _check_tied_kernels(spec: Spec, name: str, to: str, error: Report) -> None:
    """A tied convolution mirrors a convolution of the same kernel, stride and padding the other way."""
    mine, theirs = spec.projections[name].conv, spec.projections[to].conv
    if mine is None and theirs is None:
        return
    path = ("projections", name, "rule", "tied", "to")
    if mine is None or theirs is None:
        conv, dense = (name, to) if mine is not None else (to, name)
        error(path, f"'{name}' is tied to '{to}', but '{conv}' is a convolution and '{dense}' is dense",
              "tie a transposed convolution to a convolution of the same kernel")
    elif (mine.kernel, mine.stride, mine.padding) != (theirs.kernel, theirs.stride, theirs.padding) or \
            mine.transposed == theirs.transposed:
        error(path, f"'{name}' (kernel {mine.kernel}, stride {mine.stride}, padding {mine.padding}, transposed "
              f"{str(mine.transposed).lower()}) cannot mirror '{to}' (kernel {theirs.kernel}, stride "
              f"{theirs.stride}, padding {theirs.padding}, transposed {str(theirs.transposed).lower()})",
              "a tied convolution has its partner's kernel, stride and padding and the other direction")


def check_microcircuit_keys(spec: Spec, error: Report) -> None:
    """The keys of prospective networks are errors in a microcircuit; convolutions are allowed (model.md
    sec. 10): their geometry and rules are checked here."""
    for name, pop in spec.populations.items():
        for key in ("tau_m", "bias"):
            if getattr(pop, key) not in (None, False):
                error(("populations", name, key), f"'{key}' belongs to prospective cells; '{name}' is a "
                      f"'{pop.cell}' population", f"remove '{key}'")
    for name, proj in spec.projections.items():
        for key in ("pool", "feedback"):
            if getattr(proj, key) is not None:
                error(("projections", name, key), f"'{key}' is available in prospective networks only "
                      "(populations of cell type 'prospective')", f"remove '{key}'")
        rule = rule_name(proj.rule if proj.rule is not None else spec.defaults.projection.rule)
        if rule not in network_rules("microcircuit") and not proj.target.endswith(".soma"):
            error(("projections", name, "rule"), f"{rule} learns in prospective networks only",
                  "use dendritic_prediction in a microcircuit")
        if proj.conv is not None and proj.target.endswith(".soma"):
            error(("projections", name, "conv"), "a nudging projection is one-to-one; it has no kernel",
                  "remove 'conv'")
        elif proj.conv is not None and proj.source.partition(".")[0] in spec.populations \
                and proj.target.partition(".")[0] in spec.populations:
            if rule in network_rules("microcircuit") and rule not in convolution_rules():
                error(("projections", name, "rule"), f"rule '{rule}' on the convolution '{name}': convolutions "
                      f"of microcircuits learn by {listing(convolution_rules())}")
            init = proj.init if proj.init is not None else spec.defaults.projection.init
            if isinstance(init, FileInit):
                error(("projections", name, "init"), "weights from a file are read for dense projections "
                      "([post, pre]); a convolution's kernel cannot be given that way yet",
                      "draw the kernel ({normal: 0.05})")
            _check_geometry(spec, name, error)
        if rule == "tied" and proj.rule is not None and proj.rule.tied.to in spec.projections:
            _check_tied_kernels(spec, name, proj.rule.tied.to, error)
    convolutions = [name for name, proj in spec.projections.items() if proj.conv is not None]
    if spec.compare_backprop and convolutions:
        error(("compare_backprop",), f"compare_backprop measures dense circuits; {listing(convolutions)} "
              "convolve", "remove compare_backprop")
    teacher = spec.inputs.teacher
    if teacher.conductance is None:
        error(("inputs", "teacher"), "the teacher of a microcircuit nudges the output soma with a "
              "'conductance' (1/ms)", "add conductance: $g_som")
    if teacher.beta is not None:
        error(("inputs", "teacher", "beta"), "'beta' is the output error of prospective networks; a "
              "microcircuit's teacher has a conductance", "remove beta")
