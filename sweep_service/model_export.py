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

Input dtypes. The signature is one unnamed `double` column per raw feature, so `mlflow.pyfunc.load_model`
takes a 2-D numpy array or a pandas DataFrame (column names are not read, their order is) of float64,
float32, float16, int8–int32 or uint8–uint32 — MLflow's schema enforcement casts those to float64 — and the
wrapper casts that to float32, what the network computes in. MLflow itself refuses int64/uint64 ("can not
safely convert") and passes on only the first `input_dim` columns of a wider input. `load_best_model(uri)`
(rfsweep installed) takes any of those and int64/uint64 and Python lists too, refuses any other width, and
loads without MLflow's artifact-download progress bar. Each model carries `model_card.md` saying all this
for its dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep_service import mlflow_names as names

if TYPE_CHECKING:
    import torch
    from mlflow.tracking import MlflowClient

MODEL_ARTIFACT, MODEL_CARD = names.MODEL_ARTIFACT, names.MODEL_CARD
# MLflow's switch for the tqdm bar it draws while downloading artifacts (a line per file where stderr is no
# terminal): 31 lines for this model's folder. `load_best_model` turns it off for the download.
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# What `mlflow.pyfunc.load_model(...).predict` takes under the signature (one double column per feature):
# the dtypes MLflow's schema enforcement casts to float64 itself.
PYFUNC_DTYPES = ("float64", "float32", "float16", "int8", "int16", "int32", "uint8", "uint16", "uint32")
# Integers are exact in float64 up to 2**53: larger raw values cannot be features of these datasets.
_EXACT_INT = 2**53
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

            pre = self.meta["preprocessing"]
            x = np.asarray(model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input)
            if x.dtype.kind not in "fiu":
                raise ValueError(f"raw features must be numbers (float or integer); got dtype {x.dtype}")
            if x.ndim == 1:
                x = x.reshape(1, -1)
            if x.ndim != 2 or x.shape[1] != pre["input_dim"]:
                raise ValueError(
                    f"expected rows of {pre['input_dim']} raw features ({pre['raw']}); got shape {x.shape}"
                )
            x = x.astype(np.float32)  # what the network computes in, whatever the caller's dtype
            if not np.isfinite(x).all():
                raise ValueError("raw features must be finite (no NaN or infinity)")
            t = (torch.from_numpy(x) / pre["scale"] - pre["mean"]) / pre["std"]
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
    the run). Signature: one unnamed double column per raw feature in (see the module's "Input dtypes");
    label and probabilities out. `model_card.md` sits in the model's folder.
    """
    import mlflow
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    import torch
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

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
        torch.save(state, tmp_path / names.WEIGHTS_FILE)
        (tmp_path / "meta.json").write_text(json.dumps(meta, indent=1))
        example = _raw_example(prep)
        probe = model_class()  # a loaded copy, only to see the output's shape for the signature
        probe.load_context(
            _Context({"state_dict": str(tmp_path / names.WEIGHTS_FILE), "meta": str(tmp_path / "meta.json")})
        )
        output = probe.predict(None, example)
        out_dir = tmp_path / artifact_path
        with warnings.catch_warnings():  # MLflow's hints about type hints and integer columns do not apply
            warnings.simplefilter("ignore", UserWarning)
            # Columns, not a float64 tensor: MLflow enforces a tensor's dtype exactly (float32 refused) and
            # casts columns safely (float32 and the narrower integers to float64).
            inputs = Schema([ColSpec("double") for _ in range(prep["input_dim"])])
            signature = ModelSignature(inputs=inputs, outputs=infer_signature(example, output).outputs)
            mlflow.pyfunc.save_model(
                path=str(out_dir),
                python_model=model_class(),
                artifacts={"state_dict": str(tmp_path / names.WEIGHTS_FILE), "meta": str(tmp_path / "meta.json")},
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
                    "rfsweep.input_dim": prep["input_dim"],
                    "rfsweep.model_card": MODEL_CARD,
                },
            )
        (out_dir / MODEL_CARD).write_text(model_card(meta, list(output.columns)))
        client.log_artifacts(run_id, str(out_dir), artifact_path)
    return f"runs:/{run_id}/{artifact_path}"


def model_card(meta: Mapping[str, Any], output_columns: list[str]) -> str:
    """The model's card (`model_card.md` in its folder): what goes in, in which dtypes, what comes out."""
    from rf_core.config import TrainConfig

    prep = meta["preprocessing"]
    config = TrainConfig.from_dict(dict(meta["config"])).resolved()
    width, k = prep["input_dim"], int(meta["num_classes"])
    layers = "-".join(str(n) for n in (width, *config.hidden_sizes, k))
    return f"""# {config.algorithm} network on {prep["dataset"]}: model card

An MLflow pyfunc model exported by rfsweep (`sweep_service/model_export.py`): rf_core's MLP ({layers},
{config.activation}) trained with the `{config.algorithm}` rule for {config.epochs} epochs (seed
{config.seed}), the dataset's preprocessing inside.

## Input

Rows of **{width} raw features**: {prep["raw"]}. A 2-D numpy array or a pandas DataFrame, one row per
sample, any number of rows; a DataFrame's column names are not read, their order is.

- `mlflow.pyfunc.load_model(uri)` (mlflow, torch, numpy, pandas): {", ".join(PYFUNC_DTYPES)}. The signature
  is {width} unnamed `double` columns, and MLflow casts these dtypes to float64 itself. It refuses
  int64/uint64 (cast them first, e.g. `x.astype("float32")`), and of a wider input it passes on the first
  {width} columns only.
- `sweep_service.model_export.load_best_model(uri)` (rfsweep installed): all of those, int64/uint64
  (integers up to 2**53) and nested Python lists; any width other than {width} is refused. It loads without
  MLflow's artifact-download progress bar.

Inside, the features are cast to **float32** (what the network computes in), must be finite, and become
`(x / {prep["scale"]:g} - {prep["mean"]:.6g}) / {prep["std"]:.6g}`: the dataset's scale, then rf_core's
standardisation with one mean and std of the training split.

## Output

A pandas DataFrame, one row per input row: `label` (int64, the class index 0..{k - 1}: {meta["labels"]})
and `probability_0` … `probability_{k - 1}` (float64, softmax, summing to 1); columns: {", ".join(output_columns)}.

## Loading quietly

MLflow draws a progress bar (a line per file where stderr is no terminal) while it downloads the model.
`load_best_model` turns it off; with mlflow alone, set `{PROGRESS_BAR_ENV}=false` in the environment first.
"""


def _numeric_rows(x: Any, width: int) -> Any:
    """Raw features as a float64 array of shape (rows, width), from any real or integer array-like."""
    import numpy as np

    array = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"raw features must be numbers (float or integer); got dtype {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"expected rows of {width} raw features; got shape {array.shape}")
    if array.dtype.kind in "iu" and array.size and int(np.abs(array).max()) > _EXACT_INT:
        raise ValueError(f"integer raw features must lie within ±2**53 (exact in float64); got {np.abs(array).max()}")
    return array.astype(np.float64)


class BestModel:
    """An exported best model loaded by `load_best_model`: `predict` takes raw features of any real or
    integer dtype, as an array, DataFrame or nested list, and casts them to float64 (what the signature
    declares) before MLflow's pyfunc model sees them. `pyfunc` is MLflow's model, `metadata` its MLmodel."""

    def __init__(self, pyfunc: Any):
        self.pyfunc = pyfunc
        self.metadata = pyfunc.metadata
        extra = self.metadata.metadata or {}
        schema = self.metadata.get_input_schema()
        if "rfsweep.input_dim" in extra:
            self.input_dim = int(extra["rfsweep.input_dim"])
        elif schema is not None and schema.is_tensor_spec():  # models exported before the column signature
            self.input_dim = int(schema.inputs[0].shape[-1])
        elif schema is not None:
            self.input_dim = len(schema.inputs)
        else:
            raise ExportError("the model declares no input width (not a model rfsweep exported?)")

    def predict(self, model_input: Any) -> Any:
        return self.pyfunc.predict(_numeric_rows(model_input, self.input_dim))


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    before = os.environ.get(PROGRESS_BAR_ENV)
    os.environ[PROGRESS_BAR_ENV] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_BAR_ENV, None)
        else:
            os.environ[PROGRESS_BAR_ENV] = before


def load_best_model(model_uri: str, *, tracking_uri: str | None = None) -> BestModel:
    """Load an exported best model (`runs:/RUN/model`, or a local path) quietly: no artifact-download
    progress bar (MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR off while it downloads; the process's setting is
    restored after). `tracking_uri`: the sweep's store, else MLflow's own resolution (MLFLOW_TRACKING_URI)."""
    import mlflow
    import mlflow.pyfunc

    with _no_progress_bar():
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        return BestModel(mlflow.pyfunc.load_model(model_uri))


class _Context:
    """The part of mlflow's PythonModelContext the wrapper reads (to build the signature's output)."""

    def __init__(self, artifacts: dict[str, str]):
        self.artifacts = artifacts
