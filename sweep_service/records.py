"""The records a sweep's trials cross layers as: a trial's summary row (`TrialSummary`) and a rule's best trial
(`BestEntry`). The runner makes them (`trials.TrialRecord.summary` and `.best_entry`), `SweepResult` and the
progress carry them, the API's store keeps them once and its bodies are these models, and the CLI, the sweep
page, MLflow's trials.csv and the paper experiments read them by attribute. `from_stored` reads back a row the
API's store holds: an older rfsweep's (the fields it lacked take their defaults; keys these lack are dropped),
or None, with a warning, for one no rfsweep wrote — one bad row never fails a page of others.

Times are ISO 8601 in UTC to the millisecond (`2026-12-01T10:59:00.123+00:00`); non-finite numbers are the
caller's to clear (`numbers.json_safe`: PostgreSQL's json type refuses them)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from sweep_service.status import TrialStatus

log = logging.getLogger(__name__)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_stored(cls, data: Any) -> Self | None:
        """A stored row as this record, or None (and a warning saying why) when it is not one."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            log.warning("a stored %s that no rfsweep wrote is left out: %s", cls.__name__, exc.errors()[:3])
            return None


class TrialSummary(_Record):
    """One trial as `rfsweep sweep --json`, `GET /sweeps/ID/trials`, trials.csv and the sweep page show it."""

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

    @field_serializer("started_at", "ended_at", when_used="json")
    def _iso_milliseconds(self, when: dt.datetime | None) -> str | None:
        return None if when is None else when.astimezone(dt.UTC).isoformat(timespec="milliseconds")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class BestEntry(_Record):
    """A rule's (or the sweep's) best trial as `best_config.json`, `rfsweep sweep --json` and `GET /best` give it:
    its full resolved config and, once the sweep has succeeded, its MLflow model."""

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
    status: TrialStatus | None = Field(None, description="The trial's status (absent from entries stored before 0.2).")
    epochs: int = 0

    def to_json(self) -> dict[str, Any]:
        """As JSON, absent values left out (not null), and `config_notes` when there are none."""
        out = self.model_dump(mode="json", exclude_none=True)
        if not out.get("config_notes"):
            out.pop("config_notes", None)
        return out
