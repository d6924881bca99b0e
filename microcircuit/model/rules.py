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
    """A plasticity rule. ``learns`` is False for rules that never change the weights."""

    name: ClassVar[str]
    learns: ClassVar[bool] = True

    def direction(
        self, post_rate: torch.Tensor, post_prediction: torch.Tensor, dendrite: torch.Tensor, pre_rate: torch.Tensor
    ) -> torch.Tensor:
        """dW/dt divided by eta.

        Args:
            post_rate: postsynaptic rate r_post, [circuit, batch, post].
            post_prediction: phi(vhat), the rate predicted by the attenuated dendritic potential.
            dendrite: the target dendrite's potential v, [circuit, batch, post].
            pre_rate: the presynaptic rate the projection carried this step, [circuit, batch, pre].
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

    def direction(self, post_rate, post_prediction, dendrite, pre_rate):
        return batch_outer(post_rate - post_prediction, pre_rate)


@RULES.register("apical_silencing")
class ApicalSilencing(Rule):
    """dW/dt = eta (v_rest - v_apical) r_pre^T with v_rest = 0: drives the apical dendrite to rest."""

    name = "apical_silencing"

    def direction(self, post_rate, post_prediction, dendrite, pre_rate):
        return batch_outer(-dendrite, pre_rate)
