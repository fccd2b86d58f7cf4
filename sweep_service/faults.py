"""Fault injection for tests and drills: make trials crash once, mid-run, in the worker.

`RFSWEEP_INJECT_CRASH="EPOCH[:TRIALS[:kill]]"` (read by the driver when a sweep starts) makes up to TRIALS
trials (default 1) raise once just before reporting epoch EPOCH — or, with `kill`, SIGKILL their own worker
process there, as `kill -9` of a trial worker would. A marker file per trial, under the sweep's storage
folder, makes the crash happen once: the retry, restored from the last checkpoint, goes on.
Nothing here lives in rf_core: the crash is raised from the sweep's per-epoch callback.
"""

from __future__ import annotations

import os
import signal
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
    kill: bool = False  # SIGKILL the worker process instead of raising


def plan_from_env(marker_dir: str | os.PathLike) -> CrashPlan | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    epoch_text, _, rest = raw.partition(":")
    trials_text, _, mode = rest.partition(":")
    try:
        epoch, trials = int(epoch_text), int(trials_text or 1)
        if mode not in ("", "kill"):
            raise ValueError(mode)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={raw!r}: expected EPOCH, EPOCH:TRIALS or EPOCH:TRIALS:kill") from None
    return CrashPlan(epoch=epoch, max_trials=trials, marker_dir=str(marker_dir), kill=mode == "kill")


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
    if plan.kill:
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedCrash(f"injected crash in trial {trial_id} at epoch {epoch} ({ENV_VAR})")
