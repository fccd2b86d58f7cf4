"""`rfsweep reproduce`: both protocols searched and retrained on real Ray and MLflow; every output written."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest

from paper_experiments.protocols import PROTOCOLS, RULES, Budget, budget_for, retrain_spec, search_spec
from paper_experiments.report import SeedRun
from paper_experiments.reproduce import run_reproduce

TINY = Budget("test", configurations=2, epochs=3, seeds=2, grace_period=1, reduction_factor=3)
PAPER, TUNED = PROTOCOLS


def test_the_paper_protocol_runs_the_papers_rf_update_and_says_so():
    """Protocol (a) is the paper's: its RF rows run `update: paper`, and every label says which update ran."""
    (group,) = PAPER.groups
    spec = search_spec(PAPER, group, TINY, "digits", None, "x", None)
    for rule in ("rf_parallel", "rf_two_phase"):
        assert spec.rule_parameters(rule)["update"] == "paper"
    assert PAPER.labels() == ["bp", "fa", "rf_parallel (update: paper)", "rf_two_phase (update: paper)"]
    main, paper_update = TUNED.groups
    assert "update" not in search_spec(TUNED, main, TINY, "digits", None, "x", None).rule_parameters("rf_two_phase")
    tuned_paper = search_spec(TUNED, paper_update, TINY, "digits", None, "x", None)
    assert tuned_paper.algorithms == ["rf_parallel", "rf_two_phase"]
    assert tuned_paper.rule_parameters("rf_parallel")["update"] == "paper"
    assert "(update: paper)" in TUNED.labels()[-1]


def test_paper_protocol_searches_the_printed_domains_and_selects_on_test():
    spec = search_spec(PAPER, PAPER.groups[0], TINY, "digits", None, "x", None)
    assert spec.metric == "test_accuracy" and spec.search.num_samples == 2 and spec.model.activation == "leaky_relu"
    for rule in RULES:
        lr = spec.rule_parameters(rule)["lr"]
        assert (lr.distribution, lr.low, lr.high) == ("loguniform", 1e-4, 1e-2)
    fb = spec.rule_parameters("rf_parallel")["feedback_lr"]
    assert (fb.low, fb.high) == (1e-6, 1e-3)
    assert spec.search.points_to_evaluate == []
    assert spec.rule_parameters("bp")["lr_schedule"] == "constant"


def test_tuned_protocol_selects_on_validation_and_starts_from_the_rules_defaults():
    spec = search_spec(TUNED, TUNED.groups[0], TINY, "digits", None, "x", None)
    assert spec.metric == "val_accuracy" and spec.model.activation is None
    assert spec.rule_parameters("rf_two_phase")["lr"].high > 1 > spec.rule_parameters("bp")["lr"].high
    assert "hidden_step_scale" in spec.rule_parameters("rf_parallel")
    assert {p["algorithm"] for p in spec.search.points_to_evaluate} == set(RULES)
    for point in spec.search.points_to_evaluate:  # every first point lies inside its rule's domain
        for name, value in point.items():
            domain = spec.rule_parameters(point["algorithm"]).get(name)
            if hasattr(domain, "low"):
                assert domain.low <= value <= domain.high, (point["algorithm"], name, value)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.key)
def test_both_protocols_run_the_papers_sleep_period_whatever_rf_cores_default(protocol):
    from rf_core import TrainConfig

    assert TrainConfig(algorithm="rf_two_phase").params.pinv_every != 20  # otherwise this test pins nothing
    for group in protocol.groups:
        spec = search_spec(protocol, group, TINY, "digits", None, "x", None)
        assert spec.rule_parameters("rf_two_phase")["pinv_every"] == 20  # paper A.1
        best = {"rf_two_phase": {"algorithm": "rf_two_phase", "lr": 1.0, "pinv_every": 20, "seed": 0}}
        retrain = retrain_spec(protocol, group, TINY, "digits", None, "x", best, None)
        assert retrain.rule_parameters("rf_two_phase")["pinv_every"] == 20


def test_retrain_spec_fixes_the_best_configuration_and_runs_one_trial_per_seed():
    best = {
        "fa": {
            "algorithm": "fa",
            "dataset": "digits",
            "epochs": 3,
            "lr": 0.02,
            "activation": "tanh",
            "feedback_scale": 0.5,
            "seed": 0,
            "lr_schedule": "cosine",
            "pinv_every": 20,
        }
    }
    spec = retrain_spec(TUNED, TUNED.groups[0], TINY, "digits", "/data", "x", best, None)
    assert spec.scheduler.type == "fifo" and spec.max_t == 3
    params = spec.rule_parameters("fa")
    assert (params["lr"], params["activation"], params["feedback_scale"], params["lr_schedule"]) == (
        0.02,
        "tanh",
        0.5,
        "cosine",
    )
    assert "pinv_every" not in params  # fa does not read it
    assert [p["seed"] for p in spec.search.points_to_evaluate] == [0, 1]
    assert spec.dataset.data_dir == "/data"


def test_budget_overrides_are_named_in_the_budget():
    quick = budget_for("quick", "fashion_mnist")
    assert quick.name == "quick" and quick.seeds == 3
    changed = budget_for("paper", "fashion_mnist", epochs=2, configurations=4)
    assert (changed.epochs, changed.configurations, changed.grace_period) == (2, 4, 1)
    assert "epochs=2" in changed.name and "configurations=4" in changed.name
    with pytest.raises(ValueError, match="budget must be"):
        budget_for("huge", "digits")


