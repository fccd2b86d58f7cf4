"""Trial checkpoints that survive a driver killed at the wrong moment.

Tune keeps `num_to_keep` checkpoints per trial and deletes older ones as new ones land, but its
experiment snapshot (what `Tuner.restore` reads) is written a little later. A driver killed in between
leaves a snapshot that points at a checkpoint folder already deleted, and Tune's restore then fails the
trial on every retry ("checkpoint path does not exist"). Before a restore, `fill_deleted_checkpoints`
puts an empty stand-in folder where such a checkpoint was; the trial, finding a stand-in (or a checkpoint
cut short by the kill), resumes from the newest complete checkpoint next to it instead, which holds at
least as many epochs as the one the snapshot remembered.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from sweep_service import mlflow_names as names

STATE_FILE = "state.pt"  # the whole training state (rf_core's resume state)
WEIGHTS_FILE = names.WEIGHTS_FILE  # the model's weights alone, written where a trial may end (the driver copies it)
STAND_IN_MARKER = ".rfsweep-stand-in"
_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d+)$")
# How far behind the newest checkpoint a snapshot can point: Tune forces a snapshot every
# num_to_keep (2) checkpoints, so a few suffice; the margin covers a snapshot delayed by a busy driver.
DEFAULT_WINDOW = 8

log = logging.getLogger(__name__)


def _checkpoint_dirs(trial_dir: Path) -> dict[int, Path]:
    found = {}
    for child in trial_dir.iterdir():
        match = _CHECKPOINT_DIR.match(child.name)
        if match and child.is_dir():
            found[int(match.group(1))] = child
    return found


def fill_deleted_checkpoints(experiment_path: str | Path, window: int = DEFAULT_WINDOW) -> int:
    """Create stand-ins for the checkpoint folders just below each trial's newest one; returns how many."""
    root = Path(experiment_path)
    if not root.is_dir():
        return 0
    created = 0
    for trial_dir in (d for d in root.iterdir() if d.is_dir()):
        present = _checkpoint_dirs(trial_dir)
        if not present:
            continue
        newest = max(present)
        for index in range(max(0, newest - window), newest):
            if index not in present:
                stand_in = trial_dir / f"checkpoint_{index:06d}"
                stand_in.mkdir()
                (stand_in / STAND_IN_MARKER).write_text(f"stands in for a deleted checkpoint; see {__name__}\n")
                created += 1
    return created


def remove_stand_ins(experiment_path: str | Path) -> int:
    """Delete the stand-ins no restored trial used (Tune deletes the ones it tracked)."""
    root = Path(experiment_path)
    removed = 0
    for marker in root.glob(f"*/checkpoint_*/{STAND_IN_MARKER}") if root.is_dir() else []:
        shutil.rmtree(marker.parent, ignore_errors=True)
        removed += 1
    return removed


def load_resume_state(checkpoint_dir: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The training state in `checkpoint_dir`, or, if it is a stand-in or unreadable, in its newest readable sibling."""
    import torch

    given = Path(checkpoint_dir)
    candidates = [given]
    if given.parent.is_dir():
        siblings = _checkpoint_dirs(given.parent)
        candidates += [siblings[i] for i in sorted(siblings, reverse=True) if siblings[i] != given]
    problems = []
    for folder in candidates:
        state_file = folder / STATE_FILE
        if not state_file.is_file():
            problems.append(f"{folder.name}: no {STATE_FILE}")
            continue
        try:
            state = torch.load(state_file, map_location=map_location, weights_only=False)
        except Exception as exc:  # a file cut short by a killed process
            problems.append(f"{folder.name}: {type(exc).__name__}: {exc}")
            continue
        if folder != given:
            log.warning("checkpoint %s is unusable (%s); resuming from %s", given, "; ".join(problems), folder.name)
        return state
    raise FileNotFoundError(f"no readable training state in {given} or beside it: {'; '.join(problems)}")


def checkpoint_history(checkpoint: Any, trial_id: str) -> list[dict[str, Any]]:
    """The epoch records a Tune checkpoint holds (rf_core's history), or [] when it cannot be read (a missing
    checkpoint only means nothing can be refilled: a warning says so)."""
    try:
        with checkpoint.as_directory() as folder:
            return list(load_resume_state(folder).get("history", []))
    except Exception as exc:
        log.warning("trial %s: could not read its checkpoint to refill MLflow: %s", trial_id, exc)
        return []
