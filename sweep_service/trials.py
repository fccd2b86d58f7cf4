"""A sweep's trial table row: what the driver knows of one trial (its configuration, status, epochs,
metric values, MLflow run), and the summary of it that the CLI, the API and MLflow's CSV show."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sweep_service.status import TrialStatus


@dataclass
class TrialRecord:
    trial_id: str
    algorithm: str
    config: dict[str, Any]  # the full training config of the trial
    params: dict[str, Any]  # the searched parameters' values
    status: TrialStatus = TrialStatus.PENDING
    epochs: int = 0
    last_metric: float | None = None
    best_metric: float | None = None
    mlflow_run_id: str | None = None
    weights_uri: str | None = None
    logged_epochs: set[int] = field(default_factory=set)  # epochs whose metrics are in MLflow (never logged twice)
    epoch_seconds: dict[int, float] = field(default_factory=dict)  # training steps only
    eval_seconds: dict[int, float] = field(default_factory=dict)  # the per-epoch validation and test passes
    curve: dict[int, float] = field(default_factory=dict)  # epoch -> the sweep metric (for the parent's plot)
    retries: int = 0
    resumed_from_epoch: int | None = None
    device: str | None = None
    node_id: str | None = None
    diverged_at: int | None = None
    early_stop: dict[str, Any] | None = None
    reason: str | None = None
    started_at: float | None = None  # driver clock (monotonic), first start
    ended_at: float | None = None

    def summary(self) -> dict[str, Any]:
        wall = None if self.started_at is None or self.ended_at is None else round(self.ended_at - self.started_at, 4)
        return {
            "trial_id": self.trial_id,
            "algorithm": self.algorithm,
            "config": self.config,
            "params": self.params,
            "status": self.status.value,
            "epochs": self.epochs,
            "last_metric": self.last_metric,
            "best_metric": self.best_metric,
            "mlflow_run_id": self.mlflow_run_id,
            "weights_uri": self.weights_uri,
            "training_seconds": round(sum(self.epoch_seconds.values()), 4),
            "eval_seconds": round(sum(self.eval_seconds.values()), 4),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "wall_seconds": wall,
            "retries": self.retries,
            "device": self.device,
            "node_id": self.node_id,
            "reason": self.reason,
        }


def best_of(values: list[float | None], mode: str) -> float | None:
    """The best finite value for a metric to `mode` ("max" | "min"), or None."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def short_number(value: Any) -> str:
    """A value for a tag or a message: numbers to 6 significant digits, None as ""."""
    if value is None:
        return ""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)
