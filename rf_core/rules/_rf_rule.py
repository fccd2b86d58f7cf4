"""What every Reciprocal Feedback rule shares: feedback matrices F_l (buffers, layers 2..L), the noise-driven
sleep that learns them from activity (rf_core/feedback.py), the round-trip check after every sleep, and the
reports (per-epoch round-trip error per layer; run totals of sleeps, failures and oracle fallbacks).

A sleep *fails* when a layer's round-trip error ‖W F u − u‖/‖u‖ on fresh noise is above
`roundtrip_tolerance` after it. Failures are counted in `feedback_fallbacks` whether or not anything
replaces the feedback; only `fallback: oracle` (opt-in, weight transport) replaces it by the closed-form W⁺.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from rf_core import feedback as fb
from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, Problem, at_least_one, positive
from rf_core.rules._rf import RFUpdateParams, reciprocal_feedback_directions
from rf_core.rules.base import LayerUpdate, LearningRule

Tensor = torch.Tensor

FALLBACKS = ("none", "oracle")
POWER_ITERATIONS_AT_SLEEP_START = 4  # the activity's top eigenvalue, re-estimated before the first LMS step
DEVELOPMENT_ROUND = 25  # development checks its round trip every this many steps


@dataclass(frozen=True)
class SleepParams(RFUpdateParams):
    """How feedback is learned from white noise at each layer's input (rf_core/feedback.py)."""

    feedback_init: str = "random"  # where F starts: random (seeded, like W's init) or zero
    development_steps: int = 300  # noise-sleep steps before the first training step (0: none)
    sleep_noise_batch: int = 64  # noise samples per sleep step (and per round-trip check)
    sleep_rate: float = 1.0  # α: the LMS step as a fraction of 1/λ̂max(activity); stable below 2
    roundtrip_tolerance: float = 0.05  # a sleep that leaves ‖W F u − u‖/‖u‖ above this has failed
    fallback: str = "none"  # none: a failed sleep is counted and training goes on; oracle: F ← W⁺ (closed form)

    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        **RFUpdateParams.choices,
        "feedback_init": ("random", "zero"),
        "fallback": FALLBACKS,
    }

    def problems(self) -> list[Problem]:
        out = super().problems() + at_least_one(self, "sleep_noise_batch") + positive(self, "roundtrip_tolerance")
        if self.development_steps < 0:
            out.append(("development_steps", "must be >= 0"))
        if not 0 < self.sleep_rate < 2:
            out.append(("sleep_rate", "must be in (0, 2): larger steps diverge"))
        return out


SP = TypeVar("SP", bound=SleepParams)


