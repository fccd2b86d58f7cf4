"""A sweep's trial table row: what the driver knows of one trial (its configuration, status, epochs,
metric values, MLflow run), and the records made of it (`records.TrialSummary`, `records.BestEntry`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sweep_service.numbers import finite
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import ProgressCounts, TrialStatus

# The one training-config field the worker decides, not the spec: the device it trains on (cuda only where the
# spec asks for a GPU and the worker has one). The driver's record and the run's params get it from the
# worker's first report.
WORKER_DECIDES = "device"


@dataclass
class TrialRecord:
    trial_id: str
    algorithm: str
    # The trial's training config: the spec's and the sampled values until the worker's first report, then the full
    # resolved config the worker built (`configs.full_config_of`: no None), with the device it trains on.
    config: dict[str, Any]
    params: dict[str, Any]  # the searched parameters' values
    config_notes: dict[str, str] = field(default_factory=dict)  # field -> why it is not in `config`
    description: dict[str, Any] | None = None  # the rule in rf_core's words, from the worker's first report
    config_from_worker: bool = False  # the worker's config has reached the record and the run's params
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

    def summary(self) -> TrialSummary:
        """The row `rfsweep sweep --json`, the API's /trials and the sweep page show."""
        wall = None if self.started_at is None or self.ended_at is None else round(self.ended_at - self.started_at, 4)
        return TrialSummary(
            trial_id=self.trial_id,
            algorithm=self.algorithm,
            config=self.config,
            config_notes=self.config_notes,
            params=self.params,
            status=self.status,
            epochs=self.epochs,
            last_metric=self.last_metric,
            best_metric=self.best_metric,
            mlflow_run_id=self.mlflow_run_id,
            weights_uri=self.weights_uri,
            model_uri=self.model_uri,
            training_seconds=round(sum(self.epoch_seconds.values()), 4),
            eval_seconds=round(sum(self.eval_seconds.values()), 4),
            started_at=utc_time(self.started_at),
            ended_at=utc_time(self.ended_at),
            wall_seconds=wall,
            retries=self.retries,
            device=self.device,
            node_id=self.node_id,
            reason=self.reason,
        )

    def best_entry(self, metric: str) -> BestEntry:
        """This trial as a best entry (it has a usable `last_metric`: `usable`)."""
        assert self.last_metric is not None
        return BestEntry(
            algorithm=self.algorithm,
            config=self.config,
            config_notes=self.config_notes,
            params=self.params,
            rule=self.description,
            metric=metric,
            value=self.last_metric,
            trial_id=self.trial_id,
            mlflow_run_id=self.mlflow_run_id,
            weights_uri=self.weights_uri,
            model_uri=self.model_uri,
            model_error=self.model_error,
            status=self.status,
            epochs=self.epochs,
        )

    @property
    def usable(self) -> bool:
        """Whether the trial has a result to rank: not diverged or failed, a finite last value."""
        bad = (TrialStatus.DIVERGED, TrialStatus.FAILED)
        return self.status not in bad and finite(self.last_metric) is not None


def unsaved_twin(rec: TrialRecord, records: Iterable[TrialRecord], live_ids: set[str]) -> TrialRecord | None:
    """A record of a run left open by a dead driver for a trial Tune never saved, with `rec`'s configuration.

    Tune snapshots its experiment every few seconds; a trial created after the last snapshot is forgotten on
    restore and the restored (seeded) searcher suggests the same configuration again under a new trial id. That
    trial takes over the old run, so the configuration keeps one run.
    """
    params = json.dumps(rec.params, sort_keys=True)
    for other in records:
        if (
            other.trial_id not in live_ids
            and other.mlflow_run_id
            and not other.status.terminal
            and other.algorithm == rec.algorithm
            and json.dumps(other.params, sort_keys=True) == params
        ):
            return other
    return None


def progress_counts(
    records: Iterable[TrialRecord], total: int, max_epochs: int, unseen: TrialStatus = TrialStatus.PENDING
) -> ProgressCounts:
    """The table's trials by status; the `total - len(records)` trials not suggested yet count as `unseen`."""
    pool = list(records)
    counts = ProgressCounts(
        total=max(total, len(pool)), epochs_done=sum(len(r.epoch_seconds) for r in pool), max_epochs=max_epochs
    )
    for rec in pool:
        setattr(counts, rec.status.value, counts.trials(rec.status) + 1)
    setattr(counts, unseen.value, counts.trials(unseen) + max(0, total - len(pool)))
    return counts


def timeline(records: Iterable[TrialRecord], started_wall: float) -> dict[str, float | None]:
    """When the first trial started and the last ended, in seconds after `started_wall`."""
    pool = list(records)
    starts = [r.started_at for r in pool if r.started_at is not None]
    ends = [r.ended_at for r in pool if r.ended_at is not None]
    return {
        "first_trial_started_s": round(min(starts) - started_wall, 3) if starts else None,
        "last_trial_ended_s": round(max(ends) - started_wall, 3) if ends else None,
    }


def short_number(value: Any) -> str:
    """A value for a tag or a message: numbers to 6 significant digits, None as ""."""
    if value is None:
        return ""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)


def utc_time(unix_seconds: float | None) -> dt.datetime | None:
    """A wall-clock time (Unix seconds) as an aware UTC datetime, to the millisecond, or None."""
    if unix_seconds is None:
        return None
    return dt.datetime.fromtimestamp(round(unix_seconds, 3), dt.UTC)
