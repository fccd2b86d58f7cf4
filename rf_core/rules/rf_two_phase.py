"""Two-phase Reciprocal Feedback (paper §3–4, A.6 Algorithm 1).

Wake: the update of rules/_rf.py with the feedback matrices F_l held fixed. Sleep: every `pinv_every`
steps the forward weights stay fixed and each F_l (layers 2..L) is re-learned.

`feedback: learned` (default): from white noise at the layer's input by the §3.1 rule, warm-started from
the previous F (rf_core/feedback.py): `sleep_steps` LMS steps per sleep, repeated up to `sleep_max_steps`
while the round trip is above tolerance; F starts random and the first sleep runs `development_steps`.
No step reads W. This replaces the paper's Recirculation sleep, whose Ben-Israel–Cohen iteration cannot
reach W⁺ for a rectangular W from a start not built from Wᵀ (rf_core/feedback.py).

`feedback: oracle_*`: F computed from W itself at every sleep — `oracle_cholesky` Wᵀ(WWᵀ)⁻¹, `oracle_svd`
torch.linalg.pinv, `oracle_newton_schulz` (Ben-Israel–Cohen from a Wᵀ-built start), `oracle_recirculation`
(the paper's A.4 sleep, started from Wᵀ). Weight transport and closed-form inverses: the ledger says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rf_core import feedback as fb
from rf_core.params import Ledger, Problem, at_least_one
from rf_core.rules._rf import describe_update
from rf_core.rules._rf_rule import ReciprocalFeedbackRule, SleepParams
from rf_core.rules.base import register

FEEDBACK_SOURCES = ("learned", *fb.ORACLE_METHODS)


@dataclass(frozen=True)
class TwoPhaseParams(SleepParams):
    feedback: str = "learned"  # learned (from noise, local) | oracle_* (closed form from W: FEEDBACK_SOURCES)
    pinv_every: int = 100  # training steps between sleeps (the paper's A.1: 20)
    sleep_steps: int = 5  # learned: LMS steps per sleep round
    sleep_max_steps: int = 100  # learned: rounds continue while the round trip is above tolerance, up to this;
    # oracle_recirculation: its number of noise-driven steps

    choices: ClassVar[dict[str, tuple[str, ...]]] = {**SleepParams.choices, "feedback": FEEDBACK_SOURCES}

    def problems(self) -> list[Problem]:
        out = super().problems() + at_least_one(self, "pinv_every", "sleep_steps", "sleep_max_steps")
        if self.sleep_max_steps < self.sleep_steps:
            out.append(("sleep_max_steps", "must be >= sleep_steps"))
        return out


@register
class TwoPhaseReciprocalFeedback(ReciprocalFeedbackRule[TwoPhaseParams]):
    name = "rf_two_phase"
    summary = "Reciprocal Feedback, two phases: feedback re-learned as W⁺ in a sleep every pinv_every steps"
    Params = TwoPhaseParams
    default_lr = 1.0

    @classmethod
    def ledger(cls, params: TwoPhaseParams) -> Ledger:
        oracle = params.feedback != "learned"
        return cls.update_ledger(params, feedback_from_weights=oracle or params.fallback == "oracle", oracle=oracle)

    @classmethod
    def describe(cls, params: TwoPhaseParams) -> dict[str, str]:
        if params.feedback == "learned":
            detail = (
                f"learned from white noise by the §3.1 rule (LMS) every {params.pinv_every} steps, "
                f"{params.sleep_steps}-{params.sleep_max_steps} steps per sleep"
            )
        else:
            detail = f"{params.feedback}: computed from W every {params.pinv_every} steps (weight transport)"
        return {
            "update": params.update,
            "update_detail": describe_update(params),
            "feedback": params.feedback,
            "feedback_detail": detail,
        }

    def before_step(self) -> None:
        if int(self.steps_done) % self.params.pinv_every == 0:
            self.sleep()

    @torch.no_grad()
    def sleep(self) -> None:
        p = self.params
        if p.feedback != "learned":
            self._oracle_sleep()
        elif int(self.sleeps) == 0 and p.development_steps:
            self.develop()
        else:
            self.record_sleep(
                {
                    l: self.sleep_layer(l, probe, round_steps=p.sleep_steps, max_steps=p.sleep_max_steps)
                    for l, probe in self.probes().items()
                }
            )

    def _oracle_sleep(self) -> None:
        p = self.params
        errors = {}
        for l, probe in self.probes().items():
            f = getattr(self, f"feedback_{l}")
            result = fb.oracle_feedback(
                p.feedback,
                probe,
                None if int(self.sleeps) == 0 else f,
                self.generator,
                steps=p.sleep_max_steps,
                noise_batch=p.sleep_noise_batch,
            )
            f.copy_(result.matrix)
            # judged like a learned sleep: an oracle that did not converge fails the round trip
            errors[l] = fb.roundtrip_error(probe, f, p.sleep_noise_batch, self.generator)
        self.record_sleep(errors)
