"""The Reciprocal Feedback update (paper §4), written once for every rule that carries an error down through
feedback matrices F_l ≈ W_l⁺ (rf_two_phase, rf_parallel, pseudobackprop; bp_joint passes Wᵀ instead).

Notation (paper §4): a_l = W_l h_{l−1}, h_l = σ(a_l), h_0 = x; the last layer is linear, and the output
displacement is e = softmax(a_L) − onehot(y) per sample (the cross-entropy error; the paper's §4 writes e for
h_L − h_L* and trains with cross-entropy in §5). Every form carries displacements down the same way up to
the gate, Δh_{l−1} = F_l Δa_l, and they differ in how Δa_{l−1} follows from Δh_{l−1} and in the layer step.
The step is W_l ← W_l − λ ΔW_l.

`update: paper` — §4's Newton (Hildebrandt–Graves / Ben-Israel) step, as derived:
    Δa_{l−1} = D_σ⁺(a_{l−1}) Δh_{l−1}                  (divide by σ'(a_{l−1}); no clamp)
    ΔW_l     = mean_b  Δa_l h_{l−1}ᵀ / ‖h_{l−1}‖²     (each sample's minimum-norm change of its own a_l)
  With exact feedback (W_l F_l = I, full-row-rank W_l) and one sample, the step of any single layer moves the
  network's output by exactly −λ e to first order: the deep reciprocal property of §4.2, pinned in float64 by
  tests/rf_core/test_rules_math.py. σ must be invertible: leaky ReLU and leaky softplus with a slope > 0,
  and tanh, are (config.py refuses slope 0).

`update: paper_as_printed` — §4.2's formula and A.6's pseudocode taken literally: ΔW_l = mean_b Δh_l a_{l−1}ᵀ /
  ‖a_{l−1}‖² (the pre-activation a_{l−1} of the layer below in place of its output h_{l−1}, a_0 = x, and the
  displacement of h_l without D_σ⁺(a_l)). It is not the Newton step: on an untrained 64-400-200-100-50-10
  net one hidden layer's step alone moves the output by 0.35–26 × ‖e‖ at 23–83° from −e, the output layer's by
  0.56 × ‖e‖ (docs/RF_CORE.md). Kept to reproduce the paper as written.

`update: gated_joint` — an engineered update, not the paper's (docs/RF_STABILITY.md for why each part):
    Δa_{l−1} = Δh_{l−1} ⊙ σ'(a_{l−1})                  ("gated": multiply by σ', as backprop does)
    ΔW_l     = s_l ΔA_lᵀ (H Hᵀ + ρ I)⁻¹ H              (one ridge-regularised least-squares step for the batch)
  with H the batch's layer inputs, ρ = joint_ridge × mean diag(H Hᵀ) + norm_eps, and per-layer shares
  s_l = hidden_step_scale / L for hidden layers and 1/L for the output layer (`layer_step_scale:
  inverse_depth`; `uniform` drops the 1/L). The joint solve is batch-global and a closed-form inverse (the
  ledger says so). Multiplying by σ' where §4.2 divides makes the step no longer a Newton step: on the same
  untrained net one hidden layer's step alone (shares included) moves the output by 0.19–1.04 × ‖e‖ at 27–45°
  from −e (docs/RF_CORE.md); hidden_step_scale was set by hand, on validation accuracy, to make up for it.

Only layers 2..L carry a feedback matrix: Δh_0, the displacement of the input, is never used.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rf_core.model import MLP, ForwardCache
from rf_core.params import Problem, RuleParams, positive
from rf_core.rules.base import LayerUpdate

Tensor = torch.Tensor

UPDATES = ("gated_joint", "paper", "paper_as_printed")
LAYER_STEP_SCALES = ("uniform", "inverse_depth")
JOINT_STEP_DEFAULTS: dict[str, Any] = {
    "hidden_step_scale": 10.0,
    "joint_ridge": 0.1,
    "norm_eps": 1.0,
    "layer_step_scale": "inverse_depth",
}


@dataclass(frozen=True)
class JointStepParams(RuleParams):
    """The joint least-squares layer step's knobs (None: the default in JOINT_STEP_DEFAULTS)."""

    hidden_step_scale: float | None = None  # hidden layers' share × this (10: docs/RF_STABILITY.md §5)
    joint_ridge: float | None = None  # ρ relative to the mean diagonal of H Hᵀ
    norm_eps: float | None = None  # added to ρ, keeps the solve finite for tiny inputs
    layer_step_scale: str | None = None  # inverse_depth: each of L layers takes 1/L of the error; uniform: all of it

    choices: ClassVar[dict[str, tuple[str, ...]]] = {"layer_step_scale": LAYER_STEP_SCALES}

    def problems(self) -> list[Problem]:
        out = super().problems() + positive(self, "hidden_step_scale")
        out += [(n, "must be >= 0") for n in ("joint_ridge", "norm_eps") if (getattr(self, n) or 0) < 0]
        return out

    def resolved(self) -> JointStepParams:
        fill = {k: v for k, v in JOINT_STEP_DEFAULTS.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fill) if fill else self


