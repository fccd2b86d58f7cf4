"""Weight mirror (Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, §4): feedback learned in a sleep phase
from the layer's own response to noise, so that it comes to mirror W.

The backward pass is feedback alignment's, δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}), with B_l of W_l's shape (the
transpose of Akrout et al.'s feedback). Every `sleep_every` training steps the forward weights stay fixed and
each B_l (layers 2..L) takes `sleep_steps` mirror steps, the linear mirror mode: zero-mean, unit-variance noise
X (`sleep_noise_batch` rows) at the layer's input, the layer's response Y = X W_lᵀ, and

    B_l ← B_l + η_B · Yᵀ X / n − λ_B · B_l        (η_B `mirror_rate`, λ_B `mirror_decay`, n the noise rows)

a Hebbian product of the noise and its response, with decay. Since E[Yᵀ X / n] = W_l, B_l settles at
(η_B/λ_B) W_l (the defaults set η_B = λ_B, so B_l → W_l), each sleep mixing in ~λ_B of the new estimate.
The first sleep, before the first training step, takes `development_steps` mirror steps, so that training
starts with B_l ≈ W_l: started from random B (fa's), the backward pass is fa's until the mirror catches up,
and on Fashion-MNIST that phase exploded at every step size tried (docs/RF_CORE.md).
This reuses the two-phase RF rule's sleep machinery (rf_core/feedback.py: the white noise and the layer as a
probe y ↦ W y, the only way the sleep sees W). B_l starts random, drawn as fa's is (uniform on
±feedback_scale/√fan_in); the
angle between B_l and W_l is reported every epoch. (Akrout et al.'s mirror mode also runs the noise through
the network's nonlinearity; the linear mode built here drives each layer with its own noise.)

What a neuron would not have: nothing of W is read; the sleep needs noise injected at each layer's input
and a Hebbian synapse at the feedback connection that sees both the noise and the layer's response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rf_core import feedback as fb
from rf_core.model import MLP
from rf_core.params import Problem, at_least_one, positive
from rf_core.rules._b_feedback import FeedbackScaleParams, LearnedBFeedbackRule
from rf_core.rules.base import register


@dataclass(frozen=True)
class WeightMirrorParams(FeedbackScaleParams):
    # Defaults chosen on validation accuracy (Fashion-MNIST, seeds 10–12; docs/RF_CORE.md): B must track W within
    # tens of steps (a sleep every 10 steps let W's top layer run ahead of its mirror, and training exploded at
    # every λ tried), and the fastest-tracking, noisiest mirror (32 rows, 0.1) scored highest and costs least.
    development_steps: int = 300  # mirror steps of the first sleep, before the first training step (0: as any)
    sleep_every: int = 1  # training steps between sleeps (each before the step it precedes)
    sleep_steps: int = 1  # mirror steps per sleep
    sleep_noise_batch: int = 32  # noise rows per mirror step
    mirror_rate: float = 0.1  # η_B
    mirror_decay: float = 0.1  # λ_B: B settles at (η_B/λ_B)·W; in (0, 1)

    def problems(self) -> list[Problem]:
        out = super().problems() + at_least_one(self, "sleep_every", "sleep_steps", "sleep_noise_batch")
        if self.development_steps < 0:
            out.append(("development_steps", "must be >= 0"))
        out += positive(self, "mirror_rate")
        if not 0 < self.mirror_decay < 1:
            out.append(("mirror_decay", "must be in (0, 1)"))
        return out


@register
class WeightMirror(LearnedBFeedbackRule[WeightMirrorParams]):
    """δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}); every sleep_every steps (the first: development_steps of them), mirror
    steps B_l ← B_l + η_B·Yᵀ X/n − λ_B·B_l with noise X at the layer's input and Y = X W_lᵀ its response."""

    name = "weight_mirror"
    summary = "weight mirror: feedback learned in sleeps from the layer's response to noise, mirroring W"
    Params = WeightMirrorParams
    default_lr = 0.03  # chosen on validation accuracy; at 0.1 it diverged with every mirror setting tried

    sleeps: Tensor

    def __init__(self, model: MLP, params: WeightMirrorParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        self.register_buffer("sleeps", torch.zeros((), dtype=torch.long))

    @classmethod
    def describe(cls, params: WeightMirrorParams) -> dict[str, str]:
        return {
            "update": "gradient_style",
            "update_detail": "gradient-style step through the feedback",
            "feedback": "weight_mirror",
            "feedback_detail": (
                f"linear mirror mode: every {params.sleep_every} steps, {params.sleep_steps} step(s) of "
                f"B += {params.mirror_rate}·YᵀX/n − {params.mirror_decay}·B on {params.sleep_noise_batch} "
                "noise rows"
            ),
        }

    def before_step(self) -> None:
        if int(self.steps_done) % self.params.sleep_every == 0:
            self.sleep()

    @torch.no_grad()
    def sleep(self) -> None:
        p = self.params
        steps = p.development_steps if int(self.sleeps) == 0 and p.development_steps else p.sleep_steps
        for l, b in self.feedback_matrices().items():
            probe = fb.ForwardProbe(self.net.weights[l])
            for _ in range(steps):
                x = fb.white_noise(probe, p.sleep_noise_batch, self.generator)
                mirror_step(b, x, probe(x), p.mirror_rate, p.mirror_decay)
        self.sleeps += 1

    def run_report(self) -> dict[str, Any]:
        return {"sleeps": int(self.sleeps)}


def mirror_step(feedback: Tensor, noise: Tensor, response: Tensor, rate: float, decay: float) -> None:
    """In place: B ← (1 − λ_B)·B + η_B·Yᵀ X / n for noise X (n × fan_in) and the layer's response Y (n × fan_out)."""
    feedback.mul_(1.0 - decay).addmm_(response.T, noise, alpha=rate / noise.shape[0])
