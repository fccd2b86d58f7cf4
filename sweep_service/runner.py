"""Run a sweep: spec → one Ray Tune experiment (a HyperOpt search and an ASHA scheduler per rule) →
MLflow (a parent run per sweep, one child run per trial) → a `SweepResult`.

`run_sweep` is what the CLI and the API's sweep drivers call. The driver process runs Tune's control loop;
trials run in Ray workers. All MLflow writes happen here in the driver, in `SweepMonitor`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from sweep_service import budget, paths, tracking
from sweep_service.spec import SweepSpec
from sweep_service.status import TrialStatus
from sweep_service.trainable import RESTORED_HISTORY

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
STOP_POLL_EVERY_S = 0.25


@dataclass
class SweepProgress:
    sweep_id: str
    total: int
    pending: int
    running: int
    finished: int
    stopped_early: int
    failed: int
    diverged: int
    cancelled: int
    epochs_done: int
    max_epochs: int
    best: dict[str, Any] | None
    trials: list[dict[str, Any]]
    experiment_id: str | None
    parent_run_id: str | None
    elapsed_seconds: float
    metric: str
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepResult:
    sweep_id: str
    status: str  # succeeded | cancelled
    best: dict[str, Any] | None
    best_per_algorithm: dict[str, dict[str, Any]]
    trials: list[dict[str, Any]]
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    seconds: float
    counts: dict[str, int]
    metric: str
    mode: str
    storage_path: str
    timeline: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The object `rfsweep sweep --json` prints (and the API's /best and /trials reuse)."""
        return {
            "sweep_id": self.sweep_id,
            "status": self.status,
            "metric": self.metric,
            "mode": self.mode,
            "best": self.best,
            "best_per_algorithm": self.best_per_algorithm,
            "trials": self.trials,
            "counts": self.counts,
            "mlflow": {
                "experiment_id": self.experiment_id,
                "parent_run_id": self.parent_run_id,
                "tracking_uri": self.tracking_uri,
            },
            "storage_path": self.storage_path,
            "timeline": self.timeline,
            "seconds": self.seconds,
        }


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
            "wall_seconds": None
            if self.started_at is None or self.ended_at is None
            else round(self.ended_at - self.started_at, 4),
            "retries": self.retries,
            "device": self.device,
            "node_id": self.node_id,
            "reason": self.reason,
        }


