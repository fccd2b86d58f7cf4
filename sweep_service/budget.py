"""A sweep's budget, computed from the spec alone (no Ray): trials, ASHA rungs, most epochs."""

from __future__ import annotations

import math
from typing import Any

from sweep_service.spec.model import AshaSchedulerSpec, SweepSpec


def total_trials(spec: SweepSpec) -> int:
    """num_samples trials for each listed rule."""
    return spec.total_trials


def asha_rungs(spec: SweepSpec) -> list[int]:
    """The epochs at which ASHA may stop a trial (Tune's milestones, grace_period · rf^k < max_t)."""
    sched = spec.scheduler
    if not isinstance(sched, AshaSchedulerSpec):
        return []
    count = int(math.log(sched.max_t / sched.grace_period) / math.log(sched.reduction_factor) + 1)
    rungs = {math.ceil(sched.grace_period * sched.reduction_factor**k - 1e-9) for k in range(count)}
    return sorted(r for r in rungs if r < sched.max_t)


def max_epochs(spec: SweepSpec) -> int:
    """The most epochs the sweep can spend: every trial trained to max_t (ASHA may stop many sooner)."""
    return total_trials(spec) * spec.max_t


def min_epochs(spec: SweepSpec) -> int:
    """The fewest: every trial stopped at its first rung (FIFO: all run to max_t)."""
    rungs = asha_rungs(spec)
    return total_trials(spec) * (rungs[0] if rungs else spec.max_t)


def expected_asha_epochs(spec: SweepSpec) -> int:
    """Epochs if ASHA keeps the top 1/rf at each rung (its design point), per rule."""
    rungs = asha_rungs(spec)
    if not rungs or not isinstance(spec.scheduler, AshaSchedulerSpec):
        return max_epochs(spec)
    rf = spec.scheduler.reduction_factor
    n = spec.search.num_samples
    epochs, previous = 0.0, 0
    for k, rung in enumerate([*rungs, spec.max_t]):
        survivors = n / rf**k
        epochs += survivors * (rung - previous)
        previous = rung
    return round(epochs * len(spec.algorithms))


def budget_summary(spec: SweepSpec) -> dict[str, Any]:
    return {
        "algorithms": spec.algorithms,
        "trials_per_algorithm": spec.search.num_samples,
        "total_trials": total_trials(spec),
        "max_t": spec.max_t,
        "scheduler": spec.scheduler.type,
        "asha_rungs": asha_rungs(spec),
        "max_epochs": max_epochs(spec),
        "min_epochs": min_epochs(spec),
        "expected_epochs_with_asha": expected_asha_epochs(spec),
        "max_concurrent_trials": spec.search.max_concurrent_trials,
        "metric": spec.metric,
        "mode": spec.mode,
    }
