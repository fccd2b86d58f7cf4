"""A sweep's parent run in MLflow: found again by tag or created (its params, `spec.yaml`, the experiment's saved
view of the sweep), the sweep page rewritten on it while trials report, and at the end the sweep's summaries
(best values and tags, `best_config.json`, `trials.csv`, the learning-curve plot) and its status.
`end_open_runs` closes what a dead driver left RUNNING.

The sweep page (`report`) is rewritten on the sweep's writer thread (`run_writer`), at most every
REPORT_EVERY_S while trials report, and once more, final, when the sweep closes.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from sweep_service import mlflow_names as names
from sweep_service import mlflow_ui, tracking
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.report import ReportTrial, SweepInfo, log_report_artifact, write_sweep_report
from sweep_service.run_writer import RunWriter
from sweep_service.spec import Distribution, SweepSpec
from sweep_service.status import SweepStatus, TrialStatus
from sweep_service.trials import TrialRecord

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
REPORT_EVERY_S = 30.0


class ParentRun:
    """The parent run of one sweep (driver process only)."""

    def __init__(
        self,
        spec: SweepSpec,
        sweep_id: str,
        client: MlflowClient,
        experiment_id: str,
        writer: RunWriter,
        ui_url: str | None,
    ):
        self.spec, self.sweep_id, self.client, self.experiment_id = spec, sweep_id, client, experiment_id
        self.writer, self.ui_url = writer, ui_url
        self.run_id: str | None = None
        self._report_due = 0.0  # monotonic time before which the page is not rewritten
        self._report: Future[None] | None = None

    def open(self) -> str:
        """Find the sweep's parent run (re-opened RUNNING) or create it; its id."""
        wanted = {names.SWEEP_ID: self.sweep_id, names.ROLE: names.Role.SWEEP}
        parents = tracking.find_runs(self.client, self.experiment_id, wanted)
        if parents:
            self.run_id = parents[0].info.run_id
            if parents[0].info.status != names.RunStatus.RUNNING:
                self.client.update_run(self.run_id, status=names.RunStatus.RUNNING)
        else:
            self.run_id = self._create()
        return self.run_id

    def _create(self) -> str:
        spec = self.spec
        tags = {
            names.ROLE: names.Role.SWEEP,
            names.SWEEP_ID: self.sweep_id,
            names.ALGORITHMS: ",".join(spec.algorithms),
            names.METRIC: spec.metric,
            names.MODE: spec.mode,
        }
        run_name = mlflow_ui.parent_run_name(spec.name, self.sweep_id)
        run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
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
        tracking.log_params(self.client, run_id, params)
        tracking.log_text(self.client, run_id, spec.to_yaml(), names.SPEC_ARTIFACT)
        self._save_view(run_id)
        return run_id

    def _save_view(self, run_id: str) -> None:
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
                parent_run_id=run_id,
            )
        except Exception as exc:  # a convenience of the UI; never fail the sweep over it
            log.warning("could not save the sweep's MLflow view: %s", exc)

    # ---- the sweep page ----------------------------------------------------------------------------

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
        if self.run_id is None or (not (final or wait) and (now < self._report_due or busy)):
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
            mlflow_ui_url=self.ui_url,
            final=final,
        )
        self._report = self.writer.submit(self._write_report, self.run_id, trials, info)
        if final or wait:
            self._report.result()

    def _write_report(self, run_id: str, trials: list[ReportTrial], info: SweepInfo) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="rfsweep-report-") as tmp:
                path = write_sweep_report(trials, info, Path(tmp) / names.REPORT_ARTIFACT)
                log_report_artifact(self.client, run_id, path)
        except Exception as exc:  # the page is a view of what MLflow holds; never fail the sweep over it
            log.warning("could not write %s: %s", names.REPORT_ARTIFACT, exc)

    # ---- the end ----------------------------------------------------------------------------------------

    def close(
        self,
        status: SweepStatus,
        seconds: float,
        error: str | None,
        *,
        best: BestEntry | None,
        best_per_algorithm: dict[str, BestEntry],
        rules_without_result: dict[str, str],
        trials: list[TrialSummary],
        counts: dict[str, int],
        curves: Sequence[TrialRecord],
    ) -> None:
        """Write the sweep's summaries on the parent run and end it with the sweep's status."""
        from mlflow.entities import Metric

        assert self.run_id is not None
        self.writer.flush()
        client, run_id, metric = self.client, self.run_id, self.spec.metric
        now = int(time.time() * 1000)
        metrics = [Metric(names.trials_metric(k), float(v), now, 0) for k, v in counts.items()]
        metrics.append(Metric(names.SWEEP_SECONDS, float(seconds), now, 0))
        if best is not None:
            metrics.append(Metric(names.best_metric(metric), best.value, now, 0))
            tags = {
                names.BEST_TRIAL_ID: best.trial_id,
                names.BEST_ALGORITHM: best.algorithm,
                names.BEST_RUN_ID: best.mlflow_run_id or "",
                names.BEST_VALUE: f"{best.value:.6g}",
            }
            tags.update({f"{names.BEST_PARAM_PREFIX}{k}": json.dumps(v) for k, v in best.params.items()})
            if best.model_uri:
                tags[names.BEST_MODEL_URI] = best.model_uri
            tracking.log_tags(client, run_id, tags)
        for rule, entry in best_per_algorithm.items():
            metrics.append(Metric(names.best_metric(metric, rule), entry.value, now, 0))
        client.log_batch(run_id, metrics=metrics)
        summary = {
            "best": None if best is None else best.to_json(),
            "best_per_algorithm": {rule: entry.to_json() for rule, entry in best_per_algorithm.items()},
            "rules_without_result": rules_without_result,
        }
        tracking.log_text(client, run_id, json.dumps(summary, indent=2, default=str), names.BEST_CONFIG_ARTIFACT)
        parameter_names = sorted({k for t in trials for k in t.params})
        tracking.log_text(client, run_id, tracking.trials_csv(trials, parameter_names), names.TRIALS_ARTIFACT)
        try:
            self._log_curves(curves)
        except Exception as exc:
            log.warning("could not plot learning curves: %s", exc)
        tracking.log_tags(
            client, run_id, {names.SWEEP_STATUS: status.value, **({names.FAILURE_REASON: error} if error else {})}
        )
        client.set_terminated(run_id, status.mlflow_run_status)
        self.writer.close()  # flushed above; nothing is queued after the summaries

    def pause(self) -> None:
        """The sweep paused: its writes flushed, the parent run SCHEDULED until the resume re-opens it."""
        assert self.run_id is not None
        self.writer.close()
        tracking.log_tags(self.client, self.run_id, {names.SWEEP_STATUS: SweepStatus.PAUSED.value})
        self.client.update_run(self.run_id, status=SweepStatus.PAUSED.mlflow_run_status)

    def _log_curves(self, records: Sequence[TrialRecord]) -> None:
        curves: dict[str, list[tuple[str, list[tuple[int, float]], str]]] = {r: [] for r in self.spec.algorithms}
        for rec in records:
            curves.setdefault(rec.algorithm, []).append((rec.trial_id, sorted(rec.curve.items()), rec.status.value))
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / names.CURVES_ARTIFACT
            tracking.plot_learning_curves(curves, self.spec.metric, png, f"sweep {self.spec.name} ({self.sweep_id})")
            assert self.run_id is not None
            self.client.log_artifact(self.run_id, str(png))


def end_open_runs(tracking_uri: str, sweep_id: str, experiment_id: str | None, status: SweepStatus) -> None:
    """End every run of a sweep still RUNNING (its driver died): the runs say how the sweep ended."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_ids = [experiment_id] if experiment_id else [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{names.SWEEP_ID}` = '{sweep_id}' and attributes.status = '{names.RunStatus.RUNNING}'",
        max_results=5000,
    )
    trial_status = TrialStatus.CANCELLED if status is SweepStatus.CANCELLED else TrialStatus.FAILED
    for run in runs:
        client.set_tag(run.info.run_id, names.STATUS, trial_status.value)
        client.set_terminated(run.info.run_id, status=status.mlflow_run_status)
