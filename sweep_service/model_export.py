"""The best trial's network as an MLflow model that takes the dataset's raw features.

`log_best_model(config, state_dict, run_id=...)` writes an MLflow pyfunc model into a run (next to the
plain `weights/state_dict.pt`, which stays): rf_core's MLP rebuilt from the flat training config and the
state dict, with the dataset's preprocessing inside, so `mlflow.pyfunc.load_model(uri).predict(X)` takes
what the dataset's own source gives and returns a class label and class probabilities per row, for any
number of rows:

| dataset | raw features (one row) | preprocessing inside the model |
| --- | --- | --- |
| digits | 64 pixel values 0–16 (scikit-learn's `load_digits().data`) | ÷16, then standardised |
| mnist, fashion_mnist | 784 pixel values 0–255 (the IDX files, row-major) | ÷255, then standardised |
| cifar10 | 3072 values 0–255 (the python batches' `data` rows: R, G, B planes) | ÷255, then standardised |
| synthetic | 20 reals | standardised |

"Standardised" is rf_core's: one scalar mean and std of the training split (after the validation split
is carved out with the config's seed, val_fraction and train_subset). They are recomputed here from the
raw data and checked against `rf_core.data.load_dataset`, so a change in rf_core's preprocessing stops
the export with an error instead of exporting a model that sees different inputs.

The model carries a copy of `rf_core` (MLflow `code_paths`) and its wrapper class by value, so loading it
needs torch, numpy, pandas and mlflow, not rfsweep.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from mlflow.tracking import MlflowClient

MODEL_ARTIFACT = "model"
RAW_SCALE = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0, "synthetic": 1.0}
RAW_DESCRIPTION = {
    "digits": "64 pixel values 0-16, as sklearn.datasets.load_digits().data gives them",
    "mnist": "784 pixel values 0-255 (28x28, row-major), as in the IDX files",
    "fashion_mnist": "784 pixel values 0-255 (28x28, row-major), as in the IDX files",
    "cifar10": "3072 values 0-255 (R, G, B planes of 32x32), as the CIFAR-10 python batches' data rows",
    "synthetic": "20 real features of rf_core's synthetic teacher task",
}


class ExportError(ValueError):
    """The model cannot be exported as asked (unknown dataset, weights that do not fit the config...)."""


def preprocessing(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the model does to a raw row before the network: {dataset, input_dim, scale, mean, std, raw}.

    x_network = (x_raw / scale - mean) / std, with mean/std of the config's training split.
    """
    import torch

    from rf_core import data as rf_data

    name = config.get("dataset", "digits")
    if name not in RAW_SCALE:
        raise ExportError(f"dataset: no raw-feature preprocessing known for {name!r}")
    loaders = {
        "digits": rf_data._load_digits,
        "synthetic": rf_data._load_synthetic,
        "cifar10": lambda: rf_data._load_cifar10(config.get("data_dir")),
        "mnist": lambda: rf_data._load_idx_dataset("mnist", config.get("data_dir")),
        "fashion_mnist": lambda: rf_data._load_idx_dataset("fashion_mnist", config.get("data_dir")),
    }
    x_train, _, x_test, _, _ = loaders[name]()
    train_subset = config.get("train_subset")
    if train_subset is not None:
        x_train = x_train[: int(train_subset)]
    seed, val_fraction = int(config.get("seed", 0)), float(config.get("val_fraction", 0.1))
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
    train_idx = order[round(val_fraction * len(x_train)) :]
    mean = x_train[train_idx].mean()
    std = x_train[train_idx].std().clamp_min(1e-8)
    # Guard against drift from rf_core's own preprocessing: the same rows must come out the same.
    splits = rf_data.load_dataset(
        name, config.get("data_dir"), val_fraction=val_fraction, seed=seed, device="cpu", train_subset=train_subset
    )
    rows = slice(0, min(256, len(x_test)))
    ours = (x_test[rows] - mean) / std
    if not torch.allclose(ours, splits.x_test[rows].cpu(), atol=1e-5, rtol=0):
        raise ExportError(
            f"dataset {name}: rf_core.data's preprocessing no longer matches the model's "
            "(scale, then one mean/std of the training split); update sweep_service/model_export.py"
        )
    return {
        "dataset": name,
        "input_dim": int(x_train.shape[1]),
        "scale": RAW_SCALE[name],
        "mean": float(mean),
        "std": float(std),
        "raw": RAW_DESCRIPTION[name],
    }


