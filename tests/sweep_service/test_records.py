"""The records a trial crosses layers as: a trial's summary row and a best entry, made from the driver's trial
record, read back from what the API's store holds (an older rfsweep's rows included), and written as JSON the same
way everywhere (times to the millisecond in UTC, absent values left out of a best entry)."""

from __future__ import annotations

import json
import logging

from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import TrialStatus
from sweep_service.trials import TrialRecord


def _record() -> TrialRecord:
    rec = TrialRecord("fa000001", "fa", {"algorithm": "fa", "lr": 0.05}, {"lr": 0.05}, status=TrialStatus.FINISHED)
    rec.epochs, rec.last_metric, rec.best_metric = 3, 0.91, 0.92
    rec.started_at, rec.ended_at = 1_796_000_000.1234, 1_796_000_012.5
    rec.epoch_seconds = {1: 1.0, 2: 1.5, 3: 2.0}
    return rec


def test_a_summary_round_trips_through_json_with_its_times_in_utc_to_the_millisecond():
    summary = _record().summary()
    data = json.loads(json.dumps(summary.to_json()))
    assert data["started_at"] == "2026-11-30T00:53:20.123+00:00" and data["ended_at"] == "2026-11-30T00:53:32.500+00:00"
    assert data["status"] == "finished" and data["training_seconds"] == 4.5 and data["wall_seconds"] == 12.3766
    assert TrialSummary.from_stored(data) == summary


def test_a_best_entry_leaves_out_what_it_does_not_have():
    entry = _record().best_entry("val_accuracy")
    data = entry.to_json()
    assert data["value"] == 0.91 and data["metric"] == "val_accuracy" and data["status"] == "finished"
    assert not {"model_uri", "model_error", "weights_uri", "rule", "config_notes"} & set(data), data
    assert BestEntry.from_stored(data) == entry


def test_rows_an_older_rfsweep_stored_read_back_and_rows_none_wrote_are_left_out_with_a_warning(caplog):
    older_best = {"algorithm": "bp", "config": {}, "metric": "test_accuracy", "value": 0.5, "trial_id": "t1"}
    best = BestEntry.from_stored({**older_best, "weights_uri": None, "retired_key": 1})
    assert best is not None and best.status is None and best.trial_id == "t1"
    older_trial = {"trial_id": "t1", "algorithm": "bp", "status": "failed", "reason": "crashed", "run_name": "x"}
    trial = TrialSummary.from_stored(older_trial)
    assert trial is not None and trial.status is TrialStatus.FAILED and trial.epochs == 0
    with caplog.at_level(logging.WARNING, logger="sweep_service.records"):
        assert TrialSummary.from_stored({"trial_id": "t2", "status": "exploded"}) is None
        assert BestEntry.from_stored(["not", "a", "row"]) is None
    assert len([r for r in caplog.records if "no rfsweep wrote" in r.getMessage()]) == 2
