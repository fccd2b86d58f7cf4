"""Closed-form and Wᵀ-started pseudoinverses: the oracles of two-phase Reciprocal Feedback's sleep
(`feedback: oracle_*`, rf_core/feedback.py) and the learners of the Figure 2 demo (paper §3, A.4).

Every function here reads W itself — weight transport, not something a neuron has; the default
`feedback: learned` uses none of them. All return a `PinvResult` and never raise on a hard matrix: a learner
that does not converge says so (`converged=False`) and the caller counts it.

- `exact_pinv`: torch.linalg.pinv (SVD). The reference.
- `cholesky_pinv`: W⁺ = Wᵀ(WWᵀ)⁻¹ through a Cholesky factorisation, exact for full-row-rank W (every
  layer of a contracting network), with torch.linalg.pinv where WWᵀ is not positive definite. The
  cheapest oracle at the paper's layer sizes (docs/RF_CORE.md).
- `newton_schulz`: the Ben-Israel–Cohen iteration X ← 2X − XWX (§3). From X₀ with X₀W symmetric and
  the spectrum of X₀W in (0, 2) it converges quadratically to W⁺. Cold start X₀ = α Wᵀ with
  α = 1/(‖W‖₁‖W‖∞) ≤ 1/σ_max². Warm start: the iteration keeps range(X) inside range(X₀), so starting
  from the previous pseudoinverse X_old (whose range is the *old* row space) stalls near, not at, W⁺.
  We start instead from X₀ = Wᵀ (X_oldᵀ X_old): its range is the new row space, X₀W = Wᵀ(X_oldᵀX_old)W is
  symmetric positive semidefinite, and for full-row-rank W close to W_old, X_oldᵀ X_old ≈ (W Wᵀ)⁻¹, so
  X₀ ≈ W⁺ and two or three iterations suffice (measured in docs/RF_CORE.md).
- `recirculation`: the paper's noise-driven rule, started from Wᵀ. With zero-mean noise y (E[yyᵀ] = σ²I) in
  the output space of W, h = Xy, ŷ = Wh, ĥ = Xŷ, the estimate (h − ĥ)yᵀ/σ² has expectation X − XWX, and the
  damped step of A.4 is X ← λX + (1−λ)(2X − XWX), i.e. X ← X + (1−λ)(X − XWX). As printed, A.4 reads
  (X − XWX) in place of (2X − XWX), whose fixed points satisfy XWX = 0; we read it as the damped
  Ben-Israel–Cohen step it describes. The iteration keeps range(X₀), so it needs a start built from Wᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class PinvResult:
    matrix: Tensor
    converged: bool
    iterations: int
    residual: float  # relative change of the last iteration (newton_schulz) or ‖WXW − W‖/‖W‖


def moore_penrose_residuals(a: Tensor, x: Tensor) -> dict[str, float]:
    """Relative residuals of the four Moore–Penrose conditions for X as the pseudoinverse of A.

    All four are needed: a warm start stalled in the wrong row space can satisfy 1–3 and fail only 4.
    """
    ax, xa = a @ x, x @ a

    def rel(m: Tensor, ref: Tensor) -> float:
        return float(torch.linalg.matrix_norm(m) / torch.linalg.matrix_norm(ref).clamp_min(1e-30))

    return {
        "mp1_axa": rel(ax @ a - a, a),
        "mp2_xax": rel(xa @ x - x, x),
        "mp3_ax_sym": rel(ax.T - ax, ax),
        "mp4_xa_sym": rel(xa.T - xa, xa),
    }


def relative_distance(x: Tensor, target: Tensor) -> float:
    return float(torch.linalg.matrix_norm(x - target) / torch.linalg.matrix_norm(target).clamp_min(1e-30))


def exact_pinv(w: Tensor) -> PinvResult:
    x = torch.linalg.pinv(w)
    return PinvResult(x, converged=True, iterations=0, residual=0.0)


def cholesky_pinv(w: Tensor) -> PinvResult:
    if w.shape[0] <= w.shape[1]:
        chol, info = torch.linalg.cholesky_ex(w @ w.T)
        if int(info) == 0:
            x = w.T @ torch.cholesky_inverse(chol)
            if bool(torch.isfinite(x).all()):
                return PinvResult(x, converged=True, iterations=0, residual=0.0)
    return exact_pinv(w)


def cold_start(w: Tensor) -> Tensor:
    norm1 = w.abs().sum(dim=0).max()
    norm_inf = w.abs().sum(dim=1).max()
    return w.T / (norm1 * norm_inf).clamp_min(1e-30)


def warm_start(w: Tensor, previous: Tensor) -> Tensor:
    return w.T @ (previous.T @ previous)


def newton_schulz(w: Tensor, previous: Tensor | None = None, *, tol: float = 1e-4, max_iter: int = 30) -> PinvResult:
    """W⁺ by X ← 2X − X(WX), warm-started from `previous` when given (see module docstring)."""
    if previous is not None:
        result = _iterate(w, warm_start(w, previous), tol, max_iter)
        if result.converged:
            return result
    return _iterate(w, cold_start(w), tol, max(max_iter, 100))


def _iterate(w: Tensor, x: Tensor, tol: float, max_iter: int) -> PinvResult:
    x_norm = torch.linalg.matrix_norm(x)
    change = float("inf")
    for k in range(1, max_iter + 1):
        x_next = 2 * x - x @ (w @ x)
        next_norm = torch.linalg.matrix_norm(x_next)
        change = float(torch.linalg.matrix_norm(x_next - x) / next_norm.clamp_min(1e-30))
        if not torch.isfinite(next_norm) or next_norm > 1e6 * x_norm.clamp_min(1e-30):
            return PinvResult(x, converged=False, iterations=k, residual=float("inf"))
        x = x_next
        if change < tol:
            return PinvResult(x, converged=True, iterations=k, residual=change)
    return PinvResult(x, converged=False, iterations=max_iter, residual=change)


def recirculation(
    w: Tensor,
    previous: Tensor | None = None,
    *,
    damping: float = 0.9,
    steps: int = 200,
    noise_batch: int = 256,
    generator: torch.Generator | None = None,
    tol: float = 1e-2,
) -> PinvResult:
    """The paper's noise-driven Recirculation learner for X ≈ W⁺ (W: out×in, X: in×out)."""
    x = warm_start(w, previous) if previous is not None else cold_start(w)
    eta = 1.0 - damping
    out_dim = w.shape[0]
    for _ in range(steps):
        y = torch.randn(noise_batch, out_dim, generator=generator, dtype=w.dtype).to(w.device)
        h = y @ x.T  # h = X y
        h_hat = (h @ w.T) @ x.T  # ĥ = X W h
        x = x + eta * (h - h_hat).T @ y / noise_batch
    residual = relative_distance(w @ x @ w, w)
    ok = bool(torch.isfinite(x).all()) and residual < tol
    return PinvResult(x, converged=ok, iterations=steps, residual=residual)
