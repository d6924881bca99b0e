"""References the circuit is measured against, below every user of them (model.md sec. 5).

- :mod:`~microcircuit.reference.feedforward`: the equivalent feedforward network
  ``y_k = c_k W^up_k r_{k-1}``, ``r_k = phi_k(y_k)`` as one function on numpy arrays or torch tensors
  (the teacher task's targets, the backprop baseline, the backprop reference all use it);
- :mod:`~microcircuit.reference.network`: that network for a circuit, trained with SGD (the baseline);
- :mod:`~microcircuit.reference.backprop`: backprop's errors and gradients on a circuit's weights;
- :mod:`~microcircuit.reference.alignment`: the probe that compares a running circuit's dendritic
  errors with them.

Only :mod:`~microcircuit.reference.feedforward` is imported here (no torch), so that the task
layer can use it.
"""

from microcircuit.reference.feedforward import feedforward

__all__ = ["feedforward"]
