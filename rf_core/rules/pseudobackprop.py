"""Pseudo-backprop: the Reciprocal Feedback update with the exact pseudoinverse of W at every step.

Not biologically plausible and not cheap: the oracle that both RF variants approximate (weight transport
and a closed-form inverse at every step), so the gap between it and rf_two_phase / rf_parallel measures what
their learned feedback costs in accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rf_core.model import ForwardCache
from rf_core.params import Ledger
from rf_core.rules._rf import RFUpdateParams, describe_update, reciprocal_feedback_directions
from rf_core.rules.base import LayerUpdate, LearningRule, register


@dataclass(frozen=True)
class PseudoBackpropParams(RFUpdateParams):
    pass


@register
class PseudoBackprop(LearningRule[PseudoBackpropParams]):
    name = "pseudobackprop"
    summary = "the RF update with torch.linalg.pinv(W) at every step (the oracle RF approximates)"
    Params = PseudoBackpropParams
    default_lr = 1.0

    @classmethod
    def ledger(cls, params: PseudoBackpropParams) -> Ledger:
        joint = params.update == "gated_joint"
        return Ledger(weight_transport=True, feedback_from_weights=True, closed_form_inverse=True, batch_global=joint)

    @classmethod
    def describe(cls, params: PseudoBackpropParams) -> dict[str, str]:
        return {
            "update": params.update,
            "update_detail": describe_update(params),
            "feedback": "oracle_svd_every_step",
            "feedback_detail": "torch.linalg.pinv(W) at every step (weight transport, closed form)",
        }

    def feedback_matrices(self) -> dict[int, Tensor]:
        return {l: torch.linalg.pinv(self.net.weights[l]) for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        return reciprocal_feedback_directions(cache, output_error, self.feedback_matrices(), self.net, self.params)
