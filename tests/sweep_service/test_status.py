"""The status vocabulary and the progress counts: one field per trial status, counts that add up."""

from __future__ import annotations

import dataclasses

from sweep_service.status import ProgressCounts, SweepStatus, TrialStatus


def test_progress_counts_have_one_field_per_trial_status_and_nothing_else_but_total_and_epochs():
    fields = [f.name for f in dataclasses.fields(ProgressCounts)]
    assert fields == ["total", *(s.value for s in TrialStatus), "epochs_done", "max_epochs"]


def test_a_queued_sweep_has_every_trial_pending_and_none_done():
    counts = ProgressCounts.queued(6, 18)
    assert (counts.total, counts.pending, counts.done, counts.max_epochs) == (6, 6, 0, 18)
    assert ProgressCounts.queued(None, None) == ProgressCounts()


def test_done_counts_the_terminal_statuses_and_trial_counts_keep_the_json_shape():
    counts = ProgressCounts(
        total=8, pending=1, running=1, paused=1, finished=1, stopped_early=1, failed=1, diverged=1, cancelled=1
    )
    assert counts.done == 5
    assert counts.trial_counts() == {
        "pending": 1, "running": 1, "paused": 1, "finished": 1, "stopped_early": 1, "failed": 1, "diverged": 1,
        "cancelled": 1, "total": 8,
    }  # fmt: skip
    assert ProgressCounts.from_dict({**counts.to_dict(), "unknown": 3}) == counts
    assert ProgressCounts.from_dict({"total": 2}) == ProgressCounts(total=2)


def test_sweep_statuses_end_their_parent_run_honestly():
    assert [s.value for s in SweepStatus if s.terminal] == ["succeeded", "failed", "cancelled"]
    assert SweepStatus.SUCCEEDED.mlflow_run_status == "FINISHED"
    assert SweepStatus.CANCELLED.mlflow_run_status == "KILLED"
    assert SweepStatus.FAILED.mlflow_run_status == "FAILED"


def test_an_ended_sweep_leaves_no_trial_pending_running_or_paused():
    """What a trial that never finished becomes when its sweep ends (a paused sweep cancelled, a driver lost)."""
    counts = ProgressCounts(total=6, pending=1, running=2, paused=2, finished=1)
    cancelled = counts.closed(SweepStatus.CANCELLED)
    assert (cancelled.pending, cancelled.running, cancelled.paused, cancelled.cancelled) == (0, 0, 0, 5)
    failed = counts.closed(SweepStatus.FAILED)
    assert (failed.failed, failed.cancelled, failed.finished, failed.done) == (2, 3, 1, 6)
    assert TrialStatus.PAUSED.closed_by(SweepStatus.CANCELLED) is TrialStatus.CANCELLED
    assert TrialStatus.FINISHED.closed_by(SweepStatus.FAILED) is TrialStatus.FINISHED
