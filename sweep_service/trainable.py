"""The Tune trainable: one trial = one `rf_core.train` run reporting every epoch.

Runs in Ray's worker processes. Actors are reused across trials (TuneConfig.reuse_actors), so torch,
rf_core and the dataset (rf_core caches it per process) are loaded once per worker, not once per trial.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep_service.checkpoints import STATE_FILE, WEIGHTS_FILE, load_resume_state
from sweep_service.epoch_report import EpochReport
from sweep_service.faults import CrashPlan, maybe_crash
from sweep_service.ranking import worst_value
from sweep_service.space import RuleSpace, decode_trial
from sweep_service.trials import WORKER_DECIDES


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a sweep needs besides its sampled config."""

    spaces: dict[str, RuleSpace]
    metric: str
    mode: str
    max_t: int
    checkpoint_every: int
    checkpoint_epochs: frozenset[int]  # ASHA's rungs: a trial stopped there keeps its final weights
    cpus: float
    gpus: float
    crash_plan: CrashPlan | None = None


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    import torch
    from ray import tune

    from rf_core import METRIC_NAMES, RULE_METRIC_PREFIX, TrainConfig, train
    from sweep_service.configs import full_config_of, rf_core_version

    # The driver decodes the same way (`monitor.SweepMonitor._record`); `epochs` (= max_t) is among the spec's
    # constants. The device is this worker's to decide. The trial's TrainConfig is built here, once per attempt,
    # and its full form goes to the driver in the attempt's first report (the driver builds none).
    values = decode_trial(settings.spaces, config).config
    device = "cuda" if settings.gpus > 0 and torch.cuda.is_available() else "cpu"
    values[WORKER_DECIDES] = device
    if isinstance(values.get("hidden"), list):
        values["hidden"] = tuple(values["hidden"])
    train_config = TrainConfig.from_dict(values)
    trial_config: dict[str, Any] | None = full_config_of(train_config).to_json()  # sent once, then None
    torch.set_num_threads(max(1, int(settings.cpus)))

    import ray

    trial_id = tune.get_context().get_trial_id()
    node_id = ray.get_runtime_context().get_node_id()
    resume_state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume_state = load_resume_state(folder, map_location=device)
    resumed_from = int(resume_state["epoch"]) if resume_state else 0
    pending_history = list(resume_state["history"]) if resume_state else []
    worst = worst_value(settings.metric, settings.mode)

    def report_of(record: dict[str, Any]) -> EpochReport:
        """rf_core's epoch record as the trial reports it to Tune (a diverged epoch reports the worst value)."""
        nonlocal trial_config
        diverged = bool(record.get("diverged"))
        kept: dict[str, Any] = {k: float(record[k]) for k in METRIC_NAMES if record.get(k) is not None}
        kept.update({k: float(v) for k, v in record.items() if k.startswith(RULE_METRIC_PREFIX)})
        value = kept.get(settings.metric, float("nan"))
        if diverged or not math.isfinite(value):
            kept[settings.metric] = worst
        kept.update(
            epoch=int(record["epoch"]),
            seconds=float(record["seconds"]),
            eval_seconds=float(record.get("eval_seconds") or 0.0),
        )
        report = EpochReport(
            kept,
            diverged=diverged,
            device=device,
            node_id=node_id,
            rf_core_version=rf_core_version(),
            resumed_from_epoch=resumed_from,
            divergence=record.get("divergence"),
            trial_config=trial_config,
        )
        trial_config = None
        return report

    def on_epoch(record: dict[str, Any], get_state: Callable[[], dict[str, Any]]) -> bool | None:
        epoch = int(record["epoch"])
        maybe_crash(settings.crash_plan, trial_id, epoch)
        report = report_of(record)
        diverged = report.diverged
        if pending_history:  # the driver may have died before logging these epochs: it fills what MLflow lacks
            report = dataclasses.replace(report, restored_history=list(pending_history))
            pending_history.clear()
        keep = not diverged and (
            epoch % settings.checkpoint_every == 0 or epoch in settings.checkpoint_epochs or epoch >= settings.max_t
        )
        if keep:
            with tempfile.TemporaryDirectory(prefix="rfsweep-ckpt-") as folder:
                state = get_state()
                torch.save(state, Path(folder) / STATE_FILE)
                if epoch in settings.checkpoint_epochs or epoch >= settings.max_t:
                    torch.save({k: v.detach().cpu() for k, v in state["model"].items()}, Path(folder) / WEIGHTS_FILE)
                tune.report(report.to_tune(), checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(report.to_tune())
        return False if diverged else None

    train(train_config, on_epoch=on_epoch, resume_state=resume_state)
    if pending_history:
        # Restored from a checkpoint that already holds every epoch (the driver died after the trial's last
        # checkpoint, before Tune saved the trial as finished): no epoch ran, so no report carried the history,
        # and the epochs MLflow lacks would be lost. Hand it over in one report of the last epoch.
        last = dataclasses.replace(report_of(pending_history[-1]), restored_history=pending_history)
        tune.report(last.to_tune())