def _python_model_class() -> type:
    """The pyfunc wrapper. Defined inside a function so cloudpickle stores the class by value (a model
    loads without rfsweep installed); its methods therefore import what they use themselves."""
    import mlflow.pyfunc

    class RFCoreClassifier(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        """rf_core's MLP with the dataset's preprocessing: raw feature rows in, `label` and
        `probability_<class>` columns out (a pandas DataFrame, one row per input row)."""

        def load_context(self, context):  # type: ignore[no-untyped-def]  # (MLflow reads type hints here)
            import torch

            from rf_core.activations import make_activation
            from rf_core.config import TrainConfig
            from rf_core.model import MLP

            meta = json.loads(Path(context.artifacts["meta"]).read_text())
            config = TrainConfig.from_dict({**meta["config"], "device": "cpu"}).resolved()
            state = torch.load(context.artifacts["state_dict"], map_location="cpu", weights_only=True)
            sizes = [int(meta["preprocessing"]["input_dim"]), *config.hidden_sizes, int(meta["num_classes"])]
            activation = make_activation(str(config.activation), config.activation_slope)
            net = MLP(sizes, activation, bias=config.bias)
            net.load_state_dict(state)
            net.eval()
            self.net, self.meta = net, meta

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # (as above)
            import numpy as np
            import pandas as pd
            import torch

            x = np.asarray(
                model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input, dtype=np.float64
            )
            pre = self.meta["preprocessing"]
            if x.ndim == 1:
                x = x.reshape(1, -1)
            if x.ndim != 2 or x.shape[1] != pre["input_dim"]:
                raise ValueError(
                    f"expected rows of {pre['input_dim']} raw features ({pre['raw']}); got shape {x.shape}"
                )
            t = (torch.tensor(x, dtype=torch.float32) / pre["scale"] - pre["mean"]) / pre["std"]
            with torch.no_grad():
                probs = torch.softmax(self.net(t), dim=1).numpy().astype(np.float64)
            out = pd.DataFrame(probs, columns=[f"probability_{k}" for k in range(probs.shape[1])])
            out.insert(0, "label", probs.argmax(axis=1).astype(np.int64))
            return out

    return RFCoreClassifier


def _raw_example(prep: Mapping[str, Any], rows: int = 3) -> Any:
    """A few raw rows for the input example: real ones for digits, else zeros of the right width."""
    import numpy as np

    if prep["dataset"] == "digits":
        from rf_core.data import read_bundled_digits

        return (read_bundled_digits()[0][:rows] * 16).numpy().astype(np.float64)  # raw pixels 0..16
    return np.zeros((rows, prep["input_dim"]), dtype=np.float64)


def log_best_model(
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    run_id: str | None = None,
    client: MlflowClient | None = None,
    artifact_path: str = MODEL_ARTIFACT,
) -> str:
    """Log the network as an MLflow pyfunc model into run `run_id` (else the active run); returns its
    `runs:/RUN_ID/model` URI, which `mlflow.pyfunc.load_model` loads.

    `config`: the trial's flat training config (`TrainConfig.to_dict()`, what the trial ran with);
    `state_dict`: the trained network's (`TrainResult.model_state`, or `weights/state_dict.pt`).
    The run's status is left as it is (the model is written with `client.log_artifacts`, not by resuming
    the run). Signature: a float64 tensor of shape (-1, input_dim) in; label and probabilities out.
    """
    import mlflow
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    import torch
    from mlflow.models import infer_signature

    from rf_core.config import TrainConfig

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ExportError("run_id: no run given and no active MLflow run")
        run_id = active.info.run_id
    client = client or mlflow.tracking.MlflowClient()
    config = TrainConfig.from_dict(dict(config)).to_dict()  # validated, flat, JSON-able
    prep = preprocessing(config)
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    weights = [
        state[k] for k in sorted((k for k in state if k.startswith("weights.")), key=lambda k: int(k.split(".")[1]))
    ]
    if not weights or weights[0].shape[1] != prep["input_dim"]:
        raise ExportError(f"state_dict: its first layer does not take {prep['input_dim']} inputs ({prep['dataset']})")
    meta = {
        "config": config,
        "preprocessing": prep,
        "num_classes": int(weights[-1].shape[0]),
        "labels": "class index 0..num_classes-1, as the dataset numbers its classes",
    }

    import rf_core

    with warnings.catch_warnings():  # MLflow suggests type hints on predict; the signature is given instead
        warnings.simplefilter("ignore", UserWarning)
        model_class = _python_model_class()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        torch.save(state, tmp_path / "state_dict.pt")
        (tmp_path / "meta.json").write_text(json.dumps(meta, indent=1))
        example = _raw_example(prep)
        probe = model_class()  # a loaded copy, only to see the output's shape for the signature
        probe.load_context(
            _Context({"state_dict": str(tmp_path / "state_dict.pt"), "meta": str(tmp_path / "meta.json")})
        )
        output = probe.predict(None, example)
        out_dir = tmp_path / artifact_path
        with warnings.catch_warnings():  # MLflow's hints about type hints and integer columns do not apply
            warnings.simplefilter("ignore", UserWarning)
            signature = infer_signature(example, output)
            mlflow.pyfunc.save_model(
                path=str(out_dir),
                python_model=model_class(),
                artifacts={"state_dict": str(tmp_path / "state_dict.pt"), "meta": str(tmp_path / "meta.json")},
                code_paths=[str(Path(rf_core.__file__).parent)],
                signature=signature,
                input_example=example,
                pip_requirements=[
                    f"torch=={torch.__version__.split('+')[0]}",
                    f"mlflow=={mlflow.__version__}",
                    f"numpy=={np.__version__}",
                    f"pandas=={pd.__version__}",
                ],
                metadata={
                    "rfsweep.dataset": prep["dataset"],
                    "rfsweep.algorithm": config.get("algorithm"),
                    "rfsweep.raw_features": prep["raw"],
                },
            )
        client.log_artifacts(run_id, str(out_dir), artifact_path)
    return f"runs:/{run_id}/{artifact_path}"


class _Context:
    """The part of mlflow's PythonModelContext the wrapper reads (to build the signature's output)."""

    def __init__(self, artifacts: dict[str, str]):
        self.artifacts = artifacts
