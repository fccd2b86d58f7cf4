"""Pseudo-backprop: the Reciprocal Feedback update with the exact pseudoinverse at every step.

Not biologically plausible and not cheap: it is the oracle that both RF variants approximate, so the gap
between it and rf_two_phase / rf_parallel measures what their learned feedback costs in accuracy.
"""

import torch

from rf_core.config import RF_FIELDS
from rf_core.rules._rf import reciprocal_feedback_directions
from rf_core.rules.base import LearningRule, register


@register
class PseudoBackprop(LearningRule):
    name = "pseudobackprop"
    default_lr = 1.0
    own_fields = RF_FIELDS

    def feedback_matrices(self):
        return {l: torch.linalg.pinv(self.net.weights[l]) for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache, output_error):
        return reciprocal_feedback_directions(cache, output_error, self.feedback_matrices(), self.net, self.config)
