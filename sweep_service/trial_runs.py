"""A sweep's trial runs in MLflow, from creation to terminal (or paused) status: one run per trial (its tags,
per-epoch metrics, params, weights and status), nested under the parent run (`parent_run`); the best trials
marked and exported at the end (`best_runs`).

Runs are found again by tags (`mlflow_names`), never by an in-memory map, so a trial retried from a
checkpoint or a sweep restored after its driver died writes into the run it already has: exactly one
MLflow run per trial. (Ray's MLflowLoggerCallback keeps its trial→run map in memory, loses it on restore
and creates runs without a parent.) Metric writes go through the sweep's writer thread (`run_writer`) and
land before a run's status changes.

What the MLflow UI shows (`mlflow_ui`): a trial is `RULE #SHORTID`, `· STATUS` added when it ended other than
finished and a leading `★` on the best trial of each rule. A trial's params are its full resolved training
config as its worker built it (`configs.full_config_of`, logged with the worker's first report: a trial that
never reported has its searched values in `rfsweep.params` and the spec's in `rfsweep.config`, no params); its
tags say which rf_core trained it (`configs.run_tags`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep_service import best_runs, configs, mlflow_ui, ranking, tracking
from sweep_service import mlflow_names as names
from sweep_service.checkpoints import STATE_FILE, WEIGHTS_FILE
from sweep_service.parent_run import ParentRun
from sweep_service.run_writer import RunWriter
from sweep_service.spec import SweepSpec
from sweep_service.status import TrialStatus
from sweep_service.trials import WORKER_DECIDES, TrialRecord, short_number

if TYPE_CHECKING:
    from mlflow.entities import Run

log = logging.getLogger(__name__)


class SweepRuns:
    """The MLflow side of one sweep (driver process only): its trials' runs here, its parent run in `parent`."""

    def __init__(self, spec: SweepSpec, sweep_id: str, target: tracking.TrackingTarget):
        self.spec, self.sweep_id = spec, sweep_id
        self.client = tracking.make_client(target.uri)
        self.experiment_id = tracking.ensure_experiment(
            self.client,
            target.experiments.name(spec.tracking.experiment, spec.name),
            target.uri,
            adopt_foreign=target.experiments.adopt_foreign,
        )
        mlflow_ui.open_in_model_training_view(self.client, self.experiment_id)
        self.writer = RunWriter()
        self.parent = ParentRun(spec, sweep_id, self.client, self.experiment_id, self.writer, target.ui_url)

    @property
    def parent_run_id(self) -> str | None:
        return self.parent.run_id

    def open(self) -> list[TrialRecord]:
        """Find or create the parent run; return the trials an earlier driver of this sweep already logged."""
        self.parent.open()
        records: dict[str, TrialRecord] = {}
        for run in self._find(role=names.Role.TRIAL):
            trial_id = run.data.tags.get(names.TRIAL_ID)
            if trial_id and trial_id not in records:
                records[trial_id] = self._logged_trial(trial_id, run)
        return list(records.values())

    def _find(self, **tags: str) -> list[Run]:
        keys = {"role": names.ROLE, "trial_id": names.TRIAL_ID}
        wanted = {names.SWEEP_ID: self.sweep_id, **{keys[k]: v for k, v in tags.items()}}
        return tracking.find_runs(self.client, self.experiment_id, wanted)

    def _logged_trial(self, trial_id: str, run: Run) -> TrialRecord:
        tags = run.data.tags
        rec = TrialRecord(
            trial_id=trial_id,
            algorithm=tags.get(names.ALGORITHM, "?"),
            config=json.loads(tags.get(names.CONFIG, "{}")),
            params=json.loads(tags.get(names.PARAMS, "{}")),
            config_notes=json.loads(tags.get(names.CONFIG_NOTES, "{}")),
            description=_logged_description(run),
            config_from_worker=names.RULE_DESCRIPTION in tags,
            mlflow_run_id=run.info.run_id,
            status=TrialStatus(tags.get(names.STATUS, TrialStatus.RUNNING)),
            retries=int(tags.get(names.RETRIES, 0)),
            reason=tags.get(names.FAILURE_REASON),
            weights_uri=tags.get(names.WEIGHTS_URI) or None,
            started_at=run.info.start_time / 1000 if run.info.start_time else None,
            ended_at=run.info.end_time / 1000 if run.info.end_time and tags.get(names.STATUS) else None,
        )
        history = tracking.metric_history(self.client, run.info.run_id, self.spec.metric)
        rec.epoch_seconds = dict(tracking.metric_history(self.client, run.info.run_id, names.EPOCH_SECONDS))
        rec.eval_seconds = dict(tracking.metric_history(self.client, run.info.run_id, names.EVAL_SECONDS))
        rec.curve = dict(history)
        rec.logged_epochs = {step for step, _ in history}
        if history:
            rec.epochs, rec.last_metric = history[-1]
            rec.best_metric = ranking.best_of([v for _, v in history], self.spec.mode)
        if rec.status is TrialStatus.DIVERGED:
            rec.last_metric = None
        return rec

    # ---- a trial's run -----------------------------------------------------------------------------

    def find_trial_run(self, rec: TrialRecord) -> bool:
        """Give `rec` the run already tagged with its trial id, if there is one."""
        found = self._find(trial_id=rec.trial_id)
        if found:
            rec.mlflow_run_id = found[0].info.run_id
        return bool(found)

    def create_trial_run(self, rec: TrialRecord) -> str:
        """The trial's run, with the tags that find it again; its params follow with the worker's config
        (`note_config`)."""
        tags = {
            names.PARENT_RUN: self.parent_run_id,
            names.ROLE: names.Role.TRIAL,
            names.SWEEP_ID: self.sweep_id,
            names.TRIAL_ID: rec.trial_id,
            names.ALGORITHM: rec.algorithm,
            names.STATUS: TrialStatus.RUNNING.value,
            names.CONFIG: json.dumps(rec.config),
            names.PARAMS: json.dumps(rec.params),
        }
        run_name = mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id)
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        rec.mlflow_run_id = run.info.run_id
        return rec.mlflow_run_id

    def adopt(self, rec: TrialRecord, orphan: TrialRecord) -> str:
        """`rec` continues the run of `orphan`, a trial Tune forgot when the driver died (same configuration)."""
        assert orphan.mlflow_run_id is not None
        rec.mlflow_run_id = orphan.mlflow_run_id
        rec.logged_epochs = set(orphan.logged_epochs)
        rec.config_from_worker = orphan.config_from_worker  # the run's params are the orphan's (the same config)
        tags = {
            names.TRIAL_ID: rec.trial_id,
            names.PREVIOUS_TRIAL_ID: orphan.trial_id,
            names.CONFIG: json.dumps(rec.config),
        }
        tracking.log_tags(self.client, rec.mlflow_run_id, tags)
        log.info("trial %s continues the run of unsaved trial %s", rec.trial_id, orphan.trial_id)
        return rec.mlflow_run_id

    def log_epoch(self, rec: TrialRecord, record: Mapping[str, Any]) -> None:
        """Queue one epoch's metrics (rf_core's record) for the trial's run, unless it already has them."""
        epoch = int(record["epoch"])
        if rec.mlflow_run_id is None or epoch in rec.logged_epochs:
            return
        self.writer.write(rec.mlflow_run_id, tracking.log_epoch, self.client, rec.mlflow_run_id, dict(record))
        rec.logged_epochs.add(epoch)

    def note_config(self, rec: TrialRecord, full: configs.FullConfig, rf_core_version: str, *, first: bool) -> None:
        """The trial's config as its worker built it, where it trains and which rf_core trains it (each attempt's
        first report). Its params (`first`: the run has none yet) are that config, `device` what really ran."""
        if rec.mlflow_run_id is None:
            return
        if first:  # before the tags: `rfsweep.rule` on a reloaded run says its params are there
            params = {k: v for k, v in full.params().items() if k != WORKER_DECIDES}
            self._log_params_once(rec.mlflow_run_id, params, "config")
        if rec.device:
            self._log_params_once(rec.mlflow_run_id, {WORKER_DECIDES: rec.device}, f"device (now {rec.device})")
        tags = {
            **configs.run_tags(full),
            names.RF_CORE_VERSION: rf_core_version,
            names.DEVICE: rec.device,
            names.NODE_ID: rec.node_id,
            names.CONFIG: json.dumps(rec.config),
            names.RULE_DESCRIPTION: json.dumps(rec.description),
        }
        self._tag(rec, tags)

    def _log_params_once(self, run_id: str, params: Mapping[str, str], what: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            tracking.log_params(self.client, run_id, params)
        except MlflowException:
            # Already logged with another value: the run's first attempt trained elsewhere (a retry, a resumed
            # driver on another node, a run taken over from an unsaved trial). Params cannot change; the
            # `rfsweep.device` and `rfsweep.config` tags say what runs now.
            log.warning("run %s: %s params kept as first logged", run_id, what)

    def note_resumed(self, rec: TrialRecord) -> None:
        self._tag(rec, {names.RESUMED_FROM_EPOCH: rec.resumed_from_epoch})

    def note_retry(self, rec: TrialRecord, error: str) -> None:
        self._tag(rec, {names.RETRIES: rec.retries, names.LAST_ERROR: error})

    def _tag(self, rec: TrialRecord, tags: Mapping[str, Any]) -> None:
        if rec.mlflow_run_id is not None:
            tracking.log_tags(self.client, rec.mlflow_run_id, tags)

    # ---- a trial's status (`rec.status`, set by the monitor) -------------------------------------------------

    def trial_running(self, rec: TrialRecord) -> None:
        """Tagged running; a restored trial re-opens its own run, never a new one."""
        if rec.mlflow_run_id is None:
            return
        tracking.log_tags(self.client, rec.mlflow_run_id, {names.STATUS: TrialStatus.RUNNING.value})
        if self.client.get_run(rec.mlflow_run_id).info.status != names.RunStatus.RUNNING:
            self.client.update_run(rec.mlflow_run_id, status=names.RunStatus.RUNNING)

    def trial_paused(self, rec: TrialRecord) -> None:
        """Its epochs flushed, tagged paused, the run SCHEDULED until the resume re-opens it."""
        if rec.mlflow_run_id is None:
            return
        self.writer.flush(rec.mlflow_run_id)
        tracking.log_tags(self.client, rec.mlflow_run_id, {names.STATUS: TrialStatus.PAUSED.value})
        self.client.update_run(rec.mlflow_run_id, status=TrialStatus.PAUSED.mlflow_run_status)

    def trial_ended(self, rec: TrialRecord) -> None:
        """The run ends with the trial's terminal status, after its last epochs: tagged with the status and what
        the record says of its end (the reason of a failure or divergence, the retries of a failure, ASHA's rung
        when stopped early, the weights), its summary, and its name."""
        status = rec.status
        assert status.terminal
        if rec.mlflow_run_id is None:
            return
        tags: dict[str, Any] = {names.STATUS: status.value}
        if status in (TrialStatus.FAILED, TrialStatus.DIVERGED):
            tags[names.FAILURE_REASON] = rec.reason
        if status is TrialStatus.FAILED:
            tags[names.RETRIES] = rec.retries
        if status is TrialStatus.STOPPED_EARLY and rec.early_stop is not None:
            stop = rec.early_stop
            tags[names.STOPPED_EARLY] = "true"
            tags[names.STOPPED_AT_RUNG] = short_number(stop.get("rung"))
            tags[names.RUNG_CUTOFF] = short_number(stop.get("cutoff"))
            tags[names.RUNG_VALUE] = short_number(stop.get("value"))
        if rec.weights_uri:
            tags[names.WEIGHTS_URI] = rec.weights_uri
        # Every epoch lands before the status that says the trial is over: a driver killed between the two leaves
        # a run still tagged running, which the resumed sweep refills from the trial's checkpoint; the other order
        # left a run tagged finished, short of its last epochs, for good.
        self.writer.flush(rec.mlflow_run_id)
        tracking.log_tags(self.client, rec.mlflow_run_id, tags)
        summary = {
            names.EPOCHS: rec.epochs,
            names.LAST_METRIC: short_number(rec.last_metric),
            names.BEST_METRIC: short_number(rec.best_metric),
        }
        tracking.log_tags(self.client, rec.mlflow_run_id, summary)
        self.client.update_run(
            rec.mlflow_run_id, name=mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id, status.value)
        )
        self.client.set_terminated(rec.mlflow_run_id, status.mlflow_run_status)

    def log_weights(self, rec: TrialRecord, checkpoint: Any) -> None:
        """The final weights from the trial's newest Tune checkpoint, as its run's `weights/state_dict.pt`."""
        if checkpoint is None or rec.mlflow_run_id is None:
            return
        try:
            with checkpoint.as_directory() as folder:
                weights_file = Path(folder) / WEIGHTS_FILE
                if weights_file.exists():  # written by the worker: a plain copy, no torch.load here
                    self.client.log_artifact(rec.mlflow_run_id, str(weights_file), artifact_path=names.WEIGHTS_DIR)
                    rec.weights_uri = tracking.weights_uri(rec.mlflow_run_id)
                else:
                    import torch

                    state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
                    weights = {k: v.cpu() for k, v in state["model"].items()}
                    rec.weights_uri = tracking.log_weights(self.client, rec.mlflow_run_id, weights)
        except Exception as exc:  # weights are a convenience; never fail the sweep over them
            log.warning("trial %s: could not log weights: %s", rec.trial_id, exc)

    # ---- the end ------------------------------------------------------------------------------------

    def mark_best(self, best: Mapping[str, TrialRecord], overall: TrialRecord | None) -> None:
        best_runs.mark_best(self.client, best, overall)

    def log_best_models(self, recs: list[TrialRecord]) -> None:
        best_runs.log_best_models(self.client, recs)

    def pause(self) -> None:
        self.parent.pause()


def _logged_description(run: Run) -> dict[str, Any] | None:
    """The rule in rf_core's words, from a logged run's `rfsweep.rule` tag. A run an older rfsweep logged has params
    but no such tag: it is described from its `rfsweep.config` (a TrainConfig built in the driver, for such runs
    only). A run of this rfsweep whose worker has not reported yet has neither: its first report describes it."""
    tags = run.data.tags
    if names.RULE_DESCRIPTION in tags:
        return json.loads(tags[names.RULE_DESCRIPTION])
    if not run.data.params or names.CONFIG not in tags:
        return None
    try:
        return configs.describe(json.loads(tags[names.CONFIG]))
    except (ValueError, TypeError):  # not a config rf_core reads today: the entry goes without its rule
        return None
