"""What one sweep may cost, and the defaults: trials, epochs, concurrency and resources, and what one trial may
cost — the network's widths, depth and weights, the sleep's step counts and noise batch, retries.

The API enforces them per request (each one a setting `RFSWEEP_LIMIT_<NAME>`, `api/settings.py`);
`rfsweep validate` reports them with these defaults, so a user learns them before submitting; the spec's
JSON Schema states them. The checks are `sweep_service.spec.costs`. (No heavy imports here: the API's settings
read this module.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CostLimits:
    """The limits, with their defaults. Field `x` is the API's setting RFSWEEP_LIMIT_X."""

    num_samples: int = 200  # search.num_samples (trials per rule)
    total_trials: int = 1000  # trials in all (num_samples × rules)
    max_t: int = 200  # scheduler.max_t (epochs per trial)
    concurrency: int = 16  # search.max_concurrent_trials
    cpu_per_trial: float = 8  # resources.cpu
    gpu_per_trial: float = 1  # resources.gpu
    width: int = 4096  # a hidden layer's width
    depth: int = 8  # hidden layers
    weights: int = 20_000_000  # a network's weights (input × hidden × … × classes)
    sleep_steps: int = 10_000  # sleep_steps, sleep_max_steps, development_steps
    noise_batch: int = 4096  # sleep_noise_batch
    max_failures: int = 5  # failure.max_failures (retries of a crashed trial)

    @staticmethod
    def setting(name: str) -> str:
        return f"RFSWEEP_LIMIT_{name.upper()}"

    def described(self) -> dict[str, dict[str, Any]]:
        """Every limit: its value, the setting that changes it on a server, what it bounds."""
        return {
            f.name: {"value": getattr(self, f.name), "setting": self.setting(f.name), "bounds": _BOUNDS[f.name]}
            for f in dataclasses.fields(self)
        }


_BOUNDS = {
    "num_samples": "search.num_samples",
    "total_trials": "search.num_samples × the number of rules",
    "max_t": "scheduler.max_t",
    "concurrency": "search.max_concurrent_trials",
    "cpu_per_trial": "resources.cpu",
    "gpu_per_trial": "resources.gpu",
    "width": "each width of hidden (model.hidden or a parameter)",
    "depth": "the number of hidden layers",
    "weights": "a network's weights: input × h1 + h1 × h2 + … + hn × classes",
    "sleep_steps": "sleep_steps, sleep_max_steps, development_steps",
    "noise_batch": "sleep_noise_batch",
    "max_failures": "failure.max_failures",
}
