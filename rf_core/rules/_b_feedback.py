"""What the rules that carry the error down through a feedback matrix B_l of W_l's shape share (fa, and the learned
B of kolen_pollack and weight_mirror; dfa's direct matrices take the same scale parameter): B_l's random start
(`FeedbackScaleParams`, `random_feedback`), the backward pass δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1})
(rules/base.py `backprop_through`), and, for rules whose B is meant to come to W, the angle ∠(B_l, W_l)
reported every epoch (rules/_feedback_angle.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, Problem, RuleParams, positive
from rf_core.rules._feedback_angle import feedback_angles
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through


@dataclass(frozen=True)
class FeedbackScaleParams(RuleParams):
    # B ~ U(±feedback_scale/√fan_in); W's own init is U(±init_gain/√fan_in), init_gain 2.45: at 1, B's entries are
    # 2.45× smaller than W's initial ones
    feedback_scale: float = 1.0

    def problems(self) -> list[Problem]:
        return super().problems() + positive(self, "feedback_scale")


FP = TypeVar("FP", bound=FeedbackScaleParams)


def random_feedback(w: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """B of W's shape, uniform on ±scale/√fan_in (W's own init is ±init_gain/√fan_in), drawn on the CPU generator."""
    bound = scale / math.sqrt(w.shape[1])
    return ((torch.rand(w.shape, generator=generator, dtype=w.dtype) * 2 - 1) * bound).to(w.device)


class LearnedBFeedbackRule(LearningRule[FP]):
    """Buffers `feedback_{l}` (layers l = 1..L−1, 0-based) that start random and are moved by the subclass;
    nothing of W is read (the ledger's entries are all false unless a subclass says otherwise)."""

    def __init__(self, model: MLP, params: FP, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        for l in range(1, model.num_layers):
            self.register_buffer(
                f"feedback_{l}", random_feedback(model.weights[l], self.params.feedback_scale, generator)
            )

    @classmethod
    def ledger(cls, params: FP) -> Ledger:
        return Ledger(
            weight_transport=False, feedback_from_weights=False, closed_form_inverse=False, batch_global=False
        )

    def feedback_matrices(self) -> dict[int, Tensor]:
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        return backprop_through(cache, output_error, [None, *self.feedback_matrices().values()], self.net)

    def epoch_report(self, diagnostics: bool = True) -> dict[str, float]:
        return feedback_angles(self.net, self.feedback_matrices())
