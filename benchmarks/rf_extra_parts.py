"""What a Reciprocal Feedback step adds to a bp step, part by part, each part timed alone.

On the paper's MNIST network at batch 32 (random data, the rules' defaults), in one process and
interleaved round by round: bp's whole step, the RF rule's whole step, and alone the parts only RF runs —
the joint step's Grams and batched Cholesky inverse, its step-weight products, rf_parallel's feedback
update (`after_step`), rf_two_phase's refresh divided by its period. The sum of the parts over bp's step
is a floor for the ratio: what the step would cost if nothing else (Python, cache traffic between the
parts) added anything. Usage:
    python benchmarks/rf_extra_parts.py [--rule rf_parallel] [--rounds 7] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from rf_core.bench import PAPER_HIDDEN, _build, machine
from rf_core.rules import _rf


def _micros(fn, repeats: int = 300) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e6


def measure(rule_name: str, rounds: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(32, 784, generator=generator)
    y = torch.randint(0, 10, (32,), generator=generator)
    _, bp = _build("bp", {}, "cpu", PAPER_HIDDEN, 32)
    config, rule = _build(rule_name, {}, "cpu", PAPER_HIDDEN, 32)
    rule.step(x, y, config.lr)
    cache = rule.net.forward_cached(x)
    layers = list(range(rule.net.num_layers))
    share = 1.0 / len(layers)
    shares = [share * config.hidden_step_scale] * (len(layers) - 1) + [share]
    weights = _rf._joint_step_weights(cache, config, config.norm_eps, shares, layers)
    displacements = [torch.randn(32, w.shape[0], generator=generator) for w in rule.net.weights]

    parts = {
        "bp_step": lambda: bp.step(x, y, 1e-9),
        "rule_step": lambda: rule.step(x, y, 1e-9),
        "joint_grams_and_inverse": lambda: _rf._joint_step_weights(cache, config, config.norm_eps, shares, layers),
        "joint_step_weight_products": lambda: [weights[i] @ d for i, d in zip(layers, displacements, strict=True)],
    }
    if rule_name == "rf_parallel":
        parts["feedback_update"] = lambda: rule.after_step(cache)
    if rule_name == "rf_two_phase":
        parts["refresh_per_step"] = lambda: rule.sleep()
    timings: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            timings[name].append(_micros(fn, 20 if name == "refresh_per_step" else 300))
    med = {name: statistics.median(v) for name, v in timings.items()}
    if "refresh_per_step" in med:
        med["refresh_per_step"] /= config.pinv_every
    extra = sum(v for k, v in med.items() if k not in ("bp_step", "rule_step"))
    return {
        "rule": rule_name,
        "microseconds_median": {k: round(v, 1) for k, v in med.items()},
        "parts_alone_over_bp": round(extra / med["bp_step"], 3),
        "floor_ratio": round(1 + extra / med["bp_step"], 3),
        "measured_ratio": round(med["rule_step"] / med["bp_step"], 3),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        **machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="rf_parallel", choices=["rf_parallel", "rf_two_phase"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = measure(args.rule, args.rounds)
    if args.json:
        print(json.dumps(report))
    else:
        for name, micros in report["microseconds_median"].items():
            print(f"{name:28s} {micros:8.1f} µs")
        print(
            f"parts alone / bp step: {report['parts_alone_over_bp']:.3f}  →  floor {report['floor_ratio']:.3f} ×,"
            f" measured {report['measured_ratio']:.3f} ×"
        )


if __name__ == "__main__":
    main()
