"""The sweep spec: the issue's example, field-level errors, defaults, JSON Schema, budget preview."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from sweep_helpers import ROOT

from sweep_service.budget import asha_rungs, budget_summary, max_epochs, total_trials
from sweep_service.spec import SpecError, load_spec_file, load_spec_text, parse_spec, spec_json_schema

ISSUE_EXAMPLE = """
name: digits-quick
dataset: {name: digits}
model: {hidden: [64, 32], activation: leaky_relu}
algorithm: bp
parameters:
  lr: {distribution: loguniform, low: 1.0e-3, high: 1.0}
  batch_size: 32
search: {method: hyperopt, metric: test_accuracy, mode: max, num_samples: 6, max_concurrent_trials: 2, seed: 0}
scheduler: {type: asha, max_t: 10, grace_period: 1, reduction_factor: 4}
resources: {cpu: 1, gpu: 0}
"""


def errors_of(data) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {p.path: p.msg for p in info.value.problems}


def base(**changes):
    data = yaml.safe_load(ISSUE_EXAMPLE)
    data.update(changes)
    return data


def test_issue_example_is_valid_as_written():
    spec = load_spec_text(ISSUE_EXAMPLE)
    assert spec.algorithms == ["bp"]
    assert spec.metric == "test_accuracy" and spec.mode == "max"
    params = spec.rule_parameters("bp")
    assert params["batch_size"] == 32
    assert params["lr"].distribution == "loguniform" and params["lr"].low == 1e-3


def test_shipped_examples_are_valid():
    spec = load_spec_file(ROOT / "examples" / "digits_quick.yaml")
    assert spec.algorithms == ["bp", "rf_two_phase"]
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        assert load_spec_file(path).metric.startswith("val_"), f"{path.name} must select on validation"


def test_json_and_yaml_load_the_same_spec():
    data = yaml.safe_load(ISSUE_EXAMPLE)
    assert load_spec_text(json.dumps(data)) == load_spec_text(ISSUE_EXAMPLE)


def test_paper_defaults_apply_per_rule():
    spec = parse_spec({"name": "paper", "algorithm": ["bp", "rf_parallel"]})
    assert spec.metric == "val_accuracy" and spec.mode == "max"
    assert spec.max_t == 100 and spec.search.num_samples == 20
    bp, rf = spec.rule_parameters("bp"), spec.rule_parameters("rf_parallel")
    assert (bp["lr"].low, bp["lr"].high) == (1e-4, 1e-2)
    assert "feedback_lr" not in bp  # feedback_lr is nothing to bp
    assert (rf["feedback_lr"].low, rf["feedback_lr"].high) == (1e-6, 1e-3)
    assert bp["batch_size"] == 32


def test_loss_metric_defaults_to_min():
    assert parse_spec({"name": "x", "search": {"metric": "val_loss"}}).mode == "min"


@pytest.mark.parametrize(
    ("changes", "loc", "fragment"),
    [
        (
            {"parameters": {"lr": {"distribution": "loguniform", "low": 0, "high": 1}}},
            "parameters.lr.low",
            "must be > 0 for loguniform",
        ),
        (
            {"parameters": {"lr": {"distribution": "uniform", "low": 0.5, "high": 0.1}}},
            "parameters.lr.high",
            "must be > low",
        ),
        (
            {"parameters": {"lr": {"distribution": "quniform", "low": 0.1, "high": 1}}},
            "parameters.lr.q",
            "required for quniform",
        ),
        (
            {"parameters": {"lr": {"distribution": "quniform", "low": 0.15, "high": 1, "q": 0.1}}},
            "parameters.lr.low",
            "multiple of q",
        ),
        (
            {"parameters": {"lr": {"distribution": "gaussian", "low": 0.1, "high": 1}}},
            "parameters.lr.distribution",
            "Input should be",
        ),
        (
            {"parameters": {"lr": {"distribution": "uniform", "low": 0.1, "high": 1, "mean": 3}}},
            "parameters.lr.mean",
            "unknown field",
        ),
        ({"parameters": {"lr": {"low": 0.1}}}, "parameters.lr.distribution", "required"),
        (
            {"parameters": {"batch_size": {"distribution": "uniform", "low": 16, "high": 64}}},
            "parameters.batch_size.distribution",
            "integer",
        ),
        (
            {"parameters": {"batch_size": {"distribution": "randint", "low": 0, "high": 64}}},
            "parameters.batch_size.low",
            ">= 1",
        ),
        (
            {"parameters": {"activation": {"distribution": "uniform", "low": 0, "high": 1}}},
            "parameters.activation.distribution",
            "use choice",
        ),
        (
            {"parameters": {"activation": {"distribution": "choice", "values": ["relu"]}}},
            "parameters.activation.values[0]",
            "must be one of",
        ),
        (
            {"parameters": {"hidden": {"distribution": "choice", "values": [[64, 32], [0]]}}},
            "parameters.hidden.values[1]",
            ">= 1",
        ),
        (
            {"parameters": {"choice_of": {"distribution": "choice", "values": []}}},
            "parameters.choice_of.values",
            "non-empty",
        ),
        ({"parameters": {"lr": -1}}, "parameters.lr", "must be > 0"),
        ({"parameters": {"learning_rate": 0.1}}, "parameters.learning_rate", "unknown training-config field"),
        ({"parameters": {"epochs": 5}}, "parameters.epochs", "scheduler.max_t"),
        ({"parameters": {"feedback_lr": 0.001}}, "parameters.feedback_lr", "no listed rule uses it"),
        ({"parameters": {"hidden": [32]}}, "parameters.hidden", "also set by model.hidden"),
        (
            {"parameters": {"combo": {"distribution": "choice", "values": [{"lr": 0.1}, {"nope": 1}]}}},
            "parameters.combo.values[1].nope",
            "unknown",
        ),
        ({"algorithm": "backprop"}, "algorithm", "unknown rule"),
        ({"algorithm": ["bp", "bp"]}, "algorithm[1]", "listed twice"),
        ({"algorithm_parameters": {"fa": {"lr": 0.1}}}, "algorithm_parameters.fa", "not in `algorithm`"),
        (
            {"algorithm_parameters": {"bp": {"feedback_lr": 0.1}}},
            "algorithm_parameters.bp.feedback_lr",
            "bp does not use",
        ),
        ({"search": {"num_samples": 0}}, "search.num_samples", "greater than or equal to 1"),
        ({"search": {"metric": "accuracy"}}, "search.metric", "Input should be"),
        ({"search": {"points_to_evaluate": [{"lr": 5.0}]}}, "search.points_to_evaluate[0].lr", "outside"),
        (
            {"search": {"points_to_evaluate": [{"batch_size": 64}]}},
            "search.points_to_evaluate[0].batch_size",
            "not a searched parameter",
        ),
        ({"scheduler": {"type": "asha", "max_t": 3, "grace_period": 5}}, "scheduler.grace_period", "must be <= max_t"),
        ({"scheduler": {"type": "hyperband"}}, "scheduler", "type must be 'asha' or 'fifo'"),
        ({"scheduler": {"max_t": 3, "grace_period": 5}}, "scheduler.grace_period", "must be <= max_t"),  # no type: ASHA
        ({"resources": {"cpu": 0}}, "resources.cpu", "greater than 0"),
        ({"dataset": {"name": "imagenet"}}, "dataset.name", "Input should be"),
        (
            {"dataset": {"name": "digits", "val_fraction": 0}, "search": {"metric": "val_accuracy"}},
            "search.metric",
            "validation split",
        ),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"checkpoint_every": 0}, "checkpoint_every", "greater than or equal to 1"),
    ],
)
def test_invalid_specs_name_the_field_and_the_reason(changes, loc, fragment):
    errors = errors_of(base(**changes))
    assert loc in errors, errors
    assert fragment in errors[loc]


def test_a_scheduler_without_type_is_asha():
    spec = parse_spec(base(scheduler={"max_t": 7, "grace_period": 2}))
    assert spec.scheduler.type == "asha" and spec.scheduler.max_t == 7 and spec.scheduler.grace_period == 2


def test_several_errors_are_reported_together():
    errors = errors_of(base(parameters={"lr": {"distribution": "loguniform", "low": 0, "high": 1}, "bogus": 1}))
    assert {"parameters.lr.low", "parameters.bogus"} <= set(errors)


def test_yaml_errors_and_non_mappings_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_text("name: [unclosed")
    with pytest.raises(SpecError, match="mapping"):
        load_spec_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec_file(tmp_path / "missing.yaml")


def test_numbers_written_as_yaml_strings_are_coerced():
    # PyYAML reads `1e-3` (no dot) as a string; the spec still takes it as a number.
    spec = load_spec_text("name: x\nparameters: {lr: 1e-3, batch_size: 32}\n")
    assert spec.rule_parameters("bp")["lr"] == "1e-3"
    from sweep_service.space import build_rule_space

    assert build_rule_space(spec, "bp").constants["lr"] == pytest.approx(1e-3)


def test_json_schema_describes_the_spec():
    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**yaml.safe_load(ISSUE_EXAMPLE), "colour": "blue"}, schema)


def test_budget_preview_of_the_issue_example():
    spec = load_spec_text(ISSUE_EXAMPLE)
    assert total_trials(spec) == 6
    assert asha_rungs(spec) == [1, 4]  # Tune's milestones: 1·4^k below max_t=10
    assert max_epochs(spec) == 60
    two = load_spec_file(ROOT / "examples" / "digits_quick.yaml")
    summary = budget_summary(two)
    assert summary["total_trials"] == 12 and summary["max_epochs"] == 120
    fifo = parse_spec({"name": "f", "scheduler": {"type": "fifo", "max_t": 7}, "search": {"num_samples": 3}})
    assert asha_rungs(fifo) == [] and max_epochs(fifo) == 21


def test_asha_rungs_match_tune():
    from ray.tune.schedulers import ASHAScheduler

    for max_t, grace, rf in [(10, 1, 4), (100, 1, 4), (100, 2, 3), (16, 1, 4), (81, 1, 3), (9, 3, 2)]:
        spec = parse_spec(
            {"name": "r", "scheduler": {"type": "asha", "max_t": max_t, "grace_period": grace, "reduction_factor": rf}}
        )
        tune_rungs = ASHAScheduler(max_t=max_t, grace_period=grace, reduction_factor=rf)._brackets[0]._rungs
        expected = sorted({int(-(-m // 1)) for m, _ in tune_rungs if m < max_t})
        assert asha_rungs(spec) == expected, (max_t, grace, rf)
