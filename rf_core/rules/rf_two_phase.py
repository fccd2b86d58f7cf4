"""Two-phase Reciprocal Feedback (paper §3–4, A.6 Algorithm 1).

Wake: the update of rules/_rf.py with feedback matrices F_l held fixed. Sleep: every `pinv_every` steps
(paper: 20) the forward weights stay fixed and each F_l (layers 2..L) is re-learned as W_l⁺ by the
chosen pseudoinverse learner (rf_core/pinv.py): Wᵀ(WWᵀ)⁻¹ by Cholesky (default, cheapest at these
sizes, docs/RF_CORE.md), warm-started Newton–Schulz, exact SVD, or the paper's noise-driven
Recirculation rule.
"""

import torch

from rf_core import pinv
from rf_core.config import RF_FIELDS, SLEEP_FIELDS
from rf_core.rules._rf import reciprocal_feedback_directions
from rf_core.rules.base import LearningRule, register

# The sleep phase's pseudoinverse learners by `pinv_method` name: (W, previous feedback or None, config,
# generator) -> PinvResult.
SLEEP_LEARNERS = {
    "cholesky": lambda w, previous, cfg, generator: pinv.cholesky_pinv(w),
    "exact": lambda w, previous, cfg, generator: pinv.exact_pinv(w),
    "newton_schulz": lambda w, previous, cfg, generator: pinv.newton_schulz(
        w, previous, tol=cfg.pinv_tol, max_iter=cfg.pinv_max_iter),
    "recirculation": lambda w, previous, cfg, generator: pinv.recirculation(
        w, previous, damping=cfg.sleep_damping, steps=cfg.sleep_steps, noise_batch=cfg.sleep_noise_batch,
        generator=generator),
}


@register
class TwoPhaseReciprocalFeedback(LearningRule):
    name = "rf_two_phase"
    default_lr = 1.0
    own_fields = RF_FIELDS | SLEEP_FIELDS

    def __init__(self, model, config, generator):
        super().__init__(model, config, generator)
        for l in range(1, model.num_layers):
            self.register_buffer(f"feedback_{l}", torch.zeros_like(model.weights[l].T))
        self.register_buffer("sleeps", torch.zeros((), dtype=torch.long))
        self.register_buffer("sleep_fallbacks", torch.zeros((), dtype=torch.long))
        self.register_buffer("sleep_iterations", torch.zeros((), dtype=torch.long))

    def feedback_matrices(self):
        return {l: getattr(self, f"feedback_{l}") for l in range(1, self.net.num_layers)}

    def before_step(self):
        if int(self.steps_done) % self.config.pinv_every == 0:
            self.sleep()

    @torch.no_grad()
    def sleep(self) -> None:
        cfg = self.config
        first = int(self.sleeps) == 0
        for l in range(1, self.net.num_layers):
            w = self.net.weights[l]
            previous = None if first else getattr(self, f"feedback_{l}")
            if cfg.pinv_damping > 0:
                result = pinv.damped_pinv(w, cfg.pinv_damping)
            else:
                result = SLEEP_LEARNERS[cfg.pinv_method](w, previous, cfg, self.generator)
            if not result.converged:
                # A learner that failed must not hand back garbage: fall back to the exact pseudoinverse.
                result = pinv.exact_pinv(w)
                self.sleep_fallbacks += 1
            self.sleep_iterations += result.iterations
            getattr(self, f"feedback_{l}").copy_(result.matrix)
        self.sleeps += 1

    def factored_directions(self, cache, output_error):
        return reciprocal_feedback_directions(cache, output_error, self.feedback_matrices(), self.net, self.config)
