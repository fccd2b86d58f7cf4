"""Sign-symmetry (Liao, Leibo & Poggio 2016; Xiao, Chen, Liao & Poggio 2018): the error travels down through
feedback that shares W's signs but not its magnitudes.

As backprop, with W_l replaced in the backward pass by B_l: δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}), and the step
D_l = δ_lᵀ h_{l−1}. B_l is formed from the current sign(W_l) at every step, in one of three variants
(Liao et al. 2016, §2):

- `usf` (uniform sign-concordant feedback): B_l = c_l · sign(W_l).
- `brsf` (batchwise random magnitude): B_l = |R_l| ⊙ sign(W_l), R_l redrawn for every batch.
- `frsf` (fixed random magnitude): the same with R_l drawn once, at the start, and kept (a buffer).

The scale c_l (`magnitude`): `init` (default) sets c_l = init_gain / (2√fan_in), the mean |entry| of W_l's
initialisation U(±init_gain/√fan_in), a constant of the layer's shape; `unit` is Liao et al.'s c_l = 1. Here,
without the batch normalisation Liao et al. train with, unit entries are 5.5–16× W's initial mean |entry| in
the layers whose feedback is used (2..5) of the paper's 784-400-200-100-50-10 network, so the error grows by
that factor at every layer it crosses (on one batch of the untrained network the first layer's direction is
4,400× bp's, at `init` 0.5×); `init` keeps B's magnitudes at W's initial scale. R_l ~ U(±2c_l), so
E|B_l| = c_l in every variant.

What a neuron would not have: the sign of every forward weight, read by the backward pass at every step
(`sign_transport` in the ledger); no magnitude of W is read (Xiao et al. 2018 discuss why that is still a
transport of information).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, RuleParams
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through, register

VARIANTS = ("usf", "brsf", "frsf")
MAGNITUDES = ("init", "unit")


@dataclass(frozen=True)
class SignSymmetryParams(RuleParams):
    variant: str = "usf"  # usf: c·sign(W) | brsf: |R|⊙sign(W), R redrawn every batch | frsf: R fixed
    magnitude: str = "init"  # c = init_gain/(2√fan_in), W's initial mean |entry| | unit: c = 1 (Liao et al.)

    choices: ClassVar[dict[str, tuple[str, ...]]] = {"variant": VARIANTS, "magnitude": MAGNITUDES}


@register
class SignSymmetry(LearningRule[SignSymmetryParams]):
    """δ_{l−1} = (δ_l B_l) ⊙ σ'(a_{l−1}) with B_l = c_l·sign(W_l) (usf) or |R_l| ⊙ sign(W_l) (brsf: R_l redrawn
    every batch; frsf: fixed), R_l ~ U(±2c_l); D_l = δ_lᵀ h_{l−1} (module docstring)."""

    name = "sign_symmetry"
    summary = "sign-symmetry: feedback with W's signs and fixed, random or batchwise magnitudes (variant)"
    Params = SignSymmetryParams
    default_lr = 0.03  # chosen on validation accuracy, Fashion-MNIST seeds 10–12 (docs/RF_CORE.md)

    def __init__(self, model: MLP, params: SignSymmetryParams, generator: torch.Generator) -> None:
        super().__init__(model, params, generator)
        self.scales = [self._scale(w, model.init_gain) for w in model.weights]
        if self.params.variant == "frsf":
            for l in range(1, model.num_layers):
                self.register_buffer(f"frsf_magnitude_{l}", self._draw_magnitude(l))
        self._last_feedback: dict[int, Tensor] = {}

    def _scale(self, w: Tensor, init_gain: float) -> float:
        return 1.0 if self.params.magnitude == "unit" else init_gain / (2 * math.sqrt(w.shape[1]))

    def _draw_magnitude(self, l: int, generator: torch.Generator | None = None) -> Tensor:
        """|R_l| with R_l ~ U(±2c_l) in W_l's shape, drawn on a CPU generator (device-independent draws): the
        run's, unless another is given."""
        w = self.net.weights[l]
        r = torch.rand(w.shape, generator=generator or self.generator, dtype=w.dtype) * (2 * self.scales[l])
        return r.to(w.device)

    @classmethod
    def ledger(cls, params: SignSymmetryParams) -> Ledger:
        return Ledger(
            weight_transport=False,
            feedback_from_weights=False,
            closed_form_inverse=False,
            batch_global=False,
            sign_transport=True,
        )

    @classmethod
    def describe(cls, params: SignSymmetryParams) -> dict[str, str]:
        scale = "c = 1 (Liao et al.)" if params.magnitude == "unit" else "c = W's initial mean |entry|"
        detail = {
            "usf": f"c·sign(W) at every step, {scale}",
            "brsf": f"|R|⊙sign(W), R ~ U(±2c) redrawn every batch, {scale}",
            "frsf": f"|R|⊙sign(W), R ~ U(±2c) fixed at the start, {scale}",
        }[params.variant]
        return {
            "update": "gradient_style",
            "update_detail": "gradient-style step through the feedback",
            "feedback": f"sign_{params.variant}" + ("_unit" if params.magnitude == "unit" else ""),
            "feedback_detail": f"{params.variant}: {detail} (reads the sign of W)",
        }

    def _feedback(self, l: int, generator: torch.Generator | None = None) -> Tensor:
        signs = torch.sign(self.net.weights[l])
        if self.params.variant == "usf":
            return signs.mul_(self.scales[l])
        if self.params.variant == "frsf":
            return signs.mul_(getattr(self, f"frsf_magnitude_{l}"))
        return signs.mul_(self._draw_magnitude(l, generator))

    def feedback_matrices(self) -> dict[int, Tensor]:
        """The B_l the last step used (brsf: that batch's draw); before any step, B_l formed now (brsf: from a
        generator of its own, so that looking never moves the run's draws)."""
        if self._last_feedback:
            return dict(self._last_feedback)
        looking = torch.Generator().manual_seed(int(self.steps_done))
        return {l: self._feedback(l, looking) for l in range(1, self.net.num_layers)}

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        self._last_feedback = {l: self._feedback(l) for l in range(1, self.net.num_layers)}
        return backprop_through(cache, output_error, [None, *self._last_feedback.values()], self.net)
