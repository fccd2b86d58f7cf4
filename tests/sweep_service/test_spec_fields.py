"""rf_core's training-config errors read as (field, reason) data, whichever form rf_core raises them in."""

from __future__ import annotations

from sweep_service.spec import parse_spec
from sweep_service.spec.fields import config_problems, field_problem


class _ConfigError(ValueError):
    """rf_core's structured error: the (field, reason) pairs beside the joined message."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))


def test_an_error_carrying_problems_is_read_as_they_are():
    exc = _ConfigError([("lr", "must be > 0; or None"), ("pinv_every", "must be >= 1")])
    assert config_problems(exc) == [("lr", "must be > 0; or None"), ("pinv_every", "must be >= 1")]


def test_an_error_with_a_joined_message_is_split_into_fields_and_reasons():
    exc = ValueError("lr: must be > 0; unknown training-config fields: ['x']")
    assert config_problems(exc) == [("lr", "must be > 0"), ("unknown training-config fields", "['x']")]
    assert config_problems(ValueError("nothing to split")) == [("", "nothing to split")]


def test_a_field_problem_is_rf_cores_reason_for_that_field():
    assert field_problem("pinv_every", 0) == "must be >= 1"
    assert field_problem("pinv_every", 20) is None
    assert "valid integer" in (field_problem("batch_size", "many") or "")


def test_a_value_rf_core_rejects_is_reported_where_the_spec_set_it():
    from sweep_service.spec import SpecError

    try:
        parse_spec({"name": "x", "algorithm": "rf_two_phase", "parameters": {"pinv_every": 0}})
    except SpecError as exc:
        assert {p.path: p.msg for p in exc.problems}["parameters.pinv_every"] == "must be >= 1"
    else:
        raise AssertionError("pinv_every=0 was accepted")
