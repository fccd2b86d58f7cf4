"""Fault injection for tests and drills: make trials crash once, mid-run, in the worker.

`RFSWEEP_INJECT_CRASH="EPOCH[:TRIALS]"` (read by the driver when a sweep starts) makes up to TRIALS trials
(default 1) raise once just before reporting epoch EPOCH. A marker file per trial, under the sweep's
storage folder, makes the crash happen once: the retry, restored from the last checkpoint, goes on.
Nothing here lives in rf_core: the crash is raised from the sweep's per-epoch callback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "RFSWEEP_INJECT_CRASH"


class InjectedCrash(RuntimeError):
    """The crash asked for by RFSWEEP_INJECT_CRASH."""


@dataclass(frozen=True)
class CrashPlan:
    epoch: int
    max_trials: int
    marker_dir: str


def plan_from_env(marker_dir: str | os.PathLike) -> CrashPlan | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    epoch_text, _, trials_text = raw.partition(":")
    try:
        epoch, trials = int(epoch_text), int(trials_text or 1)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={raw!r}: expected EPOCH or EPOCH:TRIALS (integers)") from None
    return CrashPlan(epoch=epoch, max_trials=trials, marker_dir=str(marker_dir))


def maybe_crash(plan: CrashPlan | None, trial_id: str, epoch: int) -> None:
    """Raise InjectedCrash the first time this trial reaches the planned epoch (for up to max_trials trials)."""
    if plan is None or epoch != plan.epoch:
        return
    folder = Path(plan.marker_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / trial_id).exists() or len(list(folder.iterdir())) >= plan.max_trials:
        return
    try:
        fd = os.open(folder / trial_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    raise InjectedCrash(f"injected crash in trial {trial_id} at epoch {epoch} ({ENV_VAR})")
