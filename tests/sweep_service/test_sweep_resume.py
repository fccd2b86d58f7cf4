"""A sweep whose driver is SIGKILLed mid-run is restored (Tuner.restore) into the same MLflow runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from sweep_helpers import ROOT, children_and_parent, in_process_trial_settings, stand_in_tune_session, steps_of

from sweep_service.checkpoints import STATE_FILE
from sweep_service.runner import run_sweep
from sweep_service.spec import parse_spec

pytestmark = pytest.mark.slow


def _readable(state_file: Path) -> bool:
    try:
        torch.load(state_file, weights_only=False)
        return True
    except Exception:  # missing, or cut short by the kill
        return False


def test_killed_driver_is_resumed_without_duplicate_runs(
    ray_session, tracking_uri, state_dir, unique_name, mlflow_client, tmp_path
):
    data = {
        "name": unique_name,
        "dataset": {"name": "synthetic", "train_subset": 2000},
        "model": {"hidden": [256, 256]},
        "algorithm": "bp",
        "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.1}},
        "search": {
            "method": "random",
            "num_samples": 4,
            "max_concurrent_trials": 2,
            "metric": "test_accuracy",
            "seed": 2,
        },
        "scheduler": {"type": "fifo", "max_t": 12},
    }
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    storage = str(state_dir / "resume_results")
    sweep_id = f"resume-{unique_name[-6:]}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rfsweep_cli.main",
            "sweep",
            str(spec_file),
            "--json",
            "--sweep-id",
            sweep_id,
            "--storage-path",
            storage,
            "--tracking-uri",
            tracking_uri,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        experiment = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # kill once a trial has finished and others are mid-run
            experiment = experiment or mlflow_client.get_experiment_by_name(unique_name)
            if experiment is not None:
                _, children = children_and_parent(mlflow_client, experiment.experiment_id)
                done = [c for c in children if c.data.tags.get("rfsweep.status") == "finished"]
                running = [
                    c
                    for c in children
                    if c.info.status == "RUNNING" and steps_of(mlflow_client, c.info.run_id, "test_accuracy")
                ]
                if done and running:
                    break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.3)
        else:
            pytest.fail("no trial finished within 240 s")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, as after `kill -9`
        driver.wait()
    _, before = children_and_parent(mlflow_client, experiment.experiment_id)
    # Tune deletes old checkpoints before its next snapshot names the new ones: keep only each trial's
    # newest complete one (Tune deletes older ones only once a newer one is written), so the snapshot most
    # likely points at a deleted folder, as after an unlucky kill.
    for trial_dir in (Path(storage) / sweep_id).iterdir():
        folders = sorted(trial_dir.glob("checkpoint_*"), reverse=True)
        complete = [f for f in folders if _readable(f / STATE_FILE)]
        for folder in folders:
            if complete and folder != complete[0]:
                shutil.rmtree(folder)
    assert any(c.info.status == "RUNNING" for c in before), "the kill left runs open (that resume must close)"

    result = run_sweep(
        parse_spec(data), sweep_id=sweep_id, tracking_uri=tracking_uri, storage_path=storage, resume=True
    )

    assert result.status == "succeeded"
    parents, children = children_and_parent(mlflow_client, experiment.experiment_id)
    assert len(parents) == 1 and parents[0].info.run_id == result.parent_run_id
    trial_ids = [c.data.tags["rfsweep.trial_id"] for c in children]
    assert len(trial_ids) == len(set(trial_ids)) == 4, "exactly one MLflow run per trial"
    assert {c.info.run_id for c in before} <= {c.info.run_id for c in children}, "resumed trials kept their runs"
    assert all(c.info.status == "FINISHED" for c in children)
    for child in children:
        assert steps_of(mlflow_client, child.info.run_id, "test_accuracy") == list(range(1, 13))
    assert sorted(t.trial_id for t in result.trials) == sorted(trial_ids)
    assert result.counts["finished"] == 4
    assert not list((Path(storage) / sweep_id).glob("*/checkpoint_*/.rfsweep-stand-in")), "stand-ins are cleaned up"


def test_a_trial_tune_saved_as_finished_gets_its_unlogged_last_epochs_from_its_checkpoint(
    tracking_uri, unique_name, mlflow_client, tmp_path
):
    """The race behind a once-flaky run of the test above: Tune snapshotted the trial as TERMINATED, then the
    driver died before its asynchronous write of the last epoch. The resumed sweep does not rerun the trial,
    so closing it must read that epoch from the trial's checkpoint."""
    from ray import tune

    from rf_core import TrainConfig, train
    from sweep_service.monitor import SweepMonitor
    from sweep_service.status import TrialStatus
    from sweep_service.tracking import TrackingTarget
    from sweep_service.trials import TrialRecord

    spec = parse_spec(
        {
            "name": unique_name,
            "dataset": {"name": "synthetic", "train_subset": 300},
            "algorithm": "bp",
            "search": {"method": "random", "num_samples": 1, "metric": "test_accuracy"},
            "scheduler": {"type": "fifo", "max_t": 3},
        }
    )
    checkpoint_dir = tmp_path / "checkpoint_000002"
    checkpoint_dir.mkdir()
    history = train(
        TrainConfig(algorithm="bp", dataset="synthetic", train_subset=300, epochs=3, diagnostics=False),
        on_epoch=lambda record, get_state: torch.save(get_state(), checkpoint_dir / STATE_FILE),
    ).history
    monitor = SweepMonitor(spec, "refill-test", {}, TrackingTarget(tracking_uri))
    run_id = mlflow_client.create_run(monitor.experiment_id).info.run_id
    rec = TrialRecord(
        trial_id="t0", algorithm="bp", config={}, params={}, status=TrialStatus.RUNNING, mlflow_run_id=run_id
    )
    for record in history[:2]:  # the driver logged epochs 1 and 2, then died
        monitor._note_epoch(rec, {**record})
    monitor.records[rec.trial_id] = rec
    monitor.tune_status[rec.trial_id] = "TERMINATED"
    monitor.tune_checkpoints[rec.trial_id] = tune.Checkpoint.from_directory(str(checkpoint_dir))

    monitor.close_open_trials()

    assert steps_of(mlflow_client, run_id, "test_accuracy") == [1, 2, 3]
    logged = {m.step: m.value for m in mlflow_client.get_metric_history(run_id, "test_accuracy")}
    assert logged[3] == pytest.approx(history[2]["test_accuracy"])
    assert rec.status is TrialStatus.FINISHED and mlflow_client.get_run(run_id).info.status == "FINISHED"


