"""Fault injection on real Ray: a crash mid-run resumes from its checkpoint; divergence is a result."""

from __future__ import annotations

import pytest
from sweep_helpers import children_and_parent, steps_of

from sweep_service.runner import run_sweep
from sweep_service.spec import parse_spec

pytestmark = pytest.mark.slow


def tiny_spec(name: str, **changes):
    data = {
        "name": name,
        "dataset": {"name": "synthetic", "train_subset": 300},
        "model": {"hidden": [16]},
        "algorithm": "bp",
        "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.1}},
        "search": {"method": "random", "num_samples": 1, "metric": "test_accuracy", "seed": 1},
        "scheduler": {"type": "fifo", "max_t": 6},
        "failure": {"max_failures": 1},
        "checkpoint_every": 2,
    }
    data.update(changes)
    return parse_spec(data)


@pytest.mark.parametrize(
    ("crash", "error"),
    [("5", "injected crash"), ("5:1:kill", "died")],  # an exception; kill -9 of the trial's worker process
    ids=["raises", "kill-9"],
)
def test_a_trial_crashing_once_resumes_from_its_checkpoint_in_the_same_run(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client, monkeypatch, crash, error
):
    monkeypatch.setenv("RFSWEEP_INJECT_CRASH", crash)  # crash before reporting epoch 5; last checkpoint: epoch 4
    result = run_sweep(tiny_spec(unique_name), tracking_uri=tracking_uri, storage_path=storage_path)
    assert result.status == "succeeded"
    (trial,) = result.trials
    assert trial.status == "finished" and trial.epochs == 6 and trial.retries == 1
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    assert len(children) == 1, "a retried trial keeps its one MLflow run"
    run = children[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["rfsweep.retries"] == "1"
    assert error in run.data.tags["rfsweep.last_error"], run.data.tags["rfsweep.last_error"]
    # restored from the epoch-4 checkpoint, not from zero
    assert run.data.tags["rfsweep.resumed_from_epoch"] == "4"
    assert steps_of(mlflow_client, run.info.run_id, "test_accuracy") == [1, 2, 3, 4, 5, 6]
    assert result.storage_path and (result.storage_path.rstrip("/").endswith(result.sweep_id))


def test_a_trial_crashing_past_its_retries_fails_and_the_sweep_goes_on(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client, monkeypatch
):
    monkeypatch.setenv("RFSWEEP_INJECT_CRASH", "2:1")
    spec = tiny_spec(
        unique_name,
        failure={"max_failures": 0},
        search={"method": "random", "num_samples": 2, "max_concurrent_trials": 1, "metric": "test_accuracy"},
    )
    result = run_sweep(spec, tracking_uri=tracking_uri, storage_path=storage_path)
    assert result.status == "succeeded"
    assert sorted(t.status for t in result.trials) == ["failed", "finished"]
    failed = next(t for t in result.trials if t.status == "failed")
    assert "injected crash" in failed.reason
    run = mlflow_client.get_run(failed.mlflow_run_id)
    assert run.info.status == "FAILED" and "injected crash" in run.data.tags["rfsweep.failure_reason"]
    assert result.best.trial_id != failed.trial_id


def test_a_diverging_trial_ends_failed_diverged_and_the_sweep_succeeds(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client
):
    spec = tiny_spec(
        unique_name,
        parameters={"lr": {"distribution": "loguniform", "low": 0.01, "high": 1.0e6}},
        search={
            "method": "random",
            "num_samples": 2,
            "max_concurrent_trials": 2,
            "metric": "test_accuracy",
            "points_to_evaluate": [{"lr": 1.0e6}, {"lr": 0.05}],
        },
        scheduler={"type": "fifo", "max_t": 3},
    )
    result = run_sweep(spec, tracking_uri=tracking_uri, storage_path=storage_path)
    assert result.status == "succeeded"
    by_status = {t.status: t for t in result.trials}
    assert set(by_status) == {"diverged", "finished"}
    diverged = by_status["diverged"]
    assert diverged.config["lr"] == pytest.approx(1.0e6) and diverged.retries == 0  # never retried
    run = mlflow_client.get_run(diverged.mlflow_run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["rfsweep.status"] == "diverged"
    assert "NaN/inf" in run.data.tags["rfsweep.failure_reason"]
    assert result.best.trial_id == by_status["finished"].trial_id
    assert result.counts["diverged"] == 1 and result.counts["failed"] == 0


def test_a_trial_whose_loss_explodes_but_stays_finite_ends_diverged_with_the_value(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client
):
    """fa at λ 2 with leaky ReLU on digits: a training loss in the thousands, never NaN. It ends `diverged` with
    rf_core's reason (the value and the limit) on the trial's row and its MLflow run; the other trial finishes."""
    spec = tiny_spec(
        unique_name,
        dataset={"name": "digits"},
        model={"hidden": [64, 32], "activation": "leaky_relu"},
        algorithm="fa",
        parameters={"lr": {"distribution": "loguniform", "low": 0.01, "high": 2.0}},
        search={
            "method": "random",
            "num_samples": 2,
            "metric": "val_accuracy",
            "points_to_evaluate": [{"lr": 2.0}, {"lr": 0.05}],
        },
        scheduler={"type": "fifo", "max_t": 2},
    )
    result = run_sweep(spec, tracking_uri=tracking_uri, storage_path=storage_path)
    by_status = {t.status: t for t in result.trials}
    assert result.status == "succeeded" and set(by_status) == {"diverged", "finished"}
    diverged = by_status["diverged"]
    assert diverged.reason is not None and "exceeded 100 × ln 10 = 230.3 in epoch 1" in diverged.reason
    run = mlflow_client.get_run(diverged.mlflow_run_id)
    assert run.info.status == "FAILED" and run.data.tags["rfsweep.failure_reason"] == diverged.reason