class ReciprocalFeedbackRule(LearningRule[SP]):
    """Feedback buffers `feedback_{l}` for layers l = 1..L−1 (0-based: the matrix carrying Δa_{l+1} to Δh_l)."""

    # buffers (they travel in state_dict): run totals and the per-epoch probes' seed
    sleeps: Tensor
    sleep_steps_total: Tensor  # LMS steps, summed over layers
    feedback_fallbacks: Tensor
    feedback_oracle_replacements: Tensor
    sleep_roundtrip_sum: Tensor
    sleep_roundtrip_max: Tensor
    probe_seed: Tensor

    def __init__(self, model: MLP, params: SP, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        for l in range(1, model.num_layers):
            self.register_buffer(f"feedback_{l}", self._initial_feedback(model.weights[l], generator))
            direction = torch.randn(model.weights[l].shape[0], generator=generator, dtype=model.weights[l].dtype)
            self.register_buffer(f"activity_direction_{l}", (direction / direction.norm()).to(model.weights[l].device))
        self.register_buffer("sleeps", torch.zeros((), dtype=torch.long))
        self.register_buffer("sleep_steps_total", torch.zeros((), dtype=torch.long))
        self.register_buffer("feedback_fallbacks", torch.zeros((), dtype=torch.long))
        self.register_buffer("feedback_oracle_replacements", torch.zeros((), dtype=torch.long))
        self.register_buffer("sleep_roundtrip_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sleep_roundtrip_max", torch.zeros((), dtype=torch.float64))
        # Per-epoch round-trip probes draw from their own seeded stream, so reporting never moves training.
        self.register_buffer("probe_seed", torch.randint(0, 2**62, (), generator=generator))

    def _initial_feedback(self, w: Tensor, generator: torch.Generator) -> Tensor:
        """F's start, from W's shape alone (a layer knows how many synapses it has, not their weights)."""
        shape = (w.shape[1], w.shape[0])
        if self.params.feedback_init != "random":
            return torch.zeros(shape, dtype=w.dtype, device=w.device)
        bound = 1.0 / math.sqrt(w.shape[0])  # like W's own init, fan-in of F
        return ((torch.rand(shape, generator=generator, dtype=w.dtype) * 2 - 1) * bound).to(w.device)

    # ---- feedback ------------------------------------------------------------------------------------

    def feedback_matrices(self) -> dict[int, Tensor]:
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def probes(self) -> dict[int, fb.ForwardProbe]:
        return {l: fb.ForwardProbe(self.net.weights[l]) for l in range(1, self.net.num_layers)}

    def sleep_layer(self, l: int, probe: fb.ForwardProbe, *, round_steps: int, max_steps: int) -> float:
        """Layer l's F learned from noise (warm-started from its current value) in rounds of `round_steps` LMS
        steps until its round-trip error is within tolerance or `max_steps` ran; returns that error."""
        p = self.params
        f, direction = getattr(self, f"feedback_{l}"), getattr(self, f"activity_direction_{l}")
        u = probe(fb.white_noise(probe, p.sleep_noise_batch, self.generator))
        for _ in range(POWER_ITERATIONS_AT_SLEEP_START):
            fb.top_eigenvalue_step(u, direction)
        done = 0
        while True:
            fb.sleep_on_noise(
                probe,
                f,
                direction,
                steps=round_steps,
                noise_batch=p.sleep_noise_batch,
                rate=p.sleep_rate,
                generator=self.generator,
            )
            done += round_steps
            error = fb.roundtrip_error(probe, f, p.sleep_noise_batch, self.generator)
            if error <= p.roundtrip_tolerance or done + round_steps > max_steps:
                break
        self.sleep_steps_total += done
        return error

    def record_sleep(self, errors: dict[int, float]) -> None:
        """Count every layer whose round trip stayed above tolerance; replace it by W⁺ only if opted in."""
        probes = self.probes()
        for l, error in errors.items():
            self.sleep_roundtrip_sum += error
            self.sleep_roundtrip_max.clamp_(min=error)
            if not error <= self.params.roundtrip_tolerance:  # NaN fails too
                self.feedback_fallbacks += 1
                if self.params.fallback == "oracle":
                    replacement = fb.oracle_feedback(
                        "oracle_cholesky", probes[l], None, self.generator, steps=0, noise_batch=0
                    )
                    getattr(self, f"feedback_{l}").copy_(replacement.matrix)
                    self.feedback_oracle_replacements += 1
        self.sleeps += 1

    def develop(self) -> None:
        """The first sleep: every layer's F learned from noise from its initial value, up to development_steps."""
        p = self.params
        if p.development_steps:
            round_steps = min(DEVELOPMENT_ROUND, p.development_steps)
            self.record_sleep(
                {
                    l: self.sleep_layer(l, probe, round_steps=round_steps, max_steps=p.development_steps)
                    for l, probe in self.probes().items()
                }
            )

    # ---- the update ----------------------------------------------------------------------------------

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        return reciprocal_feedback_directions(cache, output_error, self.feedback_matrices(), self.net, self.params)

    # ---- reports -------------------------------------------------------------------------------------

    def epoch_report(self, diagnostics: bool = True) -> dict[str, float]:
        report = {"feedback_fallbacks": float(self.feedback_fallbacks)}  # run total so far: failed sleeps
        if diagnostics:
            generator = torch.Generator().manual_seed(int(self.probe_seed) + int(self.steps_done))
            report.update(
                {
                    f"feedback_roundtrip_error_layer{l + 1}": fb.roundtrip_error(
                        probe, getattr(self, f"feedback_{l}"), self.params.sleep_noise_batch, generator
                    )
                    for l, probe in self.probes().items()
                }
            )
        return report

    def run_report(self) -> dict[str, Any]:
        return {
            "sleeps": int(self.sleeps),
            "sleep_steps_total": int(self.sleep_steps_total),
            "feedback_fallbacks": int(self.feedback_fallbacks),
            "feedback_oracle_replacements": int(self.feedback_oracle_replacements),
            # each layer's round-trip error right after each sleep (before any fallback)
            "sleep_roundtrip_error_mean": float(self.sleep_roundtrip_sum)
            / max(1, int(self.sleeps) * len(self.probes())),
            "sleep_roundtrip_error_max": float(self.sleep_roundtrip_max),
        }

    @classmethod
    def update_ledger(cls, params: RFUpdateParams, *, feedback_from_weights: bool, oracle: bool) -> Ledger:
        joint = params.update == "gated_joint"
        return Ledger(
            weight_transport=False,
            feedback_from_weights=feedback_from_weights,
            closed_form_inverse=joint or oracle,
            batch_global=joint,
        )