def test_a_trial_restored_with_every_epoch_done_hands_its_history_over(tmp_path, monkeypatch):
    """The race behind a 2026-12-02 failure of the first test here: the driver died after a trial's last
    checkpoint (epoch max_t) but before Tune saved the trial as finished. Restored, the trial trains no epoch;
    it must still report the checkpoint's history, or the epochs its MLflow run lacks stay lost (the run ended
    with epochs 1–11 of 12). Tune cannot be steered into that state on purpose, so its three session calls are
    stood in for; the trainable, rf_core's training and the checkpoint are real."""

    from rf_core import TrainConfig, train
    from sweep_service.epoch_report import EpochReport
    from sweep_service.trainable import run_trial

    spec = parse_spec(
        {
            "name": "restored-at-max-t",
            "dataset": {"name": "synthetic", "train_subset": 300},
            "algorithm": "bp",
            "parameters": {"lr": 0.05},
            "search": {"method": "random", "num_samples": 1, "metric": "test_accuracy"},
            "scheduler": {"type": "fifo", "max_t": 3},
        }
    )
    checkpoint_dir = tmp_path / "checkpoint_000002"
    checkpoint_dir.mkdir()
    history = train(
        TrainConfig(algorithm="bp", dataset="synthetic", train_subset=300, epochs=3, lr=0.05),
        on_epoch=lambda record, get_state: torch.save(get_state(), checkpoint_dir / STATE_FILE),
    ).history
    reports = stand_in_tune_session(monkeypatch, checkpoint_dir)
    settings = in_process_trial_settings(spec, checkpoint_every=1)

    run_trial({"algorithm": "bp"}, settings)

    assert len(reports) == 1, "restored with every epoch done, the trial reports once, training nothing"
    report = EpochReport.from_tune(reports[0])
    assert report is not None and report.epoch == 3 and report.resumed_from_epoch == 3
    restored = report.restored_history or []
    assert [r["epoch"] for r in restored] == [1, 2, 3]
    assert restored[-1]["test_accuracy"] == pytest.approx(history[-1]["test_accuracy"])
