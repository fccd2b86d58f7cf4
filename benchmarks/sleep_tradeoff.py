"""The trade-off behind rf_two_phase's default sleep: LMS steps per sleep against validation accuracy and step cost.

Accuracy: the 20-epoch Fashion-MNIST validation screen of docs/results/defaults_screen_2026-12-01 (s2: fixed sleep
lengths and the closed-form oracle, seeds 10 and 11; s4/s5: the default, rounds of 5 steps until the round trip is
within tolerance, with 256 or 64 noise samples). Cost: this machine's step time of each variant against bp's
(`rf_core.bench.step_cost`, interleaved rounds, one thread unless --threads) and its timed floor. Usage:
    python benchmarks/sleep_tradeoff.py [--threads 1] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from rf_core import bench

SCREEN = Path(__file__).resolve().parent.parent / "docs" / "results" / "defaults_screen_2026-12-01"
FIXED = {"roundtrip_tolerance": 1.0, "sleep_noise_batch": 256}  # fixed-length sleeps, as screened in s2
VARIANTS: dict[str, dict[str, Any]] = {
    "bp": {},
    "5 steps (fixed)": {"sleep_steps": 5, "sleep_max_steps": 5, **FIXED},
    "10 steps (fixed)": {"sleep_steps": 10, "sleep_max_steps": 10, **FIXED},
    "20 steps (fixed)": {"sleep_steps": 20, "sleep_max_steps": 20, **FIXED},
    "40 steps (fixed)": {"sleep_steps": 40, "sleep_max_steps": 40, **FIXED},
    "5-step rounds, 256 samples": {"sleep_noise_batch": 256},
    "default: 5-step rounds, 64 samples": {},
    "oracle (closed-form Cholesky)": {"feedback": "oracle_cholesky"},
}


def _screen_accuracy() -> dict[str, list[float]]:
    rows = [json.loads(line) for f in sorted(SCREEN.glob("s*.results.jsonl")) for line in f.read_text().splitlines()]
    out: dict[str, list[float]] = {}
    for row in rows:
        cfg = row["cfg"]
        if cfg.get("algorithm") != "rf_two_phase" or cfg.get("epochs") != 20 or cfg.get("seed") not in (10, 11):
            continue
        knobs = {k: v for k, v in cfg.items() if k not in ("algorithm", "epochs", "seed")}
        if knobs.get("roundtrip_tolerance") == 1:
            label = f"{knobs['sleep_steps']} steps (fixed)"
        elif knobs == {"feedback": "oracle_cholesky"}:
            label = "oracle (closed-form Cholesky)"
        elif knobs == {"sleep_steps": 5}:
            label = "5-step rounds, 256 samples"
        elif knobs == {"sleep_steps": 5, "sleep_noise_batch": 64}:
            label = "default: 5-step rounds, 64 samples"
        else:
            continue
        out.setdefault(label, []).append(row["best_val"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = {("bp" if k == "bp" else f"rf_two_phase[{k}]"): v for k, v in VARIANTS.items()}
    cost = bench.step_cost(rounds=args.rounds, steps=200, variants=variants, floors=True)
    accuracy = _screen_accuracy()
    rows = []
    for label in VARIANTS:
        if label == "bp":
            continue
        name = f"rf_two_phase[{label}]"
        vals = accuracy.get(label, [])
        rows.append(
            {
                "sleep": label,
                "val_accuracy_mean": round(statistics.mean(vals), 4) if vals else None,
                "seeds": len(vals),
                "step_time_ratio_vs_bp": round(cost["step_time_ratio_vs_bp"][name], 3),
                "step_floor_ratio_vs_bp": cost["step_floor_ratio_vs_bp"][name],
            }
        )
    report = {
        "rows": rows,
        "bp_step_ms": round(cost["step_seconds_median"]["bp"] * 1e3, 3),
        "threads": args.threads,
        **bench.machine(),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['cpu_model']}, {args.threads} thread(s), bp {report['bp_step_ms']} ms/step")
    print("| sleep | best validation accuracy (mean, seeds 10/11) | step ÷ bp | timed floor ÷ bp |")
    print("|---|---|---|---|")
    for r in rows:
        acc = f"{r['val_accuracy_mean']:.4f}" if r["val_accuracy_mean"] is not None else "—"
        floor = r["step_floor_ratio_vs_bp"]
        floor_text = f"{floor:.3f}" if floor is not None else "—"
        print(f"| {r['sleep']} | {acc} | {r['step_time_ratio_vs_bp']:.3f} | {floor_text} |")


if __name__ == "__main__":
    main()
