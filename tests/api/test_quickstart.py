"""README's first command, `rfsweep quickstart`, end to end on the embedded default (its own API, SQLite stores)
joined to the test session's Ray head: the best trial's MLflow model, loaded with `mlflow.pyfunc.load_model`,
predicts scikit-learn's raw digits at any batch size with exactly the accuracy the sweep reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


def raw_digits_splits(seed: int, val_fraction: float):
    """scikit-learn's 0–16 pixels of rf_core's validation and test splits (its fixed test split, then the
    config's seeded validation split of the rest)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(0)).numpy()
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    shuffled = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).numpy()
    val = train[shuffled[: round(val_fraction * len(train))]]
    return (digits.data[val], digits.target[val]), (digits.data[test], digits.target[test])


def test_the_quickstart_best_model_predicts_raw_digits_at_the_reported_accuracy(ray_env, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
    env.update(ray_env, RFSWEEP_HOME=str(home), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", "quickstart", "--no-ui"],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    model_uri = re.search(r"model: (runs:/\S+/model)", done.stdout).group(1)
    reported = float(re.search(r"best: \w+ val_accuracy=([0-9.]+)", done.stdout).group(1))

    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri)
    run_id = model_uri.split("/")[1]
    run = client.get_run(run_id)
    assert run.data.tags["rfsweep.best"] == "sweep" and run.data.tags["rfsweep.model_uri"] == model_uri
    logged_val = client.get_metric_history(run_id, "val_accuracy")[-1].value  # what the sweep ranked it by
    logged_test = client.get_metric_history(run_id, "test_accuracy")[-1].value
    assert round(logged_val, 4) == reported

    # every trial run says what ran: the RF rule's update, its feedback source and its ledger, and how its
    # feedback held up (failed sleeps, and each layer's round trip per epoch)
    rf_runs = client.search_runs([run.info.experiment_id], "tags.`rfsweep.algorithm` = 'rf_two_phase'")
    assert rf_runs
    for rf_run in rf_runs:
        tags = rf_run.data.tags
        assert (tags["rfsweep.update"], tags["rfsweep.feedback"]) == ("gated_joint", "learned")
        assert tags["rfsweep.ledger.feedback_from_weights"] == "false" and tags["rfsweep.ledger.batch_global"] == "true"
        assert tags["rfsweep.nonlocal"] == "closed_form_inverse,batch_global"
        assert rf_run.data.metrics["feedback_fallbacks"] == 0
        assert client.get_metric_history(rf_run.info.run_id, "feedback_roundtrip_error_layer2")

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    (x_val, y_val), (x_test, y_test) = raw_digits_splits(
        int(run.data.params["seed"]), float(run.data.params["val_fraction"])
    )
    assert x_val.max() == 16.0  # raw pixels
    for x, y, logged in ((x_val, y_val, logged_val), (x_test, y_test, logged_test)):
        labels = model.predict(x)["label"].to_numpy()
        assert float(np.mean(labels == y)) == pytest.approx(logged, abs=1e-9)
        for batch in (1, 7, 64):  # any batch size, the same answers
            assert list(model.predict(x[:batch])["label"]) == list(labels[:batch])
