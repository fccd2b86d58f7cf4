"""Pseudoinverse learners: agreement with torch.linalg.pinv, the Moore–Penrose conditions, honest failure."""

import pytest
import torch

from rf_core import pinv

pytestmark = pytest.mark.usefixtures("float64_default")


def well_conditioned(rows, cols, seed=0):
    g = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(rows, rows, generator=g))
    q2, _ = torch.linalg.qr(torch.randn(cols, cols, generator=g))
    k = min(rows, cols)
    s = torch.linspace(1.0, 3.0, k)  # condition number 3
    return q1[:, :k] @ torch.diag(s) @ q2[:, :k].T


@pytest.mark.parametrize("shape", [(20, 40), (30, 30), (40, 20)])
def test_newton_schulz_cold_start_matches_pinv_and_moore_penrose(shape):
    w = well_conditioned(*shape)
    result = pinv.newton_schulz(w, tol=1e-12, max_iter=100)
    assert result.converged
    assert pinv.relative_distance(result.matrix, torch.linalg.pinv(w)) < 1e-9
    assert max(pinv.moore_penrose_residuals(w, result.matrix).values()) < 1e-9


def test_newton_schulz_warm_start_follows_a_moving_matrix_in_few_iterations():
    w_old = well_conditioned(20, 40)
    x_old = torch.linalg.pinv(w_old)
    w_new = w_old + 0.01 * torch.randn(20, 40, generator=torch.Generator().manual_seed(1))
    warm = pinv.newton_schulz(w_new, x_old, tol=1e-10)
    assert warm.converged and warm.iterations <= 6
    assert pinv.relative_distance(warm.matrix, torch.linalg.pinv(w_new)) < 1e-8


def test_naive_warm_start_from_old_pinv_stalls_in_the_old_row_space():
    """Iterating from X_old keeps range(X) = old row space: conditions 1-3 look fine-ish, condition 4 does not."""
    w_old = well_conditioned(20, 40)
    w_new = w_old + 0.05 * torch.randn(20, 40, generator=torch.Generator().manual_seed(2))
    x = torch.linalg.pinv(w_old)
    for _ in range(50):
        x = 2 * x - x @ w_new @ x
    stalled = pinv.moore_penrose_residuals(w_new, x)
    assert pinv.relative_distance(x, torch.linalg.pinv(w_new)) > 1e-3
    assert stalled["mp4_xa_sym"] > 1e-3
    assert stalled["mp1_axa"] < 1e-6  # W X = I still holds for full-row-rank W: only condition 4 sees the stall


def test_newton_schulz_reports_non_convergence_instead_of_garbage():
    w = well_conditioned(20, 40)
    w[0] *= 1e-7  # condition number ~3e7: the cold start needs far more than 3 iterations
    result = pinv._iterate(w, pinv.cold_start(w), tol=1e-12, max_iter=3)
    assert not result.converged
    nan_input = torch.full((5, 8), float("nan"))
    assert not pinv.newton_schulz(nan_input, max_iter=5).converged


def test_recirculation_learns_the_pseudoinverse_from_noise():
    """Noise-driven, so only to a stated tolerance: 2 % relative distance, Moore–Penrose residuals < 5 %."""
    w = well_conditioned(10, 20)
    g = torch.Generator().manual_seed(0)
    result = pinv.recirculation(w, damping=0.8, steps=400, noise_batch=2048, generator=g, tol=0.05)
    assert result.converged
    assert pinv.relative_distance(result.matrix, torch.linalg.pinv(w)) < 0.02
    assert max(pinv.moore_penrose_residuals(w, result.matrix).values()) < 0.05


def test_cholesky_pinv_is_exact_for_full_row_rank_and_falls_back_otherwise():
    w = well_conditioned(20, 40)
    result = pinv.cholesky_pinv(w)
    assert result.converged and pinv.relative_distance(result.matrix, torch.linalg.pinv(w)) < 1e-10
    rank_deficient = torch.cat([w[:10], w[:10]])  # WWᵀ singular: the SVD pseudoinverse takes over
    fallback = pinv.cholesky_pinv(rank_deficient).matrix
    torch.testing.assert_close(fallback, torch.linalg.pinv(rank_deficient))
    tall = well_conditioned(40, 20)
    torch.testing.assert_close(pinv.cholesky_pinv(tall).matrix, torch.linalg.pinv(tall))
