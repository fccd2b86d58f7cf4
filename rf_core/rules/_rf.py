"""The Reciprocal Feedback update (paper §4), written once for every rule that uses pseudoinverse feedback.

For a batch, with e = softmax(z_L) − onehot(y) per sample (the last layer is linear, so Δa_L = e):

    for l = L, …, 1:
        ΔW_l = s_l · mean_b[ Δa_l hᵀ_{l−1} / (‖h_{l−1}‖² + ε) ]          (minimum-norm change of a_l)
        Δh_{l−1} = F_l Δa_l                                             (F_l ≈ W_l⁺, the feedback matrix)
        Δa_{l−1} = Δh_{l−1} ⊙ σ'(a_{l−1})                               ("gated", default)
              or Δh_{l−1} ⊙ min(1/σ'(a_{l−1}), c)                       ("inverse": the paper's D_σ⁺, clamped)
    W_l ← W_l − λ ΔW_l

With one sample, ε = 0, s_l = 1 and λ = 1, a single linear layer's output moves by exactly −e: the
Newton (Hildebrandt–Graves / Ben-Israel) step of §4. Only layers 2..L carry a feedback matrix: Δh_0,
the displacement of the input, is never used, and W_1⁺ (400×784 for MNIST) would be most of the cost.

Choices the paper leaves open (its A.6 pseudocode is loose with indices), and why:
- `rf_backward` "gated" (default) passes a displacement through the nonlinearity by multiplying with σ',
  as backprop does, where §4.2's reciprocal B_l = W⁺ D_σ⁺ B_{l+1} divides by it ("inverse"). Both keep the
  pseudoinverse feedback and the Newton-like layer step; they differ in which units carry the displacement.
  Dividing asks the *inactive* units (σ' = slope) to move the most, pushing them across the kink; every
  knob tried left training accuracy stuck at ~0.84 on Fashion-MNIST (a linear classifier's level), while
  the gated form reaches 0.91 and 0.865 test in 20 epochs (docs/RF_STABILITY.md). The exact minimum-norm
  (W_l D_σ)⁺ computed per sample from W itself (an oracle, 10× the cost) peaked at 0.844.
- form "newton" (default) updates W_l with Δa_l, the displacement of its own pre-activation; form
  "paper" follows §4.2 literally, δW_l = (B_l e) h_{l−1}ᵀ/‖h_{l−1}‖², with B_l e the displacement of
  h_l (not divided by σ'). The propagated displacements are the same. "newton" is the default because
  it is the minimum-norm change the theorem asks for, and it measured at least as well (docs/RF_STABILITY.md).
- s_l = 1/L ("inverse_depth", default): every layer's step alone would move the output by the whole −λe,
  so L layers moving at once overshoot L-fold; each layer takes its share instead.
- c (`inv_slope_clamp`) bounds 1/σ': with leaky-ReLU slope 0.01 an inactive unit would amplify the
  displacement a hundredfold per layer, which is what made the direct implementation diverge.
- `rf_batch` "delta" drops the Newton normalisation: ΔW_l = s_l · mean_b Δa_l hᵀ_{l−1}, the local delta rule
  toward the propagated target (as in target propagation); λ then plays the part of an SGD learning rate.
- ε (`norm_eps`) keeps the step finite for a near-zero h_{l−1}; with a bias, the bias is the weight of a
  constant input 1, so the norm is ‖h‖² + 1.
"""

from __future__ import annotations

import functools

import torch

from rf_core.model import ForwardCache
from rf_core.rules.base import LayerUpdate

Tensor = torch.Tensor


