"""What the MLflow UI shows for a sweep: which view an experiment opens in, the UI's addresses for
experiments, runs and artifacts, and run names a person can read in the runs table.

Nothing here writes metrics or params; the module that owns a trial's MLflow run calls these.

The model-training view, as MLflow 3.17's UI decides it (read from the UI bundle shipped in the mlflow
wheel, mlflow/server/js/build): an experiment opens in the GenAI view (traces) or the model-training view
(runs, charts) according to a *workflow type* the UI keeps per browser (localStorage key
`mlflow.workflowType`, default `genai`), overridden by the URL query `?workflowType=machine_learning`.
Earlier 3.x UIs chose by the experiment tag `mlflow.experimentKind` (`custom_model_development` = model
training; the 3.17 bundle still reads it where its workflow switch is off, and its own kind selector
writes it). So both are set: the tag on the experiment (`open_in_model_training_view`), and the query
on every link we hand out (`experiment_url`, `run_url`, `artifact_url`).

The runs table's columns: MLflow 3.17 shows Source, Models and Dataset by default and no metric, param or
tag; a *saved view* changes that. The UI keeps saved views as experiment tags `mlflow.sharedViewState.KEY`
holding `{"name", "createdAt", "updatedAt", "state"}` (`state`: the JSON of its search facets and table
state, e.g. `selectedColumns: ["metrics.`val_accuracy`", "params.`lr`", "tags.`rfsweep.status`"]`), lists
them in its view menu and opens one from the URL query `viewStateShareKey=KEY` (read from the 3.17 bundle).
`save_sweep_view` writes one per sweep: that sweep's runs, its metric, the searched parameters, status and
best as columns, sorted by the metric; `experiment_url(..., view=sweep_view_key(sweep_id))` opens it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from sweep_service import mlflow_names as names
from sweep_service.status import TrialStatus

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

EXPERIMENT_KIND_TAG = names.EXPERIMENT_KIND
MODEL_TRAINING_KIND = "custom_model_development"
WORKFLOW_QUERY = "workflowType=machine_learning"
RUN_NAME_MAX = 60  # the runs table cuts longer names; the short id must stay visible
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_QUERY = "viewStateShareKey"
BEST_MARK = "★"

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)
_HEX_TAIL = re.compile(r"[-_]([0-9a-f]{4,12})$", re.IGNORECASE)


def open_in_model_training_view(client: MlflowClient, experiment_id: str) -> None:
    """Tag the experiment `mlflow.experimentKind=custom_model_development` (idempotent).

    This is what MLflow UIs that choose the view per experiment read; MLflow 3.17's UI also needs the
    `workflowType` query that `experiment_url` / `run_url` put on links (see the module docstring).
    """
    experiment = client.get_experiment(experiment_id)
    if (experiment.tags or {}).get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)


def _base(ui_url: str | None) -> str:
    """The UI root ending in '/'; '' (relative to the server root) when no address is known."""
    if not ui_url:
        return ""
    return ui_url.rstrip("/") + "/"


def experiment_url(ui_url: str | None, experiment_id: str, view: str | None = None) -> str:
    """The experiment's runs table in the model-training view (in saved view `view`, when given)."""
    query = WORKFLOW_QUERY + (f"&{VIEW_QUERY}={quote(view)}" if view else "")
    return f"{_base(ui_url)}#/experiments/{quote(str(experiment_id))}/runs?{query}"


def sweep_view_key(sweep_id: str) -> str:
    """The key of a sweep's saved view (letters, digits, '-' and '_' only: it goes into a URL)."""
    return "rfsweep-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(sweep_id))[:180]


def save_sweep_view(
    client: MlflowClient,
    experiment_id: str,
    sweep_id: str,
    sweep_name: str,
    *,
    metric: str,
    mode: str,
    params: Sequence[str],
    parent_run_id: str | None = None,
) -> str:
    """Save the experiment view of one sweep (see the module docstring); returns its key."""
    columns = [f"metrics.`{metric}`"]
    columns += [f"metrics.`{m}`" for m in ("test_accuracy",) if m != metric]  # reported, never selected on
    columns += [f"params.`{p}`" for p in params]
    columns += [f"tags.`{t}`" for t in (names.STATUS, names.BEST, names.EPOCHS)]
    state = {
        "searchFilter": f"tags.`{names.SWEEP_ID}` = '{sweep_id}'",
        "orderByKey": f"metrics.`{metric}`",
        "orderByAsc": mode == "min",
        "selectedColumns": columns,
        "runsExpanded": {parent_run_id: True} if parent_run_id else {},
    }
    now = int(time.time() * 1000)
    key = sweep_view_key(sweep_id)
    envelope = {
        "name": parent_run_name(sweep_name, sweep_id),
        "createdAt": now,
        "updatedAt": now,
        "state": json.dumps(state),
    }
    client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + key, json.dumps(envelope))
    return key


def run_url(ui_url: str | None, experiment_id: str, run_id: str) -> str:
    """A run's page (overview: params, metrics, tags) in the model-training view."""
    return f"{_base(ui_url)}#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}?{WORKFLOW_QUERY}"


def artifact_url(ui_url: str | None, experiment_id: str, run_id: str, path: str) -> str:
    """A run's artifact shown by the UI (an HTML artifact is rendered inline, in a sandboxed frame)."""
    return (
        f"{_base(ui_url)}#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"
        f"/artifacts/{quote(path)}?{WORKFLOW_QUERY}"
    )


def short_id(identifier: str) -> str:
    """A few characters that tell one id from its neighbours: a UUID's first 8 hex digits; the hex tail
    of an id like `digits-quick-20261201-105900-a1b2c3` or Tune's `c4f1e_00003`; else the last 8 chars."""
    text = str(identifier)
    if _UUID.match(text):
        return text.replace("-", "")[:8].lower()
    tail = _HEX_TAIL.search(text)
    if tail:
        return tail.group(1)
    return text[-8:]


def parent_run_name(sweep_name: str, sweep_id: str) -> str:
    """The sweep's parent run: `NAME #SHORTID`, the name cut so the id stays visible in the runs table."""
    suffix = f" #{short_id(sweep_id)}"
    name = str(sweep_name).strip() or "sweep"
    room = RUN_NAME_MAX - len(suffix)
    if len(name) > room:
        name = name[: room - 1] + "…"
    return name + suffix


def trial_run_name(rule: str, trial_id: str, status: str | None = None, *, best: bool = False) -> str:
    """A trial's run: `RULE #SHORTID`, and once the trial ended other than `finished`, its status after a
    dot (`rf_two_phase #00003 · stopped_early`), so a stopped or diverged trial does not read like a
    finished one (MLflow shows both stopped-early and finished runs with the same green tick); the best
    trial of each rule, once the sweep ended, starts with a star (`★ · bp #00007`).

    The owner of the trial's run sets it at creation and again with `client.update_run(run_id,
    name=trial_run_name(rule, trial_id, status))` when the status becomes terminal.
    """
    name = f"{rule} #{short_id(trial_id)}"
    if status and status not in (TrialStatus.FINISHED, TrialStatus.RUNNING, TrialStatus.PENDING):
        name += f" · {status}"
    if best:  # the best trial of its rule, once the sweep ended: first, so a narrow column still shows it
        name = f"{BEST_MARK} · {name}"
    return name
