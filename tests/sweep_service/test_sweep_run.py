"""A real digits sweep on real Ray, logged to a real MLflow store (the issue's example, bp, 6 trials)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from sweep_helpers import children_and_parent, steps_of
from test_sweep_spec import ISSUE_EXAMPLE

from sweep_service.runner import run_sweep
from sweep_service.spec import parse_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_sweep(ray_session, tracking_uri, state_dir):
    data = yaml.safe_load(ISSUE_EXAMPLE)
    data["name"] = f"digits-example-{uuid.uuid4().hex[:6]}"
    spec = parse_spec(data)
    progress = []
    result = run_sweep(
        spec, tracking_uri=tracking_uri, storage_path=str(state_dir / "ray_results"), on_progress=progress.append
    )
    return spec, result, progress


def test_one_parent_and_one_linked_child_per_trial(digits_sweep, mlflow_client):
    _, result, _ = digits_sweep
    parents, children = children_and_parent(mlflow_client, result.experiment_id)
    assert len(parents) == 1 and parents[0].info.run_id == result.parent_run_id
    assert len(children) == 6 == len(result.trials)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {result.parent_run_id}
    assert {c.data.tags["rfsweep.trial_id"] for c in children} == {t.trial_id for t in result.trials}
    assert all(c.data.tags["rfsweep.sweep_id"] == result.sweep_id for c in children)
    assert parents[0].info.status == "FINISHED" and parents[0].data.tags["rfsweep.algorithms"] == "bp"
    assert parents[0].data.params["metric"] == "test_accuracy"


def test_each_child_has_one_metric_entry_per_epoch_it_ran(digits_sweep, mlflow_client):
    _, result, _ = digits_sweep
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    by_trial = {t.trial_id: t for t in result.trials}
    for child in children:
        trial = by_trial[child.data.tags["rfsweep.trial_id"]]
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            assert steps_of(mlflow_client, child.info.run_id, key) == list(range(1, trial.epochs + 1))
        assert child.data.params["algorithm"] == "bp" and child.data.params["batch_size"] == "32"
        assert child.data.tags["rfsweep.device"] == "cpu"


def test_statuses_are_honest_and_asha_stopped_some_trials_early(digits_sweep, mlflow_client):
    spec, result, _ = digits_sweep
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    statuses = {c.data.tags["rfsweep.status"] for c in children}
    assert statuses <= {"finished", "stopped_early", "diverged"}  # bp at lr near 1.0 may diverge: a result
    early = [c for c in children if c.data.tags["rfsweep.status"] == "stopped_early"]
    assert early, "ASHA should stop at least one of 6 trials at a rung"
    for child in early:
        tags = child.data.tags
        assert child.info.status == "FINISHED" and tags["rfsweep.stopped_early"] == "true"
        assert float(tags["rfsweep.stopped_at_rung"]) in (1.0, 4.0)
        assert float(tags["rfsweep.rung_value"]) < float(tags["rfsweep.rung_cutoff"])
        assert int(tags["rfsweep.epochs"]) < spec.max_t
    for child in children:
        if child.data.tags["rfsweep.status"] == "finished":
            assert int(child.data.tags["rfsweep.epochs"]) == spec.max_t and child.info.status == "FINISHED"
    for child in children:
        if child.data.tags["rfsweep.status"] == "diverged":
            assert child.info.status == "FAILED" and "NaN/inf" in child.data.tags["rfsweep.failure_reason"]
    assert result.counts["stopped_early"] == len(early)
    assert result.counts["finished"] + result.counts["stopped_early"] + result.counts["diverged"] == 6


def test_reported_best_is_the_best_child_and_its_weights_load(digits_sweep, mlflow_client):
    _, result, _ = digits_sweep
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    healthy = [c for c in children if c.data.tags["rfsweep.status"] != "diverged"]
    top = max(c.data.metrics["test_accuracy"] for c in healthy)
    best = result.best
    tied = {c.info.run_id: c for c in healthy if c.data.metrics["test_accuracy"] == top}  # 360 test images: ties happen
    assert best.mlflow_run_id in tied
    best_child = tied[best.mlflow_run_id]
    assert best.value == pytest.approx(best_child.data.metrics["test_accuracy"])
    assert best.algorithm == "bp" and result.best_per_algorithm["bp"] == best
    assert best.config["lr"] == pytest.approx(float(best_child.data.params["lr"]))
    import mlflow.artifacts

    path = mlflow.artifacts.download_artifacts(best.weights_uri, tracking_uri=result.tracking_uri)
    state = torch.load(path, weights_only=True)
    assert {tuple(v.shape) for v in state.values()} >= {(64, 64), (32, 64), (10, 32)}


def test_parent_run_has_the_summary_artifacts(digits_sweep, mlflow_client, tmp_path):
    _, result, _ = digits_sweep
    parent = mlflow_client.get_run(result.parent_run_id)
    names = {a.path for a in mlflow_client.list_artifacts(result.parent_run_id)}
    assert {"spec.yaml", "best_config.json", "trials.csv", "learning_curves.png"} <= names
    folder = Path(mlflow_client.download_artifacts(result.parent_run_id, "", dst_path=str(tmp_path)))
    best_json = json.loads((folder / "best_config.json").read_text())
    assert best_json["best"]["trial_id"] == result.best.trial_id
    assert (folder / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    spec, _, _ = digits_sweep
    assert yaml.safe_load((folder / "spec.yaml").read_text())["name"] == spec.name
    csv_text = (folder / "trials.csv").read_text()
    assert len(csv_text.strip().splitlines()) == 1 + 6 and "lr" in csv_text.splitlines()[0]
    assert parent.data.metrics["best_test_accuracy"] == pytest.approx(result.best.value)
    assert parent.data.tags["rfsweep.best.trial_id"] == result.best.trial_id


def test_progress_and_json_result(digits_sweep):
    _, result, progress = digits_sweep
    assert progress, "on_progress was never called"
    last = progress[-1].counts
    assert last.total == 6 and last.pending == 0 and last.running == 0
    assert last.finished + last.stopped_early + last.diverged == 6 == last.done
    assert 6 <= last.epochs_done <= last.max_epochs == 60
    assert any(p.counts.running > 0 for p in progress)
    assert result.progress == last  # the result's counts are the last progress reported
    out = result.to_json()
    json.dumps(out)
    assert set(out["best"]) >= {"algorithm", "config", "metric", "value", "trial_id", "mlflow_run_id", "weights_uri"}
    assert out["mlflow"]["parent_run_id"] == result.parent_run_id
    assert all(
        set(t) >= {"trial_id", "algorithm", "config", "status", "epochs", "last_metric", "best_metric", "mlflow_run_id"}
        for t in out["trials"]
    )


def test_cancel_stops_trials_and_kills_their_runs(ray_session, tracking_uri, storage_path, unique_name, mlflow_client):
    spec = parse_spec(
        {
            "name": unique_name,
            "dataset": {"name": "synthetic", "train_subset": 400},
            "algorithm": "bp",
            "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.1}},
            "search": {"num_samples": 4, "max_concurrent_trials": 2, "metric": "test_accuracy"},
            "scheduler": {"type": "fifo", "max_t": 400},
        }
    )
    seen_epochs = []

    def should_stop() -> bool:
        return len(seen_epochs) > 0 and seen_epochs[-1] >= 3

    result = run_sweep(
        spec,
        tracking_uri=tracking_uri,
        storage_path=storage_path,
        should_stop=should_stop,
        on_progress=lambda p: seen_epochs.append(max([t.epochs for t in p.trials] or [0])),
    )
    assert result.status == "cancelled"
    assert result.counts["running"] == 0 and result.counts["pending"] == 0
    assert result.counts["cancelled"] >= 2
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    assert children and all(c.info.status == "KILLED" for c in children)
    assert all(c.data.tags["rfsweep.status"] == "cancelled" for c in children)
    assert mlflow_client.get_run(result.parent_run_id).info.status == "KILLED"
    assert all(t.status == "cancelled" and t.epochs < 400 for t in result.trials)


def _has_null(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def test_each_trial_run_logs_its_full_resolved_training_config_as_params(digits_sweep, mlflow_client):
    """The run alone reproduces the trial: every field bp reads, each run-time default decided (lr, activation,
    the network's widths), as rf_core resolves the config the trainable trains with; and which rf_core it was."""
    from rf_core import TrainConfig, rule_fields
    from sweep_service.configs import rf_core_version

    _, result, _ = digits_sweep
    _, children = children_and_parent(mlflow_client, result.experiment_id)
    for child in children:
        sampled = json.loads(child.data.tags["rfsweep.params"])
        trained = TrainConfig.from_dict(  # what trainable.run_trial builds from the spec and the sampled lr
            {
                "algorithm": "bp",
                "dataset": "digits",
                "hidden": (64, 32),
                "activation": "leaky_relu",
                "batch_size": 32,
                "epochs": 10,
                "device": "cpu",
                "lr": sampled["lr"],
            }
        ).resolved()
        expected = {k: v for k, v in trained.to_dict().items() if v is not None}
        expected = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in expected.items()}
        assert child.data.params == expected
        notes = json.loads(child.data.tags["rfsweep.config_notes"])
        assert set(child.data.params) | set(notes) == rule_fields("bp")  # every field: a param, or why not
        assert set(notes) == {"data_dir", "train_subset"}
        assert {"batch_size", "weight_decay", "init_gain", "lr_schedule", "val_fraction"} <= set(child.data.params)
        assert child.data.tags["rfsweep.rf_core_version"] == rf_core_version()


