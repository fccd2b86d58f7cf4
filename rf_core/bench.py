"""Benchmarks of rf_core itself (what `rfsweep bench` runs with the recipe comparison): step cost per rule,
how step cost grows with width and batch, and a bp step's FLOPs and this machine's throughput on them.

Each comparison runs both sides in this process, interleaved round by round, and reports the median of
per-round ratios, so that the noise of a shared machine hits both sides of a ratio alike.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rf_core.config import TrainConfig
from rf_core.model import MLP
from rf_core.rules import get_rule
from rf_core.rules.base import LearningRule

PAPER_HIDDEN = (400, 200, 100, 50)  # the paper's MNIST network: 784-400-200-100-50-10

STEP_VARIANTS: dict[str, dict[str, Any]] = {
    "bp": {},
    "fa": {},
    "dfa": {},
    "bp_joint": {},
    "rf_parallel": {},
    "rf_two_phase": {},  # the default: feedback learned from noise, a sleep every 100 steps
    "rf_two_phase[pinv_every=20]": {"pinv_every": 20},  # the paper's period
    "rf_two_phase[oracle_cholesky]": {"feedback": "oracle_cholesky"},
    "rf_two_phase[update=paper]": {"update": "paper"},
    "pseudobackprop": {},
}


def machine() -> dict[str, Any]:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _build(
    name: str, overrides: dict[str, Any], device: str, hidden: Sequence[int], batch: int, inputs: int = 784
) -> tuple[TrainConfig, LearningRule[Any]]:
    algorithm = name.split("[")[0]
    config = TrainConfig.from_dict(
        {
            "algorithm": algorithm,
            "dataset": "mnist",
            "hidden": tuple(hidden),
            "batch_size": batch,
            "device": device,
            **overrides,
        }
    ).resolved()
    generator = torch.Generator().manual_seed(0)
    net = MLP.from_config(config, inputs, 10, generator)
    return config, get_rule(algorithm)(net, config.params, generator).to(device)


def _time_steps(config: TrainConfig, rule: LearningRule[Any], x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    assert config.lr is not None, "a resolved config"
    sync = _sync(config.device)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        j = (i * config.batch_size) % (len(y) - config.batch_size)
        rule.step(x[j : j + config.batch_size], y[j : j + config.batch_size], config.lr)
    sync()
    return (time.perf_counter() - start) / steps


def step_cost(
    rounds: int = 7,
    steps: int = 200,
    device: str = "cpu",
    variants: dict[str, dict[str, Any]] | None = None,
    hidden: Sequence[int] = PAPER_HIDDEN,
    batch: int = 32,
) -> dict[str, Any]:
    """Mean training-step time (sleep phases included) of each rule, and its median per-round ratio to bp."""
    variants = variants or STEP_VARIANTS
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(max(4096, 4 * batch), 784, generator=generator).to(device)
    y = torch.randint(0, 10, (len(x),), generator=generator).to(device)
    built = {name: _build(name, over, device, hidden, batch) for name, over in variants.items()}
    warm_steps = 50  # the first sleep phase (step 0), the allocator, the kernels
    for config, rule in built.values():
        _time_steps(config, rule, x, y, warm_steps)
    per_round: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, (config, rule) in built.items():
            per_round[name].append(_time_steps(config, rule, x, y, steps))
    return {
        "step_seconds_median": {n: statistics.median(v) for n, v in per_round.items()},
        "step_time_ratio_vs_bp": {
            n: statistics.median(t / b for t, b in zip(v, per_round["bp"], strict=True)) for n, v in per_round.items()
        },
        "rounds": rounds,
        "steps_per_round": steps,
        "batch": batch,
        "hidden": list(hidden),
        "device": device,
    }


def scaling(
    device: str = "cpu",
    widths: Sequence[int] = (400, 1000, 2000, 4000),
    batches: Sequence[int] = (32, 128, 512, 1024),
    steps: int = 40,
    rounds: int = 3,
) -> dict[str, Any]:
    """Step time of bp and rf_two_phase (each refresh method) as the first hidden layer and the batch grow."""
    variants: dict[str, dict[str, Any]] = {
        "bp": {},
        "rf_two_phase": {},
        "rf_two_phase[oracle_cholesky]": {"feedback": "oracle_cholesky"},
        "rf_two_phase[oracle_newton_schulz]": {"feedback": "oracle_newton_schulz"},
        "rf_two_phase[oracle_svd]": {"feedback": "oracle_svd"},
    }
    rows = []
    for width in widths:
        report = step_cost(rounds, steps, device, variants, (width, *PAPER_HIDDEN[1:]), 32)
        rows.append({"first_hidden": width, "batch": 32, **_row(report)})
    for batch in batches:
        report = step_cost(rounds, steps, device, variants, PAPER_HIDDEN, batch)
        rows.append({"first_hidden": PAPER_HIDDEN[0], "batch": batch, **_row(report)})
    return {"rows": rows, "device": device, "steps_per_round": steps, "rounds": rounds}


def _row(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "step_ms": {n: round(s * 1e3, 4) for n, s in report["step_seconds_median"].items()},
        "ratio_vs_bp": {n: round(r, 3) for n, r in report["step_time_ratio_vs_bp"].items()},
    }


def bp_step_flops(hidden: Sequence[int] = PAPER_HIDDEN, batch: int = 32, inputs: int = 784, classes: int = 10) -> int:
    """Multiply-adds ×2 of one bp step: forward, weight gradients, and input gradients above layer 1."""
    sizes = [inputs, *hidden, classes]
    products = [a * b for a, b in itertools.pairwise(sizes)]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def matmul_gflops(
    hidden: Sequence[int] = PAPER_HIDDEN,
    batch: int = 32,
    inputs: int = 784,
    classes: int = 10,
    repeats: int = 300,
    device: str = "cpu",
) -> float:
    """The machine's own throughput on exactly a bp step's matrix products (no framework around them)."""
    sizes = [inputs, *hidden, classes]
    weights = [torch.randn(b, a, device=device) for a, b in itertools.pairwise(sizes)]
    acts = [torch.randn(batch, a, device=device) for a in sizes[:-1]]
    grads = [torch.randn(batch, b, device=device) for b in sizes[1:]]
    sync = _sync(device)

    def one_step() -> None:
        for l, (w, h, g) in enumerate(zip(weights, acts, grads, strict=True)):
            h @ w.T  # forward
            g.T @ h  # weight gradient
            if l > 0:
                g @ w  # gradient to the layer below

    for _ in range(20):
        one_step()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        one_step()
    sync()
    return bp_step_flops(hidden, batch, inputs, classes) * repeats / (time.perf_counter() - start) / 1e9
