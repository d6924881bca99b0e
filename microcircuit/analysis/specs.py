"""Microcircuit specs of any depth, built as YAML-equivalent dicts and validated by the spec layer.

Used by the analyses and tests that sweep architectures: one place that knows how areas,
interneurons, top-down weights and nudging are wired (model.md sec. 1).
"""

from __future__ import annotations

from typing import Any

TOP_DOWN_RULES = ("random", "tied", "learned")


def microcircuit_spec(
    sizes: list[int],
    top_down: str = "random",
    dynamics: str = "latent_equilibrium",
    teacher_conductance: float | str = "$g_som",
    task: dict[str, Any] | None = None,
    eta_up: float = 0.0,
    eta_down: float = 1.0,
    eta_pi: float = 1.0,
    noise: float = 0.0,
    name: str = "microcircuit",
    **top_level: Any,
) -> dict[str, Any]:
    """A dendritic microcircuit with ``sizes = [n_in, n_1, ..., n_N]``, haider2021 conductances,
    the analytic self-predicting state, and a teacher task by default.

    Args:
        top_down: ``random`` (fixed random W^down: feedback alignment), ``tied`` (W^down = (W^up)^T),
            ``learned`` (hebbian_alignment rule, rate ``eta_down``; W^PI then learns by apical silencing
            with rate ``eta_pi`` when listed as plastic, to keep cancelling the changing W^down).
        teacher_conductance: g_som of the teacher at the output (1/ms); the interneurons keep $g_som.
        eta_up: learning rate of the forward weights and W^IP (1/ms); W^PI stays at -W^down.
    """
    if top_down not in TOP_DOWN_RULES:
        raise ValueError(f"top_down must be one of {TOP_DOWN_RULES}, got '{top_down}'")
    n_areas = len(sizes) - 1
    pops: dict[str, Any] = {"x": {"cell": "input", "size": sizes[0]}}
    projections: dict[str, Any] = {}
    names = [f"pyr_{k}" for k in range(1, n_areas)] + ["out"]
    below = "x"
    for k, (pop, size) in enumerate(zip(names, sizes[1:], strict=True), start=1):
        pops[pop] = {"cell": "output_pyramidal" if pop == "out" else "pyramidal", "size": size}
        rule = {"dendritic_prediction": {"eta": eta_up}} if eta_up else "fixed"
        projections[f"up_{k}"] = {"source": below, "target": f"{pop}.basal", "rule": rule}
        below = pop
    for k in range(1, n_areas):
        pop, above = names[k - 1], names[k]
        pops[f"int_{k}"] = {"cell": "interneuron", "size": sizes[k + 1]}
        ip_rule = {"dendritic_prediction": {"eta": eta_up}} if eta_up else "fixed"
        projections[f"ip_{k}"] = {"source": pop, "target": f"int_{k}.dendrite", "init": "self_predicting",
                                  "rule": ip_rule}
        projections[f"pi_{k}"] = {"source": f"int_{k}", "target": f"{pop}.apical", "init": "self_predicting"}
        if top_down == "learned":
            projections[f"pi_{k}"]["rule"] = {"apical_silencing": {"eta": eta_pi}}
        down: dict[str, Any] = {"source": above, "target": f"{pop}.apical"}
        if top_down == "tied":
            down["rule"] = {"tied": {"to": f"up_{k + 1}"}}
        elif top_down == "learned":
            down["rule"] = {"hebbian_alignment": {"eta": eta_down, "tau_hp": 5.0, "decay": 0.01}}
        projections[f"down_{k}"] = down
        projections[f"nudge_{k}"] = {"source": f"{above}.soma", "target": f"int_{k}.soma", "conductance": "$g_som"}
    spec = {
        "schema": "microcircuit/1",
        "name": name,
        "preset": "haider2021",
        "defaults": {"population": {"dynamics": dynamics, "noise": noise},
                     "projection": {"init": {"uniform": 1.0}}},
        "populations": pops,
        "projections": projections,
        "task": task or {"teacher": {"train": 20, "test": 20}},
        "inputs": {"stimulus": {"target": "x"}, "teacher": {"target": "out.soma", "conductance": teacher_conductance}},
        "protocol": [{"phase": "test", "data": "test", "t_pres": 10}],
    }
    spec.update(top_level)
    return spec
