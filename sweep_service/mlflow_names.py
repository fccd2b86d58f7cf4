"""Every name rfsweep writes into MLflow besides rf_core's metric names: tag keys (MLflow's own among them),
run roles, run statuses, artifact names, extra metrics.

Runs are found again by these tags (a retried trial, a restored sweep, the API ending what a dead driver
left open); the runner, the single-run logger, the API's dispatcher and the paper experiments write and
search them. They are defined here only: tests/sweep_service/test_vocabulary.py fails when one of these
values is written as a literal anywhere else.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """MLflow's run statuses (`mlflow.entities.RunStatus` by name)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"  # rfsweep: a trial or sweep waiting (paused, or not started)
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


# ---- an experiment --------------------------------------------------------------------------------------
CREATED_BY = "rfsweep.created_by"  # "rfsweep" on the experiments rfsweep creates (a server writes only into those)

# ---- finding runs again -------------------------------------------------------------------------------
PARENT_RUN = "mlflow.parentRunId"  # MLflow's own tag: nests a trial's run under its sweep's
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow's own experiment tag: which view the UI opens it in
ROLE = "rfsweep.role"  # one of the roles below
SWEEP_ID = "rfsweep.sweep_id"
TRIAL_ID = "rfsweep.trial_id"


class Role:
    SWEEP = "sweep"  # a sweep's parent run
    TRIAL = "trial"  # one trial of a sweep
    TRAIN = "train"  # a single `rfsweep train --tracking-uri` run
    REPRODUCE = "reproduce"  # the report run of `rfsweep reproduce`


# ---- a trial's run (and a single training run) ---------------------------------------------------------
ALGORITHM = "rfsweep.algorithm"
STATUS = "rfsweep.status"  # a TrialStatus value
CONFIG = "rfsweep.config"  # the complete training config, JSON
PARAMS = "rfsweep.params"  # the searched parameters' values, JSON
PREVIOUS_TRIAL_ID = "rfsweep.previous_trial_id"  # a restored trial that took over an unsaved trial's run
DEVICE = "rfsweep.device"
NODE_ID = "rfsweep.node_id"
RESUMED_FROM_EPOCH = "rfsweep.resumed_from_epoch"
RETRIES = "rfsweep.retries"
LAST_ERROR = "rfsweep.last_error"
FAILURE_REASON = "rfsweep.failure_reason"
WEIGHTS_URI = "rfsweep.weights_uri"
EPOCHS = "rfsweep.epochs"
LAST_METRIC = "rfsweep.last_metric"
BEST_METRIC = "rfsweep.best_metric"
STOPPED_EARLY = "rfsweep.stopped_early"
STOPPED_AT_RUNG = "rfsweep.stopped_at_rung"
RUNG_CUTOFF = "rfsweep.rung_cutoff"
RUNG_VALUE = "rfsweep.rung_value"
DIAGNOSTICS_PREFIX = "rfsweep.diagnostics."  # + rf_core's diagnostic name (single training runs)
RF_CORE_VERSION = "rfsweep.rf_core_version"  # the rfsweep version and a digest of rf_core's source that trained
UPDATE = "rfsweep.update"  # the rule's update form (rf_core's label: paper | paper_as_printed | gated_joint | ...)
FEEDBACK = "rfsweep.feedback"  # where its feedback comes from (learned | oracle_cholesky | transpose | ...)
LEDGER_PREFIX = "rfsweep.ledger."  # + each locality-ledger entry: "true" | "false"
NONLOCAL = "rfsweep.nonlocal"  # the ledger's entries that are true, comma-separated ("none" for none)
RULE_DESCRIPTION = "rfsweep.rule"  # JSON: the rule in rf_core's words (`TrainConfig.describe`), from the worker
CONFIG_NOTES = "rfsweep.config_notes"  # JSON: field -> why it is not among the params (None by design)
BEST = "rfsweep.best"  # on the best trial of each rule: "rule", or "sweep" for the best of the whole sweep
MODEL_URI = "rfsweep.model_uri"  # the best trial's MLflow model (runs:/RUN/model)

# ---- a sweep's parent run ---------------------------------------------------------------------------
ALGORITHMS = "rfsweep.algorithms"  # comma-separated
METRIC = "rfsweep.metric"
MODE = "rfsweep.mode"
SWEEP_STATUS = "rfsweep.sweep_status"  # a SweepStatus value
BEST_TRIAL_ID = "rfsweep.best.trial_id"
BEST_ALGORITHM = "rfsweep.best.algorithm"
BEST_RUN_ID = "rfsweep.best.mlflow_run_id"
BEST_VALUE = "rfsweep.best.value"
BEST_PARAM_PREFIX = "rfsweep.best.param."  # + the searched parameter's name
BEST_MODEL_URI = "rfsweep.best.model_uri"

# ---- artifacts -------------------------------------------------------------------------------------
SPEC_ARTIFACT = "spec.yaml"  # the parent run: the spec as it ran
BEST_CONFIG_ARTIFACT = "best_config.json"  # the parent run: best, best_per_algorithm, rules_without_result
TRIALS_ARTIFACT = "trials.csv"  # the parent run: one row per trial
CURVES_ARTIFACT = "learning_curves.png"  # the parent run: the sweep metric per epoch, per rule
REPORT_ARTIFACT = "sweep_report.html"  # the parent run: the sweep page
SUMMARY_ARTIFACT = "summary.json"  # a single training run: rf_core's TrainResult summary
WEIGHTS_FILE = "state_dict.pt"  # a state dict (torch.save), in a checkpoint and under WEIGHTS_DIR
WEIGHTS_DIR = "weights"
WEIGHTS_ARTIFACT = f"{WEIGHTS_DIR}/{WEIGHTS_FILE}"  # a trial's (or single run's) final weights
MODEL_ARTIFACT = "model"  # the best trial's network as an MLflow model (runs:/RUN/model)
MODEL_CARD = "model_card.md"  # beside the model

# ---- the report run of `rfsweep reproduce` --------------------------------------------------------------
DATASET = "rfsweep.dataset"


def reproduce_sweep(protocol: str, stage: str) -> str:
    """The report run's tag holding the parent run id of one of its sweeps: protocol a|b (`b.paper-update` for a
    protocol's second row group), stage search|retrain."""
    return f"rfsweep.sweep.{protocol}.{stage}"


# ---- metrics beside rf_core's per-epoch METRIC_NAMES --------------------------------------------------
EPOCH_SECONDS = "epoch_seconds"  # rf_core's per-epoch `seconds`: the training steps alone
EVAL_SECONDS = "eval_seconds"  # the epoch's validation and test passes
SWEEP_SECONDS = "sweep_seconds"
FINAL_PREFIX = "final_"  # + a TrainResult summary field (single training runs)


def trials_metric(count: str) -> str:
    """The parent run's count of trials in a status (or `total`)."""
    return f"trials_{count}"


def best_metric(metric: str, rule: str | None = None) -> str:
    """The parent run's best value of the sweep's metric, overall or for one rule."""
    return f"best_{metric}" if rule is None else f"best_{metric}.{rule}"
