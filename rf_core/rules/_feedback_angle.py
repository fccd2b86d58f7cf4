"""The angle between each feedback matrix B_l and its forward weights W_l (same shape), for the rules whose
feedback is meant to come to W itself (kolen_pollack, weight_mirror): reported every epoch as rule metrics.

It reads W, as a diagnostic of the run (never part of the update): 0° means B_l ∝ W_l, the backward pass then
carries the error as backprop does up to a per-layer scale; random B_l of this size sit near 90°.
"""

from __future__ import annotations

import math

import torch

from rf_core.model import MLP
from rf_core.rules.base import RULE_METRIC_PREFIX

Tensor = torch.Tensor
ANGLE_METRIC = f"{RULE_METRIC_PREFIX}angle_to_w_deg"  # + _layer{l} per layer, _max over layers


@torch.no_grad()
def feedback_angles(net: MLP, feedback: dict[int, Tensor]) -> dict[str, float]:
    """Per layer l (1-based, as the other diagnostics) the angle ∠(B_l, W_l) in degrees, and the largest."""
    out: dict[str, float] = {}
    for l, b in feedback.items():
        w = net.weights[l]
        cos = torch.nn.functional.cosine_similarity(b.double().flatten(), w.double().flatten(), dim=0)
        out[f"{ANGLE_METRIC}_layer{l + 1}"] = math.degrees(math.acos(float(cos.clamp(-1, 1))))
    if out:
        out[f"{ANGLE_METRIC}_max"] = max(out.values())
    return out
