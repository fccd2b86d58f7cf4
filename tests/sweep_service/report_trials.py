"""A fake but realistic sweep for the report tests (imported by name: pytest puts this folder on sys.path).

Two rules searched over lr (log-uniform), hidden widths (lists) and activation (categorical), where the
metric depends on lr above all; ASHA stops some trials at epoch 4, high lr diverges, one trial crashed,
one curve holds a NaN; a third rule (`fa`) whose every trial diverged.
"""

from __future__ import annotations

import math
import random

from sweep_service.report import ReportTrial

METRIC = "val_accuracy"


def digits_like_trials(per_rule: int = 8, epochs: int = 10, seed: int = 0) -> list[ReportTrial]:
    rng = random.Random(seed)
    trials = []
    for rule in ("bp", "rf_two_phase"):
        for i in range(per_rule):
            lr = 10 ** rng.uniform(-3, 0.3)
            hidden = rng.choice([[64, 32], [128], [32, 32, 32]])
            activation = rng.choice(["leaky_relu", "tanh"])
            ceiling = 0.97 - 0.22 * abs(math.log10(lr) + 1) + (0.01 if hidden == [128] else 0)
            status, reason, last = "finished", None, epochs
            if lr > 1.0:
                status, last = "diverged", 3
                reason = "diverged: the loss became NaN/inf in epoch 4"
            elif i == 5:
                status, last, reason = "failed", 2, "crashed after 2 retries: RuntimeError: worker died"
            elif i % 3 == 2:
                status, last = "stopped_early", 4
                reason = f"stopped by ASHA at epoch 4: {METRIC} 0.71 missed the rung cutoff 0.82"
            curve = {e: ceiling * (1 - math.exp(-e / 2.5)) + rng.gauss(0, 0.004) for e in range(1, last + 1)}
            if i == 1:
                curve[2] = float("nan")
            tid = f"{rng.getrandbits(32):08x}"
            config = {
                "algorithm": rule,
                "dataset": "digits",
                "lr": lr,
                "hidden": hidden,
                "activation": activation,
                "batch_size": 32,
                "epochs": epochs,
                "seed": 0,
            }
            trials.append(
                ReportTrial(
                    trial_id=tid,
                    rule=rule,
                    status=status,
                    params={"lr": lr, "hidden": hidden, "activation": activation},
                    config=config,
                    curve=curve,
                    reason=reason,
                    mlflow_run_id=f"{rng.getrandbits(128):032x}",
                    run_name=f"{rule} #{tid}",
                )
            )
    for i in range(3):
        tid = f"fa{i:06d}"
        trials.append(
            ReportTrial(
                trial_id=tid,
                rule="fa",
                status="diverged",
                params={"lr": 2.0 + i, "hidden": [64, 32], "activation": "tanh"},
                curve={1: 0.3} if i else {},
                reason=f"diverged: the loss became NaN/inf in epoch {i + 1}",
                mlflow_run_id=f"{i:032x}",
            )
        )
    return trials