class SweepMonitor:
    """Keeps the trial table, writes MLflow, reports progress and notices cancellation (driver side)."""

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        spaces: dict,
        tracking_uri: str,
        on_progress: Callable[[SweepProgress], None] | None,
        should_stop: Callable[[], bool] | None,
    ):
        self.spec = spec
        self.sweep_id = sweep_id
        self.spaces = spaces
        self.tracking_uri = tracking_uri
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.client = tracking.make_client(tracking_uri)
        self.experiment_id = tracking.ensure_experiment(
            self.client, spec.tracking.experiment or spec.name, tracking_uri
        )
        self.parent_run_id: str | None = None
        self.records: dict[str, TrialRecord] = {}
        self.cancel_requested = False
        self._pending: dict[str, list] = {}  # run id -> futures of asynchronous metric writes
        # Our own writer thread, not MLflow's async logging: that queue is global to the store and every
        # `set_terminated` shuts it down and joins its thread (~1 s each, in Tune's event loop).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfsweep-mlflow-writer")
        self.tune_status: dict[str, str] = {}
        self.tune_checkpoints: dict[str, Any] = {}  # trial id → its newest Tune checkpoint, for backfilling
        self.started = time.monotonic()
        self._last_progress = 0.0
        self._last_stop_poll = 0.0
        self._dirty = True
        self._total = budget.total_trials(spec)
        self._max_epochs = budget.max_epochs(spec)
        self._sign = 1.0 if spec.mode == "max" else -1.0

    # ---- MLflow runs, found by tags --------------------------------------------------------------

    def open(self) -> None:
        """Find or create the parent run; reload the trials an earlier driver already logged."""
        parents = tracking.find_runs(self.client, self.experiment_id, sweep_id=self.sweep_id, role="sweep")
        if parents:
            self.parent_run_id = parents[0].info.run_id
            if parents[0].info.status != "RUNNING":
                self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self.experiment_id,
                run_name=self.sweep_id,
                tags={
                    tracking.TAG_ROLE: "sweep",
                    tracking.TAG_SWEEP_ID: self.sweep_id,
                    tracking.TAG_ALGORITHMS: ",".join(self.spec.algorithms),
                    "rfsweep.metric": self.spec.metric,
                    "rfsweep.mode": self.spec.mode,
                },
            )
            self.parent_run_id = run.info.run_id
            spec = self.spec
            tracking.log_params(
                self.client,
                self.parent_run_id,
                {
                    "name": spec.name,
                    "dataset": spec.dataset.name,
                    "algorithms": ",".join(spec.algorithms),
                    "metric": spec.metric,
                    "mode": spec.mode,
                    "search_method": spec.search.method,
                    "num_samples": str(spec.search.num_samples),
                    "seed": str(spec.search.seed),
                    "max_concurrent_trials": str(spec.search.max_concurrent_trials),
                    "scheduler": spec.scheduler.type,
                    "max_t": str(spec.max_t),
                    "checkpoint_every": str(spec.checkpoint_every),
                    "max_failures": str(spec.failure.max_failures),
                    "resources": json.dumps(spec.resources.model_dump()),
                },
            )
            tracking.log_text(self.client, self.parent_run_id, spec.to_yaml(), "spec.yaml")
        for run in tracking.find_runs(self.client, self.experiment_id, sweep_id=self.sweep_id, role="trial"):
            self._reload_trial(run)

    def _reload_trial(self, run) -> None:
        tags = run.data.tags
        trial_id = tags.get(tracking.TAG_TRIAL_ID)
        if not trial_id or trial_id in self.records:
            return
        config = json.loads(tags.get("rfsweep.config", "{}"))
        params = json.loads(tags.get("rfsweep.params", "{}"))
        rec = TrialRecord(
            trial_id=trial_id, algorithm=tags.get(tracking.TAG_ALGORITHM, "?"), config=config, params=params
        )
        rec.mlflow_run_id = run.info.run_id
        rec.status = TrialStatus(tags.get(tracking.TAG_STATUS, "running"))
        rec.retries = int(tags.get("rfsweep.retries", 0))
        rec.reason = tags.get("rfsweep.failure_reason")
        if tags.get("rfsweep.weights_uri"):
            rec.weights_uri = tags["rfsweep.weights_uri"]
        history = tracking.metric_history(self.client, rec.mlflow_run_id, self.spec.metric)
        seconds = tracking.metric_history(self.client, rec.mlflow_run_id, "epoch_seconds")
        rec.epoch_seconds = {int(s): v for s, v in seconds}
        rec.eval_seconds = {
            int(s): v for s, v in tracking.metric_history(self.client, rec.mlflow_run_id, "eval_seconds")
        }
        rec.curve = {int(s): v for s, v in history}
        rec.logged_epochs = {int(step) for step, _ in history}
        if history:
            rec.epochs = history[-1][0]
            rec.last_metric = history[-1][1]
            rec.best_metric = self._pick_best([v for _, v in history])
        if rec.status is TrialStatus.DIVERGED:
            rec.last_metric = None
        self.records[trial_id] = rec

    def _record(self, trial) -> TrialRecord:
        rec = self.records.get(trial.trial_id)
        if rec is None:
            rule = trial.config.get("algorithm", "?")
            sampled = {k: v for k, v in trial.config.items() if k != "algorithm"}
            space = self.spaces.get(rule)
            config = space.decode(sampled) if space else dict(trial.config)
            params = space.parameter_values(sampled) if space else {}
            config.setdefault("epochs", self.spec.max_t)
            rec = TrialRecord(trial_id=trial.trial_id, algorithm=rule, config=config, params=params)
            self.records[trial.trial_id] = rec
        return rec

    def _ensure_run(self, rec: TrialRecord, tune_trials: list | None = None) -> str:
        if rec.mlflow_run_id:
            return rec.mlflow_run_id
        found = tracking.find_runs(self.client, self.experiment_id, sweep_id=self.sweep_id, trial_id=rec.trial_id)
        if found:
            rec.mlflow_run_id = found[0].info.run_id
            return rec.mlflow_run_id
        orphan = self._orphan_like(rec, tune_trials)
        if orphan is not None:
            return self._adopt(rec, orphan)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{rec.algorithm}-{rec.trial_id}",
            tags={
                tracking.TAG_PARENT: self.parent_run_id,
                tracking.TAG_ROLE: "trial",
                tracking.TAG_SWEEP_ID: self.sweep_id,
                tracking.TAG_TRIAL_ID: rec.trial_id,
                tracking.TAG_ALGORITHM: rec.algorithm,
                tracking.TAG_STATUS: TrialStatus.RUNNING.value,
                "rfsweep.config": json.dumps(rec.config),
                "rfsweep.params": json.dumps(rec.params),
            },
        )
        rec.mlflow_run_id = run.info.run_id
        tracking.log_params(self.client, rec.mlflow_run_id, tracking.params_from_config(rec.config))
        return rec.mlflow_run_id

    def _orphan_like(self, rec: TrialRecord, tune_trials: list | None) -> TrialRecord | None:
        """A run left open by a dead driver for a trial Tune never saved, with this trial's config.

        Tune snapshots its experiment every few seconds; a trial created after the last snapshot is
        forgotten on restore and the restored (seeded) searcher suggests the same configuration again
        under a new trial id. That trial takes over the old run, so the configuration keeps one run.
        """
        if tune_trials is None:
            return None
        live_ids = {t.trial_id for t in tune_trials}
        for other in self.records.values():
            if (
                other.trial_id not in live_ids
                and other.mlflow_run_id
                and not other.status.terminal
                and other.algorithm == rec.algorithm
                and json.dumps(other.params, sort_keys=True) == json.dumps(rec.params, sort_keys=True)
            ):
                return other
        return None

    def _adopt(self, rec: TrialRecord, orphan: TrialRecord) -> str:
        del self.records[orphan.trial_id]
        rec.mlflow_run_id = orphan.mlflow_run_id
        rec.logged_epochs = set(orphan.logged_epochs)
        tracking.log_tags(
            self.client,
            rec.mlflow_run_id,
            {
                tracking.TAG_TRIAL_ID: rec.trial_id,
                "rfsweep.previous_trial_id": orphan.trial_id,
                "rfsweep.config": json.dumps(rec.config),
            },
        )
        log.info("trial %s continues the run of unsaved trial %s", rec.trial_id, orphan.trial_id)
        return rec.mlflow_run_id

    def _set_status(self, rec: TrialRecord, status: TrialStatus, extra_tags: dict[str, Any] | None = None) -> None:
        rec.status = status
        self._dirty = True
        if status.terminal and rec.ended_at is None:
            rec.ended_at = time.monotonic()
        if rec.mlflow_run_id is None:
            return
        tags = {tracking.TAG_STATUS: status.value, **(extra_tags or {})}
        tracking.log_tags(self.client, rec.mlflow_run_id, tags)
        if status.terminal:
            self._flush(rec.mlflow_run_id)
            summary = {
                "rfsweep.epochs": rec.epochs,
                "rfsweep.last_metric": "" if rec.last_metric is None else f"{rec.last_metric:.6g}",
                "rfsweep.best_metric": "" if rec.best_metric is None else f"{rec.best_metric:.6g}",
            }
            tracking.log_tags(self.client, rec.mlflow_run_id, summary)
            self.client.set_terminated(rec.mlflow_run_id, status.mlflow_run_status)
        elif status is TrialStatus.RUNNING:
            run = self.client.get_run(rec.mlflow_run_id)
            if run.info.status != "RUNNING":  # a restored trial re-opens its own run, never a new one
                self.client.update_run(rec.mlflow_run_id, status="RUNNING")

    def _flush(self, run_id: str | None = None) -> None:
        for rid in [run_id] if run_id else list(self._pending):
            for future in self._pending.pop(rid, []):
                try:
                    future.result()
                except Exception as exc:
                    log.warning("run %s: a metric write failed: %s", rid, exc)

    def _pick_best(self, values: list[float]) -> float | None:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self._sign > 0 else min(finite)

    # ---- Tune events -------------------------------------------------------------------------------

    def trial_started(self, trial, tune_trials: list | None = None) -> None:
        rec = self._record(trial)
        if rec.started_at is None:
            rec.started_at = time.monotonic()
        self._ensure_run(rec, tune_trials)
        if rec.status is not TrialStatus.RUNNING:
            self._set_status(rec, TrialStatus.RUNNING)

    def trial_result(self, trial, result: dict) -> None:
        rec = self._record(trial)
        run_id = self._ensure_run(rec)
        if rec.status is not TrialStatus.RUNNING and not rec.status.terminal:
            self._set_status(rec, TrialStatus.RUNNING)
        epoch = int(result.get("epoch", 0))
        if not epoch:
            return
        self._dirty = True
        if result.get("device") and rec.device is None:
            rec.device = str(result["device"])
            rec.node_id = str(result.get("node_id") or "")
            tracking.log_tags(self.client, run_id, {"rfsweep.device": rec.device, "rfsweep.node_id": rec.node_id})
        resumed = int(result.get("resumed_from_epoch") or 0)
        if resumed and rec.resumed_from_epoch != resumed:
            rec.resumed_from_epoch = resumed
            tracking.log_tags(self.client, run_id, {"rfsweep.resumed_from_epoch": resumed})
        if result.get(RESTORED_HISTORY):
            # Epochs the checkpoint holds but MLflow missed (the driver died before writing them).
            for record in json.loads(result[RESTORED_HISTORY]):
                self._note_epoch(rec, run_id, record)
        if result.get("diverged"):
            rec.diverged_at = epoch
            return
        self._note_epoch(rec, run_id, {**result, "seconds": result.get("epoch_seconds")})

    def _note_epoch(self, rec: TrialRecord, run_id: str, result: dict) -> None:
        epoch = int(result["epoch"])
        rec.epoch_seconds[epoch] = float(result.get("seconds") or 0.0)
        rec.eval_seconds[epoch] = float(result.get("eval_seconds") or 0.0)
        value = result.get(self.spec.metric)
        if value is not None:
            rec.curve[epoch] = float(value)
        rec.epochs = max(rec.epochs, epoch)
        if epoch >= rec.epochs:
            rec.last_metric = None if value is None else float(value)
        if value is not None:
            candidates = [rec.best_metric, float(value)]
            rec.best_metric = self._pick_best([c for c in candidates if c is not None])
        if epoch not in rec.logged_epochs:
            # Asynchronous: the trial waits for the driver after every epoch, so the driver must not wait
            # for the store. Pending writes are flushed before the run's status changes.
            self._pending.setdefault(run_id, []).append(
                self._writer.submit(tracking.log_epoch, self.client, run_id, result)
            )
            rec.logged_epochs.add(epoch)

    def note_early_stop(self, trial_id: str, rung: float | None, cutoff: float | None, value: Any) -> None:
        rec = self.records.get(trial_id)
        if rec is not None:
            rec.early_stop = {"rung": rung, "cutoff": cutoff, "value": value}

    def trial_completed(self, trial) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        extra: dict[str, Any] = {}
        if rec.diverged_at is not None:
            status = TrialStatus.DIVERGED
            rec.reason = f"diverged: the loss became NaN/inf in epoch {rec.diverged_at}"
            extra["rfsweep.failure_reason"] = rec.reason
            rec.last_metric = None
        elif self.cancel_requested:
            status = TrialStatus.CANCELLED
        elif rec.early_stop is not None and rec.epochs < self.spec.max_t:
            status = TrialStatus.STOPPED_EARLY
            stop = rec.early_stop
            extra.update(
                {
                    "rfsweep.stopped_early": "true",
                    "rfsweep.stopped_at_rung": _num(stop.get("rung")),
                    "rfsweep.rung_cutoff": _num(stop.get("cutoff")),
                    "rfsweep.rung_value": _num(stop.get("value")),
                }
            )
            rec.reason = (
                f"stopped by ASHA at epoch {rec.epochs}: {self.spec.metric} {_num(stop.get('value'))} "
                f"missed the rung cutoff {_num(stop.get('cutoff'))}"
            )
        else:
            status = TrialStatus.FINISHED
        if status is not TrialStatus.DIVERGED:
            self._log_weights(rec, trial)
        if rec.weights_uri:
            extra["rfsweep.weights_uri"] = rec.weights_uri
        self._set_status(rec, status, extra)

    def _log_weights(self, rec: TrialRecord, trial) -> None:
        checkpoint = getattr(trial, "checkpoint", None)
        if checkpoint is None or rec.mlflow_run_id is None:
            return
        try:
            from sweep_service.trainable import STATE_FILE, WEIGHTS_FILE

            with checkpoint.as_directory() as folder:
                weights_file = Path(folder) / WEIGHTS_FILE
                if weights_file.exists():  # written by the worker: a plain copy, no torch.load here
                    self.client.log_artifact(rec.mlflow_run_id, str(weights_file), artifact_path="weights")
                    rec.weights_uri = tracking.weights_uri(rec.mlflow_run_id)
                else:
                    import torch

                    state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
                    weights = {k: v.cpu() for k, v in state["model"].items()}
                    rec.weights_uri = tracking.log_weights(self.client, rec.mlflow_run_id, weights)
        except Exception as exc:  # weights are a convenience; never fail the sweep over them
            log.warning("trial %s: could not log weights: %s", rec.trial_id, exc)

    def trial_recovering(self, trial) -> None:
        rec = self._record(trial)
        rec.retries += 1
        self._dirty = True
        if rec.mlflow_run_id:
            tracking.log_tags(
                self.client,
                rec.mlflow_run_id,
                {
                    "rfsweep.retries": rec.retries,
                    "rfsweep.last_error": _error_text(trial),
                },
            )

    def trial_errored(self, trial) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        rec.reason = f"crashed after {rec.retries} retries: {_error_text(trial)}"
        self._set_status(
            rec, TrialStatus.FAILED, {"rfsweep.failure_reason": rec.reason, "rfsweep.retries": rec.retries}
        )

    def step(self, trials: list, force: bool = False) -> None:
        for trial in trials:
            self._record(trial)
            self.tune_status[trial.trial_id] = trial.status
            self.tune_checkpoints[trial.trial_id] = getattr(trial, "checkpoint", None)
        now = time.monotonic()
        if (
            self.should_stop is not None
            and not self.cancel_requested
            and now - self._last_stop_poll >= STOP_POLL_EVERY_S
        ):
            self._last_stop_poll = now
            try:
                if self.should_stop():
                    self.cancel_requested = True
                    self._dirty = True
            except Exception as exc:
                log.warning("should_stop raised %s; going on", exc)
        if self.on_progress is not None and (force or (self._dirty and now - self._last_progress >= PROGRESS_EVERY_S)):
            self._last_progress = now
            self._dirty = False
            try:
                self.on_progress(self.progress())
            except Exception as exc:  # a broken display or database must not stop the sweep
                log.warning("on_progress raised %s; going on", exc)

    # ---- summaries ---------------------------------------------------------------------------------

    def _candidates(self) -> list[TrialRecord]:
        bad = (TrialStatus.DIVERGED, TrialStatus.FAILED)
        return [
            r
            for r in self.records.values()
            if r.status not in bad and r.last_metric is not None and math.isfinite(r.last_metric)
        ]

    def _best_entry(self, rec: TrialRecord | None) -> dict[str, Any] | None:
        if rec is None:
            return None
        return {
            "algorithm": rec.algorithm,
            "config": rec.config,
            "params": rec.params,
            "metric": self.spec.metric,
            "value": rec.last_metric,
            "trial_id": rec.trial_id,
            "mlflow_run_id": rec.mlflow_run_id,
            "weights_uri": rec.weights_uri,
            "status": rec.status.value,
            "epochs": rec.epochs,
        }

    def best(self, algorithm: str | None = None) -> dict[str, Any] | None:
        pool = [r for r in self._candidates() if algorithm is None or r.algorithm == algorithm]
        if not pool:
            return None
        return self._best_entry(max(pool, key=lambda r: self._sign * r.last_metric))

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in TrialStatus}
        for rec in self.records.values():
            counts[rec.status.value] += 1
        unseen = max(0, self._total - len(self.records))
        counts[TrialStatus.CANCELLED.value if self.cancel_requested else TrialStatus.PENDING.value] += unseen
        counts["total"] = max(self._total, len(self.records))
        return counts

    def progress(self) -> SweepProgress:
        counts = self.counts()
        return SweepProgress(
            sweep_id=self.sweep_id,
            total=counts["total"],
            pending=counts["pending"],
            running=counts["running"],
            finished=counts["finished"],
            stopped_early=counts["stopped_early"],
            failed=counts["failed"],
            diverged=counts["diverged"],
            cancelled=counts["cancelled"],
            epochs_done=sum(len(r.epoch_seconds) for r in self.records.values()),
            max_epochs=self._max_epochs,
            best=self.best(),
            trials=[r.summary() for r in self.records.values()],
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            elapsed_seconds=round(time.monotonic() - self.started, 3),
            metric=self.spec.metric,
            mode=self.spec.mode,
        )

    def close_open_trials(self, error: str | None = None) -> None:
        """After Tune returns: no trial may stay `running`/`pending`, no MLflow run RUNNING."""
        tune_status = self.tune_status
        for rec in self.records.values():
            if rec.status.terminal:
                continue
            if self.cancel_requested:
                self._set_status(rec, TrialStatus.CANCELLED)
            elif error is not None:
                rec.reason = f"the sweep failed: {error}"
                self._set_status(rec, TrialStatus.FAILED, {"rfsweep.failure_reason": rec.reason})
            elif rec.trial_id not in tune_status and rec.mlflow_run_id is not None:
                rec.reason = (
                    "lost: the driver died before Ray Tune saved this trial, and no restored trial took it over"
                )
                self._set_status(rec, TrialStatus.FAILED, {"rfsweep.failure_reason": rec.reason})
            elif tune_status.get(rec.trial_id) == "ERROR":
                rec.reason = rec.reason or "errored"
                self._set_status(rec, TrialStatus.FAILED, {"rfsweep.failure_reason": rec.reason})
            elif rec.mlflow_run_id is None and rec.epochs == 0:
                self._set_status(rec, TrialStatus.CANCELLED)
            else:
                self._backfill_from_checkpoint(rec)
                status = TrialStatus.FINISHED if rec.epochs >= self.spec.max_t else TrialStatus.STOPPED_EARLY
                self._set_status(rec, status)

    def _backfill_from_checkpoint(self, rec: TrialRecord) -> None:
        """Log the epochs a trial's newest checkpoint holds but its MLflow run lacks.

        A driver killed after Tune saved a trial as terminated, but before the asynchronous write of its
        last epochs, leaves a run short of those epochs; the resumed sweep does not rerun the trial (a
        restored one refills through RESTORED_HISTORY instead), so its checkpoint is the only copy.
        """
        checkpoint = self.tune_checkpoints.get(rec.trial_id)
        if checkpoint is None or rec.mlflow_run_id is None:
            return
        from sweep_service.checkpoints import load_resume_state

        try:
            with checkpoint.as_directory() as folder:
                history = load_resume_state(folder).get("history", [])
        except Exception as exc:  # a missing checkpoint only means nothing can be refilled
            log.warning("trial %s: could not read its checkpoint to refill MLflow: %s", rec.trial_id, exc)
            return
        for record in history:
            if int(record["epoch"]) not in rec.logged_epochs:
                self._note_epoch(rec, rec.mlflow_run_id, record)

    def finalize_parent(self, status: str, seconds: float, error: str | None = None) -> SweepResult:
        assert self.parent_run_id is not None
        self._flush()
        starts = [r.started_at for r in self.records.values() if r.started_at is not None]
        ends = [r.ended_at for r in self.records.values() if r.ended_at is not None]
        self.timeline = {
            "first_trial_started_s": round(min(starts) - self.started, 3) if starts else None,
            "last_trial_ended_s": round(max(ends) - self.started, 3) if ends else None,
        }
        client, run_id = self.client, self.parent_run_id
        best = self.best()
        per_algorithm = {rule: entry for rule in self.spec.algorithms if (entry := self.best(rule)) is not None}
        trials = [r.summary() for r in self.records.values()]
        counts = self.counts()
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"trials_{k}", float(v), now, 0) for k, v in counts.items()]
        metrics.append(Metric("sweep_seconds", float(seconds), now, 0))
        if best is not None:
            metrics.append(Metric(f"best_{self.spec.metric}", float(best["value"]), now, 0))
            tags = {
                "rfsweep.best.trial_id": best["trial_id"],
                "rfsweep.best.algorithm": best["algorithm"],
                "rfsweep.best.mlflow_run_id": best["mlflow_run_id"] or "",
                "rfsweep.best.value": f"{best['value']:.6g}",
            }
            tags.update({f"rfsweep.best.param.{k}": json.dumps(v) for k, v in best["params"].items()})
            tracking.log_tags(client, run_id, tags)
        for rule, entry in per_algorithm.items():
            metrics.append(Metric(f"best_{self.spec.metric}.{rule}", float(entry["value"]), now, 0))
        client.log_batch(run_id, metrics=metrics)
        tracking.log_text(
            client,
            run_id,
            json.dumps({"best": best, "best_per_algorithm": per_algorithm}, indent=2, default=str),
            "best_config.json",
        )
        names = sorted({k for r in self.records.values() for k in r.params})
        tracking.log_text(client, run_id, tracking.trials_csv(trials, names), "trials.csv")
        try:
            self._log_curves()
        except Exception as exc:
            log.warning("could not plot learning curves: %s", exc)
        end_status = {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
        tracking.log_tags(
            client, run_id, {"rfsweep.sweep_status": status, **({"rfsweep.failure_reason": error} if error else {})}
        )
        client.set_terminated(run_id, end_status)
        self._writer.shutdown(wait=True)  # flushed above; nothing is queued after the summaries
        return SweepResult(
            sweep_id=self.sweep_id,
            status=status,
            best=best,
            best_per_algorithm=per_algorithm,
            trials=trials,
            experiment_id=self.experiment_id,
            parent_run_id=run_id,
            tracking_uri=self.tracking_uri,
            seconds=round(seconds, 3),
            counts=counts,
            metric=self.spec.metric,
            mode=self.spec.mode,
            storage_path="",
            timeline=self.timeline,
        )

    def _log_curves(self) -> None:
        self._flush()
        curves: dict[str, list] = {rule: [] for rule in self.spec.algorithms}
        for rec in self.records.values():
            if rec.mlflow_run_id is None:
                continue
            points = sorted(rec.curve.items())
            curves.setdefault(rec.algorithm, []).append((rec.trial_id, points, rec.status.value))
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "learning_curves.png"
            tracking.plot_learning_curves(curves, self.spec.metric, png, f"sweep {self.spec.name} ({self.sweep_id})")
            self.client.log_artifact(self.parent_run_id, str(png))


def _num(value: Any) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)


