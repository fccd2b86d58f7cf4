"""What a rule's step adds to a bp step, part by part, each part timed alone: the timed floor of its step ratio
(`rf_core.bench.step_floor`, also in `rfsweep bench --json` as `step_floor_ratio_vs_bp`).

On the paper's MNIST network at batch 32 (random data, the rules' defaults unless --set), in one process and
interleaved round by round: bp's whole step, the rule's whole step, and alone the parts only the rule runs —
the joint step's Grams and batched Cholesky inverse, its step-weight products, rf_parallel's feedback update,
rf_two_phase's sleep divided by its period. Usage:
    python benchmarks/rf_extra_parts.py [--rule rf_two_phase] [--set FIELD=VALUE ...] [--rounds 7] [--threads 1]
        [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from rf_core.bench import machine, step_floor


def _value(text: str) -> object:
    """A JSON value (`20`, `0.5`, `true`), else the text itself (`update=paper`)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rule", default="rf_two_phase")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    report = {**step_floor(args.rule, overrides, rounds=args.rounds), "set": overrides, **machine()}
    if args.json:
        print(json.dumps(report))
        return
    for name, micros in report["microseconds_median"].items():
        print(f"{name:28s} {micros:8.1f} µs")
    floor, measured = report["floor_ratio"], report["measured_ratio"]
    floor_text = f"timed floor {floor:.3f} ×" if floor is not None else "no timed floor (no parts model here)"
    print(f"{floor_text}, measured {measured:.3f} × bp ({report['cpu_model']})")


if __name__ == "__main__":
    main()
