"""The records a sweep's trials cross layers as: a trial's summary row (`TrialSummary`) and a rule's best trial
(`BestEntry`). The runner makes them (`trials.TrialRecord.summary` and `.best_entry`), `SweepResult` and the
progress carry them, the API's store keeps them once and its bodies are these models, and the CLI, the sweep
page, MLflow's trials.csv and the paper experiments read them by attribute. A row an older rfsweep stored reads
back with `model_validate` (the fields it lacked take their defaults; keys it had that these lack are dropped)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sweep_service.status import TrialStatus


class TrialSummary(BaseModel):
    """One trial as `rfsweep sweep --json`, `GET /sweeps/ID/trials`, trials.csv and the sweep page show it."""

    model_config = ConfigDict(extra="ignore")

    trial_id: str
    algorithm: str
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The full resolved training config as it ran (from the worker's first report; before it, the "
        "spec's values and the sampled ones).",
    )
    config_notes: dict[str, str] = Field(
        default_factory=dict, description="Fields left out of `config` (None by design), with the reason."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The searched parameters' values.")
    status: TrialStatus
    epochs: int = 0
    last_metric: float | None = Field(None, description="The sweep's metric at the trial's last epoch.")
    best_metric: float | None = Field(None, description="The best value of the sweep's metric over its epochs.")
    mlflow_run_id: str | None = None
    weights_uri: str | None = None
    model_uri: str | None = None
    training_seconds: float = Field(0.0, description="The training steps alone, summed over epochs.")
    eval_seconds: float = Field(0.0, description="The per-epoch validation and test passes, summed.")
    started_at: dt.datetime | None = Field(None, description="When the trial first started (ISO 8601, UTC).")
    ended_at: dt.datetime | None = Field(None, description="When it reached its final status (ISO 8601, UTC).")
    wall_seconds: float | None = None
    retries: int = 0
    device: str | None = Field(None, description="Where the worker trained it (cpu | cuda).")
    node_id: str | None = None
    reason: str | None = Field(None, description="Why it stopped early, diverged, failed or was cancelled.")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class BestEntry(BaseModel):
    """A rule's (or the sweep's) best trial as `best_config.json`, `rfsweep sweep --json` and `GET /best` give it:
    its full resolved config and, once the sweep has succeeded, its MLflow model."""

    model_config = ConfigDict(extra="ignore")

    algorithm: str
    config: dict[str, Any] = Field(default_factory=dict)
    config_notes: dict[str, str] = Field(
        default_factory=dict, description="Fields left out of `config` (None by design), with the reason."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The searched parameters' values.")
    rule: dict[str, Any] | None = Field(
        None,
        description="What ran (rf_core's label): algorithm, update form, feedback source and the locality ledger "
        "(weight transport, feedback read from W, closed-form inverses, batch-global operations).",
    )
    metric: str
    value: float = Field(description="The trial's metric at its last epoch (what trials are ranked by).")
    trial_id: str
    mlflow_run_id: str | None = None
    weights_uri: str | None = None
    model_uri: str | None = Field(
        None,
        description="The network as an MLflow model taking the dataset's raw features (`mlflow.pyfunc.load_model`); "
        "set on each rule's best trial when the sweep has succeeded.",
    )
    model_error: str | None = Field(None, description="Why a best trial has no `model_uri`.")
    status: TrialStatus
    epochs: int = 0

    def to_json(self) -> dict[str, Any]:
        """As JSON, absent values left out (not null)."""
        return self.model_dump(mode="json", exclude_none=True)
