"""Evaluation, the paper's "Epochs" column, and RF diagnostics."""

from __future__ import annotations

import math

import torch

from rf_core import pinv
from rf_core.rules.base import backprop_through

Tensor = torch.Tensor


@torch.no_grad()
def evaluate(net, x: Tensor, y: Tensor, batch: int = 4096) -> tuple[float, float]:
    """(mean cross-entropy, accuracy as a fraction)."""
    if len(y) == 0:
        return float("nan"), float("nan")
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch):
        logits = net(x[start : start + batch])
        target = y[start : start + batch]
        loss_sum += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(1) == target).sum())
    return loss_sum / len(y), correct / len(y)


def epochs_to_90(initial_error: float, errors: list[float]) -> int | None:
    """First epoch t (1-based) with E_0 − E_t ≥ 0.9 (E_0 − E_min); None if the error never fell."""
    if not errors:
        return None
    fall = initial_error - min(errors)
    if not fall > 0:
        return None
    for t, e in enumerate(errors, start=1):
        if initial_error - e >= 0.9 * fall:
            return t
    return None


def _angle_degrees(a: Tensor, b: Tensor) -> float:
    cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).clamp(-1, 1)
    return math.degrees(math.acos(float(cos)))


@torch.no_grad()
def rule_diagnostics(rule, x: Tensor, y: Tensor) -> dict[str, float]:
    """Per layer: distance of the feedback to pinv(W), the four Moore–Penrose residuals, and the angle
    between the rule's update direction and the backprop gradient on the batch (x, y)."""
    net = rule.net
    out: dict[str, float] = {}
    for l, f in rule.feedback_matrices().items():
        w = net.weights[l].double()
        f64 = f.double()
        if f64.shape == w.T.shape:  # pseudoinverse-style feedback (RF); fa's B_l has W's shape
            out[f"layer{l + 1}_pinv_distance"] = pinv.relative_distance(f64, torch.linalg.pinv(w))
            for key, value in pinv.moore_penrose_residuals(w, f64).items():
                out[f"layer{l + 1}_{key}"] = value
    cache = net.forward_cached(x)
    error = torch.softmax(cache.logits, 1)
    error[torch.arange(len(y)), y] -= 1.0
    ours = rule.directions(cache, error)
    grads = [delta.T @ inputs for delta, inputs, _ in backprop_through(cache, error, list(net.weights), net)]
    for l, ((dw, _), gw) in enumerate(zip(ours, grads)):
        out[f"layer{l + 1}_angle_to_bp_deg"] = _angle_degrees(dw, gw)
    return out
