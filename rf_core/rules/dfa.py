"""Direct feedback alignment (Nøkland 2016): the output error goes straight to every hidden layer."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger
from rf_core.rules._b_feedback import FeedbackScaleParams
from rf_core.rules.base import LayerUpdate, LearningRule, register


@register
class DirectFeedbackAlignment(LearningRule[FeedbackScaleParams]):
    """δ_L = e/B; for hidden layers δ_l = (δ_L D_l) ⊙ σ'(a_l) with a fixed random D_l (classes × width);
    direction_l = δ_lᵀ h_{l−1}."""

    name = "dfa"
    summary = "direct feedback alignment: the output error sent to every layer by fixed random matrices"
    Params = FeedbackScaleParams
    default_lr = 0.03
    # Not the paper's leaky ReLU: with it no step size trains both Fashion-MNIST (diverges at λ ≥ 3e-3) and
    # digits (does not learn at 1e-3); with tanh λ 0.03 does (validation screens, docs/RF_CORE.md). Every table
    # names each row's activation.
    default_activation = "tanh"

    def __init__(self, model: MLP, params: FeedbackScaleParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        classes = model.sizes[-1]
        for l in range(model.num_layers - 1):
            width = model.sizes[l + 1]
            bound = self.params.feedback_scale / math.sqrt(classes)
            d = (torch.rand(classes, width, generator=generator, dtype=model.weights[0].dtype) * 2 - 1) * bound
            self.register_buffer(f"direct_{l}", d.to(model.weights[0].device))

    @classmethod
    def ledger(cls, params: FeedbackScaleParams) -> Ledger:
        return Ledger(
            weight_transport=False,
            feedback_from_weights=False,
            closed_form_inverse=False,
            batch_global=False,
            output_error_broadcast=True,
        )

    @classmethod
    def describe(cls, params: FeedbackScaleParams) -> dict[str, str]:
        return {
            "update": "gradient_style",
            "update_detail": "gradient-style step on the broadcast error",
            "feedback": "fixed_random_direct",
            "feedback_detail": "fixed random matrices from the output to each layer",
        }

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        net = self.net
        top = output_error / output_error.shape[0]
        out = []
        for l in range(net.num_layers):
            if l == net.num_layers - 1:
                delta = top
            else:
                delta = net.activation.gate(top @ getattr(self, f"direct_{l}"), cache.pre[l])
            out.append((delta, cache.inputs[l], delta.sum(0) if net.biases is not None else None))
        return out
