"""Mean training-step time of every learning rule relative to bp, on the paper's MNIST network at batch 32.

Rules are timed round-robin (each round times every rule for `steps` consecutive steps, sleep phases
included), and the ratio to bp is taken per round, so machine noise hits both sides of each ratio alike.
Reports the median over rounds. Usage:
    python benchmarks/step_cost.py [--rounds 7] [--steps 200] [--threads 2] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from rf_core import TrainConfig, get_rule
from rf_core.model import MLP

VARIANTS = {
    "bp": {},
    "fa": {},
    "dfa": {},
    "rf_parallel": {},
    "rf_two_phase": {},  # default sleep method (cholesky)
    "rf_two_phase[newton_schulz]": {"pinv_method": "newton_schulz"},
    "rf_two_phase[exact]": {"pinv_method": "exact"},
    "rf_two_phase[recirculation]": {"pinv_method": "recirculation"},
    "pseudobackprop": {},
}


def build(name: str, overrides: dict, device: str, hidden=(400, 200, 100, 50), batch: int = 32):
    algorithm = name.split("[")[0]
    config = TrainConfig(algorithm=algorithm, dataset="mnist", hidden=tuple(hidden), batch_size=batch,
                         device=device, **overrides).resolved()
    g = torch.Generator().manual_seed(0)
    net = MLP.from_config(config, 784, 10, g)
    rule = get_rule(algorithm)(net, config, g).to(device)
    return config, rule


def time_steps(config, rule, x, y, steps: int) -> float:
    sync = torch.cuda.synchronize if config.device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        j = (i * config.batch_size) % (len(y) - config.batch_size)
        rule.step(x[j : j + config.batch_size], y[j : j + config.batch_size], config.lr)
    sync()
    return (time.perf_counter() - start) / steps


def measure(rounds: int, steps: int, device: str, variants=VARIANTS, hidden=(400, 200, 100, 50), batch: int = 32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4096, 784, generator=g).to(device)
    y = torch.randint(0, 10, (4096,), generator=g).to(device)
    built = {name: build(name, over, device, hidden, batch) for name, over in variants.items()}
    for config, rule in built.values():  # warm-up: first sleep phase, allocator, kernels
        time_steps(config, rule, x, y, 25)
    per_round: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, (config, rule) in built.items():
            per_round[name].append(time_steps(config, rule, x, y, steps))
    ratios = {name: statistics.median(t / b for t, b in zip(times, per_round["bp"])) for name, times in per_round.items()}
    return {
        "step_seconds_median": {name: statistics.median(v) for name, v in per_round.items()},
        "step_time_ratio_vs_bp": ratios,
        "rounds": rounds,
        "steps_per_round": steps,
        "batch": batch,
        "hidden": list(hidden),
        "device": device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = measure(args.rounds, args.steps, args.device)
    if args.json:
        print(json.dumps(report))
        return
    for name, ratio in report["step_time_ratio_vs_bp"].items():
        print(f"{name:30s} {report['step_seconds_median'][name] * 1e3:8.3f} ms/step   {ratio:5.2f} × bp")


if __name__ == "__main__":
    main()
