"""Backpropagation (Rumelhart et al. 1986): the error travels down through the transposes W_lᵀ."""

from __future__ import annotations

from torch import Tensor

from rf_core.model import ForwardCache
from rf_core.params import Ledger, RuleParams
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through, register


@register
class Backprop(LearningRule[RuleParams]):
    """D_l = δ_lᵀ h_{l−1}, δ_{l−1} = (δ_l W_l) ⊙ σ'(a_{l−1}), δ_L = (softmax − onehot)/B: the exact
    cross-entropy gradient (checked against autograd in tests/rf_core/test_rules_math.py)."""

    name = "bp"
    summary = "backpropagation: the exact gradient (weight transport)"
    Params = RuleParams  # bp reads no field beyond the common ones
    default_lr = 0.1  # chosen on validation accuracy (docs/RF_CORE.md)

    @classmethod
    def ledger(cls, params: RuleParams) -> Ledger:
        return Ledger(weight_transport=True, feedback_from_weights=False, closed_form_inverse=False, batch_global=False)

    @classmethod
    def describe(cls, params: RuleParams) -> dict[str, str]:
        return {
            "update": "gradient",
            "update_detail": "gradient step",
            "feedback": "transpose",
            "feedback_detail": "Wᵀ (weight transport)",
        }

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        return backprop_through(cache, output_error, list(self.net.weights), self.net)
