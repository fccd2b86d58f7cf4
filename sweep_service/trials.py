"""A sweep's trial table row: what the driver knows of one trial (its configuration, status, epochs,
metric values, MLflow run), and the summary of it that the CLI, the API and MLflow's CSV show."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sweep_service.status import TrialStatus

# The one training-config field the worker decides, not the spec: the device it trains on (cuda only where the
# spec asks for a GPU and the worker has one). The driver's record and the run's params get it from the
# worker's first report.
WORKER_DECIDES = "device"


@dataclass
class TrialRecord:
    trial_id: str
    algorithm: str
    # The trial's full resolved training config (`configs.full_config`: no None). `device` is in it once the
    # worker has said where it trains (a spec asking for a GPU may land on a worker without one).
    config: dict[str, Any]
    params: dict[str, Any]  # the searched parameters' values
    config_notes: dict[str, str] = field(default_factory=dict)  # field -> why it is not in `config`
    description: dict[str, Any] | None = None  # the rule in rf_core's words (`configs.describe`), made once
    status: TrialStatus = TrialStatus.PENDING
    epochs: int = 0
    last_metric: float | None = None
    best_metric: float | None = None
    mlflow_run_id: str | None = None
    weights_uri: str | None = None
    model_uri: str | None = None  # the network as an MLflow model (the best trial of each rule, at the end)
    model_error: str | None = None  # why a best trial has no model_uri
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
    started_at: float | None = None  # wall clock (Unix seconds), first start
    ended_at: float | None = None

    def summary(self) -> dict[str, Any]:
        """The row `rfsweep sweep --json`, the API's /trials and the sweep page show (times in ISO 8601, UTC)."""
        wall = None if self.started_at is None or self.ended_at is None else round(self.ended_at - self.started_at, 4)
        return {
            "trial_id": self.trial_id,
            "algorithm": self.algorithm,
            "config": self.config,
            "config_notes": self.config_notes,
            "params": self.params,
            "status": self.status.value,
            "epochs": self.epochs,
            "last_metric": self.last_metric,
            "best_metric": self.best_metric,
            "mlflow_run_id": self.mlflow_run_id,
            "weights_uri": self.weights_uri,
            "model_uri": self.model_uri,
            "training_seconds": round(sum(self.epoch_seconds.values()), 4),
            "eval_seconds": round(sum(self.eval_seconds.values()), 4),
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "wall_seconds": wall,
            "retries": self.retries,
            "device": self.device,
            "node_id": self.node_id,
            "reason": self.reason,
        }


TIE_BREAK = "equal values go to the trial that started first"


def best_record(pool: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The trial with the best `last_metric` for `mode`; ties broken as TIE_BREAK says (the CLI prints it)."""
    order = sorted(pool, key=lambda r: (math.inf if r.started_at is None else r.started_at, r.trial_id))
    if not order:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(order, key=lambda r: sign * (r.last_metric or 0.0))  # max keeps the first of equals


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


def iso_time(unix_seconds: float | None) -> str | None:
    """A wall-clock time as ISO 8601 in UTC (`2026-12-01T10:59:00.123+00:00`), or None."""
    if unix_seconds is None:
        return None
    return dt.datetime.fromtimestamp(unix_seconds, dt.UTC).isoformat(timespec="milliseconds")
