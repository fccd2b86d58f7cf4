"""MLflow plumbing shared by every run rfsweep writes: the tracking URI, the client and experiment, runs
found by tags, batched params/tags/metrics, weights and plots; and `log_single_run` for `rfsweep train`.

A sweep's runs are `trial_runs`' and `parent_run`'s job; every tag key, artifact and extra metric name is in
`mlflow_names`.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rf_core import METRIC_NAMES, RULE_METRIC_PREFIX, ResultStatus
from sweep_service import configs, paths
from sweep_service import mlflow_names as names
from sweep_service.numbers import finite
from sweep_service.status import TrialStatus

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from rf_core import TrainResult
    from sweep_service.records import TrialSummary


def resolve_tracking_uri(*candidates: str | None) -> str:
    """The first of the explicit URIs, else $MLFLOW_TRACKING_URI, else the local SQLite store."""
    for uri in candidates:
        if uri:
            return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or paths.StateLayout.at().tracking_uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


def make_client(tracking_uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    db = _sqlite_path(tracking_uri)
    if db is None:
        return MlflowClient(tracking_uri=tracking_uri)
    # MLflow creates and migrates a SQLite store when a process first opens it; two processes doing it at once
    # (drivers of sweeps started together on a fresh state folder) collide ("Online migration expected to
    # match one row"). One at a time, under a lock beside the file.
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f"{db.name}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            client.search_experiments(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return client


class ExperimentUnavailable(RuntimeError):
    """An MLflow experiment rfsweep may not write into: deleted, or (where not allowed) not created by rfsweep."""


@dataclass(frozen=True)
class ExperimentPolicy:
    """Which MLflow experiment a sweep writes into: `prefix` + (its spec's tracking.experiment, else its name).

    The API's drivers use the server's prefix (RFSWEEP_EXPERIMENT_PREFIX) and write only into experiments
    rfsweep created (unless RFSWEEP_ADOPT_FOREIGN_EXPERIMENTS), so a spec cannot reach into another
    experiment; the CLI runs on the user's own store, without a prefix."""

    prefix: str = ""
    adopt_foreign: bool = True

    def name(self, spec_experiment: str | None, sweep_name: str) -> str:
        return f"{self.prefix}{spec_experiment or sweep_name}"


@dataclass(frozen=True)
class TrackingTarget:
    """Where a sweep's runs go: the store's URI, which experiment (`experiments`), and the MLflow UI's address
    for the links on the sweep page (None: links relative to the server's root)."""

    uri: str
    experiments: ExperimentPolicy = field(default_factory=ExperimentPolicy)
    ui_url: str | None = None


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str, *, adopt_foreign: bool = True) -> str:
    """The experiment's id, creating it (tagged as rfsweep's; artifacts beside a SQLite store, not in ./mlruns)
    if needed. A deleted experiment is never restored, and one rfsweep did not create is written into only with
    `adopt_foreign`: ExperimentUnavailable says which and why."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return _usable(existing, adopt_foreign)
    artifact_location = None
    db = _sqlite_path(tracking_uri)
    if db is not None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "experiment"
        artifact_location = (paths.artifacts_beside(db) / slug).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags={names.CREATED_BY: "rfsweep"})
    except Exception:  # created concurrently by another driver
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return _usable(found, adopt_foreign)


def _usable(experiment: Any, adopt_foreign: bool) -> str:
    if experiment.lifecycle_stage == "deleted":
        raise ExperimentUnavailable(
            f"the MLflow experiment {experiment.name!r} was deleted, and rfsweep does not restore it: restore it in "
            "MLflow yourself, or give the sweep another name (or tracking.experiment)"
        )
    if not adopt_foreign and (experiment.tags or {}).get(names.CREATED_BY) != "rfsweep":
        raise ExperimentUnavailable(
            f"the MLflow experiment {experiment.name!r} was not created by rfsweep; give the sweep another name "
            "(or tracking.experiment), or let the server write into it (RFSWEEP_ADOPT_FOREIGN_EXPERIMENTS)"
        )
    return str(experiment.experiment_id)


def find_runs(client: MlflowClient, experiment_id: str, tags: Mapping[str, str]) -> list[Run]:
    """All active runs of the experiment carrying these tags (any status)."""
    from mlflow.entities import ViewType

    clauses = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=clauses,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def log_tags(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


def log_epoch(
    client: MlflowClient,
    run_id: str,
    record: Mapping[str, Any],
    extra: Mapping[str, float] | None = None,
) -> None:
    """One epoch's metrics (rf_core's record) with step=epoch: rf_core's names, its `seconds` as epoch_seconds."""
    from mlflow.entities import Metric

    step = int(record["epoch"])
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(record[k]), now, step) for k in METRIC_NAMES if record.get(k) is not None]
    if record.get("seconds") is not None:
        metrics.append(Metric(names.EPOCH_SECONDS, float(record["seconds"]), now, step))
    if record.get("eval_seconds") is not None:
        metrics.append(Metric(names.EVAL_SECONDS, float(record["eval_seconds"]), now, step))
    for key, value in record.items():  # what the rule reports about itself (RF: feedback round trip, failures)
        if key.startswith(RULE_METRIC_PREFIX) and finite(value) is not None:
            metrics.append(Metric(key, float(value), now, step))
    for key, value in (extra or {}).items():
        metrics.append(Metric(key, float(value), now, step))
    client.log_batch(run_id, metrics=metrics)


