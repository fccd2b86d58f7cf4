"""The best trials in MLflow, once a sweep ends: each rule's best trial tagged (`rfsweep.best`: rule | sweep)
and named (a leading `★`), and, for a succeeded sweep, its network logged as an MLflow model
(`model_export.log_best_model`) beside its state dict."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from sweep_service import mlflow_names as names
from sweep_service import mlflow_ui, tracking
from sweep_service.trials import TrialRecord

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def mark_best(client: MlflowClient, best: Mapping[str, TrialRecord], overall: TrialRecord | None) -> None:
    """Tag (`rfsweep.best`: rule | sweep) and name (a leading `★`) the best trial of each rule."""
    for rec in best.values():
        if rec.mlflow_run_id is None:
            continue
        tracking.log_tags(client, rec.mlflow_run_id, {names.BEST: "sweep" if rec is overall else "rule"})
        name = mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id, rec.status.value, best=True)
        client.update_run(rec.mlflow_run_id, name=name)


def log_best_models(client: MlflowClient, recs: list[TrialRecord]) -> None:
    """Each trial's network as an MLflow model (`runs:/RUN/model`, `model_export`) beside its state dict:
    sets `rec.model_uri`, or `rec.model_error` saying why there is none."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars on the console
    with _quiet_mlflow():
        for rec in recs:
            _log_best_model(client, rec)


def _log_best_model(client: MlflowClient, rec: TrialRecord) -> None:
    import torch

    from sweep_service.model_export import log_best_model

    if rec.mlflow_run_id is None or rec.weights_uri is None:
        rec.model_error = "no weights were saved for this trial"
        return
    try:
        with tempfile.TemporaryDirectory(prefix="rfsweep-model-") as tmp:
            local = client.download_artifacts(rec.mlflow_run_id, names.WEIGHTS_ARTIFACT, tmp)
            state = torch.load(local, map_location="cpu", weights_only=True)
        rec.model_uri = log_best_model(rec.config, state, run_id=rec.mlflow_run_id, client=client)
        tracking.log_tags(client, rec.mlflow_run_id, {names.MODEL_URI: rec.model_uri})
    except Exception as exc:  # e.g. a driver without the dataset's files: the state dict stays
        rec.model_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("trial %s: could not log its model: %s", rec.trial_id, rec.model_error)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's notes while saving a model (input-example validation, cloudpickle, type hints) are about
    choices model_export made on purpose; keep them off the sweep's console."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
