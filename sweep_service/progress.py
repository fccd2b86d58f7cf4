"""What a caller of `run_sweep` follows a sweep by: the progress it receives (`SweepProgress`) and the hooks it
steers the sweep with (`SweepHooks`); the monitor (`monitor.SweepMonitor`) calls both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import ProgressCounts

PROGRESS_EVERY_S = 0.5  # the most often `on_progress` is called while trials report
STOP_POLL_EVERY_S = 0.25  # how often `should_stop` and `should_pause` are asked


@dataclass
class SweepProgress:
    """What `on_progress` receives while a sweep runs (and once at its end)."""

    sweep_id: str
    counts: ProgressCounts
    best: BestEntry | None
    trials: list[TrialSummary]
    experiment_id: str | None
    parent_run_id: str | None
    elapsed_seconds: float
    metric: str
    mode: str


@dataclass(frozen=True)
class SweepHooks:
    """How a caller follows and steers a running sweep: `on_progress` gets the progress (at most every
    PROGRESS_EVERY_S, and at the end); `should_stop()` and `should_pause()` are polled every STOP_POLL_EVERY_S
    (True: cancel; True: pause, which needs Tune on the main thread)."""

    on_progress: Callable[[SweepProgress], None] | None = None
    should_stop: Callable[[], bool] | None = None
    should_pause: Callable[[], bool] | None = None
