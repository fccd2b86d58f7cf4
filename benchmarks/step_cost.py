"""Mean training-step time of every learning rule relative to bp, on the paper's MNIST network at batch 32.

Rules are timed round-robin (each round times every rule for `steps` consecutive steps, sleep phases
included), and the ratio to bp is taken per round, so machine noise hits both sides of each ratio alike.
Reports the median over rounds (`rf_core.bench.step_cost`; `rfsweep bench` runs it with the other
rf_core benchmarks). Usage:
    python benchmarks/step_cost.py [--rounds 7] [--steps 200] [--threads 2] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from rf_core.bench import machine, step_cost


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
    report = {**step_cost(args.rounds, args.steps, args.device), **machine()}
    if args.json:
        print(json.dumps(report))
        return
    for name, ratio in report["step_time_ratio_vs_bp"].items():
        print(f"{name:30s} {report['step_seconds_median'][name] * 1e3:8.3f} ms/step   {ratio:5.2f} × bp")


if __name__ == "__main__":
    main()
