"""How Reciprocal Feedback's feedback matrices F_l ≈ W_l⁺ are learned — from activity, or by an oracle.

A learner sees a layer only through a `ForwardProbe`: y ↦ W y, what the layer itself computes (bias
excluded). Learning from activity needs nothing else; an oracle (closed-form pseudoinverse, Wᵀ-built
starts) calls `probe.read_weights()` — the weight transport that the locality ledger declares and that
tests/rf_core/test_ledger.py detects.

The noise-driven sleep (two-phase RF's sleep; rf_parallel's optional "development" before training)
injects white zero-mean noise y (E[yyᵀ] = I) at the layer's input and applies the paper's §3.1 rule to the
pre-activation u = W y:

    δF = (F u − y) uᵀ,   F ← F − (α / λ̂) · mean_batch δF

This is least-mean-squares on E‖F W y − y‖², whose gradient in expectation is (F W − I) W Wᵀ; for a
full-row-rank W (every layer 2..L of the paper's contracting networks) its unique minimiser is
Wᵀ(W Wᵀ)⁻¹ = W⁺. The step is normalised by λ̂, a running estimate of the largest eigenvalue of the
activity covariance E[uuᵀ] = W Wᵀ, kept by one power-iteration step per sleep step on the layer's own
activity (u ↦ E[u uᵀ] v, the quantity an Oja neuron tracks); α < 2 is then stable whatever W's scale.
The error direction that converges slowest decays as (1 − α σ_min²/σ_max²) per step, so warm-starting
from the previous F (the synapse's own state) lets a few steps per sleep track a slowly moving W.

Why not the paper's Recirculation sleep (the Ben-Israel–Cohen iteration X ← 2X − X W X, rf_core/pinv.py):
that iteration keeps range(X₀), so from a start not built from Wᵀ it cannot reach W⁺ for a rectangular W;
it is kept as an oracle (`oracle_recirculation`), started from Wᵀ as before.

Finite noise batches leave F fluctuating in null(W) (directions W F u never sees): the round trip
‖W F u − u‖/‖u‖ converges to 0 while the distance to W⁺ stays at 0.1–0.4 (docs/RF_CORE.md); the null-space
part moves each lower layer's target in directions that do not change this layer's output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rf_core import pinv

Tensor = torch.Tensor

_inside_probe = threading.local()


@contextmanager
def _probing() -> Iterator[None]:
    depth = getattr(_inside_probe, "depth", 0)
    _inside_probe.depth = depth + 1
    try:
        yield
    finally:
        _inside_probe.depth = depth


def probe_active() -> bool:
    """True while a probe computes W y (tests use it to tell a forward pass from other reads of W)."""
    return getattr(_inside_probe, "depth", 0) > 0


class ForwardProbe:
    """A layer as its feedback synapses can observe it: y ↦ W y for a batch of rows y (bias excluded)."""

    def __init__(self, weight: Tensor) -> None:
        self._weight = weight

    @property
    def in_features(self) -> int:
        return self._weight.shape[1]

    @property
    def out_features(self) -> int:
        return self._weight.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self._weight.dtype

    @property
    def device(self) -> torch.device:
        return self._weight.device

    def __call__(self, y: Tensor) -> Tensor:
        with _probing():
            return y @ self._weight.T

    def read_weights(self) -> Tensor:
        """W itself: only oracles call this (weight transport; the ledger says so)."""
        return self._weight


def white_noise(probe: ForwardProbe, batch: int, generator: torch.Generator) -> Tensor:
    """Zero-mean, unit-variance, uncorrelated noise at the layer's input (drawn on the CPU generator, so a
    run's draws do not depend on the device)."""
    return torch.randn(batch, probe.in_features, generator=generator, dtype=probe.dtype).to(probe.device)


def top_eigenvalue_step(activity: Tensor, direction: Tensor) -> float:
    """One power-iteration step on the activity covariance mean(u uᵀ): updates `direction` in place, returns
    the Rayleigh-quotient estimate of its largest eigenvalue (from the activity alone, no W)."""
    image = (activity @ direction) @ activity / activity.shape[0]
    estimate = image.norm()
    direction.copy_(image / estimate.clamp_min(1e-30))
    return float(estimate)


def sleep_on_noise(
    probe: ForwardProbe,
    feedback: Tensor,
    direction: Tensor,
    *,
    steps: int,
    noise_batch: int,
    rate: float,
    generator: torch.Generator,
) -> None:
    """`steps` LMS steps of F (in place) toward W⁺ on white noise at the layer's input (module docstring)."""
    for _ in range(steps):
        y = white_noise(probe, noise_batch, generator)
        u = probe(y)
        largest = top_eigenvalue_step(u, direction)
        reconstruction_error = torch.addmm(y, u, feedback.T, beta=-1)  # F u − y
        feedback.addmm_(reconstruction_error.T, u, alpha=-rate / (largest * noise_batch))


def track_on_activity(feedback: Tensor, layer_input: Tensor, pre_activation: Tensor, rate: float) -> None:
    """rf_parallel's §3.1 rule on the data the layer sees: F ← F − rate · mean_b (F u_b − y_b) u_bᵀ, u = W y."""
    reconstruction_error = torch.addmm(layer_input, pre_activation, feedback.T, beta=-1)  # F W y − y, one kernel
    feedback.addmm_(reconstruction_error.T, pre_activation, alpha=-rate / layer_input.shape[0])


def roundtrip_error(probe: ForwardProbe, feedback: Tensor, noise_batch: int, generator: torch.Generator) -> float:
    """‖W F u − u‖ / ‖u‖ for u = W y on fresh white noise: 0 when F is a right inverse of W (W⁺ is one).

    Measured by passing activity through the layer again, never by reading W."""
    u = probe(white_noise(probe, noise_batch, generator))
    return float(torch.linalg.matrix_norm(probe(u @ feedback.T) - u) / torch.linalg.matrix_norm(u).clamp_min(1e-30))


# ---- oracles: closed-form or Wᵀ-started pseudoinverses (read W; not biologically plausible) ----------------

ORACLE_METHODS = ("oracle_cholesky", "oracle_svd", "oracle_newton_schulz", "oracle_recirculation")


def oracle_feedback(
    method: str,
    probe: ForwardProbe,
    previous: Tensor | None,
    generator: torch.Generator,
    *,
    steps: int,
    noise_batch: int,
) -> pinv.PinvResult:
    """F from W itself by `method` (one of ORACLE_METHODS); `previous` warm-starts the iterative ones."""
    w = probe.read_weights()
    if method == "oracle_cholesky":
        return pinv.cholesky_pinv(w)
    if method == "oracle_svd":
        return pinv.exact_pinv(w)
    if method == "oracle_newton_schulz":
        return pinv.newton_schulz(w, previous)
    if method == "oracle_recirculation":
        return pinv.recirculation(w, previous, steps=steps, noise_batch=noise_batch, generator=generator)
    raise ValueError(f"feedback: unknown oracle {method!r}; choose one of {list(ORACLE_METHODS)}")
