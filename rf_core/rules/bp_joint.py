"""bp_joint: backprop's error with RF's engineered layer step — an ablation, not a method from the literature.

The error travels down as in backprop (Wᵀ, ×σ'), and each layer takes the `gated_joint` step of rules/_rf.py:
ΔW_l = s_l ΔA_lᵀ (H Hᵀ + ρ I)⁻¹ H, the same ridge least-squares solve over the batch and the same per-layer
shares. Against rf_two_phase / rf_parallel with `update: gated_joint` it differs only in Wᵀ where they use
F ≈ W⁺, so it shows how much of RF's behaviour comes from that step rather than from pseudoinverse feedback.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rf_core.model import ForwardCache
from rf_core.params import Ledger
from rf_core.rules._rf import JointStepParams, gated_joint_directions
from rf_core.rules.base import LayerUpdate, LearningRule, register


@dataclass(frozen=True)
class BPJointParams(JointStepParams):
    pass


@register
class BackpropJointStep(LearningRule[BPJointParams]):
    name = "bp_joint"
    summary = "ablation: backprop's error (Wᵀ) with RF's ridge least-squares batch step"
    Params = BPJointParams
    default_lr = 1.0

    @classmethod
    def ledger(cls, params: BPJointParams) -> Ledger:
        return Ledger(weight_transport=True, feedback_from_weights=False, closed_form_inverse=True, batch_global=True)

    @classmethod
    def describe(cls, params: BPJointParams) -> dict[str, str]:
        return {
            "update": "gated_joint",
            "update_detail": "RF's engineered gated_joint step on backprop's error",
            "feedback": "transpose",
            "feedback_detail": "Wᵀ (weight transport)",
        }

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        transposes = {l: self.net.weights[l].T for l in range(1, self.net.num_layers)}
        return gated_joint_directions(cache, output_error, transposes, self.net, self.params)
