"""Parallel Reciprocal Feedback (paper §3.1, A.6 Algorithm 2).

The forward update of rules/_rf.py, with each feedback matrix F_l (layers 2..L) trained at every step by
the paper's linear-autoencoder rule on the layer's own input y = h_{l−1} and pre-activation u = W_l y:

    δF_l = (F_l u − y) uᵀ,   F_l ← F_l − feedback_lr · mean_batch δF_l

In expectation δF_l = (F_l W_l − I) C W_lᵀ with C = E[yyᵀ]; for white y (C = σ²I) and full-row-rank W_l its
unique fixed point is W_l⁺ (tested). On real data y is not white, and F_l settles on C Wᵀ(W C Wᵀ)⁻¹, another
right inverse of W (W F = I), exact on the data the layer actually sees.

Where F starts: `feedback_init: random` (default, seeded) or `zero`, then — unless development_steps is 0 —
a "development" sleep on white noise before the first step (the two-phase rule's sleep, rf_core/feedback.py);
or `oracle`, the closed-form pseudoinverse of the initial weights (weight transport: the ledger says so).
`feedback_lr: 0` freezes F where it started (an ablation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rf_core import feedback as fb
from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, Problem
from rf_core.rules._rf import describe_update
from rf_core.rules._rf_rule import ReciprocalFeedbackRule, SleepParams
from rf_core.rules.base import register


@dataclass(frozen=True)
class ParallelParams(SleepParams):
    feedback_init: str = "random"  # random | zero (then development) | oracle: pinv(W₀), closed form
    feedback_lr: float = 1e-5  # the §3.1 rule's rate on the training data (paper's search: [1e-6, 1e-3]); 0 freezes F

    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        **SleepParams.choices,
        "feedback_init": ("random", "zero", "oracle"),
    }

    def problems(self) -> list[Problem]:
        out = super().problems()
        if not self.feedback_lr >= 0:
            out.append(("feedback_lr", "must be >= 0 (0 freezes the feedback)"))
        return out


@register
class ParallelReciprocalFeedback(ReciprocalFeedbackRule[ParallelParams]):
    name = "rf_parallel"
    summary = "Reciprocal Feedback, parallel: feedback trained at every step by the §3.1 rule on the data"
    Params = ParallelParams
    default_lr = 1.0

    def __init__(self, model: MLP, params: ParallelParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        if self.params.feedback_init == "oracle":
            for l, probe in self.probes().items():
                getattr(self, f"feedback_{l}").copy_(
                    fb.oracle_feedback("oracle_svd", probe, None, generator, steps=0, noise_batch=0).matrix
                )

    @classmethod
    def ledger(cls, params: ParallelParams) -> Ledger:
        from_weights = params.feedback_init == "oracle" or params.fallback == "oracle"
        return cls.update_ledger(params, feedback_from_weights=from_weights, oracle=from_weights)

    @classmethod
    def describe(cls, params: ParallelParams) -> dict[str, str]:
        oracle = params.feedback_init == "oracle"
        parts = ["oracle" if oracle else params.feedback_init]
        if params.development_steps and not oracle:
            parts.append("development")
        parts.append("on_data" if params.feedback_lr else "frozen")
        start = (
            "pinv(W₀) (closed form: weight transport)"
            if oracle
            else params.feedback_init
            + (f", then up to {params.development_steps} noise-sleep steps" if params.development_steps else "")
        )
        rule = f"the §3.1 rule on the data at rate {params.feedback_lr:g}" if params.feedback_lr else "then frozen"
        return {
            "update": params.update,
            "update_detail": describe_update(params),
            "feedback": "+".join(parts),
            "feedback_detail": f"starts {start}; {rule}",
        }

    def before_step(self) -> None:
        if int(self.steps_done) == 0 and int(self.sleeps) == 0 and self.params.feedback_init != "oracle":
            self.develop()

    @torch.no_grad()
    def after_step(self, cache: ForwardCache) -> None:
        rate = self.params.feedback_lr
        if not rate:
            return
        net = self.net
        for l in range(1, net.num_layers):
            u = cache.pre[l] if net.biases is None else cache.pre[l] - net.biases[l]
            fb.track_on_activity(getattr(self, f"feedback_{l}"), cache.inputs[l], u, rate)
