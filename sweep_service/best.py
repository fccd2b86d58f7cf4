"""Which trials a sweep shows as its result: the usable trials (a finite last value, not diverged or failed),
the best of each rule and of the sweep (ties as TIE_BREAK says), and, where there is none, why."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from sweep_service import ranking
from sweep_service.records import BestEntry
from sweep_service.status import TrialStatus
from sweep_service.trials import TrialRecord

TIE_BREAK = "equal values go to the trial that started first"


def best_record(pool: Iterable[TrialRecord], mode: str, algorithm: str | None = None) -> TrialRecord | None:
    """The usable trial (of `algorithm`, or any) with the best `last_metric` for `mode`; ties as TIE_BREAK."""
    usable = [r for r in pool if r.usable and (algorithm is None or r.algorithm == algorithm)]
    order = sorted(usable, key=lambda r: (math.inf if r.started_at is None else r.started_at, r.trial_id))
    if not order:
        return None
    sign = ranking.sign(mode)
    return max(order, key=lambda r: sign * (r.last_metric or 0.0))  # max keeps the first of equals


def best_per_rule(pool: Sequence[TrialRecord], rules: Sequence[str], mode: str) -> dict[str, TrialRecord]:
    """Each listed rule's best usable trial (rules without one left out)."""
    return {rule: rec for rule in rules if (rec := best_record(pool, mode, rule)) is not None}


def entries(best: dict[str, TrialRecord], metric: str) -> dict[str, BestEntry]:
    return {rule: rec.best_entry(metric) for rule, rec in best.items()}


def no_result_reason(pool: Sequence[TrialRecord], total: int) -> str | None:
    """Why the sweep has nothing to show (None: some trial produced a usable result), with the trials' counts
    and the first failure's reason."""
    if any(r.usable for r in pool):
        return None
    reason = f"no trial produced a usable result ({tally(pool, total)})"
    first = next((r.reason for r in pool if r.reason and r.status is TrialStatus.FAILED), None)
    first = first or next((r.reason for r in pool if r.reason), None)
    return f"{reason}; first: {first}" if first else reason


def rules_without_result(pool: Sequence[TrialRecord], rules: Sequence[str]) -> dict[str, str]:
    """Each listed rule none of whose trials produced a usable result, and why (their counts)."""
    usable = {r.algorithm for r in pool if r.usable}
    out = {}
    for rule in rules:
        if rule not in usable:
            records = [r for r in pool if r.algorithm == rule]
            out[rule] = f"no usable trial: {tally(records, len(records))}"
    return out


def tally(records: Sequence[TrialRecord], total: int) -> str:
    """ "2 failed, 1 diverged of 3": the trials by status, then how many there are."""
    by_status = {s: sum(1 for r in records if r.status is s) for s in TrialStatus}
    parts = [f"{n} {s.value.replace('_', ' ')}" for s, n in by_status.items() if n]
    unseen = total - len(records)
    if unseen > 0:
        parts.append(f"{unseen} never started")
    return f"{', '.join(parts) or 'none'} of {total}"
