"""The best model as an MLflow model: raw features in, the trained network's predictions out.

A tiny digits network trained by rf_core is logged with `log_best_model` into a real MLflow store, loaded
back with `mlflow.pyfunc.load_model`, and must reproduce rf_core's own test accuracy from scikit-learn's raw
0–16 pixel values, at batch sizes 1, 7 and the whole test split.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    assert signature.inputs.to_dict() == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": (-1, 64)}}]
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
