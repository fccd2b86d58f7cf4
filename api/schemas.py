"""Response bodies of the HTTP API (they are also its OpenAPI schemas). A best entry and a trial row are
sweep_service's records (`sweep_service.records`), served as the runner makes them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import ProgressCounts, SweepStatus


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
    best: BestEntry | None = Field(None, description="Best trial so far.")
    mlflow: MlflowInfo
    links: Links


class SweepDetail(SweepSummary):
    spec: dict[str, Any] = Field(description="The spec as submitted.")
    attempts: int = Field(0, description="Driver processes started for this sweep (more than 1 after a resume).")


class SweepPage(BaseModel):
    items: list[SweepSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next (older) page; null on the last.")


class BestResponse(BaseModel):
    best: BestEntry
    best_per_algorithm: dict[str, BestEntry] = Field(default_factory=dict)
    rules_without_result: dict[str, str] = Field(
        default_factory=dict, description="Once the sweep has ended: each rule with no usable trial, and why."
    )


class TrialsResponse(BaseModel):
    sweep_id: str
    status: SweepStatus
    trials: list[TrialSummary]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
