"""Feedback alignment (Lillicrap et al. 2014): the error travels down through fixed random matrices B_l."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, Problem, RuleParams, positive
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through, register


@dataclass(frozen=True)
class FeedbackScaleParams(RuleParams):
    # B ~ U(±feedback_scale/√fan_in); W's own init is U(±init_gain/√fan_in), init_gain 2.45: at 1, B's entries are
    # 2.45× smaller than W's initial ones
    feedback_scale: float = 1.0

    def problems(self) -> list[Problem]:
        return super().problems() + positive(self, "feedback_scale")


@register
class FeedbackAlignment(LearningRule[FeedbackScaleParams]):
    """As backprop with W_l replaced by a fixed random B_l of W_l's shape, uniform on ±feedback_scale/√fan_in
    (2.45× smaller than W_l's initialisation at the default scale 1): δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1})."""

    name = "fa"
    summary = "feedback alignment: fixed random feedback in place of Wᵀ"
    Params = FeedbackScaleParams
    default_lr = 0.2  # chosen on validation accuracy (docs/RF_CORE.md)
    # With leaky ReLU, fa's forward weights grow until training becomes unstable on Fashion-MNIST (train
    # loss 0.9 → 128 in 20 epochs, test 0.826 at λ 0.05, 0.823 at 0.02); with tanh it trains smoothly
    # (0.863 at λ 0.1; docs/RF_CORE.md).
    default_activation = "tanh"

    def __init__(self, model: MLP, params: FeedbackScaleParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        for l, w in enumerate(model.weights):
            bound = self.params.feedback_scale / math.sqrt(w.shape[1])
            b = (torch.rand(w.shape, generator=generator, dtype=w.dtype) * 2 - 1) * bound
            self.register_buffer(f"feedback_{l}", b.to(w.device))

    @classmethod
    def ledger(cls, params: FeedbackScaleParams) -> Ledger:
        return Ledger(
            weight_transport=False, feedback_from_weights=False, closed_form_inverse=False, batch_global=False
        )

    @classmethod
    def describe(cls, params: FeedbackScaleParams) -> dict[str, str]:
        return {
            "update": "gradient_style",
            "update_detail": "gradient-style step through the feedback",
            "feedback": "fixed_random",
            "feedback_detail": "fixed random matrices in place of Wᵀ",
        }

    def feedback_matrices(self) -> dict[int, Tensor]:
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        backward = [getattr(self, f"feedback_{l}") for l in range(self.net.num_layers)]
        return backprop_through(cache, output_error, backward, self.net)
