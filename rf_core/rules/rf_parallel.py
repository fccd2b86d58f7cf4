"""Parallel Reciprocal Feedback (paper §3.1, A.6 Algorithm 2).

The forward update of rules/_rf.py, with each feedback matrix F_l (layers 2..L) trained at every step by
the linear-autoencoder rule on the layer's own input y = h_{l−1}:

    δF_l = (F_l W_l y − y)(W_l y)ᵀ,   F_l ← F_l − λ_fb · mean_batch δF_l

In expectation δF_l = (F_l W_l − I) C W_lᵀ with C = E[yyᵀ]; for white y (C = σ²I) and full-row-rank W_l
its unique fixed point is F_l = Wᵀ(WWᵀ)⁻¹ = W_l⁺ (tested). On real data y is not white, and F_l settles
on C Wᵀ(W C Wᵀ)⁻¹, the inverse that is exact on the data the layer actually sees.
Feedback starts as the exact pseudoinverse of the initial weights (`feedback_init: pinv`, default; a
one-off "sleep" before training), or as W_lᵀ, or random.
"""

import math

import torch

from rf_core.config import RF_FIELDS
from rf_core.rules._rf import reciprocal_feedback_directions
from rf_core.rules.base import LearningRule, register


@register
class ParallelReciprocalFeedback(LearningRule):
    name = "rf_parallel"
    default_lr = 1.0
    default_feedback_lr = 1e-4
    own_fields = RF_FIELDS | frozenset({"feedback_lr", "feedback_init"})

    def __init__(self, model, config, generator):
        super().__init__(model, config, generator)
        for l in range(1, model.num_layers):
            w = model.weights[l]
            if config.feedback_init == "pinv":
                f = torch.linalg.pinv(w)
            elif config.feedback_init == "transpose":
                f = w.T.clone()
            else:
                bound = 1.0 / math.sqrt(w.shape[0])
                f = ((torch.rand(w.T.shape, generator=generator, dtype=w.dtype) * 2 - 1) * bound).to(w.device)
            self.register_buffer(f"feedback_{l}", f)

    def feedback_matrices(self):
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache, output_error):
        return reciprocal_feedback_directions(cache, output_error, self.feedback_matrices(), self.net, self.config)

    @torch.no_grad()
    def after_step(self, cache):
        lr = self.config.feedback_lr if self.config.feedback_lr is not None else self.default_feedback_lr
        net = self.net
        for l in range(1, net.num_layers):
            f = getattr(self, f"feedback_{l}")
            y = cache.inputs[l]
            wy = cache.pre[l] if net.biases is None else cache.pre[l] - net.biases[l]
            reconstruction_error = torch.addmm(y, wy, f.T, beta=-1)  # F W y − y, one kernel
            f.addmm_(reconstruction_error.T, wy, alpha=-lr / y.shape[0])
