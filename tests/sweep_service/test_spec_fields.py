"""rf_core's training-config errors read as (field, reason) data, whichever form rf_core raises them in."""

from __future__ import annotations

from rf_core import ConfigError, TrainConfig
from sweep_service.spec import parse_spec
from sweep_service.spec.fields import config_problems, field_problem


def test_rf_cores_error_is_read_as_its_field_reason_pairs():
    try:
        TrainConfig.from_dict({"algorithm": "rf_two_phase", "pinv_every": 0, "lr": -1.0})
    except ConfigError as exc:
        assert set(config_problems(exc)) == {("pinv_every", "must be >= 1"), ("lr", "must be > 0")}
    else:
        raise AssertionError("accepted")


def test_a_field_problem_is_rf_cores_reason_for_that_field():
    assert field_problem("pinv_every", 0) == "must be >= 1"
    assert field_problem("pinv_every", 20) is None
    assert "valid integer" in (field_problem("batch_size", "many") or "")


def test_a_retired_field_is_refused_naming_the_field_that_replaced_it():
    assert "use feedback" in (field_problem("pinv_method", "cholesky") or "")
    from sweep_service.spec import SpecError

    try:
        parse_spec({"name": "x", "algorithm": "rf_two_phase", "parameters": {"rf_backward": "gated"}})
    except SpecError as exc:
        assert "use update" in {p.path: p.msg for p in exc.problems}["parameters.rf_backward"]
    else:
        raise AssertionError("a retired field was accepted")


def test_a_value_rf_core_rejects_is_reported_where_the_spec_set_it():
    from sweep_service.spec import SpecError

    try:
        parse_spec({"name": "x", "algorithm": "rf_two_phase", "parameters": {"pinv_every": 0}})
    except SpecError as exc:
        assert {p.path: p.msg for p in exc.problems}["parameters.pinv_every"] == "must be >= 1"
    else:
        raise AssertionError("pinv_every=0 was accepted")
