"""The driver's view of a running sweep: the trial table, fed by Tune's events (`tune_glue`), the progress
it reports, and the cancel it notices. Every MLflow write goes through `trial_runs.SweepRuns`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sweep_service import budget, configs
from sweep_service.report import ReportTrial
from sweep_service.space import RuleSpace, decode_trial
from sweep_service.spec import SweepSpec
from sweep_service.status import ProgressCounts, SweepStatus, TrialStatus
from sweep_service.tracking import ExperimentPolicy
from sweep_service.trainable import RESTORED_HISTORY
from sweep_service.trial_runs import SweepRuns
from sweep_service.trials import WORKER_DECIDES, TrialRecord, best_of, best_record, short_number

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
STOP_POLL_EVERY_S = 0.25


@dataclass
class SweepProgress:
    """What `on_progress` receives while a sweep runs (and once at its end)."""

    sweep_id: str
    counts: ProgressCounts
    best: dict[str, Any] | None
    trials: list[dict[str, Any]]
    experiment_id: str | None
    parent_run_id: str | None
    elapsed_seconds: float
    metric: str
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SweepMonitor:
    """Keeps the trial table, reports progress and notices cancellation (driver side)."""

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        spaces: dict[str, RuleSpace],
        tracking_uri: str,
        on_progress: Callable[[SweepProgress], None] | None,
        should_stop: Callable[[], bool] | None,
        mlflow_ui_url: str | None = None,
        should_pause: Callable[[], bool] | None = None,
        experiments: ExperimentPolicy | None = None,
    ):
        self.spec = spec
        self.sweep_id = sweep_id
        self.spaces = spaces
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.should_pause = should_pause
        self.pause_requested = False
        self.runs = SweepRuns(spec, sweep_id, tracking_uri, mlflow_ui_url, experiments)
        self.records: dict[str, TrialRecord] = {}
        self.cancel_requested = False
        self.tune_status: dict[str, str] = {}
        self.tune_checkpoints: dict[str, Any] = {}  # trial id → its newest Tune checkpoint, for backfilling
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.timeline: dict[str, Any] = {}
        self._last_progress = 0.0
        self._last_stop_poll = 0.0
        self._dirty = True
        self._total = budget.total_trials(spec)
        self._max_epochs = budget.max_epochs(spec)

    @property
    def experiment_id(self) -> str:
        return self.runs.experiment_id

    def open(self) -> None:
        """Find or create the parent run; reload the trials an earlier driver already logged."""
        for rec in self.runs.open():
            self.records[rec.trial_id] = rec

    # ---- the trial table --------------------------------------------------------------------------

    def _record(self, trial: Any) -> TrialRecord:
        rec = self.records.get(trial.trial_id)
        if rec is None:
            # The same decoding the worker does (`trainable.run_trial`); the worker adds the device it trains on,
            # which reaches the record with its first report (`trial_result` → `note_placement`).
            sampled = decode_trial(self.spaces, trial.config)
            full = configs.full_config(sampled.config)
            values = {k: v for k, v in full.values.items() if k != WORKER_DECIDES}
            rec = TrialRecord(
                trial.trial_id,
                sampled.rule,
                values,
                sampled.params,
                config_notes=full.notes,
                description=full.rule_description(),
            )
            self.records[trial.trial_id] = rec
        return rec

    def _ensure_run(self, rec: TrialRecord, tune_trials: list[Any] | None = None) -> None:
        if rec.mlflow_run_id or self.runs.find_trial_run(rec):
            return
        orphan = self._orphan_like(rec, tune_trials)
        if orphan is not None:
            del self.records[orphan.trial_id]
            self.runs.adopt(rec, orphan)
        else:
            self.runs.create_trial_run(rec)

    def _orphan_like(self, rec: TrialRecord, tune_trials: list[Any] | None) -> TrialRecord | None:
        """A run left open by a dead driver for a trial Tune never saved, with this trial's config.

        Tune snapshots its experiment every few seconds; a trial created after the last snapshot is
        forgotten on restore and the restored (seeded) searcher suggests the same configuration again
        under a new trial id. That trial takes over the old run, so the configuration keeps one run.
        """
        if tune_trials is None:
            return None
        live_ids = {t.trial_id for t in tune_trials}
        params = json.dumps(rec.params, sort_keys=True)
        for other in self.records.values():
            if (
                other.trial_id not in live_ids
                and other.mlflow_run_id
                and not other.status.terminal
                and other.algorithm == rec.algorithm
                and json.dumps(other.params, sort_keys=True) == params
            ):
                return other
        return None

    def _set_status(self, rec: TrialRecord, status: TrialStatus, **outcome: bool) -> None:
        rec.status = status
        self._dirty = True
        if status.terminal and rec.ended_at is None:
            rec.ended_at = time.time()
        self.runs.set_status(rec, status, **outcome)

    def _note_epoch(self, rec: TrialRecord, record: dict[str, Any]) -> None:
        """One epoch (rf_core's record) into the table, and into MLflow unless it is there already.

        The write is asynchronous: the trial waits for the driver after every epoch, so the driver must not
        wait for the store."""
        epoch = int(record["epoch"])
        rec.epoch_seconds[epoch] = float(record.get("seconds") or 0.0)
        rec.eval_seconds[epoch] = float(record.get("eval_seconds") or 0.0)
        value = record.get(self.spec.metric)
        if value is not None:
            rec.curve[epoch] = float(value)
        rec.epochs = max(rec.epochs, epoch)
        if epoch >= rec.epochs:
            rec.last_metric = None if value is None else float(value)
        if value is not None:
            rec.best_metric = best_of([rec.best_metric, float(value)], self.spec.mode)
        self.runs.log_epoch(rec, record)

    # ---- Tune events (through tune_glue) ------------------------------------------------------------

    def trial_started(self, trial: Any, tune_trials: list[Any] | None = None) -> None:
        rec = self._record(trial)
        if rec.started_at is None:
            rec.started_at = time.time()
        self._ensure_run(rec, tune_trials)
        if rec.status is not TrialStatus.RUNNING:
            self._set_status(rec, TrialStatus.RUNNING)

    def trial_result(self, trial: Any, result: dict[str, Any]) -> None:
        rec = self._record(trial)
        self._ensure_run(rec)
        if rec.status is not TrialStatus.RUNNING and not rec.status.terminal:
            self._set_status(rec, TrialStatus.RUNNING)
        epoch = int(result.get("epoch", 0))
        if not epoch:
            return
        self._dirty = True
        if result.get("device") and rec.device is None:
            rec.device = str(result["device"])
            rec.node_id = str(result.get("node_id") or "")
            rec.config[WORKER_DECIDES] = rec.device
            self.runs.note_placement(rec, result.get("rf_core_version"))
        resumed = int(result.get("resumed_from_epoch") or 0)
        if resumed and rec.resumed_from_epoch != resumed:
            rec.resumed_from_epoch = resumed
            self.runs.note_resumed(rec)
        if result.get(RESTORED_HISTORY):
            # Epochs the checkpoint holds but MLflow missed (the driver died before writing them).
            for record in json.loads(result[RESTORED_HISTORY]):
                self._note_epoch(rec, record)
        if result.get("diverged"):
            rec.diverged_at = epoch
            return
        self._note_epoch(rec, result)
        self._refresh_report()

    def _refresh_report(self, *, final: bool = False, wait: bool = False) -> None:
        if final or wait or self.runs.report_due():
            trials = [ReportTrial.from_summary(r.summary(), r.curve) for r in self.records.values()]
            best = {rule: entry["trial_id"] for rule, entry in self.best_per_algorithm().items()}
            self.runs.refresh_report(trials, best, final=final, wait=wait)

    def note_early_stop(self, trial_id: str, rung: float | None, cutoff: float | None, value: Any) -> None:
        rec = self.records.get(trial_id)
        if rec is not None:
            rec.early_stop = {"rung": rung, "cutoff": cutoff, "value": value}

    def trial_completed(self, trial: Any) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        failure = False
        if rec.diverged_at is not None:
            status = TrialStatus.DIVERGED
            rec.reason = f"diverged: the loss became NaN/inf in epoch {rec.diverged_at}"
            rec.last_metric = None
            failure = True
        elif self.cancel_requested:
            status = TrialStatus.CANCELLED
        elif rec.early_stop is not None and rec.epochs < self.spec.max_t:
            status = TrialStatus.STOPPED_EARLY
            stop = rec.early_stop
            rec.reason = (
                f"stopped by ASHA at epoch {rec.epochs}: {self.spec.metric} {short_number(stop.get('value'))} "
                f"missed the rung cutoff {short_number(stop.get('cutoff'))}"
            )
        else:
            status = TrialStatus.FINISHED
        if status is not TrialStatus.DIVERGED:
            self.runs.log_weights(rec, getattr(trial, "checkpoint", None))
        self._set_status(rec, status, failure=failure, ended=True)
        self._refresh_report()

    def trial_recovering(self, trial: Any) -> None:
        rec = self._record(trial)
        rec.retries += 1
        self._dirty = True
        self.runs.note_retry(rec, _error_text(trial))

    def trial_errored(self, trial: Any) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        rec.reason = f"crashed after {rec.retries} retries: {_error_text(trial)}"
        self._set_status(rec, TrialStatus.FAILED, failure=True, retries=True)

    def step(self, trials: list[Any], force: bool = False) -> None:
        for trial in trials:
            self._record(trial)
            self.tune_status[trial.trial_id] = trial.status
            self.tune_checkpoints[trial.trial_id] = getattr(trial, "checkpoint", None)
        now = time.monotonic()
        poll_due = now - self._last_stop_poll >= STOP_POLL_EVERY_S
        if self.should_stop is not None and not self.cancel_requested and poll_due:
            self._last_stop_poll = now
            try:
                if self.should_stop():
                    self.cancel_requested = True
                    self._dirty = True
            except Exception as exc:
                log.warning("should_stop raised %s; going on", exc)
        if self.should_pause is not None and not self.pause_requested and poll_due:
            self._last_stop_poll = now
            try:
                if self.should_pause():
                    self._interrupt_tune()
            except Exception as exc:
                log.warning("should_pause raised %s; going on", exc)
        progress_due = self._dirty and now - self._last_progress >= PROGRESS_EVERY_S
        if self.on_progress is not None and (force or progress_due):
            self._last_progress = now
            self._dirty = False
            try:
                self.on_progress(self.progress())
            except Exception as exc:  # a broken display or database must not stop the sweep
                log.warning("on_progress raised %s; going on", exc)

    # ---- pause ------------------------------------------------------------------------------------

    def _interrupt_tune(self) -> None:
        """Ask Tune to stop here: SIGUSR1 is Tune's own interrupt (`tune.tune._setup_signal_catching`, installed
        on the main thread), after which it snapshots the experiment with every unfinished trial resumable
        from its newest checkpoint (`Tuner.restore(resume_unfinished=True)`)."""
        if threading.current_thread() is not threading.main_thread():
            log.warning("pause asked, but Tune runs outside the main thread (no interrupt handler); going on")
            return
        self.pause_requested = True
        self._dirty = True
        os.kill(os.getpid(), signal.SIGUSR1)

    def pause(self) -> ProgressCounts:
        """After Tune stopped for a pause: unfinished trials become `paused` (their runs SCHEDULED), the sweep
        page is rewritten and the parent run waits, SCHEDULED too, for the resume."""
        for rec in self.records.values():
            if not rec.status.terminal and (rec.mlflow_run_id is not None or rec.epochs):
                self._set_status(rec, TrialStatus.PAUSED)
        self._refresh_report(wait=True)
        self.runs.pause()
        return self.counts()

    # ---- summaries ------------------------------------------------------------------------------

    def _candidates(self) -> list[TrialRecord]:
        bad = (TrialStatus.DIVERGED, TrialStatus.FAILED)
        return [
            r
            for r in self.records.values()
            if r.status not in bad and r.last_metric is not None and math.isfinite(r.last_metric)
        ]

    def _best_entry(self, rec: TrialRecord) -> dict[str, Any]:
        """A best trial as `best_config.json`, `rfsweep sweep --json` and `GET /best` give it: its full resolved
        config and, once the sweep has ended, its MLflow model. Absent values are left out, not null."""
        entry = {
            "algorithm": rec.algorithm,
            "config": rec.config,
            "config_notes": rec.config_notes or None,
            "params": rec.params,
            "rule": self._description(rec),
            "metric": self.spec.metric,
            "value": rec.last_metric,
            "trial_id": rec.trial_id,
            "mlflow_run_id": rec.mlflow_run_id,
            "weights_uri": rec.weights_uri,
            "model_uri": rec.model_uri,
            "model_error": rec.model_error,
            "status": rec.status.value,
            "epochs": rec.epochs,
        }
        return {k: v for k, v in entry.items() if v is not None}

    def _description(self, rec: TrialRecord) -> dict[str, Any]:
        if rec.description is None:  # a record reloaded from MLflow: described once, on first need
            rec.description = configs.describe(rec.config)
        return rec.description

    def best_record(self, algorithm: str | None = None) -> TrialRecord | None:
        pool = [r for r in self._candidates() if algorithm is None or r.algorithm == algorithm]
        return best_record(pool, self.spec.mode)

    def best(self, algorithm: str | None = None) -> dict[str, Any] | None:
        rec = self.best_record(algorithm)
        return None if rec is None else self._best_entry(rec)

    def counts(self) -> ProgressCounts:
        counts = ProgressCounts(
            total=max(self._total, len(self.records)),
            epochs_done=sum(len(r.epoch_seconds) for r in self.records.values()),
            max_epochs=self._max_epochs,
        )
        for rec in self.records.values():
            setattr(counts, rec.status.value, counts.trials(rec.status) + 1)
        unseen = TrialStatus.CANCELLED if self.cancel_requested else TrialStatus.PENDING
        setattr(counts, unseen.value, counts.trials(unseen) + max(0, self._total - len(self.records)))
        return counts

    def progress(self) -> SweepProgress:
        return SweepProgress(
            sweep_id=self.sweep_id,
            counts=self.counts(),
            best=self.best(),
            trials=[r.summary() for r in self.records.values()],
            experiment_id=self.runs.experiment_id,
            parent_run_id=self.runs.parent_run_id,
            elapsed_seconds=round(time.monotonic() - self.started, 3),
            metric=self.spec.metric,
            mode=self.spec.mode,
        )

    def close_open_trials(self, error: str | None = None) -> None:
        """After Tune returns: no trial may stay `running`/`pending`, no MLflow run RUNNING."""
        for rec in self.records.values():
            if rec.status.terminal:
                continue
            tune_status = self.tune_status.get(rec.trial_id)
            if self.cancel_requested:
                self._set_status(rec, TrialStatus.CANCELLED)
            elif error is not None:
                rec.reason = f"the sweep failed: {error}"
                self._set_status(rec, TrialStatus.FAILED, failure=True)
            elif tune_status is None and rec.mlflow_run_id is not None:
                rec.reason = (
                    "lost: the driver died before Ray Tune saved this trial, and no restored trial took it over"
                )
                self._set_status(rec, TrialStatus.FAILED, failure=True)
            elif tune_status == "ERROR":
                rec.reason = rec.reason or "errored"
                self._set_status(rec, TrialStatus.FAILED, failure=True)
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
                self._note_epoch(rec, record)

    def close(
        self, status: SweepStatus, seconds: float, error: str | None = None, *, best_models: bool = True
    ) -> ProgressCounts:
        """The sweep's summaries onto its parent run, which ends with `status` (and `error`, its reason); returns
        the final counts.

        A succeeded sweep first gets each rule's best trial marked and exported as an MLflow model."""
        starts = [r.started_at for r in self.records.values() if r.started_at is not None]
        ends = [r.ended_at for r in self.records.values() if r.ended_at is not None]
        self.timeline = {
            "first_trial_started_s": round(min(starts) - self.started_wall, 3) if starts else None,
            "last_trial_ended_s": round(max(ends) - self.started_wall, 3) if ends else None,
        }
        best = {rule: rec for rule in self.spec.algorithms if (rec := self.best_record(rule)) is not None}
        if status is SweepStatus.SUCCEEDED and best_models:
            self.runs.log_best_models(list(best.values()))
        self.runs.mark_best(best, self.best_record())
        self._refresh_report(final=True)
        counts = self.counts()
        curves: dict[str, list[tuple[str, list[tuple[int, float]], str]]] = {r: [] for r in self.spec.algorithms}
        for rec in self.records.values():
            if rec.mlflow_run_id is not None:
                curves.setdefault(rec.algorithm, []).append((rec.trial_id, sorted(rec.curve.items()), rec.status.value))
        self.runs.close(
            status,
            seconds,
            error,
            best=self.best(),
            best_per_algorithm=self.best_per_algorithm(),
            rules_without_result=self.rules_without_result(),
            trials=self.trial_summaries(),
            counts=counts.trial_counts(),
            curves=curves,
        )
        return counts

    def best_per_algorithm(self) -> dict[str, dict[str, Any]]:
        return {rule: entry for rule in self.spec.algorithms if (entry := self.best(rule)) is not None}

    def no_result_reason(self) -> str | None:
        """Why the sweep has nothing to show (None: some trial produced a usable result), with the trials'
        counts and the first failure's reason."""
        if self._candidates():
            return None
        records = list(self.records.values())
        reason = f"no trial produced a usable result ({_tally(records, self.counts().total)})"
        first = next((r.reason for r in records if r.reason and r.status is TrialStatus.FAILED), None)
        first = first or next((r.reason for r in records if r.reason), None)
        return f"{reason}; first: {first}" if first else reason

    def rules_without_result(self) -> dict[str, str]:
        """Each listed rule none of whose trials produced a usable result, and why (their counts)."""
        usable = {r.algorithm for r in self._candidates()}
        out = {}
        for rule in self.spec.algorithms:
            if rule not in usable:
                records = [r for r in self.records.values() if r.algorithm == rule]
                out[rule] = f"no usable trial: {_tally(records, len(records))}"
        return out

    def trial_summaries(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.records.values()]


def _tally(records: list[TrialRecord], total: int) -> str:
    """ "2 failed, 1 diverged of 3": the trials by status, then how many there are."""
    by_status = {s: sum(1 for r in records if r.status is s) for s in TrialStatus}
    parts = [f"{n} {s.value.replace('_', ' ')}" for s, n in by_status.items() if n]
    unseen = total - len(records)
    if unseen > 0:
        parts.append(f"{unseen} never started")
    return f"{', '.join(parts) or 'none'} of {total}"


def _error_text(trial: Any) -> str:
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
