"""Response bodies of the HTTP API (they are also its OpenAPI schemas)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sweep_service.status import SWEEP_STATUS_NAMES, ProgressCounts

SweepStatus = Literal[SWEEP_STATUS_NAMES]  # type: ignore[valid-type]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong, in words.")


class Links(BaseModel):
    self: str
    best: str
    trials: str
    mlflow: str | None = Field(
        None,
        description="MLflow UI: the sweep's runs (metric, searched parameters, status and best as columns), "
        "once the sweep has started.",
    )
    report: str | None = Field(
        None, description="MLflow UI: the sweep page (sweep_report.html on the parent run), once the sweep has started."
    )


class SweepCreated(BaseModel):
    id: str
    status: SweepStatus
    links: Links


class BestTrial(BaseModel):
    model_config = ConfigDict(extra="allow")

    algorithm: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metric: str | None = None
    value: float | None = None
    trial_id: str | None = None
    mlflow_run_id: str | None = None
    weights_uri: str | None = None
    model_uri: str | None = Field(
        None,
        description="The network as an MLflow model taking the dataset's raw features (`mlflow.pyfunc.load_model`); "
        "set on each rule's best trial when the sweep has succeeded.",
    )
    config_notes: dict[str, str] = Field(
        default_factory=dict, description="Fields left out of `config` (None by design), with the reason."
    )
    rule: dict[str, Any] | None = Field(
        None,
        description="What ran (rf_core's label): algorithm, update form, feedback source and the locality ledger "
        "(weight transport, feedback read from W, closed-form inverses, batch-global operations).",
    )


class MlflowInfo(BaseModel):
    experiment_id: str | None = None
    parent_run_id: str | None = None
    ui_url: str | None = None


class SweepSummary(BaseModel):
    id: str
    name: str | None = None
    status: SweepStatus
    cancel_requested: bool = False
    pause_requested: bool = Field(False, description="A pause was asked and the driver has not carried it out yet.")
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = Field(None, description="Why the sweep failed.")
    progress: ProgressCounts
    best: BestTrial | None = Field(None, description="Best trial so far.")
    mlflow: MlflowInfo
    links: Links


class SweepDetail(SweepSummary):
    spec: dict[str, Any] = Field(description="The spec as submitted.")
    attempts: int = Field(0, description="Driver processes started for this sweep (more than 1 after a resume).")


class SweepPage(BaseModel):
    items: list[SweepSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next (older) page; null on the last.")


class BestResponse(BaseModel):
    best: BestTrial
    best_per_algorithm: dict[str, BestTrial] = Field(default_factory=dict)
    rules_without_result: dict[str, str] = Field(
        default_factory=dict, description="Once the sweep has ended: each rule with no usable trial, and why."
    )


class Trial(BaseModel):
    model_config = ConfigDict(extra="allow")

    trial_id: str
    algorithm: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    status: str
    epochs: int = 0
    last_metric: float | None = None
    best_metric: float | None = None
    mlflow_run_id: str | None = None
    started_at: dt.datetime | None = Field(None, description="When the trial first started (ISO 8601, UTC).")
    ended_at: dt.datetime | None = Field(None, description="When it reached its final status (ISO 8601, UTC).")


class TrialsResponse(BaseModel):
    sweep_id: str
    status: SweepStatus
    trials: list[Trial]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