def reciprocal_feedback_directions(
    cache: ForwardCache, output_error: Tensor, feedback: dict[int, Tensor], net, config
) -> list[LayerUpdate]:
    num_layers = net.num_layers
    batch = output_error.shape[0]
    share = 1.0 / num_layers if config.layer_step_scale == "inverse_depth" else 1.0
    paper_form = config.rf_form == "paper"
    norm_offset = config.norm_eps + (1.0 if net.biases is not None else 0.0)
    out: list[LayerUpdate] = [None] * num_layers  # type: ignore[list-item]

    joint = config.rf_batch == "joint" and batch > 1
    shares = [share * config.hidden_step_scale] * (num_layers - 1) + [share]
    if joint:
        # Solve each layer's joint step on its cheaper side: the B × B batch Gram (B ≤ width, the paper's
        # batch 32) or the width × width feature Gram (large batches); the step is the same either way.
        feature_side = [l for l, h in enumerate(cache.inputs) if _feature_side_is_cheaper(batch, h.shape[1], net)]
        batch_side = [l for l in range(num_layers) if l not in feature_side]
        step_weights = _joint_step_weights(cache, config, norm_offset, shares, batch_side)
        solved_inputs = {l: _joint_input_weights(cache.inputs[l], config, norm_offset, shares[l]) for l in feature_side}
    d_pre = output_error  # Δa_L
    d_h = output_error  # Δh_L (= Δa_L: the last layer is linear)
    for l in range(num_layers - 1, -1, -1):
        h = cache.inputs[l]
        layer_share = shares[l]
        moved = d_h if paper_form else d_pre
        if joint and l in solved_inputs:
            h = solved_inputs[l]  # ΔW_l = Δa_lᵀ H (HᵀH + ρI)⁻¹ s_l, the share folded into the solve
        elif joint:
            moved = step_weights[l] @ moved  # the layer's share is folded into its step weights
        elif config.rf_batch == "delta":
            moved = moved * (layer_share / batch)
        else:
            moved = moved * ((layer_share / batch) / (h.square().sum(1, keepdim=True) + norm_offset))
        out[l] = (moved, h, moved.sum(0) if net.biases is not None else None)  # ΔW_l = movedᵀ h
        if l > 0:
            d_h = d_pre @ feedback[l].T
            if config.max_gain is not None:
                gain = d_h.norm(dim=1, keepdim=True) / d_pre.norm(dim=1, keepdim=True).clamp_min(1e-12)
                d_h = d_h * (config.max_gain / gain.clamp_min(1e-12)).clamp(max=1.0)
            if config.rf_backward == "gated":
                d_pre = net.activation.gate(d_h, cache.pre[l - 1])
            else:  # "inverse": the paper's D_σ⁺
                d_pre = d_h * net.activation.inverse_derivative(cache.pre[l - 1], config.inv_slope_clamp)
    return out


def _feature_side_is_cheaper(batch: int, width: int, net) -> bool:
    """Solving with the width × width Gram HᵀH costs ~B·n² + n³ against ~B²·n + B³ for the batch Gram HHᵀ.

    Kept to layers without a bias: there the bias direction needs the batch-side inverse."""
    return batch > width and net.biases is None


def _joint_step_weights(cache: ForwardCache, config, norm_offset: float, shares: list[float],
                        layers: list[int]) -> dict[int, Tensor]:
    """s_l (H Hᵀ + ρI)⁻¹ for each of `layers`, all in one batched Cholesky solve (measured: faster at batch
    32 than a `cholesky_solve` per layer).

    The minimum-norm ΔW that moves every sample's pre-activation by its own displacement at once is
    ΔW = ΔAᵀ (H Hᵀ)⁻¹ H. The per-sample mean instead moves sample c by Σ_b Δa_b (h_b·h_c)/(B‖h_b‖²):
    with the strongly correlated inputs of ReLU layers, the batch's common direction gets nearly all of
    the step and each sample's own part a 1/B share.
    """
    if not layers:
        return {}
    first = cache.inputs[0]
    grams = first.new_empty(len(layers), first.shape[0], first.shape[0])
    for gram, l in zip(grams, layers):
        h = cache.inputs[l]
        torch.mm(h, h.T, out=gram)  # written in place: no stack copy (this function is mostly op overhead)
    diagonals = grams.diagonal(dim1=1, dim2=2)
    diagonals.add_(diagonals.mean(1, keepdim=True).mul_(config.joint_ridge).add_(norm_offset))
    # s·(G + ρI)⁻¹ = (G/s + ρI/s)⁻¹: dividing before the factorisation folds the share in for free.
    grams.mul_(_reciprocal_shares(tuple(shares[l] for l in layers), grams.dtype, grams.device))
    chol, info = torch.linalg.cholesky_ex(grams)
    if info.any():  # only non-finite activations make a ridge-regularised Gram indefinite
        return {l: torch.full_like(g, float("nan")) for l, g in zip(layers, grams)}  # the loop reports "diverged"
    return dict(zip(layers, torch.cholesky_inverse(chol).unbind(0)))


def _joint_input_weights(h: Tensor, config, norm_offset: float, share: float) -> Tensor:
    """H (HᵀH + ρI)⁻¹ s: the joint step's input side, equal to s Hᵀ(HHᵀ + ρI)⁻¹ transposed (the push-through
    identity), with the same ρ: joint_ridge × the mean diagonal of HHᵀ (= trace(HᵀH)/B) plus the offset."""
    gram = h.T @ h
    diagonal = gram.diagonal()
    diagonal.add_(diagonal.sum() * (config.joint_ridge / h.shape[0]) + norm_offset)
    chol, info = torch.linalg.cholesky_ex(gram.div_(share))
    if info.any():
        return torch.full_like(h, float("nan"))
    return torch.cholesky_solve(h.T, chol).T


@functools.lru_cache(maxsize=64)
def _reciprocal_shares(shares: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor([1.0 / s for s in shares], dtype=dtype, device=device)[:, None, None]
