"""The status vocabulary of sweeps and trials, and the shape of a sweep's progress counts.

Every layer speaks these names: the runner and MLflow tags (trials), the API's store and bodies (sweeps),
the CLI's displays (both). They are defined here and nowhere else (tests/sweep_service/test_vocabulary.py fails
on a status value written as a literal elsewhere); rf_core's own result statuses are `rf_core.ResultStatus`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from sweep_service.mlflow_names import RunStatus


class TrialStatus(StrEnum):
    PENDING = "pending"  # suggested or waiting for resources; not training yet
    RUNNING = "running"
    PAUSED = "paused"  # the sweep was paused: stopped at its last checkpoint, continues from it on resume
    FINISHED = "finished"  # trained up to the scheduler's max_t
    STOPPED_EARLY = "stopped_early"  # stopped by ASHA at a rung
    FAILED = "failed"  # crashed, after its retries
    DIVERGED = "diverged"  # loss became NaN/inf: a result, never retried
    CANCELLED = "cancelled"  # the sweep was cancelled before the trial ended

    @property
    def terminal(self) -> bool:
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED)

    def closed_by(self, sweep: SweepStatus) -> TrialStatus:
        """What a trial still pending, running or paused becomes when its sweep ends with `sweep` without it: it
        never started, or never finished. Running in a failed sweep: failed; otherwise cancelled."""
        if self.terminal:
            return self
        if sweep is SweepStatus.FAILED and self is TrialStatus.RUNNING:
            return TrialStatus.FAILED
        return TrialStatus.CANCELLED

    @property
    def mlflow_run_status(self) -> RunStatus:
        """How a run ends in MLflow: honest about failures and cancellations."""
        return {
            TrialStatus.PENDING: RunStatus.SCHEDULED,
            TrialStatus.RUNNING: RunStatus.RUNNING,
            TrialStatus.PAUSED: RunStatus.SCHEDULED,  # MLflow has no "paused"; resumed, the same run goes on
            TrialStatus.FINISHED: RunStatus.FINISHED,
            TrialStatus.STOPPED_EARLY: RunStatus.FINISHED,
            TrialStatus.FAILED: RunStatus.FAILED,
            TrialStatus.DIVERGED: RunStatus.FAILED,
            TrialStatus.CANCELLED: RunStatus.KILLED,
        }[self]


class SweepStatus(StrEnum):
    QUEUED = "queued"  # accepted by the API, waiting for a free slot (the runner never reports it)
    RUNNING = "running"
    PAUSED = "paused"  # its trials stopped at their checkpoints; `resume` continues them (same MLflow runs)
    SUCCEEDED = "succeeded"  # every trial reached a terminal status and at least one produced a usable result
    FAILED = "failed"  # no trial produced a usable result (all errored or diverged), or the sweep itself broke
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (SweepStatus.QUEUED, SweepStatus.RUNNING, SweepStatus.PAUSED)

    @property
    def mlflow_run_status(self) -> RunStatus:
        """How the sweep's parent run ends (or waits, paused) in MLflow."""
        statuses = {
            SweepStatus.SUCCEEDED: RunStatus.FINISHED,
            SweepStatus.CANCELLED: RunStatus.KILLED,
            SweepStatus.PAUSED: RunStatus.SCHEDULED,
        }
        return statuses.get(self, RunStatus.FAILED)


TERMINAL_SWEEP_STATUSES: tuple[str, ...] = tuple(s.value for s in SweepStatus if s.terminal)


@dataclass
class ProgressCounts:
    """A sweep's trials by status (one count per trial status, and their total), and the epochs it trained
    out of the most it can spend."""

    # One field per TrialStatus (tests/sweep_service/test_status.py holds them to it). This is `progress` in
    # the API's bodies and store, what the driver writes and what the CLI's displays count.

    total: int = 0
    pending: int = 0
    running: int = 0
    paused: int = 0
    finished: int = 0
    stopped_early: int = 0
    failed: int = 0
    diverged: int = 0
    cancelled: int = 0
    epochs_done: Annotated[int, Field(description="Epochs trained so far, over all trials.")] = 0
    max_epochs: Annotated[int, Field(description="The most epochs the sweep can spend (every trial to max_t).")] = 0

    @classmethod
    def queued(cls, total_trials: int | None, max_epochs: int | None) -> ProgressCounts:
        """A sweep nothing has run of yet: every trial pending."""
        total = total_trials or 0
        return cls(total=total, pending=total, max_epochs=max_epochs or 0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressCounts:
        """Counts read back from JSON (the store, an API answer); missing counts are 0."""
        return cls(**{name: int(data.get(name) or 0) for name in cls.__dataclass_fields__})

    def trials(self, status: TrialStatus) -> int:
        return int(getattr(self, status.value))

    @property
    def done(self) -> int:
        """Trials in a terminal status."""
        return sum(self.trials(s) for s in TrialStatus if s.terminal)

    def trial_counts(self) -> dict[str, int]:
        """The trials alone: one entry per status, then `total` (`rfsweep sweep --json`'s `counts`)."""
        return {**{s.value: self.trials(s) for s in TrialStatus}, "total": self.total}

    def closed(self, sweep: SweepStatus) -> ProgressCounts:
        """The counts once the sweep has ended with `sweep`: no trial left pending, running or paused
        (`TrialStatus.closed_by`)."""
        counts = ProgressCounts(**asdict(self))
        for status in (s for s in TrialStatus if not s.terminal):
            moved = counts.trials(status)
            if moved:
                setattr(counts, status.value, 0)
                target = status.closed_by(sweep)
                setattr(counts, target.value, counts.trials(target) + moved)
        return counts

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
