"""The sweep page (`sweep_report.html`) as data and as a file: what it marks best, what it says about rules
with no usable trial, importance that finds the parameter that matters, hostile names kept inert, size and
time bounded for a huge sweep, and offline (nothing fetched from a network). The browser test beside this
file (`test_sweep_report_browser.py`) shows it rendering, inside MLflow's UI and on its own."""

from __future__ import annotations

import math
import random
import re
import time

import pytest
from report_trials import METRIC, digits_like_trials

from sweep_service import mlflow_ui
from sweep_service.report import (
    MAX_CURVES_PER_RULE,
    MAX_TABLE_ROWS,
    REPORT_FILE,
    ReportTrial,
    SweepInfo,
    analyse,
    build_report_html,
    write_sweep_report,
)

INFO = SweepInfo(
    metric=METRIC,
    mode="max",
    name="digits-quick",
    sweep_id="digits-quick-20261201-105900-a1b2c3",
    rules=("bp", "rf_two_phase", "fa"),
    experiment_id="7",
)


def test_best_per_rule_is_the_best_last_value_and_rules_without_a_usable_trial_say_why():
    trials = digits_like_trials()
    analysis = analyse(trials, INFO, importance=False)
    assert list(analysis.rules) == ["bp", "rf_two_phase", "fa"]
    for rule in ("bp", "rf_two_phase"):
        own = [t for t in trials if t.rule == rule and t.status not in ("diverged", "failed")]
        finite = [t for t in own if math.isfinite(t.curve[max(t.curve)])]
        expected = max(finite, key=lambda t: t.curve[max(t.curve)])
        assert analysis.rules[rule].best is expected
    fa = analysis.rules["fa"]
    assert fa.best is None and fa.usable == []
    assert fa.why_unusable.startswith(f"no trial with a finite {METRIC} (3 diverged)")
    assert "fa000001: diverged: the loss became NaN/inf in epoch 2" in fa.why_unusable
    assert analysis.counts["diverged"] >= 3 and analysis.counts["total"] == len(trials)
    # A diverged trial keeps no value even when its curve has finite points; a failed one neither.
    assert all(t.score() is None for t in trials if t.status in ("diverged", "failed"))


def test_the_runners_choice_of_best_wins_and_ties_go_to_the_first_listed():
    trials = digits_like_trials()
    chosen = [t for t in trials if t.rule == "bp" and t.score() is not None][-1]
    analysis = analyse(
        trials, SweepInfo(metric=METRIC, mode="max", best_trial_ids={"bp": chosen.trial_id}), importance=False
    )
    assert analysis.rules["bp"].best is chosen
    tied = [ReportTrial(f"t{i}", "bp", "finished", {"lr": 0.1 * (i + 1)}, curve={1: 0.5}) for i in range(3)]
    assert analyse(tied, SweepInfo(metric=METRIC, mode="max"), importance=False).rules["bp"].best is tied[0]
    losses = [ReportTrial(f"t{i}", "bp", "finished", curve={1: v}) for i, v in enumerate([0.3, 0.1, 0.2])]
    assert analyse(losses, SweepInfo(metric="val_loss", mode="min"), importance=False).rules["bp"].best is losses[1]


def test_importance_finds_the_parameter_that_matters():
    rng = random.Random(1)
    trials = []
    for i in range(40):
        lr, batch, act = 10 ** rng.uniform(-4, 0), rng.choice([16, 32, 64, 128]), rng.choice(["tanh", "leaky_relu"])
        value = 0.95 - 0.3 * abs(math.log10(lr) + 2) + rng.gauss(0, 0.003)  # lr alone matters
        trials.append(
            ReportTrial(f"t{i}", "bp", "finished", {"lr": lr, "batch_size": batch, "activation": act}, curve={1: value})
        )
    summary = analyse(trials, SweepInfo(metric=METRIC, mode="max")).rules["bp"]
    assert set(summary.importance) == {"lr", "batch_size", "activation"}
    assert summary.importance["lr"] > 0.8, summary.importance
    assert math.isclose(sum(summary.importance.values()), 1.0, abs_tol=1e-6)
    assert "fANOVA over 40 trials" in summary.importance_note


