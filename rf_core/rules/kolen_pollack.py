"""Kolen–Pollack (Kolen & Pollack 1994; Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, §3): feedback that
comes to W because it receives the same updates and the same decay.

The backward pass is feedback alignment's, δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}), with B_l of W_l's shape (the
transpose of Akrout et al.'s feedback, so the formulas need no transposes). Each step moves both by the
same update D_l = δ_lᵀ h_{l−1}, under the same weight decay λ:

    W_l ← (1 − ηλ) W_l − η D_l,    B_l ← (1 − ηλ) B_l − η D_l,

so B_l − W_l ← (1 − ηλ)(B_l − W_l): the difference shrinks geometrically without B ever reading W. λ is the
run's `weight_decay` plus the rule's `kp_decay` (> 0, part of the rule's defaults: without decay B − W never
shrinks). B_l starts random, drawn as fa's is (uniform on ±feedback_scale/√fan_in). At the defaults the decay
is slow: on Fashion-MNIST B − W shrinks to ~0.36 of its start in 20 epochs and ∠(B, W) falls from ~86° to ~52°
(docs/RF_CORE.md); a larger kp_decay aligns B sooner and costs accuracy.

What a neuron would not have: B_l's update is W_l's own, D_l = δ_lᵀ h_{l−1} — the feedback synapse must see the
same pre- and post-synaptic signals as the forward one (Akrout et al. argue the signals are available at
both ends); no value of W is read. The angle between B_l and W_l is reported every epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rf_core.params import Problem
from rf_core.rules._b_feedback import FeedbackScaleParams, LearnedBFeedbackRule
from rf_core.rules.base import LayerUpdate, register


@dataclass(frozen=True)
class KolenPollackParams(FeedbackScaleParams):
    # λ added to the run's weight_decay for W and B alike (> 0: B − W shrinks by 1 − ηλ). With the default lr it
    # was chosen on validation (Fashion-MNIST, seeds 10–12): larger λ aligns B faster and costs accuracy
    # (docs/RF_CORE.md)
    kp_decay: float = 1e-3

    def problems(self) -> list[Problem]:
        out = super().problems()
        if not (math.isfinite(self.kp_decay) and 0 < self.kp_decay < 1):
            out.append(("kp_decay", "must be in (0, 1): at 0 B − W never shrinks"))
        return out


@register
class KolenPollack(LearnedBFeedbackRule[KolenPollackParams]):
    """δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}); W_l and B_l both ← (1 − ηλ)· − η δ_lᵀ h_{l−1}, λ = weight_decay + kp_decay
    (module docstring)."""

    name = "kolen_pollack"
    summary = "Kolen–Pollack: feedback given W's own updates and decay, so their difference decays"
    Params = KolenPollackParams
    default_lr = 0.03  # with kp_decay, chosen on validation accuracy (docs/RF_CORE.md)

    @classmethod
    def describe(cls, params: KolenPollackParams) -> dict[str, str]:
        return {
            "update": "gradient_style",
            "update_detail": "gradient-style step through the feedback",
            "feedback": "kolen_pollack",
            "feedback_detail": f"random at the start, then given W's own update and decay (kp_decay {params.kp_decay})",
        }

    def total_weight_decay(self, weight_decay: float) -> float:
        return weight_decay + self.params.kp_decay

    def after_update(self, updates: list[LayerUpdate], lr: float, decay: float) -> None:
        for l, b in self.feedback_matrices().items():
            errors, inputs, _ = updates[l]
            b.addmm_(errors.T, inputs, beta=decay, alpha=-lr)