def log_weights(client: MlflowClient, run_id: str, state: Mapping[str, Any]) -> str:
    """Save a state dict as the run's `weights/state_dict.pt`; returns its `runs:/` URI."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / names.WEIGHTS_FILE
        torch.save(dict(state), path)
        client.log_artifact(run_id, str(path), artifact_path=names.WEIGHTS_DIR)
    return weights_uri(run_id)


def weights_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{names.WEIGHTS_ARTIFACT}"


def log_text(client: MlflowClient, run_id: str, text: str, artifact_file: str) -> None:
    client.log_text(run_id, text, artifact_file)


def metric_history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric, by step, one per step (the last logged wins)."""
    by_step: dict[int, float] = {}
    for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
        by_step[int(m.step)] = float(m.value)
    return sorted(by_step.items())


# ---- sweep summaries on the parent run -------------------------------------------------------------


TRIALS_CSV_COLUMNS = ("trial_id", "algorithm", "status", "epochs", "last_metric", "best_metric", "mlflow_run_id")


def trials_csv(trials: Iterable[TrialSummary], parameter_names: list[str]) -> str:
    """trials.csv: one row per trial, the TRIALS_CSV_COLUMNS of its summary then its searched parameters."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*TRIALS_CSV_COLUMNS, *parameter_names])
    for t in trials:
        row = [getattr(t, c) for c in TRIALS_CSV_COLUMNS]
        writer.writerow([_cell(v) for v in row] + [_cell(t.params.get(p)) for p in parameter_names])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def plot_learning_curves(
    curves: Mapping[str, list[tuple[str, list[tuple[int, float]], str]]], metric: str, path: Path, title: str
) -> Path:
    """One panel per algorithm; a line per trial (curves[algorithm] = [(trial_id, [(epoch, value)], status)])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algorithms = list(curves) or ["(no trials)"]
    fig, axes = plt.subplots(1, len(algorithms), figsize=(6 * len(algorithms), 4.2), squeeze=False)
    styles = {
        TrialStatus.FINISHED.value: "-",
        TrialStatus.STOPPED_EARLY.value: "--",
        TrialStatus.DIVERGED.value: ":",
        TrialStatus.FAILED.value: ":",
        TrialStatus.CANCELLED.value: "-.",
    }
    for ax, algorithm in zip(axes[0], algorithms, strict=True):
        for trial_id, points, status in curves.get(algorithm, []):
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                styles.get(status, "-"),
                marker="o",
                markersize=2.5,
                linewidth=1.2,
                label=f"{trial_id} ({status})",
            )
        ax.set_title(f"{algorithm}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- a single training run (`rfsweep train --tracking-uri`) ----------------------------------------


def log_single_run(
    result: TrainResult,
    tracking_uri: str | None = None,
    experiment: str = "rfsweep-train",
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Log one finished `rf_core.train` result as an MLflow run: params, per-epoch metrics, curves, weights.

    Returns {"experiment_id", "run_id", "weights_uri", "tracking_uri"}.
    """
    uri = resolve_tracking_uri(tracking_uri)
    client = make_client(uri)
    experiment_id = ensure_experiment(client, experiment, uri)
    config = result.config
    # rf_core's outcome in the trial vocabulary: a run stopped by its callback still finished its training
    outcome = {
        ResultStatus.COMPLETED: TrialStatus.FINISHED,
        ResultStatus.STOPPED: TrialStatus.FINISHED,
        ResultStatus.DIVERGED: TrialStatus.DIVERGED,
    }
    status = outcome[result.status].value if result.status in outcome else result.status
    full = configs.full_config(config)
    run_tags = {
        names.ROLE: names.Role.TRAIN,
        names.ALGORITHM: str(config.get("algorithm")),
        names.STATUS: status,
        **configs.run_tags(full),
    }
    run = client.create_run(
        experiment_id,
        run_name=run_name or f"{config.get('algorithm')}-{config.get('dataset')}",
        tags={**run_tags, **(tags or {})},
    )
    run_id = run.info.run_id
    try:
        log_params(client, run_id, full.params())
        for record in result.history:
            log_epoch(client, run_id, record)
        summary = {k: v for k, v in result.summary().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        finals = {
            f"{names.FINAL_PREFIX}{k}": float(v) for k, v in summary.items() if finite(v) is not None and k != "epochs"
        }
        if finals:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, result.epochs) for k, v in finals.items()])
        diagnostics = {k: v for k, v in (result.diagnostics or {}).items() if finite(v) is not None}
        if diagnostics:
            log_tags(client, run_id, {f"{names.DIAGNOSTICS_PREFIX}{k}": f"{v:.6g}" for k, v in diagnostics.items()})
        log_text(client, run_id, json.dumps(result.summary(), indent=2, default=str), names.SUMMARY_ARTIFACT)
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "learning_curve.png"
            points = {
                m: [(r["epoch"], r[m]) for r in result.history if r.get(m) is not None]
                for m in ("train_accuracy", "val_accuracy", "test_accuracy")
            }
            plot_learning_curves(
                {str(config.get("algorithm")): [(m, pts, status) for m, pts in points.items()]},
                "accuracy",
                png,
                f"{config.get('algorithm')} on {config.get('dataset')}",
            )
            client.log_artifact(run_id, str(png))
        weights = log_weights(client, run_id, result.model_state)
        if result.status == ResultStatus.DIVERGED:
            log_tags(client, run_id, {names.FAILURE_REASON: result.divergence or "the loss became NaN/inf"})
        client.set_terminated(
            run_id, names.RunStatus.FAILED if result.status == ResultStatus.DIVERGED else names.RunStatus.FINISHED
        )
    except BaseException:
        client.set_terminated(run_id, names.RunStatus.FAILED)
        raise
    return {"experiment_id": experiment_id, "run_id": run_id, "weights_uri": weights, "tracking_uri": uri}
