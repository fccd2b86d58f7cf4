"""Element-wise nonlinearities σ with the two derivatives the learning rules need.

Backprop-like rules multiply by σ'(a); Reciprocal Feedback divides by it (it inverts the layer), so each
activation also gives a *clamped* 1/σ'(a): leaky ReLU with slope 0.01 would otherwise amplify a
displacement a hundredfold on every inactive unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    fused_gate: Callable[[Tensor, Tensor], Tensor] | None = None

    def gate(self, displacement: Tensor, a: Tensor) -> Tensor:
        """displacement ⊙ σ'(a): how an error at h reaches a, as backprop (and gated RF) carry it."""
        if self.fused_gate is not None:
            return self.fused_gate(displacement, a)
        return displacement * self.derivative(a)

    def inverse_derivative(self, a: Tensor, clamp: float) -> Tensor:
        """min(1/σ'(a), clamp): the factor that turns a displacement of h into one of a."""
        return self.derivative(a).reciprocal_().clamp_(max=clamp)


def make_activation(name: str, slope: float) -> Activation:
    if name == "leaky_relu":
        return Activation(
            name,
            forward=lambda a: F.leaky_relu(a, slope),
            derivative=lambda a: torch.where(a > 0, 1.0, slope).to(a.dtype),
            # autograd's own kernel for this product: one pass instead of compare, select, multiply
            # (measured 2.9 µs against 17.5 µs for σ'(a) alone on a 32×400 batch)
            fused_gate=lambda d, a: torch.ops.aten.leaky_relu_backward(d, a, slope, False),
        )
    if name == "leaky_softplus":
        # σ(a) = s·a + (1-s)·softplus(a): smooth and bijective, as the paper's theory (§4.2) assumes.
        return Activation(
            name,
            forward=lambda a: slope * a + (1 - slope) * F.softplus(a),
            derivative=lambda a: slope + (1 - slope) * torch.sigmoid(a),
        )
    if name == "tanh":
        return Activation(name, forward=torch.tanh, derivative=lambda a: 1 - torch.tanh(a) ** 2)
    raise ValueError(f"activation: unknown {name!r}")
