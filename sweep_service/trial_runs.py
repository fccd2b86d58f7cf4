"""A sweep's MLflow runs, from creation to terminal status: the parent run (parameters, spec, summaries,
learning-curve plot) and one run per trial (tags, per-epoch metrics, weights, status).

Runs are found again by tags (`mlflow_names`), never by an in-memory map, so a trial retried from a
checkpoint or a sweep restored after its driver died writes into the run it already has: exactly one
MLflow run per trial. (Ray's MLflowLoggerCallback keeps its trial→run map in memory, loses it on restore
and creates runs without a parent.) `end_open_runs` closes what a dead driver left RUNNING.

Metric writes go through one writer thread of our own, so Tune's event loop never waits for the store;
they are flushed before a run's status changes. (Not MLflow's async logging: its queue is global to the
store and every `set_terminated` shuts it down and joins its thread, about 1 s each, in Tune's loop.) The
sweep page (`report.py`) is rewritten on the same thread, at most every REPORT_EVERY_S while trials report,
and once more, final, when the sweep closes.

What the MLflow UI shows (`mlflow_ui`): the experiment opens in the model-training view; the parent run is
`NAME #SHORTID`, a trial `RULE #SHORTID`, `· STATUS` added when it ended other than finished and a leading `★`
on the best trial of each rule (also tagged `rfsweep.best`); a saved view of the experiment shows the
sweep's runs with the metric, the searched parameters, status and best as columns. A trial's params are
its full resolved training config (`configs.full_config`), its tags say which rf_core trained it
(`configs.run_tags`). At the end, each rule's best trial gets its network as an MLflow model
(`model_export.log_best_model`) beside its state dict.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep_service import configs, mlflow_ui, tracking
from sweep_service import mlflow_names as names
from sweep_service.checkpoints import STATE_FILE, WEIGHTS_FILE
from sweep_service.report import REPORT_FILE, ReportTrial, SweepInfo, log_report_artifact, write_sweep_report
from sweep_service.spec import Distribution, SweepSpec
from sweep_service.status import SweepStatus, TrialStatus
from sweep_service.trials import WORKER_DECIDES, TrialRecord, best_of, short_number

if TYPE_CHECKING:
    from mlflow.entities import Run

log = logging.getLogger(__name__)
REPORT_EVERY_S = 30.0


class SweepRuns:
    """The MLflow side of one sweep (driver process only)."""

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        tracking_uri: str,
        mlflow_ui_url: str | None = None,
        experiments: tracking.ExperimentPolicy | None = None,
    ):
        self.spec, self.sweep_id, self.tracking_uri = spec, sweep_id, tracking_uri
        self.mlflow_ui_url = mlflow_ui_url
        self.client = tracking.make_client(tracking_uri)
        policy = experiments or tracking.ExperimentPolicy()
        self.experiment_id = tracking.ensure_experiment(
            self.client,
            policy.name(spec.tracking.experiment, spec.name),
            tracking_uri,
            adopt_foreign=policy.adopt_foreign,
        )
        mlflow_ui.open_in_model_training_view(self.client, self.experiment_id)
        self.parent_run_id: str | None = None
        self._pending: dict[str, list[Future[None]]] = {}  # run id -> its metric writes not yet done
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfsweep-mlflow-writer")
        self._report_due = 0.0  # monotonic time before which the page is not rewritten
        self._report: Future[None] | None = None

    # ---- opening ---------------------------------------------------------------------------------

    def open(self) -> list[TrialRecord]:
        """Find or create the parent run; return the trials an earlier driver of this sweep already logged."""
        parents = self._find(role=names.Role.SWEEP)
        if parents:
            self.parent_run_id = parents[0].info.run_id
            if parents[0].info.status != "RUNNING":
                self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            self._create_parent()
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

    def _create_parent(self) -> None:
        spec = self.spec
        tags = {
            names.ROLE: names.Role.SWEEP,
            names.SWEEP_ID: self.sweep_id,
            names.ALGORITHMS: ",".join(spec.algorithms),
            names.METRIC: spec.metric,
            names.MODE: spec.mode,
        }
        run_name = mlflow_ui.parent_run_name(spec.name, self.sweep_id)
        self.parent_run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
        params = {
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
        }
        tracking.log_params(self.client, self.parent_run_id, params)
        tracking.log_text(self.client, self.parent_run_id, spec.to_yaml(), "spec.yaml")
        self._save_view()

    def _save_view(self) -> None:
        """The experiment's saved view of this sweep: its runs, with the columns a sweep is read by."""
        searched: set[str] = set()
        for rule in self.spec.algorithms:
            for name, value in self.spec.rule_parameters(rule).items():
                if not isinstance(value, Distribution):
                    continue
                bundles = [v for v in (value.values or []) if isinstance(v, dict)]
                searched.update({k for b in bundles for k in b} if bundles else {name})
        try:
            mlflow_ui.save_sweep_view(
                self.client,
                self.experiment_id,
                self.sweep_id,
                self.spec.name,
                metric=self.spec.metric,
                mode=self.spec.mode,
                params=sorted(searched),
                parent_run_id=self.parent_run_id,
            )
        except Exception as exc:  # a convenience of the UI; never fail the sweep over it
            log.warning("could not save the sweep's MLflow view: %s", exc)

    def _logged_trial(self, trial_id: str, run: Run) -> TrialRecord:
        tags = run.data.tags
        rec = TrialRecord(
            trial_id=trial_id,
            algorithm=tags.get(names.ALGORITHM, "?"),
            config=json.loads(tags.get(names.CONFIG, "{}")),
            params=json.loads(tags.get(names.PARAMS, "{}")),
            config_notes=json.loads(tags.get(names.CONFIG_NOTES, "{}")),
            mlflow_run_id=run.info.run_id,
            status=TrialStatus(tags.get(names.STATUS, "running")),
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
            rec.best_metric = best_of([v for _, v in history], self.spec.mode)
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
        """The trial's run: its full resolved training config as params (`rec.config`, from
        `configs.full_config`), the tags that find it again and say which rf_core trains it."""
        full = configs.FullConfig(rec.config, rec.config_notes, rec.description)
        tags = {
            names.PARENT_RUN: self.parent_run_id,
            names.ROLE: names.Role.TRIAL,
            names.SWEEP_ID: self.sweep_id,
            names.TRIAL_ID: rec.trial_id,
            names.ALGORITHM: rec.algorithm,
            names.STATUS: TrialStatus.RUNNING.value,
            names.CONFIG: json.dumps(rec.config),
            names.PARAMS: json.dumps(rec.params),
            **configs.run_tags(full),
        }
        run_name = mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id)
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        rec.mlflow_run_id = run.info.run_id
        tracking.log_params(self.client, rec.mlflow_run_id, full.params())  # `device` follows in note_placement
        return rec.mlflow_run_id

    def adopt(self, rec: TrialRecord, orphan: TrialRecord) -> str:
        """`rec` continues the run of `orphan`, a trial Tune forgot when the driver died (same configuration)."""
        assert orphan.mlflow_run_id is not None
        rec.mlflow_run_id = orphan.mlflow_run_id
        rec.logged_epochs = set(orphan.logged_epochs)
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
        future = self._writer.submit(tracking.log_epoch, self.client, rec.mlflow_run_id, dict(record))
        self._pending.setdefault(rec.mlflow_run_id, []).append(future)
        rec.logged_epochs.add(epoch)

    def note_placement(self, rec: TrialRecord, rf_core_version: str | None = None) -> None:
        """Where the trial runs, and (when the worker says) which rf_core it trains with. The `device` param is
        logged here, from the worker's report, not at the run's creation: it is what really ran."""
        tags = {names.DEVICE: rec.device, names.NODE_ID: rec.node_id, names.CONFIG: json.dumps(rec.config)}
        if rf_core_version:
            tags[names.RF_CORE_VERSION] = rf_core_version
        self._tag(rec, tags)
        if rec.mlflow_run_id is not None and rec.device is not None:
            self._log_device_param(rec.mlflow_run_id, rec.device)

    def _log_device_param(self, run_id: str, device: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            tracking.log_params(self.client, run_id, {WORKER_DECIDES: device})
        except MlflowException:
            # Already logged with another value: the run's first attempt trained elsewhere (a retry or a resumed
            # driver on another node). Params cannot change; the `rfsweep.device` tag says where it is now.
            log.warning("run %s: device param kept as first logged; now on %s (tag %s)", run_id, device, names.DEVICE)

    def note_resumed(self, rec: TrialRecord) -> None:
        self._tag(rec, {names.RESUMED_FROM_EPOCH: rec.resumed_from_epoch})

    def note_retry(self, rec: TrialRecord, error: str) -> None:
        self._tag(rec, {names.RETRIES: rec.retries, names.LAST_ERROR: error})

    def _tag(self, rec: TrialRecord, tags: Mapping[str, Any]) -> None:
        if rec.mlflow_run_id is not None:
            tracking.log_tags(self.client, rec.mlflow_run_id, tags)

    def set_status(
        self,
        rec: TrialRecord,
        status: TrialStatus,
        *,
        failure: bool = False,
        retries: bool = False,
        ended: bool = False,
    ) -> None:
        """Tag the run with the trial's status, and with its reason (`failure`), its retry count (`retries`), or
        what Tune's end of the trial tells (`ended`: ASHA's rung when stopped early, the weights). A terminal
        status ends the run."""
        if rec.mlflow_run_id is None:
            return
        tags: dict[str, Any] = {names.STATUS: status.value}
        if failure:
            tags[names.FAILURE_REASON] = rec.reason
        if retries:
            tags[names.RETRIES] = rec.retries
        if ended and status is TrialStatus.STOPPED_EARLY and rec.early_stop is not None:
            stop = rec.early_stop
            tags[names.STOPPED_EARLY] = "true"
            tags[names.STOPPED_AT_RUNG] = short_number(stop.get("rung"))
            tags[names.RUNG_CUTOFF] = short_number(stop.get("cutoff"))
            tags[names.RUNG_VALUE] = short_number(stop.get("value"))
        if ended and rec.weights_uri:
            tags[names.WEIGHTS_URI] = rec.weights_uri
        if status.terminal or status is TrialStatus.PAUSED:
            # Every epoch lands before the status that says the trial is over: a driver killed between the two
            # leaves a run still tagged running, which the resumed sweep refills from the trial's checkpoint;
            # the other order left a run tagged finished, short of its last epochs, for good.
            self.flush(rec.mlflow_run_id)
        tracking.log_tags(self.client, rec.mlflow_run_id, tags)
        if status.terminal:
            summary = {
                names.EPOCHS: rec.epochs,
                names.LAST_METRIC: "" if rec.last_metric is None else f"{rec.last_metric:.6g}",
                names.BEST_METRIC: "" if rec.best_metric is None else f"{rec.best_metric:.6g}",
            }
            tracking.log_tags(self.client, rec.mlflow_run_id, summary)
            name = mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id, status.value)
            self.client.update_run(rec.mlflow_run_id, name=name)
            self.client.set_terminated(rec.mlflow_run_id, status.mlflow_run_status)
        elif status is TrialStatus.RUNNING:
            run = self.client.get_run(rec.mlflow_run_id)
            if run.info.status != "RUNNING":  # a restored trial re-opens its own run, never a new one
                self.client.update_run(rec.mlflow_run_id, status="RUNNING")
        elif status is TrialStatus.PAUSED:
            self.client.update_run(rec.mlflow_run_id, status=status.mlflow_run_status)

    def log_weights(self, rec: TrialRecord, checkpoint: Any) -> None:
        """The final weights from the trial's newest Tune checkpoint, as its run's `weights/state_dict.pt`."""
        if checkpoint is None or rec.mlflow_run_id is None:
            return
        try:
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

    # ---- the sweep page, the best trials and their models -------------------------------------------------

    def report_due(self) -> bool:
        """Whether a refresh of the sweep page would be written now (callers skip building its input)."""
        return time.monotonic() >= self._report_due and (self._report is None or self._report.done())

    def refresh_report(
        self,
        trials: list[ReportTrial],
        best_trial_ids: Mapping[str, str],
        *,
        final: bool = False,
        wait: bool = False,
    ) -> None:
        """Rewrite `sweep_report.html` on the parent run, on the writer thread: at most every REPORT_EVERY_S
        while the sweep runs (skipped while the previous one is still being written); `final` (the last one)
        and `wait` now, waited for."""
        now = time.monotonic()
        busy = self._report is not None and not self._report.done()
        if self.parent_run_id is None or (not (final or wait) and (now < self._report_due or busy)):
            return
        self._report_due = now + REPORT_EVERY_S
        info = SweepInfo(
            metric=self.spec.metric,
            mode=self.spec.mode,
            name=self.spec.name,
            sweep_id=self.sweep_id,
            rules=tuple(self.spec.algorithms),
            best_trial_ids=dict(best_trial_ids),
            experiment_id=self.experiment_id,
            mlflow_ui_url=self.mlflow_ui_url,
            final=final,
        )
        self._report = self._writer.submit(self._write_report, trials, info)
        if final or wait:
            self._report.result()

    def _write_report(self, trials: list[ReportTrial], info: SweepInfo) -> None:
        assert self.parent_run_id is not None
        try:
            with tempfile.TemporaryDirectory(prefix="rfsweep-report-") as tmp:
                path = write_sweep_report(trials, info, Path(tmp) / REPORT_FILE)
                log_report_artifact(self.client, self.parent_run_id, path)
        except Exception as exc:  # the page is a view of what MLflow holds; never fail the sweep over it
            log.warning("could not write %s: %s", REPORT_FILE, exc)

    def mark_best(self, best: Mapping[str, TrialRecord], overall: TrialRecord | None) -> None:
        """Tag (`rfsweep.best`: rule | sweep) and name (a leading `★`) the best trial of each rule."""
        for rec in best.values():
            if rec.mlflow_run_id is None:
                continue
            tracking.log_tags(self.client, rec.mlflow_run_id, {names.BEST: "sweep" if rec is overall else "rule"})
            name = mlflow_ui.trial_run_name(rec.algorithm, rec.trial_id, rec.status.value, best=True)
            self.client.update_run(rec.mlflow_run_id, name=name)

    def log_best_models(self, recs: list[TrialRecord]) -> None:
        """Each trial's network as an MLflow model (`runs:/RUN/model`, `model_export`) beside its state dict:
        sets `rec.model_uri`, or `rec.model_error` saying why there is none."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars on the console
        with _quiet_mlflow():
            for rec in recs:
                self._log_best_model(rec)

    def _log_best_model(self, rec: TrialRecord) -> None:
        import torch

        from sweep_service.model_export import log_best_model

        if rec.mlflow_run_id is None or rec.weights_uri is None:
            rec.model_error = "no weights were saved for this trial"
            return
        try:
            with tempfile.TemporaryDirectory(prefix="rfsweep-model-") as tmp:
                local = self.client.download_artifacts(rec.mlflow_run_id, tracking.WEIGHTS_ARTIFACT, tmp)
                state = torch.load(local, map_location="cpu", weights_only=True)
            rec.model_uri = log_best_model(rec.config, state, run_id=rec.mlflow_run_id, client=self.client)
            tracking.log_tags(self.client, rec.mlflow_run_id, {names.MODEL_URI: rec.model_uri})
        except Exception as exc:  # e.g. a driver without the dataset's files: the state dict stays
            rec.model_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("trial %s: could not log its model: %s", rec.trial_id, rec.model_error)

    def flush(self, run_id: str | None = None) -> None:
        """Wait for the queued metric writes (of one run, or all)."""
        for rid in [run_id] if run_id else list(self._pending):
            for future in self._pending.pop(rid, []):
                try:
                    future.result()
                except Exception as exc:
                    log.warning("run %s: a metric write failed: %s", rid, exc)

    # ---- the parent's summaries ------------------------------------------------------------------------

    def close(
        self,
        status: SweepStatus,
        seconds: float,
        error: str | None,
        *,
        best: dict[str, Any] | None,
        best_per_algorithm: dict[str, dict[str, Any]],
        rules_without_result: dict[str, str],
        trials: list[dict[str, Any]],
        counts: dict[str, int],
        curves: dict[str, list[tuple[str, list[tuple[int, float]], str]]],
    ) -> None:
        """Write the sweep's summaries on the parent run and end it with the sweep's status."""
        from mlflow.entities import Metric

        assert self.parent_run_id is not None
        self.flush()
        client, run_id, metric = self.client, self.parent_run_id, self.spec.metric
        now = int(time.time() * 1000)
        metrics = [Metric(names.trials_metric(k), float(v), now, 0) for k, v in counts.items()]
        metrics.append(Metric(names.SWEEP_SECONDS, float(seconds), now, 0))
        if best is not None:
            metrics.append(Metric(names.best_metric(metric), float(best["value"]), now, 0))
            tags = {
                names.BEST_TRIAL_ID: best["trial_id"],
                names.BEST_ALGORITHM: best["algorithm"],
                names.BEST_RUN_ID: best["mlflow_run_id"] or "",
                names.BEST_VALUE: f"{best['value']:.6g}",
            }
            tags.update({f"{names.BEST_PARAM_PREFIX}{k}": json.dumps(v) for k, v in best["params"].items()})
            if best.get("model_uri"):
                tags[names.BEST_MODEL_URI] = best["model_uri"]
            tracking.log_tags(client, run_id, tags)
        for rule, entry in best_per_algorithm.items():
            metrics.append(Metric(names.best_metric(metric, rule), float(entry["value"]), now, 0))
        client.log_batch(run_id, metrics=metrics)
        summary = {"best": best, "best_per_algorithm": best_per_algorithm, "rules_without_result": rules_without_result}
        best_json = json.dumps(summary, indent=2, default=str)
        tracking.log_text(client, run_id, best_json, "best_config.json")
        parameter_names = sorted({k for t in trials for k in t.get("params") or {}})
        tracking.log_text(client, run_id, tracking.trials_csv(trials, parameter_names), "trials.csv")
        try:
            self._log_curves(curves)
        except Exception as exc:
            log.warning("could not plot learning curves: %s", exc)
        tracking.log_tags(
            client, run_id, {names.SWEEP_STATUS: status.value, **({names.FAILURE_REASON: error} if error else {})}
        )
        client.set_terminated(run_id, status.mlflow_run_status)
        self._writer.shutdown(wait=True)  # flushed above; nothing is queued after the summaries

    def pause(self) -> None:
        """The sweep paused: its writes flushed, the parent run SCHEDULED until the resume re-opens it."""
        assert self.parent_run_id is not None
        self.flush()
        tracking.log_tags(self.client, self.parent_run_id, {names.SWEEP_STATUS: SweepStatus.PAUSED.value})
        self.client.update_run(self.parent_run_id, status=SweepStatus.PAUSED.mlflow_run_status)
        self._writer.shutdown(wait=True)

    def _log_curves(self, curves: dict[str, list[tuple[str, list[tuple[int, float]], str]]]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "learning_curves.png"
            tracking.plot_learning_curves(curves, self.spec.metric, png, f"sweep {self.spec.name} ({self.sweep_id})")
            assert self.parent_run_id is not None
            self.client.log_artifact(self.parent_run_id, str(png))


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's notes while saving a model (input-example validation, cloudpickle, type hints) are about
    choices model_export made on purpose; keep them off the sweep's console."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def end_open_runs(tracking_uri: str, sweep_id: str, experiment_id: str | None, status: SweepStatus) -> None:
    """End every run of a sweep still RUNNING (its driver died): the runs say how the sweep ended."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_ids = [experiment_id] if experiment_id else [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{names.SWEEP_ID}` = '{sweep_id}' and attributes.status = 'RUNNING'",
        max_results=5000,
    )
    trial_status = TrialStatus.CANCELLED if status is SweepStatus.CANCELLED else TrialStatus.FAILED
    for run in runs:
        client.set_tag(run.info.run_id, names.STATUS, trial_status.value)
        client.set_terminated(run.info.run_id, status=status.mlflow_run_status)
