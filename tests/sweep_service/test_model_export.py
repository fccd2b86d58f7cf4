"""The best model as an MLflow model: raw features in, the trained network's predictions out.

A tiny digits network trained by rf_core is logged with `log_best_model` into a real MLflow store, loaded
back with `mlflow.pyfunc.load_model`, and must reproduce rf_core's own test accuracy from scikit-learn's raw
0–16 pixel values, at batch sizes 1, 7 and the whole test split. Logged to a real `mlflow server` (artifacts
served over HTTP, as compose deploys it), it takes those pixels as float64, float32 and integers, as numpy
arrays and pandas DataFrames, with the same answers; `load_best_model` loads it printing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sweep_helpers import running_mlflow_server

pytestmark = pytest.mark.slow


def raw_digits_test_split():
    """The digits test split as scikit-learn gives it (0–16 pixels), in rf_core's fixed split order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(0)).numpy()
    test = order[int(0.8 * len(order)) :]
    return digits.data[test], digits.target[test]


@pytest.fixture(scope="module")
def trained():
    from rf_core import TrainConfig, train

    torch.set_num_threads(1)
    return train(TrainConfig.from_dict({"dataset": "digits", "algorithm": "bp", "epochs": 3, "seed": 3}))


def test_logged_model_predicts_raw_digits_at_the_trained_accuracy(trained, tracking_uri, unique_name, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from sweep_service.model_export import log_best_model

    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(unique_name, artifact_location=tmp_path.as_uri())  # not ./mlruns
    run_id = client.create_run(experiment_id).info.run_id
    client.set_terminated(run_id, "FINISHED")
    model_uri = log_best_model(trained.config, trained.model_state, run_id=run_id, client=client)
    assert model_uri == f"runs:/{run_id}/model"
    assert client.get_run(run_id).info.status == "FINISHED"  # logging the model does not reopen the run

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    x, y = raw_digits_test_split()
    assert x.max() == 16.0 and x.dtype == np.float64  # raw features, not rf_core's standardised ones
    whole = model.predict(x)
    assert list(whole.columns) == ["label"] + [f"probability_{k}" for k in range(10)]
    accuracy = float((whole["label"].to_numpy() == y).mean())
    assert abs(accuracy - trained.test_accuracy) <= 1e-6, (accuracy, trained.test_accuracy)
    np.testing.assert_allclose(whole.filter(like="probability_").sum(axis=1), 1.0, atol=1e-5)
    for batch in (1, 7):
        part = model.predict(x[:batch])
        assert len(part) == batch
        np.testing.assert_array_equal(part["label"].to_numpy(), whole["label"].to_numpy()[:batch])

    signature = model.metadata.signature
    assert signature.inputs.to_dict() == [{"type": "double", "required": True}] * 64  # one double per raw pixel
    assert model.metadata.metadata["rfsweep.dataset"] == "digits"
    example = model.metadata.load_input_example(mlflow.artifacts.download_artifacts(model_uri))
    assert np.asarray(example).shape == (3, 64) and np.asarray(example).max() > 1  # raw pixels


def test_wrong_width_and_wrong_dataset_are_refused(trained, tracking_uri, unique_name, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from sweep_service.model_export import ExportError, log_best_model

    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment(unique_name, artifact_location=tmp_path.as_uri())).info.run_id
    with pytest.raises(ExportError, match="first layer does not take 20 inputs"):
        log_best_model({**trained.config, "dataset": "synthetic"}, trained.model_state, run_id=run_id, client=client)
    uri = log_best_model(trained.config, trained.model_state, run_id=run_id, client=client)
    mlflow.set_tracking_uri(tracking_uri)
    with pytest.raises(Exception, match="64"):
        mlflow.pyfunc.load_model(uri).predict(np.zeros((2, 63)))


@pytest.fixture(scope="module")
def server_model(trained, tmp_path_factory):
    """The trained network logged with `log_best_model` to a real `mlflow server` on a loopback port:
    (tracking URL, model URI)."""
    from mlflow.tracking import MlflowClient

    from sweep_service.model_export import log_best_model

    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        client = MlflowClient(url)
        run_id = client.create_run(client.create_experiment("best-model-dtypes")).info.run_id
        assert client.get_experiment_by_name("best-model-dtypes").artifact_location.startswith("mlflow-artifacts:")
        yield url, log_best_model(trained.config, trained.model_state, run_id=run_id, client=client)


def test_the_served_model_takes_float32_float64_and_integer_features(server_model, monkeypatch):
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from sweep_service.model_export import load_best_model

    url, model_uri = server_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)  # the tests above set another store process-wide; it outranks the variable
    x, _ = raw_digits_test_split()
    model = mlflow.pyfunc.load_model(model_uri)  # what a user without rfsweep runs
    expected = model.predict(x)
    labels, probabilities = expected["label"].to_numpy(), expected.filter(like="probability_").to_numpy()
    as_sent = {
        "float64": x,
        "float32": x.astype(np.float32),
        "int32": x.astype(np.int32),
        "uint8": x.astype(np.uint8),  # MNIST's and CIFAR-10's raw pixels come as uint8
        "DataFrame float32": pd.DataFrame(x.astype(np.float32), columns=[f"pixel_{i}" for i in range(64)]),
        "DataFrame int32": pd.DataFrame(x.astype(np.int32)),
    }
    for name, rows in as_sent.items():
        answer = model.predict(rows)
        np.testing.assert_array_equal(answer["label"].to_numpy(), labels, err_msg=name)
        np.testing.assert_allclose(answer.filter(like="probability_").to_numpy(), probabilities, atol=1e-7)
    # int64, NumPy's default integer: MLflow's own enforcement refuses it ("can not safely convert"), as the
    # model card says; load_best_model takes it, and everything above, and lists.
    with pytest.raises(MlflowException, match="int64"):
        model.predict(x.astype(np.int64))
    switch = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    best = load_best_model(model_uri)
    assert os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR") == switch  # put back after the download
    for name, rows in {
        **as_sent,
        "int64": x.astype(np.int64),
        "DataFrame int64": pd.DataFrame(x.astype(np.int64)),
        "list": x.astype(int).tolist(),
    }.items():
        np.testing.assert_array_equal(best.predict(rows)["label"].to_numpy(), labels, err_msg=name)
    assert best.predict(x[0])["label"].tolist() == [labels[0]]  # one row as a 1-D array
    for wrong in (x[:, :63], np.hstack([x, x[:, :1]])):  # MLflow would pass on the first 64 columns of 65
        with pytest.raises(ValueError, match="rows of 64 raw features"):
            best.predict(wrong)
    with pytest.raises(ValueError, match="finite"):
        model.predict(np.full((1, 64), np.nan))

    card = mlflow.artifacts.load_text(f"{model_uri}/model_card.md")
    assert model.metadata.metadata["rfsweep.model_card"] == "model_card.md"
    for said in ("64 raw features", "float32", "int64", "uint8", "load_best_model", "MLFLOW_ENABLE_ARTIFACTS"):
        assert said in card, said


def test_load_best_model_prints_nothing_but_the_prediction(server_model, tmp_path):
    """A fresh Python, as a user's: loading from the server and predicting float32 pixels prints only what
    the snippet prints (MLflow draws a 31-line download progress bar otherwise)."""
    url, model_uri = server_model
    snippet = f"""
import numpy as np
from sklearn.datasets import load_digits
from sweep_service.model_export import load_best_model

model = load_best_model({model_uri!r})
print(model.predict(load_digits().data[:5].astype(np.float32))["label"].tolist())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        env={**env, "MLFLOW_TRACKING_URI": url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr[-3000:]
    labels = json.loads(done.stdout)
    assert done.stdout == f"{labels}\n" and len(labels) == 5 and all(0 <= k <= 9 for k in labels)
