"""Evaluation, the paper's "Epochs" column, and RF diagnostics."""

from __future__ import annotations

import math
from typing import Any

import torch

from rf_core import pinv
from rf_core.model import MLP, ForwardCache
from rf_core.rules.base import LearningRule, backprop_through

Tensor = torch.Tensor


@torch.no_grad()
def evaluate(net: MLP, x: Tensor, y: Tensor, batch: int = 4096) -> tuple[float, float]:
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


NEWTON_SAMPLES = 16


def first_order_output_change(
    net: MLP, cache: ForwardCache, layer: int, weight_step: Tensor, bias_step: Tensor | None
) -> Tensor:
    """Δz = ∂z/∂W_l · (weight_step): how W_l ← W_l + weight_step alone moves the logits, to first order
    (propagated through the upper layers' Jacobians at the cached point)."""
    d_a = cache.inputs[layer] @ weight_step.T
    if bias_step is not None:
        d_a = d_a + bias_step
    for upper in range(layer + 1, net.num_layers):
        d_a = net.activation.gate(d_a, cache.pre[upper - 1]) @ net.weights[upper].T
    return d_a


@torch.no_grad()
def newton_fidelity(rule: LearningRule[Any], x: Tensor, y: Tensor) -> dict[str, float]:
    """Per layer, how far that layer's step alone (λ = 1, one sample at a time) moves the output against the
    output error e: mean ‖Δz‖/‖e‖ and mean cos(Δz, −e). The Newton step of paper §4 gives 1 and 1 in every
    layer (with exact feedback); a gradient step gives neither."""
    net = rule.net
    ratios: list[list[float]] = [[] for _ in range(net.num_layers)]
    cosines: list[list[float]] = [[] for _ in range(net.num_layers)]
    for sample, label in zip(x.split(1), y.split(1), strict=True):
        cache = net.forward_cached(sample)
        e = output_error(cache.logits, label)
        for l, (dw, db) in enumerate(rule.directions(cache, e)):
            dz = first_order_output_change(net, cache, l, -dw, -db if db is not None else None)
            ratios[l].append(float(dz.norm() / e.norm().clamp_min(1e-30)))
            cosines[l].append(float(torch.nn.functional.cosine_similarity(dz.flatten(), -e.flatten(), dim=0)))
    out: dict[str, float] = {}
    for l in range(net.num_layers):
        out[f"layer{l + 1}_newton_ratio"] = sum(ratios[l]) / len(ratios[l])
        out[f"layer{l + 1}_newton_cos"] = sum(cosines[l]) / len(cosines[l])
    return out


def output_error(logits: Tensor, y: Tensor) -> Tensor:
    """e = softmax(logits) − onehot(y), one row per sample: the displacement every rule carries down."""
    e = torch.softmax(logits, 1)
    e[torch.arange(len(y), device=y.device), y] -= 1.0
    return e


def _angle_degrees(a: Tensor, b: Tensor) -> float:
    cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).clamp(-1, 1)
    return math.degrees(math.acos(float(cos)))


@torch.no_grad()
def rule_diagnostics(rule: LearningRule[Any], x: Tensor, y: Tensor) -> dict[str, float]:
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
    out.update(newton_fidelity(rule, x[:NEWTON_SAMPLES], y[:NEWTON_SAMPLES]))
    cache = net.forward_cached(x)
    error = output_error(cache.logits, y)
    ours = rule.directions(cache, error)
    grads = [delta.T @ inputs for delta, inputs, _ in backprop_through(cache, error, list(net.weights), net)]
    for l, ((dw, _), gw) in enumerate(zip(ours, grads, strict=True)):
        out[f"layer{l + 1}_angle_to_bp_deg"] = _angle_degrees(dw, gw)
    return out
