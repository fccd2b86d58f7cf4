"""Run a sweep: spec → one Ray Tune experiment (a HyperOpt search and an ASHA scheduler per rule) →
MLflow (a parent run per sweep, one child run per trial) → a `SweepResult`.

`run_sweep` is what the CLI, the API's sweep drivers and the paper experiments call. The driver process
runs Tune's control loop and the `SweepMonitor` (trial table, MLflow, progress, cancel); trials run in Ray
workers (`trainable`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep_service import budget, paths, tracking
from sweep_service.monitor import SweepMonitor
from sweep_service.progress import SweepHooks, SweepProgress
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.space import RuleSpace
from sweep_service.spec import SweepSpec
from sweep_service.status import ProgressCounts, SweepStatus

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    sweep_id: str
    # succeeded: some trial produced a usable result; failed: none did (`error` says why); cancelled; paused.
    # (A sweep that breaks raises instead.)
    status: SweepStatus
    error: str | None
    best: BestEntry | None
    best_per_algorithm: dict[str, BestEntry]
    rules_without_result: dict[str, str]  # rule -> why none of its trials is in best_per_algorithm
    trials: list[TrialSummary]
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    seconds: float
    progress: ProgressCounts  # the final counts
    metric: str
    mode: str
    storage_path: str
    timeline: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Trials by status, and `total`."""
        return self.progress.trial_counts()

    def to_json(self) -> dict[str, Any]:
        """The object `rfsweep sweep --json` prints (and the API's driver stores)."""
        return {
            "sweep_id": self.sweep_id,
            "status": self.status.value,
            "error": self.error,
            "metric": self.metric,
            "mode": self.mode,
            "best": None if self.best is None else self.best.to_json(),
            "best_per_algorithm": {rule: entry.to_json() for rule, entry in self.best_per_algorithm.items()},
            "rules_without_result": self.rules_without_result,
            "trials": [t.to_json() for t in self.trials],
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


def new_sweep_id(spec: SweepSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def storage_root(storage_path: str | None) -> str:
    """Where Tune keeps sweeps: a local folder (resolved) or a URI; by default the state folder's ray_results."""
    if storage_path and "://" not in storage_path:
        return str(Path(storage_path).expanduser().resolve())
    return storage_path or str(paths.StateLayout.at().ray_results)


def can_resume(sweep_id: str, storage_path: str | None) -> bool:
    """Whether Tune's storage holds sweep `sweep_id` (what `resume=True` restores)."""
    from ray import tune

    return bool(tune.Tuner.can_restore(f"{storage_root(storage_path).rstrip('/')}/{sweep_id}"))


def resumable_sweeps(storage_path: str | None) -> list[str]:
    """The ids of the sweeps a local storage folder holds (empty for a URI: not listed)."""
    root = storage_root(storage_path)
    if "://" in root or not Path(root).is_dir():
        return []
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and can_resume(p.name, root))


def connect_ray(address: str | None) -> bool:
    """Join the cluster at `address`/RAY_ADDRESS, else start Ray in this process. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
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
    experiments: tracking.ExperimentPolicy | None = None,
    mlflow_ui_url: str | None = None,
    should_pause: Callable[[], bool] | None = None,
    best_models: bool = True,
) -> SweepResult:
    """Run (or, with resume=True and the same sweep_id/storage_path, restore) a sweep to its end; its MLflow
    experiment as `experiments` says (default: the spec's tracking.experiment or name, as it is).

    `best_models`: at the end, log each rule's best trial as an MLflow model (`model_uri`); callers that only
    read the numbers (the paper's reproduction) skip it (about a second per rule).
    `should_pause()` True (polled like `should_stop`; `run_sweep` must run on the main thread): trials stop
    at their newest checkpoint and the result's status is `paused`; `run_sweep(resume=True)` continues them.

    `mlflow_ui_url`: the MLflow UI's address, for the links on the sweep page (else relative to its root)."""
    started = time.monotonic()
    _quiet_tune()
    from ray import tune

    from sweep_service import checkpoints, faults, tune_glue
    from sweep_service.space import build_spaces
    from sweep_service.trainable import TrialSettings, run_trial

    sweep_id = sweep_id or new_sweep_id(spec)
    storage = storage_root(storage_path)
    if "://" not in storage:
        Path(storage).mkdir(parents=True, exist_ok=True)
    experiment_path = f"{storage.rstrip('/')}/{sweep_id}"
    local_storage = "://" not in storage  # checkpoint stand-ins work on a local or shared folder, not on S3
    uri = tracking.resolve_tracking_uri(tracking_uri, spec.tracking.uri)
    target = tracking.TrackingTarget(uri, experiments or tracking.ExperimentPolicy(), mlflow_ui_url)
    hooks = SweepHooks(on_progress, should_stop, should_pause)

    spaces = build_spaces(spec)
    # MLflow's import and store set-up overlap Ray's start-up (seconds each on a small machine).
    opened: dict[str, Any] = {}
    opener = threading.Thread(
        target=_open_monitor,
        args=(opened, spec, sweep_id, spaces, target, hooks),
        daemon=True,
    )
    opener.start()
    started_ray = False
    error: str | None = None
    try:
        started_ray = connect_ray(ray_address)
        opener.join()
        if "error" in opened:
            raise opened["error"]
        monitor = opened["monitor"]
        monitor.started = started  # one time base for the timeline: the start of run_sweep
        monitor.started_wall = time.time() - (time.monotonic() - started)
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
            monitor.close(SweepStatus.FAILED, time.monotonic() - started, error=error)
            raise
    finally:
        tune_glue.unregister_monitor(sweep_id)
        if local_storage:
            checkpoints.remove_stand_ins(experiment_path)
        if started_ray:
            import ray

            ray.shutdown()
            marks["ray_stopped_s"] = time.monotonic()
    seconds = time.monotonic() - started
    outcome_error = None
    if monitor.pause_requested and not monitor.cancel_requested:
        status = SweepStatus.PAUSED
        final = monitor.pause()
    else:
        monitor.close_open_trials()
        outcome_error = None if monitor.cancel_requested else monitor.no_result_reason()
        if monitor.cancel_requested:
            status = SweepStatus.CANCELLED
        else:
            status = SweepStatus.FAILED if outcome_error else SweepStatus.SUCCEEDED
        final = monitor.close(status, seconds, error=outcome_error, best_models=best_models)
    marks["summaries_logged_s"] = time.monotonic()
    assert monitor.runs.parent_run_id is not None
    result = SweepResult(
        sweep_id=sweep_id,
        status=status,
        error=outcome_error,
        best=monitor.best(),
        best_per_algorithm=monitor.best_per_algorithm(),
        rules_without_result={} if status is SweepStatus.PAUSED else monitor.rules_without_result(),  # not ended
        trials=monitor.trial_summaries(),
        experiment_id=monitor.experiment_id,
        parent_run_id=monitor.runs.parent_run_id,
        tracking_uri=uri,
        seconds=round(seconds, 3),
        progress=final,
        metric=spec.metric,
        mode=spec.mode,
        storage_path=experiment_path,
        timeline={**monitor.timeline, **{k: round(t - started, 3) for k, t in marks.items()}},
    )
    if on_progress is not None:
        on_progress(monitor.progress())
    return result


def _open_monitor(
    out: dict[str, Any],
    spec: SweepSpec,
    sweep_id: str,
    spaces: dict[str, RuleSpace],
    target: tracking.TrackingTarget,
    hooks: SweepHooks,
) -> None:
    try:
        monitor = SweepMonitor(spec, sweep_id, spaces, target, hooks)
        monitor.open()
        out["monitor"] = monitor
        import matplotlib  # noqa: F401  (the end-of-sweep plot; importing it here overlaps Ray's start-up)
    except BaseException as exc:  # re-raised in the caller's thread
        out["error"] = exc


def _local_fault_dir(storage: str, sweep_id: str) -> str:
    base = storage if "://" not in storage else tempfile.gettempdir()
    return str(Path(base) / sweep_id / "_injected_faults")


def _scheduler(spec: SweepSpec, sweep_id: str) -> Any:
    from sweep_service import tune_glue

    sched = spec.scheduler
    if sched.type == "asha":
        return tune_glue.PerRuleScheduler(
            sweep_id, spec.algorithms, spec.metric, spec.mode, sched.max_t, sched.grace_period, sched.reduction_factor
        )
    return tune_glue.FifoPerRuleScheduler()
