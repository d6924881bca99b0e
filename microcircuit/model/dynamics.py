"""Somatic rate dynamics (model.md sec. 2), registered by name.

A dynamics is one registered class: its implementation and, in ``Params``, the model of its parameters,
from which the spec schema and docs/spec.md are built. Importing this module does not load torch
(:mod:`microcircuit.lazy`).

Every soma integrates du/dt = -g_tot u + I (capacitance 1) with forward Euler. What
differs is the potential that sets the rate, r = phi(rate_potential):

- ``orig`` (Sacramento et al. 2018): the updated potential itself, r = phi(u(t + dt)).
- ``latent_equilibrium`` (Haider et al. 2021): the prospective potential
  u_breve = u + tau_r du/dt, evaluated at the current potential. With tau_r = tau_eff
  = 1/g_tot this is exactly the instantaneous steady state u_ss = I / g_tot.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import PositiveFloat

from microcircuit.lazy import lazy_import
from microcircuit.params import NonNegFloat, Strict
from microcircuit.registry import Registry

torch = lazy_import("torch")  # loaded when a method first computes (the spec layer reads the classes only)

DYNAMICS: Registry[type[Dynamics]] = Registry("dynamics")


class Mismatch(Strict):
    """Per-neuron mismatch of the prospective time constant: tau_r_i = tau_r * m_i.

    ``lognormal``: m_i = exp(N(0, spread)); ``normal``: m_i = 1 + N(0, spread), clipped at 0.
    """

    distribution: Literal["lognormal", "normal"] = "lognormal"
    spread: NonNegFloat = 0.0


class LatentEquilibriumParams(Strict):
    """r = phi(u + tau_r du/dt). ``tau_r: null`` means tau_r = tau_eff (exact LE)."""

    tau_r: PositiveFloat | None = None
    mismatch: Mismatch | None = None


class Dynamics:
    """How a soma turns its potential into the potential that drives its rate.

    Args:
        params: the spec's parameter mapping for this dynamics (may be empty).
        size: number of neurons.
        rngs: numpy generators for per-neuron randomness (mismatch), one per circuit.

    Dynamics objects hold constants only; what changes while a circuit runs (the LE tau_r factors)
    lives in the simulator state. A spec writes a dynamics as its bare name or as ``{name: {parameters}}``
    (an empty mapping for a dynamics without ``Params``).
    """

    name: ClassVar[str]
    #: the model of the dynamics' parameters (None: it has none)
    Params: ClassVar[type[Strict] | None] = None

    def __init__(self, params: dict, size: int, rngs: list[np.random.Generator]):
        self.params = params
        #: the parameters read through ``Params`` (its defaults filled in), None for a dynamics without any
        self.settings = type(self).Params.model_validate(params) if type(self).Params is not None else None

    def initial_factor(self) -> torch.Tensor | None:
        """The per-neuron state this dynamics adds to the simulator state, [circuit, 1, neuron]
        (float64, cast by the simulator), or None if it has none."""
        return None

    def rate_potential(
        self, u: torch.Tensor, du: torch.Tensor, u_next: torch.Tensor, g_tot: float,
        factor: torch.Tensor | None,
    ) -> torch.Tensor:
        """The potential passed to phi.

        Args:
            u: potential at the start of the step, [circuit, batch, neuron].
            du: du/dt at the start of the step (noise excluded), same shape, 1/ms.
            u_next: potential after the Euler step, same shape.
            g_tot: total somatic conductance in this step (1/ms), tau_eff = 1/g_tot.
            factor: this population's entry of the state's ``tau_r_factor`` (None if it has none).
        """
        raise NotImplementedError


@DYNAMICS.register("orig")
class Orig(Dynamics):
    """r = phi(u) (Sacramento et al. 2018): the rate lags the input by about tau_eff per area."""

    name = "orig"

    def rate_potential(self, u, du, u_next, g_tot, factor):
        return u_next


@DYNAMICS.register("latent_equilibrium")
class LatentEquilibrium(Dynamics):
    """r = phi(u_breve), u_breve = u + tau_r du/dt.

    tau_r = m_i * base, base = ``tau_r`` (ms) or, by default, tau_eff = 1/g_tot of the current step.
    ``mismatch`` draws the per-neuron factor m_i: ``lognormal`` m_i = exp(N(0, s)), ``normal``
    m_i = max(0, 1 + N(0, s)), s = ``spread``; one draw per circuit; without mismatch m_i = 1.

    In a phase with ``tau_r_eta`` = eta > 0, m learns towards tau_eff / base from the neuron's own
    trajectory (``learn``): u_breve - u_ss = (tau_r - tau_eff) du/dt, so dm/dt = -eta (u_breve - u_ss)
    du/dt = -eta (tau_r - tau_eff) (du/dt)^2 drives tau_r to tau_eff (u_ss = I / g_tot is local to the neuron).
    """

    name = "latent_equilibrium"
    Params = LatentEquilibriumParams

    def __init__(self, params: dict, size: int, rngs: list[np.random.Generator]):
        super().__init__(params, size, rngs)
        #: fixed base tau_r in ms, or None for tau_eff = 1/g_tot of the current step
        self.tau_r: float | None = self.settings.tau_r
        #: where the circuits of one simulation differ in it: each circuit's fixed base tau_r in ms
        #: [circuit, 1, 1], NaN for tau_eff (set by the simulator; None: ``tau_r`` for all circuits)
        self.tau_r_circuits: torch.Tensor | None = None
        mismatch = self.settings.mismatch or Mismatch()
        spread = mismatch.spread
        if spread > 0.0:
            if mismatch.distribution == "lognormal":
                draws = [np.exp(rng.normal(0.0, spread, size)) for rng in rngs]
            else:
                draws = [np.maximum(0.0, 1.0 + rng.normal(0.0, spread, size)) for rng in rngs]
        else:
            draws = [np.ones(size) for _ in rngs]
        self._draws = np.stack(draws)[:, None, :]

    def initial_factor(self) -> torch.Tensor:
        """m at the start of a run, [circuit, 1, neuron] float64; the simulator keeps it in its state."""
        return torch.as_tensor(self._draws)

    def base(self, g_tot: float | torch.Tensor) -> float | torch.Tensor:
        """The base of tau_r in ms: the fixed ``tau_r`` or tau_eff = 1 / g_tot (g_tot in 1/ms, one value or
        [circuit, 1, 1]); [circuit, 1, 1] where the circuits differ in it."""
        if self.tau_r_circuits is not None:
            return torch.where(torch.isnan(self.tau_r_circuits), 1.0 / g_tot, self.tau_r_circuits)
        return self.tau_r if self.tau_r is not None else 1.0 / g_tot

    def rate_potential(self, u, du, u_next, g_tot, factor):
        return u + (self.base(g_tot) * factor) * du  # u_breve = u + tau_r du/dt, tau_r = m base

    def learn(self, factor: torch.Tensor, u_breve: torch.Tensor, current: torch.Tensor, du: torch.Tensor,
              g_tot: float | torch.Tensor, eta: float | torch.Tensor, dt: float) -> None:
        """One Euler step of the tau_r rule (batch-averaged) on the state's ``factor``, in place: m >= 0.

        ``g_tot`` (1/ms) and ``eta`` (1/ms): one value or one per circuit [circuit, 1, 1]; a circuit with eta 0
        keeps its factor."""
        mismatch = u_breve - current / g_tot  # u_breve - u_ss
        change = (mismatch * du).mean(dim=1, keepdim=True)
        rate = dt * eta / self.base(g_tot)
        if isinstance(rate, torch.Tensor):
            factor.sub_(rate * change)
        else:
            factor.add_(change, alpha=-rate)
        factor.clamp_(min=0.0)


def make_dynamics(spec_value, size: int, rngs: list[np.random.Generator]) -> Dynamics:
    """Build a dynamics object from the spec's ``dynamics`` value (a name or {name: params})."""
    if isinstance(spec_value, str):
        name, params = spec_value, {}
    elif isinstance(spec_value, dict):
        ((name, params),) = spec_value.items()
        params = dict(params or {})
    else:  # pydantic model
        dumped = spec_value.model_dump(exclude_none=True)
        ((name, params),) = dumped.items()
    return DYNAMICS.get(name)(params, size, rngs)