@dataclass(frozen=True)
class RFUpdateParams(JointStepParams):
    """Which update a Reciprocal Feedback rule takes (module docstring); the joint-step knobs apply to gated_joint."""

    update: str = "gated_joint"

    choices: ClassVar[dict[str, tuple[str, ...]]] = {"update": UPDATES, "layer_step_scale": LAYER_STEP_SCALES}

    def problems(self) -> list[Problem]:
        out = super().problems()
        if self.update != "gated_joint":
            for name in JOINT_STEP_DEFAULTS:
                if getattr(self, name) is not None:
                    out.append((name, f"read only by update gated_joint; update {self.update} fixes the step"))
        return out

    def resolved(self) -> RFUpdateParams:
        return super().resolved() if self.update == "gated_joint" else self  # type: ignore[return-value]


def describe_update(params: RFUpdateParams) -> str:
    """The update's name with what it is, for `rfsweep rules`, result labels and MLflow tags."""
    return {
        "gated_joint": "gated_joint (engineered, not the paper's: ×σ' backward, ridge least-squares step over "
        "the batch, hidden layers' share ×hidden_step_scale)",
        "paper": "paper (§4 Newton step: ÷σ' backward, per-sample minimum-norm step)",
        "paper_as_printed": "paper_as_printed (§4.2 formula as printed: input a_{l-1}, no D_σ⁺(a_l); "
        "not a Newton step)",
    }[params.update]


def reciprocal_feedback_directions(
    cache: ForwardCache, output_error: Tensor, feedback: dict[int, Tensor], net: MLP, params: RFUpdateParams
) -> list[LayerUpdate]:
    if params.update == "gated_joint":
        return gated_joint_directions(cache, output_error, feedback, net, params)
    return _newton_directions(cache, output_error, feedback, net, as_printed=params.update == "paper_as_printed")


def _newton_directions(
    cache: ForwardCache, output_error: Tensor, feedback: dict[int, Tensor], net: MLP, *, as_printed: bool
) -> list[LayerUpdate]:
    """`paper` and `paper_as_printed` (module docstring): per-sample minimum-norm steps, D_σ⁺ on the way down."""
    batch = output_error.shape[0]
    bias_input = 1.0 if net.biases is not None else 0.0  # a bias is the weight of a constant input 1
    out: list[LayerUpdate] = [None] * net.num_layers  # type: ignore[list-item]
    d_pre = d_h = output_error  # Δa_L = Δh_L = e: the last layer is linear
    for l in range(net.num_layers - 1, -1, -1):
        if as_printed:
            moved, layer_input = d_h, (cache.inputs[0] if l == 0 else cache.pre[l - 1])
        else:
            moved, layer_input = d_pre, cache.inputs[l]
        moved = moved / (batch * (layer_input.square().sum(1, keepdim=True) + bias_input))
        out[l] = (moved, layer_input, moved.sum(0) if net.biases is not None else None)
        if l > 0:
            d_h = d_pre @ feedback[l].T
            d_pre = d_h / net.activation.derivative(cache.pre[l - 1])
    return out


