"""Plasticity rules (model.md sec. 3), registered by name. All are local and always on.

A rule is one registered class: its implementation and, in ``Params``, the model of its parameters,
from which the spec schema, its error messages and docs/spec.md are built (the class docstring is the
rule's section there). Importing this module does not load torch (:mod:`microcircuit.lazy`).

A rule returns the instantaneous weight change dW/dt / eta for one projection,
shape [circuit, post, pre], averaged over the batch of stimuli that share the weights
(model.md sec. 8). The engine multiplies by eta and dt, low-pass filters with tau_w
and clips at w_max.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import PositiveFloat

from microcircuit.lazy import lazy_import
from microcircuit.params import NonNegFloat, Strict
from microcircuit.registry import Registry

torch = lazy_import("torch")  # loaded when a method first computes (the spec layer reads the classes only)

RULES: Registry[type[Rule]] = Registry("plasticity rule")


class EtaParams(Strict):
    """``eta``: the learning rate (1/ms)."""

    eta: NonNegFloat


class TiedParams(Strict):
    """``to``: the weighted projection whose transpose these weights are."""

    to: str


class HebbianAlignmentParams(Strict):
    """``eta``: learning rate (1/ms); ``tau_hp``: time constant of the high-pass filters (ms); ``decay``:
    weight decay (1/ms)."""

    eta: NonNegFloat
    tau_hp: PositiveFloat = 10.0
    decay: NonNegFloat = 0.1


class PalParams(Strict):
    """``eta``: learning rate (1/ms); ``tau_hp``: time constant of the high-pass of the upper area's rate
    (ms); ``tau_xi``: time constant of the noise trace (ms); ``decay``: weight decay alpha (1/ms)."""

    eta: NonNegFloat
    tau_hp: PositiveFloat = 1.0
    tau_xi: PositiveFloat = 0.3
    decay: NonNegFloat = 1e-3


def batch_outer(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """mean_b post[:, b, :]^T pre[:, b, :]: [circuit, batch, post] x [circuit, batch, pre] -> [circuit, post, pre]."""
    return torch.bmm(post.transpose(1, 2), pre) / post.shape[1]


class Rule:
    """A plasticity rule, instantiated per projection and phase with the spec's parameters.

    ``learns`` is False for rules that never change the weights by themselves. A spec writes a rule
    without ``Params`` as its bare name (``fixed``), one with ``Params`` as ``{name: {parameters}}``;
    parameters whose names start with ``tau_`` are filter time constants (ms), which the spec check
    holds to 0 or at least dt.
    """

    name: ClassVar[str]
    #: the model of the rule's parameters (None: the rule has none)
    Params: ClassVar[type[Strict] | None] = None
    #: the circuits whose engine runs the rule: ``microcircuit`` (:mod:`microcircuit.engine`) and/or
    #: ``prospective`` (:mod:`microcircuit.prospective`)
    networks: ClassVar[tuple[str, ...]] = ("microcircuit",)
    #: how one step of the rule corrects the rule's own error, for the spec's learning-rate warning:
    #: ``direct`` (by the step dt * eta * eta_scale itself), ``nudged`` (by the step times c * lambda: the
    #: soma follows the dendrite except for the part its nudging holds), None (not checked); a rule that sets
    #: it has ``eta`` among its parameters
    error_feedback: ClassVar[str | None] = None
    learns: ClassVar[bool] = True
    #: the dendrite whose attenuated potential forms ``post_prediction`` (None: the target compartment)
    prediction_from: ClassVar[str | None] = None
    #: names of the rule's own filter tensors, kept per projection in the simulator state
    memory_names: ClassVar[tuple[str, ...]] = ()
    #: True for rules that read their target population's rate noise of the step (``direction(noise=...)``)
    reads_noise: ClassVar[bool] = False

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        #: the parameters read through ``Params`` (its defaults filled in), None for a rule without any
        self.settings = type(self).Params.model_validate(self.params) if type(self).Params is not None else None

    @classmethod
    def has_post_factor(cls) -> bool:
        """Whether the rule implements :meth:`post_factor` (dW/dt / eta = mean_b f_post r_pre^T), the form
        a shared convolution kernel of a microcircuit can learn by (its update sums those of all positions)."""
        return cls.post_factor is not Rule.post_factor

    def post_factor(
        self, post_rate: torch.Tensor, post_prediction: torch.Tensor, dendrite: torch.Tensor
    ) -> torch.Tensor | None:
        """For rules of the form dW/dt / eta = mean_b f_post r_pre^T: f_post, [circuit, batch, post].

        The engine then adds the update in one fused, in-place batched product (no dW temporary).
        None (the default) for rules of any other form, which implement :meth:`direction`.
        """
        return None

    def direction(
        self,
        post_rate: torch.Tensor,
        post_prediction: torch.Tensor,
        dendrite: torch.Tensor,
        pre_rate: torch.Tensor,
        weights: torch.Tensor,
        dt: float,
        memory: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """dW/dt divided by eta, [circuit, post, pre].

        Args:
            post_rate: postsynaptic rate r_post, [circuit, batch, post].
            post_prediction: phi(vhat), the rate predicted by the attenuated dendritic potential.
            dendrite: the target dendrite's potential v, [circuit, batch, post].
            pre_rate: the presynaptic rate the projection carried this step, [circuit, batch, pre].
            weights: the current weights [circuit, post, pre].
            dt: the time step (ms), for rules with internal filters.
            memory: the rule's own filter state for this projection (tensors named in ``memory_names``,
                kept in the simulator state and checkpointed); empty at the start of a phase.

        Rules with ``reads_noise`` also get ``noise``: the target population's rate-potential noise of
        this step, [circuit, batch, post], or None where the population has none.
        """
        raise NotImplementedError


@RULES.register("fixed")
class Fixed(Rule):
    """No plasticity."""

    name = "fixed"
    networks = ("microcircuit", "prospective")
    learns = False


@RULES.register("dendritic_prediction")
class DendriticPrediction(Rule):
    """Urbanczik-Senn: dW/dt = eta (r_post - phi(vhat)) r_pre^T, vhat the attenuated dendritic potential."""

    name = "dendritic_prediction"
    Params = EtaParams
    error_feedback = "nudged"

    def post_factor(self, post_rate, post_prediction, dendrite):
        return post_rate - post_prediction

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt, memory):
        return batch_outer(self.post_factor(post_rate, post_prediction, dendrite), pre_rate)


@RULES.register("apical_silencing")
class ApicalSilencing(Rule):
    """dW/dt = eta (v_rest - v_apical) r_pre^T with v_rest = 0: drives the apical dendrite to rest."""

    name = "apical_silencing"
    Params = EtaParams
    error_feedback = "direct"

    def post_factor(self, post_rate, post_prediction, dendrite):
        return -dendrite

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt, memory):
        return batch_outer(self.post_factor(post_rate, post_prediction, dendrite), pre_rate)


@RULES.register("tied")
class Tied(Rule):
    """W = (W_to)^T at every step: top-down weights tied to a forward projection (backprop-like), kept by
    the engine after every step in which W_to learns."""

    name = "tied"
    Params = TiedParams
    learns = False


@RULES.register("hebbian_alignment")
class HebbianAlignment(Rule):
    """Learned top-down weights W^down_k [post = area k, pre = area k+1]:

        dW/dt = eta (mean_b hp(phi(vhat^B_post)) hp(r_pre)^T - decay W)

    hp(x) = x - lowpass_{tau_hp}(x) keeps the fluctuations. The postsynaptic factor is the basal
    (bottom-up) prediction of area k, not its rate: the rate also carries the apical input through W
    itself, which would make the rule reinforce its own weights. Fluctuations delta of area k's bottom-up
    drive (stimulus changes, noise) reach area k+1 as D W^up_{k+1} delta, so the correlation is
    Sigma (W^up_{k+1})^T D with Sigma, D positive: W turns towards (W^up_{k+1})^T (after the phaseless
    alignment learning idea of Max et al. 2024, here driven by the stimulus and any noise instead of noise
    alone); ``decay`` keeps the weights bounded. Time constants in ms.
    """

    name = "hebbian_alignment"
    Params = HebbianAlignmentParams
    error_feedback = "direct"
    prediction_from = "basal"
    memory_names = ("low_post", "low_pre")

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.tau_hp, self.decay = self.settings.tau_hp, self.settings.decay

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt, memory):
        if "low_post" not in memory:  # a phase starts with the low-pass at the first values (hp = 0)
            memory["low_post"], memory["low_pre"] = post_prediction.clone(), pre_rate.clone()
        low_post, low_pre = memory["low_post"], memory["low_pre"]
        alpha = dt / self.tau_hp
        low_post += alpha * (post_prediction - low_post)
        low_pre += alpha * (pre_rate - low_pre)
        return batch_outer(post_prediction - low_post, pre_rate - low_pre) - self.decay * weights


@RULES.register("pal")
class PhaselessAlignment(Rule):
    """Phaseless alignment learning (Max et al. 2024; model.md sec. 3a) of top-down weights
    W^down_k [post = area k, pre = area k+1], always on:

        e_k     <- e_k + (dt / tau_xi) (xi_k - e_k)              noise trace of area k
        hp(r)   = r_{k+1} - lowpass_{tau_hp}(r_{k+1})            high-passed rate of area k+1
        dW/dt   = eta (mean_b e_k hp(r_{k+1})^T - decay W)

    xi_k, [circuit, batch, post], is this step's noise on area k's rate potential (the population's
    ``rate_noise`` draw, potential units), handed to the rule by the engine (``reads_noise``). Area k
    transmits it, so area k+1 answers with D_{k+1} c_{k+1} W^up_{k+1} D_k xi_k one or more steps later
    (D = diag phi'); the trace bridges that lag, and the expectation of the correlation is proportional
    to (W^up_{k+1})^T: W turns towards it, and ``decay`` (1/ms, the paper's alpha) removes the initial
    weights and keeps the norm bounded. Time constants in ms; the filters start afresh with each phase.
    The target population needs ``rate_noise``.
    """

    name = "pal"
    Params = PalParams
    memory_names = ("trace", "low_pre")
    reads_noise = True

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.tau_hp, self.tau_xi, self.decay = self.settings.tau_hp, self.settings.tau_xi, self.settings.decay

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt, memory,
                  noise: torch.Tensor | None = None):
        if "low_pre" not in memory:  # a phase starts with the high-pass at rest (hp = 0) and no trace
            memory["low_pre"] = pre_rate.clone()
            memory["trace"] = torch.zeros_like(post_rate)
        trace, low_pre = memory["trace"], memory["low_pre"]
        if noise is not None:
            trace += (dt / self.tau_xi) * (noise - trace)  # e_k: noise trace
        else:
            trace -= (dt / self.tau_xi) * trace
        low_pre += (dt / self.tau_hp) * (pre_rate - low_pre)
        return batch_outer(trace, pre_rate - low_pre) - self.decay * weights  # model.md sec. 3a, dW/dt / eta


@RULES.register("prospective_error")
class ProspectiveError(Rule):
    """Prospective networks (model.md sec. 10): dW/dt = eta e_post r_pre^T, with e_post = u_breve_m - W r_pre
    the error the target area integrates (tau_m du/dt = W r_pre - u + e). For a convolution the update of
    a shared kernel sums the local updates of all its positions. Only the prospective engine runs it."""

    name = "prospective_error"
    Params = EtaParams
    networks = ("prospective",)

    def error_factor(self, error: torch.Tensor) -> torch.Tensor:
        """The postsynaptic factor of the update: the target area's error e, [circuit, batch, post]."""
        return error
