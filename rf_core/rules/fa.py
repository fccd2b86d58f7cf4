"""Feedback alignment (Lillicrap et al. 2014): the error travels down through fixed random matrices B_l."""

import math

import torch

from rf_core.rules.base import LearningRule, backprop_through, register


@register
class FeedbackAlignment(LearningRule):
    """As backprop with W_l replaced by a fixed random B_l of W_l's shape, drawn like W_l's initialisation
    and scaled by `feedback_scale`: δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1})."""

    name = "fa"
    default_lr = 0.1
    # With leaky ReLU, fa's forward weights grow until training becomes unstable on Fashion-MNIST (train
    # loss 0.9 → 128 in 20 epochs, test 0.826 at λ 0.05, 0.823 at 0.02); with tanh it trains smoothly
    # (0.863 at λ 0.1; docs/RF_CORE.md).
    default_activation = "tanh"
    own_fields = frozenset({"feedback_scale"})

    def __init__(self, model, config, generator):
        super().__init__(model, config, generator)
        for l, w in enumerate(model.weights):
            bound = config.feedback_scale / math.sqrt(w.shape[1])
            b = (torch.rand(w.shape, generator=generator, dtype=w.dtype) * 2 - 1) * bound
            self.register_buffer(f"feedback_{l}", b.to(w.device))

    def feedback_matrices(self):
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache, output_error):
        backward = [getattr(self, f"feedback_{l}") for l in range(self.net.num_layers)]
        return backprop_through(cache, output_error, backward, self.net)
