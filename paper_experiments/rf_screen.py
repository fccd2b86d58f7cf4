"""Screen training-config variants of one rule on Fashion-MNIST (the runs behind docs/RF_STABILITY.md).

    OMP_NUM_THREADS=1 python -m paper_experiments.rf_screen RULE EPOCHS SUBSET \
        '[{"rf_backward": "gated", "lr": 1.0}, ...]'

SUBSET 0 = the full training set. Prints, per variant, test and train accuracy after every epoch.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from rf_core import TrainConfig, train


def main() -> None:
    torch.set_num_threads(1)
    rule, epochs, subset, variants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    for overrides in variants:
        started = time.time()
        result = train(
            TrainConfig(
                algorithm=rule,
                dataset="fashion_mnist",
                data_dir="/usr/share/datasets/fashion-mnist",
                epochs=epochs,
                diagnostics=False,
                train_subset=subset or None,
                **overrides,
            )
        )
        test = [round(r["test_accuracy"], 3) for r in result.history]
        train_acc = [round(r["train_accuracy"], 3) for r in result.history]
        print(
            rule,
            overrides,
            result.status,
            "test",
            test,
            "train",
            train_acc,
            f"{time.time() - started:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
