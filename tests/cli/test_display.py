"""The one best-per-rule table (`rfsweep sweep`, `submit --wait`, `status`, `best`): an ended sweep's own word on
the rules with no usable trial (its `rules_without_result`, as in best_config.json and GET /best) with what
their trials said, and a failed sweep's reason under it."""

from __future__ import annotations

import io

from rfsweep_cli.display import print_best_table
from sweep_service.records import BestEntry, TrialSummary

TRIALS = [
    TrialSummary.model_validate(t)
    for t in [
        {
            "trial_id": "bp000001",
            "algorithm": "bp",
            "status": "diverged",
            "reason": "the loss became NaN/inf in epoch 1",
        },
        {"trial_id": "fa000001", "algorithm": "fa", "status": "finished", "last_metric": 0.5, "params": {"lr": 0.1}},
    ]
]
FA_BEST = BestEntry(
    algorithm="fa",
    metric="val_accuracy",
    trial_id="fa000001",
    value=0.5,
    epochs=2,
    params={"lr": 0.1},
    mlflow_run_id="r1",
    status="finished",
)


def table(**kwargs) -> str:
    out = io.StringIO()
    arguments = {"metric": "val_accuracy", "mode": "max", "rules": ["bp", "fa"], "trials": TRIALS, "overall": None}
    print_best_table(**{**arguments, **kwargs}, file=out)
    return out.getvalue()


def test_an_ended_sweep_names_its_rules_without_a_result_and_why():
    text = table(best_per_rule={"fa": FA_BEST}, rules_without_result={"bp": "no usable trial: 1 diverged of 1"})
    row = next(line for line in text.splitlines() if "bp" in line and "no usable trial" in line)
    assert "no usable trial: 1 diverged of 1" in row
    assert "bp000001: the loss became NaN/inf in epoch 1" in text
    assert "failed:" not in text


def test_while_a_sweep_runs_the_reason_comes_from_its_trials():
    text = table(best_per_rule={"fa": FA_BEST})
    assert "no usable trial: no trial with a finite val_accuracy (1 diverged)" in text


def test_a_failed_sweep_says_why_under_the_table_and_markup_in_a_reason_stays_text():
    reason = "no trial produced a usable result (1 diverged, 1 failed of 2); first: [/] KeyError"
    without = {"bp": "no usable trial: 1 diverged of 1", "fa": "no usable trial: 1 failed of 1 [red]"}
    text = table(best_per_rule={}, rules_without_result=without, error=reason)
    assert f"failed: {reason}" in text
    assert "no usable trial: 1 failed of 1 [red]" in text