def test_runs_are_named_and_the_best_trial_is_marked(digits_sweep, mlflow_client):
    from sweep_service import mlflow_ui

    spec, result, _ = digits_sweep
    parents, children = children_and_parent(mlflow_client, result.experiment_id)
    assert parents[0].info.run_name == mlflow_ui.parent_run_name(spec.name, result.sweep_id)
    experiment = mlflow_client.get_experiment(result.experiment_id)
    assert experiment.tags[mlflow_ui.EXPERIMENT_KIND_TAG] == mlflow_ui.MODEL_TRAINING_KIND
    view = json.loads(experiment.tags[mlflow_ui.VIEW_TAG_PREFIX + mlflow_ui.sweep_view_key(result.sweep_id)])
    assert "params.`lr`" in json.loads(view["state"])["selectedColumns"]
    best_id = result.best.trial_id
    for child in children:
        tags, trial_id = child.data.tags, child.data.tags["rfsweep.trial_id"]
        status = tags["rfsweep.status"]
        name = mlflow_ui.trial_run_name("bp", trial_id, status, best=trial_id == best_id)
        assert child.info.run_name == name
        if status == "stopped_early":
            assert "· stopped_early" in child.info.run_name
        assert tags.get("rfsweep.best") == ("sweep" if trial_id == best_id else None)