def test_report_file_is_self_contained_and_shows_every_part(tmp_path):
    trials = digits_like_trials()
    path = write_sweep_report(trials, INFO, tmp_path)
    assert path == tmp_path / REPORT_FILE and not list(tmp_path.glob("*.tmp"))
    text = path.read_text()
    # Offline: no script, stylesheet or image fetched from anywhere; plotly.js inlined.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text, re.IGNORECASE)
    assert "Plotly.newPlot" in text and len(text) > 3_000_000
    assert text.count("Plotly.newPlot(") == 2 + 2 + 1  # parcoords and importance for bp, rf_two_phase; curves
    assert '"type":"parcoords"' in text and '"type":"bar"' in text
    assert "no usable trial: no trial with a finite val_accuracy (3 diverged)" in text
    best = analyse(trials, INFO, importance=False).rules["bp"].best
    assert f'<tr class="best"><td>bp</td><td><code>{best.trial_id}</code>' in text
    assert mlflow_ui.run_url(None, "7", best.mlflow_run_id).replace("&", "&amp;") in text
    assert "stopped by ASHA at epoch 4" in text and "crashed after 2 retries" in text
    assert not re.search(r"[:,\[](NaN|Infinity)[,\]}]", text.split("<script")[-1])  # NaN became null: JSON has no NaN


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [ReportTrial("only", "bp", "running", {"lr": 0.1}, curve={1: 0.4})],
        [ReportTrial("nan", "bp", "finished", {"lr": 0.1}, curve={1: float("nan")})],
    ],
    ids=["no trial", "one running trial", "only a NaN"],
)
def test_tiny_sweeps_give_a_page_that_says_what_is_missing(trials):
    text = build_report_html(trials, SweepInfo(metric=METRIC, mode="max", rules=("bp",), final=False))
    assert "in progress" in text
    assert "needs at least 2 trials with a finite val_accuracy" in text
    assert f"needs at least 3 trials with a finite {METRIC}" in text
    if not trials or trials[0].trial_id == "nan":
        assert "no usable trial" in text


def test_hostile_names_and_values_stay_inert():
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    trials = [
        ReportTrial(
            f"{evil}{i}",
            evil,
            "finished",
            {evil: [i, evil], "lr": 0.1 * (i + 1)},
            curve={1: 0.5 + i / 10},
            reason=evil,
            mlflow_run_id=evil,
            run_name=evil,
        )
        for i in range(4)
    ]
    text = build_report_html(trials, SweepInfo(metric=evil, mode="max", name=evil, sweep_id=evil, experiment_id=evil))
    assert "<script>alert" not in text and "<img src=x" not in text
    assert text.count("<script") == 2  # plotly.js and our plots, nothing injected


def test_huge_sweep_is_bounded_in_size_and_time():
    rng = random.Random(2)
    trials = [
        ReportTrial(
            f"{rule}-{i}",
            rule,
            rng.choice(["finished", "stopped_early"]),
            {"lr": 10 ** rng.uniform(-4, 0), "hidden": [rng.choice([32, 64, 128])] * rng.randint(1, 3)},
            curve={e: rng.random() for e in range(1, 201)},
        )
        for rule in ("bp", "fa", "rf_two_phase")
        for i in range(1500)
    ]
    started = time.monotonic()
    text = build_report_html(trials, SweepInfo(metric=METRIC, mode="max"))
    seconds = time.monotonic() - started
    assert seconds < 40, seconds
    assert len(text) < 12_000_000, len(text)
    assert f"bp: {MAX_CURVES_PER_RULE} of 1500 curves drawn" in text
    assert f"the table lists {MAX_TABLE_ROWS} of 4500 trials" in text
    assert "fANOVA over 200 trials with a finite val_accuracy (an even sample of 1500 by value)" in text


def test_run_names_read_at_a_glance():
    assert mlflow_ui.parent_run_name("digits-quick", "digits-quick-20261201-105900-a1b2c3") == "digits-quick #a1b2c3"
    assert mlflow_ui.parent_run_name("digits-quick", "3f2a9c1e-1111-2222-3333-444455556666") == "digits-quick #3f2a9c1e"
    long = mlflow_ui.parent_run_name("x" * 200, "3f2a9c1e111122223333444455556666")
    assert len(long) == mlflow_ui.RUN_NAME_MAX and long.endswith(" #3f2a9c1e")
    assert mlflow_ui.trial_run_name("rf_two_phase", "a1b2c3d4") == "rf_two_phase #a1b2c3d4"
    assert mlflow_ui.trial_run_name("bp", "c4f1e_00003", "stopped_early") == "bp #00003 · stopped_early"
    assert mlflow_ui.trial_run_name("bp", "a1b2c3d4", "finished") == "bp #a1b2c3d4"
    assert (
        mlflow_ui.experiment_url("http://h:5000/", "3")
        == "http://h:5000/#/experiments/3/runs?workflowType=machine_learning"
    )
