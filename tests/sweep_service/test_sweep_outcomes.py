"""A sweep's outcome says what happened: no usable trial (every one errored or diverged) is a `failed` sweep
with the reason and the counts, in the CLI's output and exit status, its JSON and MLflow's parent run; a rule
without a usable trial is named in a succeeded sweep; `--resume` of a sweep that does not exist is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sweep_helpers import children_and_parent
from typer.testing import CliRunner

from rfsweep_cli.main import app

pytestmark = pytest.mark.slow

BASE = {
    "dataset": {"name": "synthetic", "train_subset": 300},
    "model": {"hidden": [16]},
    "search": {"method": "random", "num_samples": 2, "max_concurrent_trials": 2, "metric": "val_accuracy"},
    "scheduler": {"type": "fifo", "max_t": 2},
    "failure": {"max_failures": 0},
}


def run_cli(tmp_path, spec: dict, tracking_uri: str, storage_path: str, *extra: str):
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["sweep", str(path), "--json", "--tracking-uri", tracking_uri, "--storage-path", storage_path, *extra]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    return result, (json.loads(lines[-1]) if lines else None)


@pytest.mark.parametrize(
    ("how", "changes", "count_key"),
    [
        # every trial crashes: a dataset folder without the dataset's files (DatasetNotFound in each worker)
        ("errors", {"dataset": {"name": "mnist", "data_dir": "EMPTY"}}, "failed"),
        # every trial diverges: a learning rate that sends the loss to inf in the first epoch
        ("diverges", {"algorithm": "bp", "parameters": {"lr": 1e6}}, "diverged"),
    ],
)
def test_a_sweep_without_a_usable_trial_ends_failed_with_the_reason(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client, tmp_path, how, changes, count_key
):
    spec = {**BASE, "name": unique_name, **changes}
    if how == "errors":
        (tmp_path / "empty").mkdir()
        spec["dataset"] = {**spec["dataset"], "data_dir": str(tmp_path / "empty")}
    result, out = run_cli(tmp_path, spec, tracking_uri, storage_path)
    assert result.exit_code == 1, result.output
    assert out is not None and out["status"] == "failed"
    assert out["counts"][count_key] == 2 and out["counts"]["total"] == 2
    reason = out["error"]
    assert f"no trial produced a usable result (2 {count_key} of 2)" in reason, reason
    assert out["best"] is None
    assert "failed" in result.output and "no trial produced a usable result" in result.output
    parents, children = children_and_parent(mlflow_client, out["mlflow"]["experiment_id"])
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["rfsweep.sweep_status"] == "failed"
    assert "no trial produced a usable result" in parent.data.tags["rfsweep.failure_reason"]
    assert parent.data.metrics[f"trials_{count_key}"] == 2
    assert all(c.info.status == "FAILED" for c in children)


def test_a_rule_without_a_usable_trial_is_named_in_a_succeeded_sweep(
    ray_session, tracking_uri, storage_path, unique_name, mlflow_client, tmp_path
):
    spec = {
        **BASE,
        "name": unique_name,
        "algorithm": ["bp", "fa"],
        "parameters": {"lr": 0.05},
        "algorithm_parameters": {"bp": {"lr": 1e6}},  # bp diverges at once (fa's update does not)
        "search": {**BASE["search"], "num_samples": 1},
    }
    result, out = run_cli(tmp_path, spec, tracking_uri, storage_path)
    assert result.exit_code == 0, result.output
    assert out["status"] == "succeeded" and out["error"] is None
    assert set(out["best_per_algorithm"]) == {"fa"}
    assert out["rules_without_result"] == {"bp": "no usable trial: 1 diverged of 1"}
    assert "no usable trial: 1 diverged of 1" in result.output
    best_file = mlflow_client.download_artifacts(out["mlflow"]["parent_run_id"], "best_config.json", str(tmp_path))
    best = json.loads(Path(best_file).read_text())
    assert best["rules_without_result"] == {"bp": "no usable trial: 1 diverged of 1"}


def test_resume_of_an_unknown_sweep_is_an_error_naming_what_exists(ray_session, tmp_path, tracking_uri, unique_name):
    storage = tmp_path / "ray_results"
    earlier = {**BASE, "name": unique_name, "search": {**BASE["search"], "num_samples": 1}}
    done, _ = run_cli(tmp_path, earlier, tracking_uri, str(storage), "--sweep-id", "earlier-sweep")
    assert done.exit_code == 0, done.output
    (storage / "not-a-sweep").mkdir()
    result, out = run_cli(tmp_path, earlier, tracking_uri, str(storage), "--resume", "--sweep-id", "no-such-sweep")
    assert result.exit_code == 2, result.output
    assert out is None
    assert "no-such-sweep" in result.output and "earlier-sweep" in result.output
    assert "not-a-sweep" not in result.output
    assert sorted(p.name for p in storage.iterdir()) == ["earlier-sweep", "not-a-sweep"], "nothing was started"