def test_best_config_and_the_best_model_are_complete(digits_sweep, mlflow_client, tmp_path):
    """best_config.json and the result hold the best trial's full resolved config (no null anywhere) and its
    MLflow model, which predicts raw digits at the accuracy the run logged."""
    import mlflow
    import numpy as np
    from test_model_export import raw_digits_test_split

    _, result, _ = digits_sweep
    folder = Path(mlflow_client.download_artifacts(result.parent_run_id, "", dst_path=str(tmp_path)))
    best_json = json.loads((folder / "best_config.json").read_text())
    assert not _has_null(best_json), best_json
    best = result.best
    assert best_json["best"]["config"] == best.config and best.config["hidden"] == [64, 32]
    assert best.model_uri == f"runs:/{best.mlflow_run_id}/model"
    assert "sweep_report.html" in {a.path for a in mlflow_client.list_artifacts(result.parent_run_id)}
    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model(best.model_uri)
    x, y = raw_digits_test_split()
    logged = mlflow_client.get_run(best.mlflow_run_id).data.metrics["test_accuracy"]
    for rows in (1, 5, len(x)):
        labels = model.predict(x[:rows])["label"].to_numpy()
        assert len(labels) == rows
    assert float(np.mean(model.predict(x)["label"].to_numpy() == y)) == pytest.approx(logged, abs=1e-9)
