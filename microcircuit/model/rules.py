"""Plasticity rules (model.md sec. 3), registered by name. All are local and always on.

A rule returns the instantaneous weight change dW/dt / eta for one projection,
shape [circuit, post, pre], averaged over the batch of stimuli that share the weights
(model.md sec. 8). The engine multiplies by eta and dt, low-pass filters with tau_w
and clips at w_max.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from microcircuit.registry import Registry

RULES: Registry[type[Rule]] = Registry("plasticity rule")


def batch_outer(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """mean_b post[:, b, :]^T pre[:, b, :]: [circuit, batch, post] x [circuit, batch, pre] -> [circuit, post, pre]."""
    return torch.bmm(post.transpose(1, 2), pre) / post.shape[1]


class Rule:
    """A plasticity rule, instantiated per projection and phase with the spec's parameters.

    ``learns`` is False for rules that never change the weights by themselves.
    """

    name: ClassVar[str]
    learns: ClassVar[bool] = True
    #: the dendrite whose attenuated potential forms ``post_prediction`` (None: the target compartment)
    prediction_from: ClassVar[str | None] = None

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})

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
    ) -> torch.Tensor:
        """dW/dt divided by eta, [circuit, post, pre].

        Args:
            post_rate: postsynaptic rate r_post, [circuit, batch, post].
            post_prediction: phi(vhat), the rate predicted by the attenuated dendritic potential.
            dendrite: the target dendrite's potential v, [circuit, batch, post].
            pre_rate: the presynaptic rate the projection carried this step, [circuit, batch, pre].
            weights: the current weights [circuit, post, pre].
            dt: the time step (ms), for rules with internal filters.
        """
        raise NotImplementedError


@RULES.register("fixed")
class Fixed(Rule):
    """No plasticity."""

    name = "fixed"
    learns = False


@RULES.register("dendritic_prediction")
class DendriticPrediction(Rule):
    """Urbanczik-Senn: dW/dt = eta (r_post - phi(vhat)) r_pre^T, vhat the attenuated dendritic potential."""

    name = "dendritic_prediction"

    def post_factor(self, post_rate, post_prediction, dendrite):
        return post_rate - post_prediction

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt):
        return batch_outer(self.post_factor(post_rate, post_prediction, dendrite), pre_rate)


@RULES.register("apical_silencing")
class ApicalSilencing(Rule):
    """dW/dt = eta (v_rest - v_apical) r_pre^T with v_rest = 0: drives the apical dendrite to rest."""

    name = "apical_silencing"

    def post_factor(self, post_rate, post_prediction, dendrite):
        return -dendrite

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt):
        return batch_outer(self.post_factor(post_rate, post_prediction, dendrite), pre_rate)


@RULES.register("tied")
class Tied(Rule):
    """W = (W_to)^T, kept by the engine after every step in which W_to learns (backprop-like top-down)."""

    name = "tied"
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
    alignment learning idea of Max et al. 2024); ``decay`` keeps the weights bounded.
    """

    name = "hebbian_alignment"
    prediction_from = "basal"

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.tau_hp = float(self.params.get("tau_hp", 10.0))
        self.decay = float(self.params.get("decay", 0.1))
        self.low_post: torch.Tensor | None = None
        self.low_pre: torch.Tensor | None = None

    def direction(self, post_rate, post_prediction, dendrite, pre_rate, weights, dt):
        if self.low_post is None or self.low_post.shape != post_prediction.shape:
            self.low_post, self.low_pre = post_prediction.clone(), pre_rate.clone()
        alpha = dt / self.tau_hp
        self.low_post += alpha * (post_prediction - self.low_post)
        self.low_pre += alpha * (pre_rate - self.low_pre)
        return batch_outer(post_prediction - self.low_post, pre_rate - self.low_pre) - self.decay * weights
