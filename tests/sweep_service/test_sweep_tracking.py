"""MLflow logging of a single training run (`rfsweep train --tracking-uri`) and the sweep CLI's quick commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from sweep_helpers import ROOT, steps_of

from rf_core import TrainConfig, train
from sweep_service.spec import parse_spec
from sweep_service.tracking import (
    ExperimentPolicy,
    ExperimentUnavailable,
    TrackingTarget,
    ensure_experiment,
    log_single_run,
    resolve_tracking_uri,
)
from sweep_service.trial_runs import SweepRuns


def test_log_single_run_keeps_params_metrics_plot_and_weights(tracking_uri, mlflow_client, tmp_path, unique_name):
    result = train(TrainConfig(algorithm="bp", dataset="synthetic", train_subset=300, hidden=(16,), epochs=3, lr=0.05))
    logged = log_single_run(result, tracking_uri=tracking_uri, experiment=unique_name)
    run = mlflow_client.get_run(logged["run_id"])
    assert run.info.status == "FINISHED" and run.info.experiment_id == logged["experiment_id"]
    assert (
        run.data.params["algorithm"] == "bp" and run.data.params["lr"] == "0.05" and run.data.params["hidden"] == "[16]"
    )
    assert run.data.tags["rfsweep.role"] == "train" and run.data.tags["rfsweep.status"] == "finished"
    for key in ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy"):
        assert steps_of(mlflow_client, logged["run_id"], key) == [1, 2, 3]
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
    names = {a.path for a in mlflow_client.list_artifacts(logged["run_id"])}
    assert {"learning_curve.png", "summary.json", "weights"} <= names
    weights = mlflow_client.download_artifacts(logged["run_id"], "weights/state_dict.pt", dst_path=str(tmp_path))
    state = torch.load(weights, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in result.model_state.items())


@pytest.mark.parametrize("rule", ["kolen_pollack", "weight_mirror"])
def test_the_angle_between_feedback_and_w_is_logged_every_epoch(rule, tracking_uri, mlflow_client, unique_name):
    """Kolen–Pollack's and weight mirror's feedback is meant to come to W: ∠(B_l, W_l) per layer and the largest,
    each epoch, in the result's history (the JSON) and as MLflow metrics. Kolen–Pollack's falls as B comes to W;
    weight mirror's B is mirrored before the first step (its development sleep), so it starts well below the ~90°
    of a random B."""
    result = train(TrainConfig(algorithm=rule, dataset="digits", epochs=3))
    angles = [record["feedback_angle_to_w_deg_max"] for record in result.history]
    assert len(angles) == 3 and all(0 < angle < 90 for angle in angles), angles
    assert angles[-1] < angles[0] if rule == "kolen_pollack" else max(angles) < 60, angles
    assert "feedback_angle_to_w_deg_layer2" in result.summary()["history"][0]
    logged = log_single_run(result, tracking_uri=tracking_uri, experiment=unique_name)
    assert steps_of(mlflow_client, logged["run_id"], "feedback_angle_to_w_deg_max") == [1, 2, 3]
    assert steps_of(mlflow_client, logged["run_id"], "feedback_angle_to_w_deg_layer3") == [1, 2, 3]


def test_a_sign_symmetry_run_names_its_variant_and_says_it_reads_the_sign_of_w(
    tracking_uri, mlflow_client, unique_name
):
    config = TrainConfig.from_dict({"algorithm": "sign_symmetry", "variant": "brsf", "dataset": "digits", "epochs": 1})
    logged = log_single_run(train(config), tracking_uri=tracking_uri, experiment=unique_name)
    tags = mlflow_client.get_run(logged["run_id"]).data.tags
    assert tags["rfsweep.feedback"] == "sign_brsf"
    assert tags["rfsweep.ledger.sign_transport"] == "true" and tags["rfsweep.ledger.weight_transport"] == "false"


def test_a_single_rf_run_says_what_ran_and_how_its_feedback_held_up(tracking_uri, mlflow_client, unique_name):
    result = train(TrainConfig(algorithm="rf_two_phase", dataset="digits", epochs=3))
    logged = log_single_run(result, tracking_uri=tracking_uri, experiment=unique_name)
    run = mlflow_client.get_run(logged["run_id"])
    tags = run.data.tags
    assert (tags["rfsweep.update"], tags["rfsweep.feedback"]) == ("gated_joint", "learned")
    assert (
        tags["rfsweep.ledger.weight_transport"] == "false" and tags["rfsweep.ledger.feedback_from_weights"] == "false"
    )
    assert steps_of(mlflow_client, logged["run_id"], "feedback_roundtrip_error_layer2") == [1, 2, 3]
    assert run.data.metrics["feedback_fallbacks"] == 0 == run.data.metrics["final_feedback_fallbacks"]
    oracle = train(
        TrainConfig.from_dict(
            {"algorithm": "rf_two_phase", "dataset": "digits", "epochs": 1, "feedback": "oracle_cholesky"}
        )
    )
    oracle_tags = mlflow_client.get_run(
        log_single_run(oracle, tracking_uri=tracking_uri, experiment=unique_name)["run_id"]
    ).data.tags
    assert (
        oracle_tags["rfsweep.feedback"] == "oracle_cholesky"
        and oracle_tags["rfsweep.ledger.feedback_from_weights"] == "true"
    )


def test_a_diverged_single_run_ends_failed(tracking_uri, mlflow_client, unique_name):
    result = train(TrainConfig(algorithm="bp", dataset="synthetic", train_subset=300, hidden=(16,), epochs=2, lr=1e6))
    assert result.status == "diverged"
    logged = log_single_run(result, tracking_uri=tracking_uri, experiment=unique_name)
    run = mlflow_client.get_run(logged["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["rfsweep.status"] == "diverged"


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RFSWEEP_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(None, None) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri(None, "sqlite:////x.db") == "sqlite:////x.db"
    assert resolve_tracking_uri("file:///cli", "sqlite:////x.db") == "file:///cli"


def rfsweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_validate_previews_the_budget_and_rejects_bad_specs(tmp_path):
    ok = rfsweep("validate", "examples/digits_quick.yaml", "--json")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["asha_rungs"] == [1, 4] and summary["max_epochs"] == 120 and summary["total_trials"] == 12
    text = rfsweep("validate", "examples/digits_quick.yaml")
    assert "rungs at epochs [1, 4]" in text.stdout and "at most 120" in text.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparameters: {lr: {distribution: loguniform, low: 0, high: 1}}\n")
    out = rfsweep("validate", str(bad))
    assert out.returncode == 2
    assert "parameters.lr.low: must be > 0 for loguniform" in out.stderr


def test_cli_schema_prints_the_json_schema():
    out = rfsweep("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["additionalProperties"] is False and "parameters" in schema["properties"]


def test_a_deleted_experiment_is_never_restored(tracking_uri, mlflow_client, unique_name):
    experiment_id = ensure_experiment(mlflow_client, unique_name, tracking_uri)
    mlflow_client.delete_experiment(experiment_id)
    with pytest.raises(ExperimentUnavailable, match="deleted"):
        ensure_experiment(mlflow_client, unique_name, tracking_uri)
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "deleted"


def test_an_experiment_rfsweep_did_not_create_is_written_only_when_allowed(tracking_uri, mlflow_client, unique_name):
    foreign = mlflow_client.create_experiment(unique_name)
    with pytest.raises(ExperimentUnavailable, match="not created by rfsweep"):
        ensure_experiment(mlflow_client, unique_name, tracking_uri, adopt_foreign=False)
    assert ensure_experiment(mlflow_client, unique_name, tracking_uri, adopt_foreign=True) == foreign
    own = ensure_experiment(mlflow_client, unique_name + "-own", tracking_uri, adopt_foreign=False)
    assert ensure_experiment(mlflow_client, unique_name + "-own", tracking_uri, adopt_foreign=False) == own


def test_a_sweep_names_its_experiment_under_the_servers_prefix(tracking_uri, mlflow_client, unique_name):
    spec = parse_spec({"name": unique_name, "tracking": {"experiment": "Default"}})
    policy = ExperimentPolicy(prefix="api/", adopt_foreign=False)
    runs = SweepRuns(spec, f"{unique_name}-id", TrackingTarget(tracking_uri, policy))
    assert mlflow_client.get_experiment(runs.experiment_id).name == "api/Default"
    plain = SweepRuns(parse_spec({"name": unique_name}), f"{unique_name}-id2", TrackingTarget(tracking_uri))
    assert mlflow_client.get_experiment(plain.experiment_id).name == unique_name


def test_a_trial_is_tagged_ended_only_once_every_epoch_is_in_mlflow(
    tracking_uri, mlflow_client, unique_name, monkeypatch
):
    """A driver killed between the two writes must leave a run still tagged running (the resume refills it from
    the checkpoint), never one tagged finished and short of its last epochs: so the epochs land first.
    The store is made slow (each epoch's write waits) so that the other order shows."""
    import time

    from sweep_service import mlflow_names as names
    from sweep_service import tracking
    from sweep_service.status import TrialStatus
    from sweep_service.trials import TrialRecord

    real_log_epoch, real_log_tags = tracking.log_epoch, tracking.log_tags
    epochs_in_mlflow_when_ended: list[int] = []

    def slow_log_epoch(*args, **kwargs):
        time.sleep(0.2)
        real_log_epoch(*args, **kwargs)

    def watching_log_tags(client, run_id, tags):
        if tags.get(names.STATUS) == TrialStatus.FINISHED.value:
            epochs_in_mlflow_when_ended.append(len(client.get_metric_history(run_id, "val_accuracy")))
        real_log_tags(client, run_id, tags)

    monkeypatch.setattr(tracking, "log_epoch", slow_log_epoch)
    monkeypatch.setattr(tracking, "log_tags", watching_log_tags)
    runs = SweepRuns(parse_spec({"name": unique_name}), f"{unique_name}-id", TrackingTarget(tracking_uri))
    runs.open()
    rec = TrialRecord(trial_id="t1", algorithm="bp", config={"algorithm": "bp"}, params={})
    runs.create_trial_run(rec)
    for epoch in (1, 2, 3):
        runs.log_epoch(rec, {"epoch": epoch, "val_accuracy": 0.5 + epoch / 10})
    rec.epochs, rec.status = 3, TrialStatus.FINISHED
    runs.trial_ended(rec)
    assert epochs_in_mlflow_when_ended == [3]


def test_a_reloaded_trial_knows_whether_its_workers_config_reached_its_run(tracking_uri, mlflow_client, unique_name):
    """A driver that died before a trial's first report leaves a run without params; the next driver must log
    them when the report comes (not take the run's spec values for the worker's config), and must not log them
    twice once they are there."""
    from rf_core import TrainConfig
    from sweep_service.configs import full_config_of
    from sweep_service.trials import TrialRecord

    spec, sweep_id = parse_spec({"name": unique_name}), f"{unique_name}-id"
    runs = SweepRuns(spec, sweep_id, TrackingTarget(tracking_uri))
    runs.open()
    rec = TrialRecord(trial_id="t1", algorithm="bp", config={"algorithm": "bp", "lr": 0.05}, params={"lr": 0.05})
    runs.create_trial_run(rec)
    (before,) = SweepRuns(spec, sweep_id, TrackingTarget(tracking_uri)).open()
    assert before.config_from_worker is False and before.description is None

    full = full_config_of(TrainConfig(algorithm="bp", lr=0.05))
    rec.device, rec.node_id, rec.config, rec.description = "cpu", "n0", full.values, full.rule_description()
    runs.note_config(rec, full, "test-version", first=True)
    (after,) = SweepRuns(spec, sweep_id, TrackingTarget(tracking_uri)).open()
    assert after.config_from_worker is True and after.description == full.rule_description()
    params = mlflow_client.get_run(rec.mlflow_run_id).data.params
    assert params["lr"] == "0.05" and params["device"] == "cpu" and len(params) == len(full.values)
