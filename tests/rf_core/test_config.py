"""Typed per-rule configuration: each rule owns its fields; flat mappings at the edges; errors as data."""

import pytest

from rf_core import ConfigError, TrainConfig, available_rules, field_problem, field_types, get_rule, rule_fields
from rf_core.config import COMMON_FIELDS


def test_which_fields_a_rule_reads_comes_from_its_params_class():
    assert rule_fields("bp") == COMMON_FIELDS
    assert {"feedback", "pinv_every", "sleep_steps", "update", "hidden_step_scale"} <= rule_fields("rf_two_phase")
    assert "pinv_every" not in rule_fields("rf_parallel") and "feedback_lr" in rule_fields("rf_parallel")
    for rule in available_rules():
        assert rule_fields(rule) - COMMON_FIELDS == set(get_rule(rule).Params.field_names())


def test_a_flat_mapping_round_trips_and_fields_go_to_the_rule_that_reads_them():
    config = TrainConfig.from_dict({"algorithm": "rf_two_phase", "epochs": 3, "sleep_steps": 20, "hidden": [8, 4]})
    assert config.params.sleep_steps == 20 and config.hidden == (8, 4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.replace(pinv_every=20).params.pinv_every == 20


def test_a_field_of_another_rule_is_refused_naming_the_rules_that_read_it():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"algorithm": "bp", "pinv_every": 20, "bogus": 1})
    assert caught.value.problems == [
        ("bogus", "unknown training-config field"),
        ("pinv_every", "bp does not read this field (read by rf_two_phase)"),
    ]


def test_rule_params_are_validated_with_their_field_names():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"algorithm": "rf_two_phase", "pinv_every": 0, "feedback": "magic", "sleep_rate": 3})
    fields = {field for field, _ in caught.value.problems}
    assert fields == {"pinv_every", "feedback", "sleep_rate"}
    assert field_problem("sleep_rate", 2.5) == "must be in (0, 2): larger steps diverge"
    assert field_problem("hidden_step_scale", 5.0) is None


def test_the_joint_step_knobs_are_refused_under_the_papers_update():
    with pytest.raises(ConfigError, match="hidden_step_scale: read only by update gated_joint"):
        TrainConfig.from_dict({"algorithm": "rf_parallel", "update": "paper", "hidden_step_scale": 3.0})
    resolved = TrainConfig.from_dict({"algorithm": "rf_parallel"}).resolved()
    assert resolved.params.hidden_step_scale == 10.0 and resolved.lr == 1.0


def test_old_flat_rf_knobs_translate_where_exact_and_otherwise_name_the_new_field():
    """A 0.1 configuration (every row held every field) loads as what it ran: the gated joint update with the
    closed-form Cholesky sleep — an oracle."""
    old = {
        "algorithm": "rf_two_phase",
        "rf_form": "newton",
        "rf_backward": "gated",
        "rf_batch": "joint",
        "inv_slope_clamp": 2.0,
        "max_gain": None,
        "pinv_damping": 0.0,
        "pinv_method": "cholesky",
        "pinv_tol": 1e-4,
        "pinv_max_iter": 30,
        "sleep_damping": 0.9,
        "feedback_lr": None,
        "feedback_init": "pinv",
        "pinv_every": 20,
    }
    config = TrainConfig.from_stored(old)
    assert (config.params.update, config.params.feedback, config.params.pinv_every) == (
        "gated_joint",
        "oracle_cholesky",
        20,
    )
    assert config.describe()["ledger"]["feedback_from_weights"] is True
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"algorithm": "rf_two_phase", "rf_backward": "inverse", "max_gain": 1.0})
    problems = dict(caught.value.problems)
    assert "use update" in problems["rf_backward"] and "did not help" in problems["max_gain"]


def test_every_field_has_one_type_across_rules_and_a_label_says_what_runs():
    types = field_types()
    assert types["sleep_rate"] is float and "update" in types and "lr" in types
    label = TrainConfig(algorithm="rf_two_phase").describe()
    assert (label["update"], label["feedback"]) == ("gated_joint", "learned")
    assert label["update_detail"].startswith("gated_joint (engineered, not the paper's")
    assert label["ledger"] == {
        "weight_transport": False,
        "feedback_from_weights": False,
        "closed_form_inverse": True,
        "batch_global": True,
        "output_error_broadcast": False,
        "sign_transport": False,
    }
    assert (
        TrainConfig.from_dict({"algorithm": "rf_two_phase", "update": "paper"}).describe()["ledger"]["batch_global"]
        is False
    )
