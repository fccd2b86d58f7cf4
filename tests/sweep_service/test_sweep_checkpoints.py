"""A restore never fails on a checkpoint Tune deleted after its last snapshot, nor on one cut short by a kill."""

from __future__ import annotations

import pytest
import torch

from sweep_service.checkpoints import (
    STAND_IN_MARKER,
    STATE_FILE,
    fill_deleted_checkpoints,
    load_resume_state,
    remove_stand_ins,
)


def _checkpoint(trial_dir, index: int, epoch: int | None) -> None:
    folder = trial_dir / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    if epoch is not None:
        torch.save({"epoch": epoch}, folder / STATE_FILE)


def test_stand_ins_fill_the_folders_tune_deleted_and_go_away_afterwards(tmp_path):
    trial = tmp_path / "run_trial_1"
    for index in (11, 12):  # num_to_keep=2 deleted 0..10
        _checkpoint(trial, index, epoch=index + 1)
    (tmp_path / "experiment_state.json").write_text("{}")  # files beside the trial folders are ignored

    assert fill_deleted_checkpoints(tmp_path, window=4) == 3
    assert sorted(p.name for p in trial.iterdir()) == [f"checkpoint_{i:06d}" for i in (8, 9, 10, 11, 12)]
    assert (trial / "checkpoint_000009" / STAND_IN_MARKER).is_file()

    assert remove_stand_ins(tmp_path) == 3
    assert sorted(p.name for p in trial.iterdir()) == ["checkpoint_000011", "checkpoint_000012"]


def test_a_stand_in_resumes_from_the_newest_readable_checkpoint(tmp_path):
    trial = tmp_path / "run_trial_1"
    _checkpoint(trial, 11, epoch=12)
    _checkpoint(trial, 12, epoch=13)
    (trial / "checkpoint_000012" / STATE_FILE).write_bytes(b"PK\x03\x04 cut short by kill -9")
    fill_deleted_checkpoints(tmp_path)

    assert load_resume_state(trial / "checkpoint_000009")["epoch"] == 12
    assert load_resume_state(trial / "checkpoint_000011")["epoch"] == 12, "a readable checkpoint is used as given"


def test_no_readable_state_anywhere_is_a_clear_error(tmp_path):
    trial = tmp_path / "run_trial_1"
    _checkpoint(trial, 3, epoch=None)
    with pytest.raises(FileNotFoundError, match=r"checkpoint_000003: no state\.pt"):
        load_resume_state(trial / "checkpoint_000003")
