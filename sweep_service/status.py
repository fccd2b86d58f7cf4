"""The trial status vocabulary, shared by the CLI output, MLflow tags and the API."""

from __future__ import annotations

from enum import Enum


class TrialStatus(str, Enum):
    PENDING = "pending"  # suggested or waiting for resources; not training yet
    RUNNING = "running"
    FINISHED = "finished"  # trained up to the scheduler's max_t
    STOPPED_EARLY = "stopped_early"  # stopped by ASHA at a rung
    FAILED = "failed"  # crashed, after its retries
    DIVERGED = "diverged"  # loss became NaN/inf: a result, never retried
    CANCELLED = "cancelled"  # the sweep was cancelled before the trial ended

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)

    @property
    def mlflow_run_status(self) -> str:
        """How a run ends in MLflow: honest about failures and cancellations."""
        return {
            TrialStatus.PENDING: "SCHEDULED",
            TrialStatus.RUNNING: "RUNNING",
            TrialStatus.FINISHED: "FINISHED",
            TrialStatus.STOPPED_EARLY: "FINISHED",
            TrialStatus.FAILED: "FAILED",
            TrialStatus.DIVERGED: "FAILED",
            TrialStatus.CANCELLED: "KILLED",
        }[self]


TRIAL_STATUSES: tuple[str, ...] = tuple(s.value for s in TrialStatus)
