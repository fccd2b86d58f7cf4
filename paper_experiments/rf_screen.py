"""Screen training configurations on Fashion-MNIST, selecting on validation (the runs behind docs/RF_CORE.md's
"How the defaults were chosen"): one flat training config per line in, one JSON result per line out.

    python -m paper_experiments.rf_screen CONFIGS.jsonl RESULTS.jsonl [--parallel 2] [--data-dir DIR]

Each config line is a flat `TrainConfig.from_dict` mapping (dataset and data_dir added); each result carries
the best validation accuracy, the test accuracy at that epoch (reported, never used to choose), the final
training accuracy, the rule's run report (feedback failures, sleep steps) and the wall time. Runs use one
thread each, `--parallel` at a time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any


def run_one(job: tuple[dict[str, Any], str]) -> dict[str, Any]:
    flat, data_dir = job
    import torch

    torch.set_num_threads(1)
    from rf_core import ANGLE_METRIC, TrainConfig, train

    config = TrainConfig.from_dict({"dataset": "fashion_mnist", "data_dir": data_dir, **flat})
    started = time.time()
    result = train(config)
    history = result.history
    best = max(range(len(history)), key=lambda i: history[i]["val_accuracy"]) if history else 0
    roundtrip = {
        key: round(max(record.get(key, 0.0) for record in history), 4)
        for key in (history[0] if history else {})
        if key.startswith("feedback_roundtrip")
    }
    largest_angle = f"{ANGLE_METRIC}_max"
    angles = [round(record[largest_angle], 2) for record in history if largest_angle in record]
    return {
        "cfg": flat,
        "status": result.status,
        "epochs": len(history),
        "best_val": round(history[best]["val_accuracy"], 4) if history else None,
        "test_at_best_val": round(history[best]["test_accuracy"], 4) if history else None,
        "final_val": round(history[-1]["val_accuracy"], 4) if history else None,
        "final_test": round(history[-1]["test_accuracy"], 4) if history else None,
        "final_train": round(history[-1]["train_accuracy"], 4) if history else None,
        "report": result.rule_report,
        "max_roundtrip": roundtrip,
        # kolen_pollack, weight_mirror: the largest ∠(B_l, W_l) over layers after each epoch (degrees)
        **({"angle_to_w_deg_max_by_epoch": angles} if angles else {}),
        "sec": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    jobs = [(json.loads(line), args.data_dir) for line in args.configs.read_text().splitlines() if line.strip()]
    with args.results.open("a") as out, mp.get_context("spawn").Pool(args.parallel) as pool:
        for result in pool.imap_unordered(run_one, jobs):
            out.write(json.dumps(result) + "\n")
            out.flush()
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