def _error_text(trial) -> str:
    try:
        error = trial.get_error()
        if error is not None:
            text = str(error)
            return text.strip().splitlines()[-1][:1000] if text.strip() else type(error).__name__
    except Exception:
        pass
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = Path(path).read_text(errors="replace").strip().splitlines()
        return (lines[-1] if lines else "error")[:1000]
    return "error"


# ---- entry point ---------------------------------------------------------------------------------


def new_sweep_id(spec: SweepSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _connect_ray(address: str | None) -> bool:
    """Join the cluster at `address`/RAY_ADDRESS, else start Ray in this process. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    common = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    if address:
        ray.init(address=address, **common)
        return False
    # "local", not None: None would join any cluster that `ray start` left on this machine.
    ray.init(address="local", include_dashboard=False, **common)
    return True


def _quiet_tune() -> None:
    # Tune's own CSV/JSON/TensorBoard loggers duplicate what MLflow keeps and cost driver time per result.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "8")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Checkpointing every epoch with num_to_keep forces state snapshots; that is intended here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray").setLevel(logging.WARNING)
    # Tune's warnings about the result files we do not write, and its trial errors (we log those to MLflow).
    logging.getLogger("ray.tune").setLevel(logging.ERROR)


def run_sweep(
    spec: SweepSpec,
    *,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
    storage_path: str | None = None,
    ray_address: str | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> SweepResult:
    """Run (or, with resume=True and the same sweep_id/storage_path, restore) a sweep to its end."""
    started = time.monotonic()
    _quiet_tune()
    from ray import tune

    from sweep_service import checkpoints, faults, tune_glue
    from sweep_service.space import build_spaces
    from sweep_service.trainable import TrialSettings, run_trial

    sweep_id = sweep_id or new_sweep_id(spec)
    storage = (
        str(Path(storage_path).expanduser().resolve())
        if storage_path and "://" not in storage_path
        else (storage_path or str(paths.ray_results_dir()))
    )
    if "://" not in storage:
        Path(storage).mkdir(parents=True, exist_ok=True)
    experiment_path = f"{storage.rstrip('/')}/{sweep_id}"
    local_storage = "://" not in storage  # checkpoint stand-ins work on a local or shared folder, not on S3
    uri = tracking.resolve_tracking_uri(tracking_uri, spec.tracking.uri)

    spaces = build_spaces(spec)
    # MLflow's import and store set-up overlap Ray's start-up (seconds each on a small machine).
    opened: dict[str, Any] = {}
    opener = threading.Thread(
        target=_open_monitor, args=(opened, spec, sweep_id, spaces, uri, on_progress, should_stop), daemon=True
    )
    opener.start()
    started_ray = False
    error: str | None = None
    try:
        started_ray = _connect_ray(ray_address)
        opener.join()
        if "error" in opened:
            raise opened["error"]
        monitor = opened["monitor"]
        monitor.started = started  # one time base for the timeline: the start of run_sweep
    except BaseException:
        opener.join()
        if started_ray:
            import ray

            ray.shutdown()
        raise
    tune_glue.register_monitor(sweep_id, monitor)
    marks: dict[str, float] = {"ray_ready_s": time.monotonic()}
    try:
        rungs = frozenset(budget.asha_rungs(spec))
        settings = TrialSettings(
            spaces=spaces,
            metric=spec.metric,
            mode=spec.mode,
            max_t=spec.max_t,
            checkpoint_every=spec.checkpoint_every,
            checkpoint_epochs=rungs,
            cpus=spec.resources.cpu,
            gpus=spec.resources.gpu,
            crash_plan=faults.plan_from_env(_local_fault_dir(storage, sweep_id)),
        )
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, settings=settings),
            {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
        )
        if resume and tune.Tuner.can_restore(experiment_path):
            if local_storage:
                checkpoints.fill_deleted_checkpoints(experiment_path)
            tuner = tune.Tuner.restore(
                experiment_path, trainable=trainable, resume_unfinished=True, resume_errored=False
            )
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={},
                tune_config=tune.TuneConfig(
                    search_alg=tune_glue.PerRuleSearcher(
                        spaces,
                        spec.search.method,
                        spec.metric,
                        spec.mode,
                        spec.search.num_samples,
                        spec.search.seed,
                        spec.search.initial_points,
                    ),
                    scheduler=_scheduler(spec, sweep_id),
                    num_samples=budget.total_trials(spec),
                    max_concurrent_trials=spec.search.max_concurrent_trials,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=sweep_id,
                    storage_path=storage,
                    callbacks=[tune_glue.MonitorCallback(sweep_id)],
                    stop=tune_glue.CancelStopper(sweep_id, spec.max_t),
                    failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    verbose=0,
                ),
            )
        tuner.fit()
        marks["fit_returned_s"] = time.monotonic()
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            monitor.cancel_requested = True
            error = None
        log.debug("sweep %s failed:\n%s", sweep_id, traceback.format_exc())
        if error is not None:
            monitor.close_open_trials(error=error)
            monitor.finalize_parent("failed", time.monotonic() - started, error=error)
            raise
    finally:
        tune_glue.unregister_monitor(sweep_id)
        if local_storage:
            checkpoints.remove_stand_ins(experiment_path)
        if started_ray:
            import ray

            ray.shutdown()
            marks["ray_stopped_s"] = time.monotonic()
    monitor.close_open_trials()
    status = "cancelled" if monitor.cancel_requested else "succeeded"
    result = monitor.finalize_parent(status, time.monotonic() - started)
    marks["summaries_logged_s"] = time.monotonic()
    result.timeline.update({k: round(t - started, 3) for k, t in marks.items()})
    result.storage_path = experiment_path
    if on_progress is not None:
        on_progress(monitor.progress())
    return result


def _open_monitor(out: dict, spec, sweep_id, spaces, uri, on_progress, should_stop) -> None:
    try:
        monitor = SweepMonitor(spec, sweep_id, spaces, uri, on_progress, should_stop)
        monitor.open()
        out["monitor"] = monitor
        import matplotlib  # noqa: F401  (the end-of-sweep plot; importing it here overlaps Ray's start-up)
    except BaseException as exc:  # re-raised in the caller's thread
        out["error"] = exc


def _local_fault_dir(storage: str, sweep_id: str) -> str:
    base = storage if "://" not in storage else tempfile.gettempdir()
    return str(Path(base) / sweep_id / "_injected_faults")


def _scheduler(spec: SweepSpec, sweep_id: str):
    from sweep_service import tune_glue

    sched = spec.scheduler
    if sched.type == "asha":
        return tune_glue.PerRuleScheduler(
            sweep_id, spec.algorithms, spec.metric, spec.mode, sched.max_t, sched.grace_period, sched.reduction_factor
        )
    return tune_glue.FifoPerRuleScheduler()