def test_selected_accuracy_is_best_test_for_protocol_a_and_test_at_best_validation_for_b():
    history = [
        {"epoch": 1, "val_accuracy": 0.5, "test_accuracy": 0.9},
        {"epoch": 2, "val_accuracy": 0.8, "test_accuracy": 0.7},
        {"epoch": 3, "val_accuracy": 0.8, "test_accuracy": 0.6},
    ]
    run = SeedRun(0, "t", None, "finished", history, initial_test_accuracy=0.1)
    assert run.selected_test_accuracy(PAPER) == 0.9
    assert run.selected_test_accuracy(TUNED) == 0.7  # the first epoch with the best validation accuracy
    assert run.final_test_accuracy == 0.6
    assert run.epochs_to_90 == 1


@pytest.mark.slow  # tens of seconds of real runs: the full suite's, not the fast lane's
def test_reproduce_digits_writes_every_output_and_traces_each_number_to_mlflow(
    ray_session, tracking_uri, storage_path, tmp_path, unique_name, mlflow_client
):
    stages = []
    result = run_reproduce(
        "digits",
        TINY,
        tmp_path / "out",
        tracking_uri=tracking_uri,
        storage_path=storage_path,
        experiment=unique_name,
        pinv_steps=300,
        on_progress=lambda p: stages.append((p.stage, p.epochs_done, p.eta_seconds)),
    )
    out = tmp_path / "out"
    for name in ("table1.md", "fig4.png", "fig4_protocol_a.png", "fig2.png", "best_configs.json", "run_ids.json"):
        assert (out / name).stat().st_size > 0, name
    named = list(dict.fromkeys(stage for stage, *_ in stages))
    assert named[:6] == [
        "protocol (a) search",
        "protocol (a) retrain",
        "protocol (b) search",
        "protocol (b) retrain",
        "protocol (b) paper update search",
        "protocol (b) paper update retrain",
    ]
    assert named[6].startswith("Figure 2: pseudoinverse demo, setting 1/") and len(named) > 7  # progress there too
    assert stages[-1][1] > 0

    document = json.loads((out / "best_configs.json").read_text())
    nulls = []

    def keep(pairs):
        nulls.extend(key for key, value in pairs if value is None)
        return dict(pairs)

    json.loads(json.dumps(document), object_pairs_hook=keep)
    assert not nulls, nulls  # no null anywhere (lists of numbers hold no None: checked by _without_nulls)
    best = document["best"]
    from rf_core import rule_fields

    for protocol in PROTOCOLS:
        for label in protocol.labels():  # every field its rule reads: a value, or why it has none
            config, notes = best[protocol.key][label]["config"], best[protocol.key][label]["config_notes"]
            assert set(config) | set(notes) == rule_fields(config["algorithm"]), label
            if config.get("update") == "paper":  # the joint-step knobs, None by design, are explained
                assert "update paper fixes the step" in notes["hidden_step_scale"], notes
    table = (out / "table1.md").read_text()
    for protocol in PROTOCOLS:
        assert f"## Protocol ({protocol.key})" in table
        for rule in protocol.labels():
            entry = best[protocol.key][rule]
            assert f"| {rule} | {entry['rule']['update']} | {entry['rule']['feedback']} |" in table
            assert [s["seed"] for s in entry["seeds"]] == [0, 1]
            assert all(s["epochs"] == TINY.epochs for s in entry["seeds"] if s["status"] != "diverged")
            key = "best_test_accuracy" if protocol.key == "a" else "test_accuracy_at_best_val"
            chosen = [s[key] for s in entry["seeds"]]
            assert entry["test_accuracy_mean"] == pytest.approx(statistics.fmean(chosen))
            # the retrained runs trained the searched configuration, each under its own seed
            runs = [mlflow_client.get_run(s["run_id"]) for s in entry["seeds"]]
            assert {r.data.params["seed"] for r in runs} == {"0", "1"}
            assert all(math.isclose(float(r.data.params["lr"]), entry["config"]["lr"]) for r in runs)
            group = "paper-update" if protocol.key == "b" and "update: paper" in rule else "main"
            assert all(
                r.data.tags["mlflow.parentRunId"] == result.ids[protocol.key][group]["retrain"]["parent_run_id"]
                for r in runs
            )
            assert all(("update: paper" in rule) == (r.data.params.get("update") == "paper") for r in runs)
        for rule in PAPER.labels():
            assert 1e-4 <= best["a"][rule]["config"]["lr"] <= 1e-2

    report = mlflow_client.get_run(result.ids["report_run_id"])
    assert report.info.status == "FINISHED" and report.data.tags["rfsweep.role"] == "reproduce"
    artifacts = {a.path for a in mlflow_client.list_artifacts(result.ids["report_run_id"])}
    assert {"table1.md", "fig4.png", "fig2.png", "best_configs.json", "run_ids.json"} <= artifacts
    assert json.loads((out / "run_ids.json").read_text())["report_run_id"] == result.ids["report_run_id"]


def test_cli_rejects_an_unknown_dataset_and_budget_without_starting_anything():
    run = [sys.executable, "-m", "rfsweep_cli.main", "reproduce"]
    bad_dataset = subprocess.run([*run, "--dataset", "imagenet"], capture_output=True, text=True)
    assert bad_dataset.returncode == 2 and "--dataset must be one of" in bad_dataset.stdout + bad_dataset.stderr
    bad_budget = subprocess.run([*run, "--dataset", "digits", "--budget", "huge"], capture_output=True, text=True)
    assert bad_budget.returncode == 2 and "budget must be 'paper' or 'quick'" in bad_budget.stdout + bad_budget.stderr
