"""ASHA against no early stopping: the same configurations, searched with the paper's protocol both ways.

    python benchmarks/asha_throughput.py [--algorithm bp] [--configurations 20] [--epochs 100] \
        [--data-dir /usr/share/datasets/fashion-mnist] [--train-subset N]

Runs `rfsweep sweep --json` twice in subprocesses with fresh RFSWEEP_HOMEs: HyperOpt (seed 0) over the
paper's domain (lr log-uniform [1e-4, 1e-2], feedback lr [1e-6, 1e-3] for rf_parallel), batch 32,
selection on test accuracy, once with ASHA (grace 1, reduction ×4, max_t = epochs) and once FIFO to
max_t. With num_samples ≤ 20 HyperOpt never leaves its random start-up (Ray's n_initial_points = 20), but
its draws still depend on the order trials are suggested and finish in, so the two sides' configurations
can differ (2026-12-01, 20 configurations: they did); the script reports whether they matched. Prints one
JSON line per side and a last line with trials per hour, the speed-up and the best test accuracy each found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def spec_for(scheduler: dict, args: argparse.Namespace) -> dict:
    dataset = {"name": "fashion_mnist", "data_dir": args.data_dir}
    if args.train_subset:
        dataset["train_subset"] = args.train_subset
    return {
        "name": f"asha-throughput-{scheduler['type']}",
        "dataset": dataset,
        "algorithm": args.algorithm,
        "search": {
            "method": "hyperopt",
            "metric": "test_accuracy",
            "mode": "max",
            "num_samples": args.configurations,
            "seed": 0,
            "max_concurrent_trials": args.concurrency,
        },
        "scheduler": scheduler,
        "resources": {"cpu": 1, "gpu": 0},
    }


def run(spec: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="rfsweep-asha-") as home:
        spec_file = Path(home) / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec))
        env = {**os.environ, "RFSWEEP_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rfsweep_cli.main", "sweep", str(spec_file), "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"rfsweep sweep failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    trials = result["trials"]
    best = max(trials, key=lambda t: t["best_metric"] if t["best_metric"] is not None else -1.0)
    return {
        "scheduler": spec["scheduler"]["type"],
        "wall_s": round(wall, 1),
        "trials": len(trials),
        "trial_epochs": sum(t["epochs"] for t in trials),
        "trials_per_hour": round(len(trials) / wall * 3600, 1),
        "best_test_accuracy": best["best_metric"],
        "best_params": best["params"],
        "statuses": result["counts"],
        "configurations": sorted(json.dumps(t["params"], sort_keys=True) for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="bp")
    parser.add_argument("--configurations", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-subset", type=int, default=None)
    args = parser.parse_args()
    if args.configurations > 20:
        parser.error("above 20 configurations HyperOpt adapts to the results, so the two sides would differ")
    asha = run(spec_for({"type": "asha", "max_t": args.epochs, "grace_period": 1, "reduction_factor": 4}, args))
    fifo = run(spec_for({"type": "fifo", "max_t": args.epochs}, args))
    same = asha.pop("configurations") == fifo.pop("configurations")
    for side in (asha, fifo):
        print(json.dumps(side), flush=True)
    print(
        json.dumps(
            {
                "same_configurations": same,
                "speedup_trials_per_hour": round(asha["trials_per_hour"] / fifo["trials_per_hour"], 2),
                "wall_ratio_fifo_over_asha": round(fifo["wall_s"] / asha["wall_s"], 2),
                "best_test_accuracy": {"asha": asha["best_test_accuracy"], "fifo": fifo["best_test_accuracy"]},
                "algorithm": args.algorithm,
                "configurations": args.configurations,
                "epochs": args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
