"""Feedback alignment (Lillicrap et al. 2014): the error travels down through fixed random matrices B_l."""

from __future__ import annotations

import torch
from torch import Tensor

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger
from rf_core.rules._b_feedback import FeedbackScaleParams, random_feedback
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through, register


@register
class FeedbackAlignment(LearningRule[FeedbackScaleParams]):
    """As backprop with W_l replaced by a fixed random B_l of W_l's shape, uniform on ±feedback_scale/√fan_in
    (2.45× smaller than W_l's initialisation at the default scale 1): δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1})."""

    name = "fa"
    summary = "feedback alignment: fixed random feedback in place of Wᵀ"
    Params = FeedbackScaleParams
    default_lr = 0.2  # chosen on validation accuracy (docs/RF_CORE.md)
    # Not the paper's leaky ReLU: a validation screen (Fashion-MNIST, seeds 10–12, 20 epochs; docs/RF_CORE.md)
    # gave leaky ReLU .839 at λ 0.01, .834 at 0.03 and an explosion at 0.1, tanh .875 at 0.2. Every table
    # names each row's activation.
    default_activation = "tanh"

    def __init__(self, model: MLP, params: FeedbackScaleParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        for l, w in enumerate(model.weights):
            self.register_buffer(f"feedback_{l}", random_feedback(w, self.params.feedback_scale, generator))

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
