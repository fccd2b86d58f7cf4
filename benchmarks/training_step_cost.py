"""Each rule's training step on real data, as a ratio to bp's — the figure the step-cost target is read on.

Fashion-MNIST epochs of the paper's network at batch 32, each rule at its defaults, sleeps as training runs
them, epochs interleaved rule by rule after an untimed first one (`rf_core.bench.training_step_cost`). Random
data (`rfsweep bench`'s step-cost table) moves the weights unlike training and reads higher for the rules
whose sleep adapts its length. Usage:
    python benchmarks/training_step_cost.py --data-dir /usr/share/datasets/fashion-mnist [--threads 1] [--rounds 3]
        [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from rf_core.bench import machine, training_step_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {**training_step_cost(args.data_dir, rounds=args.rounds), **machine(), "threads": args.threads}
    if args.json:
        print(json.dumps(report))
        return
    for name, ratio in report["step_time_ratio_vs_bp"].items():
        print(f"{name:14s} {report['epoch_seconds_median'][name]:7.3f} s/epoch  {ratio:.3f} × bp")
    print(f"({report['cpu_model']}, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