def gated_joint_directions(
    cache: ForwardCache, output_error: Tensor, feedback: dict[int, Tensor], net: MLP, params: JointStepParams
) -> list[LayerUpdate]:
    """`gated_joint` (module docstring), with `feedback[l]` carrying Δa_l down (W_l⁺ for RF, W_lᵀ for bp_joint)."""
    knobs = params.resolved()
    assert knobs.hidden_step_scale is not None and knobs.joint_ridge is not None and knobs.norm_eps is not None
    num_layers = net.num_layers
    batch = output_error.shape[0]
    share = 1.0 / num_layers if knobs.layer_step_scale == "inverse_depth" else 1.0
    norm_offset = knobs.norm_eps + (1.0 if net.biases is not None else 0.0)
    shares = [share * knobs.hidden_step_scale] * (num_layers - 1) + [share]
    # Solve each layer's step on its cheaper side: the B × B batch Gram (B ≤ width, the paper's batch 32)
    # or the width × width feature Gram (large batches); the step is the same either way.
    feature_side = [l for l, h in enumerate(cache.inputs) if _feature_side_is_cheaper(batch, h.shape[1], net)]
    batch_side = [l for l in range(num_layers) if l not in feature_side]
    ridge = knobs.joint_ridge
    step_weights = _joint_step_weights(cache, ridge, norm_offset, shares, batch_side)
    solved_inputs = {l: _joint_input_weights(cache.inputs[l], ridge, norm_offset, shares[l]) for l in feature_side}
    out: list[LayerUpdate] = [None] * num_layers  # type: ignore[list-item]
    d_pre = output_error  # Δa_L
    for l in range(num_layers - 1, -1, -1):
        if l in solved_inputs:
            moved, layer_input = d_pre, solved_inputs[l]  # ΔW_l = Δa_lᵀ H (HᵀH + ρI)⁻¹ s_l
        else:
            moved, layer_input = step_weights[l] @ d_pre, cache.inputs[l]  # the share is folded into the weights
        out[l] = (moved, layer_input, moved.sum(0) if net.biases is not None else None)  # ΔW_l = movedᵀ input
        if l > 0:
            d_pre = net.activation.gate(d_pre @ feedback[l].T, cache.pre[l - 1])
    return out


def _feature_side_is_cheaper(batch: int, width: int, net: MLP) -> bool:
    """Solving with the width × width Gram HᵀH costs ~B·n² + n³ against ~B²·n + B³ for the batch Gram HHᵀ.

    Kept to layers without a bias: there the bias direction needs the batch-side inverse."""
    return batch > width and net.biases is None


def _joint_step_weights(
    cache: ForwardCache, ridge: float, norm_offset: float, shares: list[float], layers: list[int]
) -> dict[int, Tensor]:
    """s_l (H Hᵀ + ρI)⁻¹ for each of `layers`, all in one batched Cholesky solve (measured: faster at batch
    32 than a `cholesky_solve` per layer).

    The minimum-norm ΔW that moves every sample's pre-activation by its own displacement at once is
    ΔW = ΔAᵀ (H Hᵀ)⁻¹ H. The per-sample mean instead moves sample c by Σ_b Δa_b (h_b·h_c)/(B‖h_b‖²):
    with the strongly correlated inputs of ReLU layers, the batch's common direction gets nearly all of
    the step and each sample's own part a 1/B share (docs/RF_STABILITY.md §1).
    """
    if not layers:
        return {}
    first = cache.inputs[0]
    grams = first.new_empty(len(layers), first.shape[0], first.shape[0])
    for gram, l in zip(grams, layers, strict=True):
        h = cache.inputs[l]
        torch.mm(h, h.T, out=gram)  # written in place: no stack copy (this function is mostly op overhead)
    diagonals = grams.diagonal(dim1=1, dim2=2)
    diagonals.add_(diagonals.mean(1, keepdim=True).mul_(ridge).add_(norm_offset))
    # s·(G + ρI)⁻¹ = (G/s + ρI/s)⁻¹: dividing before the factorisation folds the share in for free.
    grams.mul_(_reciprocal_shares(tuple(shares[l] for l in layers), grams.dtype, grams.device))
    chol, info = torch.linalg.cholesky_ex(grams)
    if info.any():  # only non-finite activations make a ridge-regularised Gram indefinite
        return {
            l: torch.full_like(g, float("nan")) for l, g in zip(layers, grams, strict=True)
        }  # NaN directions: the loop ends the run as ResultStatus.DIVERGED
    return dict(zip(layers, torch.cholesky_inverse(chol).unbind(0), strict=True))


def _joint_input_weights(h: Tensor, ridge: float, norm_offset: float, share: float) -> Tensor:
    """H (HᵀH + ρI)⁻¹ s: the joint step's input side, equal to s Hᵀ(HHᵀ + ρI)⁻¹ transposed (the push-through
    identity), with the same ρ: joint_ridge × the mean diagonal of HHᵀ (= trace(HᵀH)/B) plus the offset."""
    gram = h.T @ h
    diagonal = gram.diagonal()
    diagonal.add_(diagonal.sum() * (ridge / h.shape[0]) + norm_offset)
    chol, info = torch.linalg.cholesky_ex(gram.div_(share))
    if info.any():
        return torch.full_like(h, float("nan"))
    return torch.cholesky_solve(h.T, chol).T


@functools.lru_cache(maxsize=64)
def _reciprocal_shares(shares: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor([1.0 / s for s in shares], dtype=dtype, device=device)[:, None, None]
