"""The driver's view of a running sweep: the trial table, fed by Tune's events (`tune_glue`), the progress
it reports, and the cancel and pause it notices. Every MLflow write goes through `trial_runs.SweepRuns`; which
trials are best, `best`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from sweep_service import best, budget, ranking
from sweep_service.configs import FullConfig
from sweep_service.epoch_report import EpochReport
from sweep_service.progress import PROGRESS_EVERY_S, STOP_POLL_EVERY_S, SweepHooks, SweepProgress
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.report import ReportTrial
from sweep_service.space import RuleSpace, decode_trial
from sweep_service.spec import SweepSpec
from sweep_service.status import ProgressCounts, SweepStatus, TrialStatus
from sweep_service.tracking import TrackingTarget
from sweep_service.trial_runs import SweepRuns
from sweep_service.trials import WORKER_DECIDES, TrialRecord, progress_counts, short_number, timeline, unsaved_twin

log = logging.getLogger(__name__)


class SweepMonitor:
    """Keeps the trial table, reports progress and notices cancellation (driver side)."""

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        spaces: dict[str, RuleSpace],
        tracking: TrackingTarget,
        hooks: SweepHooks = SweepHooks(),
    ):
        self.spec = spec
        self.sweep_id = sweep_id
        self.spaces = spaces
        self.hooks = hooks
        self.pause_requested = False
        self.runs = SweepRuns(spec, sweep_id, tracking)
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
            # The same decoding the worker does (`trainable.run_trial`). The worker builds the trial's TrainConfig
            # and sends its full form, with the device it chose, in its first report (`_note_config`).
            sampled = decode_trial(self.spaces, trial.config)
            values = {k: v for k, v in sampled.config.items() if k != WORKER_DECIDES}
            rec = TrialRecord(trial.trial_id, sampled.rule, values, sampled.params)
            self.records[trial.trial_id] = rec
        return rec

    def _ensure_run(self, rec: TrialRecord, tune_trials: list[Any] | None = None) -> None:
        if rec.mlflow_run_id or self.runs.find_trial_run(rec):
            return
        # A run left open by a dead driver for a trial Tune never saved, with this trial's config (`unsaved_twin`).
        live = None if tune_trials is None else {t.trial_id for t in tune_trials}
        orphan = None if live is None else unsaved_twin(rec, self.records.values(), live)
        if orphan is not None:
            del self.records[orphan.trial_id]
            self.runs.adopt(rec, orphan)
        else:
            self.runs.create_trial_run(rec)

    def _set_status(self, rec: TrialRecord, status: TrialStatus) -> None:
        rec.status = status
        self._dirty = True
        if status.terminal and rec.ended_at is None:
            rec.ended_at = time.time()
        if status is TrialStatus.RUNNING:
            self.runs.trial_running(rec)
        elif status is TrialStatus.PAUSED:
            self.runs.trial_paused(rec)
        elif status.terminal:
            self.runs.trial_ended(rec)

    def _note_config(self, rec: TrialRecord, report: EpochReport) -> None:
        """The trial's full config as the worker built it (each attempt's first report), and where it trains."""
        assert report.trial_config is not None
        full = FullConfig.from_json(report.trial_config)
        first = not rec.config_from_worker
        rec.config, rec.config_notes, rec.description = full.values, full.notes, full.rule_description()
        rec.config_from_worker = True
        rec.device, rec.node_id = report.device, report.node_id
        self.runs.note_config(rec, full, report.rf_core_version, first=first)

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
            rec.best_metric = ranking.best_of([rec.best_metric, float(value)], self.spec.mode)
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
        report = EpochReport.from_tune(result)
        if report is None:
            return
        self._dirty = True
        if report.trial_config is not None:
            self._note_config(rec, report)
        resumed = report.resumed_from_epoch
        if resumed and rec.resumed_from_epoch != resumed:
            rec.resumed_from_epoch = resumed
            self.runs.note_resumed(rec)
        for record in report.restored_history or ():
            # Epochs the checkpoint holds but MLflow missed (the driver died before writing them).
            self._note_epoch(rec, record)
        if report.diverged:
            rec.diverged_at = report.epoch
            rec.reason = f"diverged: {report.divergence or f'the loss became NaN/inf in epoch {report.epoch}'}"
            return
        self._note_epoch(rec, report.record)
        self._refresh_report()

    def _refresh_report(self, *, final: bool = False, wait: bool = False) -> None:
        if final or wait or self.runs.parent.report_due():
            trials = [ReportTrial.from_summary(r.summary(), r.curve) for r in self.records.values()]
            chosen = {rule: rec.trial_id for rule, rec in self._best_per_rule().items()}
            self.runs.parent.refresh_report(trials, chosen, final=final, wait=wait)

    def note_early_stop(self, trial_id: str, rung: float | None, cutoff: float | None, value: Any) -> None:
        rec = self.records.get(trial_id)
        if rec is not None:
            rec.early_stop = {"rung": rung, "cutoff": cutoff, "value": value}

    def trial_completed(self, trial: Any) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        if rec.diverged_at is not None:
            status = TrialStatus.DIVERGED
            rec.reason = rec.reason or f"diverged: the loss became NaN/inf in epoch {rec.diverged_at}"
            rec.last_metric = None
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
        self._set_status(rec, status)
        self._refresh_report()

    def trial_recovering(self, trial: Any, error: str) -> None:
        rec = self._record(trial)
        rec.retries += 1
        self._dirty = True
        self.runs.note_retry(rec, error)

    def trial_errored(self, trial: Any, error: str) -> None:
        rec = self._record(trial)
        if rec.status.terminal:
            return
        self._ensure_run(rec)
        rec.reason = f"crashed after {rec.retries} retries: {error}"
        self._set_status(rec, TrialStatus.FAILED)

    def step(self, trials: list[Any], force: bool = False) -> None:
        for trial in trials:
            self._record(trial)
            self.tune_status[trial.trial_id] = trial.status
            self.tune_checkpoints[trial.trial_id] = getattr(trial, "checkpoint", None)
        now = time.monotonic()
        poll_due = now - self._last_stop_poll >= STOP_POLL_EVERY_S
        hooks = self.hooks
        if hooks.should_stop is not None and not self.cancel_requested and poll_due:
            self._last_stop_poll = now
            try:
                if hooks.should_stop():
                    self.cancel_requested = True
                    self._dirty = True
            except Exception as exc:
                log.warning("should_stop raised %s; going on", exc)
        if hooks.should_pause is not None and not self.pause_requested and poll_due:
            self._last_stop_poll = now
            try:
                if hooks.should_pause():
                    self._interrupt_tune()
            except Exception as exc:
                log.warning("should_pause raised %s; going on", exc)
        progress_due = self._dirty and now - self._last_progress >= PROGRESS_EVERY_S
        if hooks.on_progress is not None and (force or progress_due):
            self._last_progress = now
            self._dirty = False
            try:
                hooks.on_progress(self.progress())
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

    # ---- the best trials (`best`) -------------------------------------------------------------------

    def _best_per_rule(self) -> dict[str, TrialRecord]:
        return best.best_per_rule(list(self.records.values()), self.spec.algorithms, self.spec.mode)

    def best(self) -> BestEntry | None:
        """The sweep's best trial so far (or at its end), or None."""
        rec = best.best_record(self.records.values(), self.spec.mode)
        return None if rec is None else rec.best_entry(self.spec.metric)

    def best_per_algorithm(self) -> dict[str, BestEntry]:
        return best.entries(self._best_per_rule(), self.spec.metric)

    def no_result_reason(self) -> str | None:
        return best.no_result_reason(list(self.records.values()), self.counts().total)

    def rules_without_result(self) -> dict[str, str]:
        return best.rules_without_result(list(self.records.values()), self.spec.algorithms)

    # ---- progress ---------------------------------------------------------------------------------

    def counts(self) -> ProgressCounts:
        unseen = TrialStatus.CANCELLED if self.cancel_requested else TrialStatus.PENDING
        return progress_counts(self.records.values(), self._total, self._max_epochs, unseen)

    def progress(self) -> SweepProgress:
        return SweepProgress(
            sweep_id=self.sweep_id,
            counts=self.counts(),
            best=self.best(),
            trials=self.trial_summaries(),
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
                self._set_status(rec, TrialStatus.FAILED)
            elif tune_status is None and rec.mlflow_run_id is not None:
                rec.reason = (
                    "lost: the driver died before Ray Tune saved this trial, and no restored trial took it over"
                )
                self._set_status(rec, TrialStatus.FAILED)
            elif tune_status == "ERROR":
                rec.reason = rec.reason or "errored"
                self._set_status(rec, TrialStatus.FAILED)
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
        from sweep_service.checkpoints import checkpoint_history

        for record in checkpoint_history(checkpoint, rec.trial_id):
            if int(record["epoch"]) not in rec.logged_epochs:
                self._note_epoch(rec, record)

    def close(
        self, status: SweepStatus, seconds: float, error: str | None = None, *, best_models: bool = True
    ) -> ProgressCounts:
        """The sweep's summaries onto its parent run, which ends with `status` (and `error`, its reason); returns
        the final counts.

        A succeeded sweep first gets each rule's best trial marked and exported as an MLflow model."""
        self.timeline = timeline(self.records.values(), self.started_wall)
        per_rule = self._best_per_rule()
        if status is SweepStatus.SUCCEEDED and best_models:
            self.runs.log_best_models(list(per_rule.values()))
        self.runs.mark_best(per_rule, best.best_record(self.records.values(), self.spec.mode))
        self._refresh_report(final=True)
        counts = self.counts()
        self.runs.parent.close(
            status,
            seconds,
            error,
            best=self.best(),
            best_per_algorithm=self.best_per_algorithm(),
            rules_without_result=self.rules_without_result(),
            trials=self.trial_summaries(),
            counts=counts.trial_counts(),
            curves=[r for r in self.records.values() if r.mlflow_run_id is not None],
        )
        return counts

    def trial_summaries(self) -> list[TrialSummary]:
        return [r.summary() for r in self.records.values()]
