"""What a sweep may cost: the limits (sweep_service.limits, checked by spec/costs.py), every value a field can
take counting; the JSON Schema states them; `rfsweep validate` reports them before a user submits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rf_core import ALL_FIELDS
from rf_core.data import load_dataset
from rfsweep_cli.main import app
from sweep_service.limits import CostLimits
from sweep_service.spec import SpecError, parse_spec, spec_json_schema
from sweep_service.spec.costs import COUNTED_FIELDS, DATASET_SHAPES
from sweep_service.spec.fields import DATASETS

SMALL = CostLimits(num_samples=20, total_trials=30, width=100, depth=2, weights=10_000, sleep_steps=50, noise_batch=8)


def problems(data: dict, limits: CostLimits = SMALL) -> dict[str, tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "limits", **data}, limits)
    return {p.path: (p.msg, p.kind) for p in caught.value.problems}


@pytest.mark.parametrize(
    ("data", "path", "setting"),
    [
        ({"search": {"num_samples": 21}}, "search.num_samples", "RFSWEEP_LIMIT_NUM_SAMPLES"),
        (
            {"algorithm": ["bp", "fa"], "search": {"num_samples": 16}},
            "search.num_samples",
            "RFSWEEP_LIMIT_TOTAL_TRIALS",
        ),
        ({"model": {"hidden": [101]}}, "model.hidden", "RFSWEEP_LIMIT_WIDTH"),
        ({"model": {"hidden": [10, 10, 10]}}, "model.hidden", "RFSWEEP_LIMIT_DEPTH"),
        ({"model": {"hidden": [100, 100]}}, "model.hidden", "RFSWEEP_LIMIT_WEIGHTS"),  # 64·100 + 100·100 + 100·10
        ({"dataset": {"name": "synthetic"}, "model": {"hidden": [100, 60]}}, None, None),  # 20·100 + 100·60 + 60·5
        (
            {"parameters": {"hidden": {"distribution": "choice", "values": [[8], [101]]}}},
            "parameters.hidden.values[1]",
            "RFSWEEP_LIMIT_WIDTH",
        ),
        (
            {
                "parameters": {
                    "net": {"distribution": "choice", "values": [{"hidden": [8], "lr": 0.1}, {"hidden": [8, 8, 8]}]}
                }
            },
            "parameters.net.values[1].hidden",
            "RFSWEEP_LIMIT_DEPTH",
        ),
        (
            {"algorithm": "rf_two_phase", "parameters": {"sleep_max_steps": 51}},
            "parameters.sleep_max_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {
                "algorithm": "rf_two_phase",
                "parameters": {"sleep_steps": {"distribution": "randint", "low": 1, "high": 52}},
            },
            "parameters.sleep_steps.high",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {
                "algorithm": "rf_two_phase",
                "parameters": {"sleep_steps": {"distribution": "randint", "low": 1, "high": 51}},
            },
            None,
            None,
        ),
        (
            {
                "algorithm": "rf_parallel",
                "parameters": {"sleep_noise_batch": {"distribution": "qloguniform", "low": 4, "high": 16, "q": 4}},
            },
            "parameters.sleep_noise_batch.high",
            "RFSWEEP_LIMIT_NOISE_BATCH",
        ),
        (
            {"algorithm": ["bp", "rf_parallel"], "algorithm_parameters": {"rf_parallel": {"development_steps": 60}}},
            "algorithm_parameters.rf_parallel.development_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        ({"failure": {"max_failures": 6}}, "failure.max_failures", "RFSWEEP_LIMIT_MAX_FAILURES"),
    ],
)
def test_every_value_a_field_can_take_counts(data, path, setting):
    if path is None:
        parse_spec({"name": "limits", **data}, SMALL)
        return
    found = problems(data)
    assert path in found, found
    msg, kind = found[path]
    assert setting in msg and "server limit" in msg and kind == "limit_exceeded"


def test_a_limit_is_the_reason_given_where_a_value_breaks_one_and_without_limits_none_apply():
    data = {"algorithm": "rf_two_phase", "parameters": {"sleep_steps": 10**6}}  # also > sleep_max_steps (100)
    assert "RFSWEEP_LIMIT_SLEEP_STEPS" in problems(data)["parameters.sleep_steps"][0]
    parse_spec({"name": "local", "model": {"hidden": [5000, 5000]}})  # the CLI's own runs are the user's business


def test_a_structural_mistake_does_not_hide_a_limit():
    """One pass: a misspelt section and a value over a limit, both reported (the limits run on the rest)."""
    found = problems({"serch": {"num_samples": 5}, "model": {"hidden": [101]}})
    assert found["serch"][0] == "unknown field"
    assert "RFSWEEP_LIMIT_WIDTH" in found["model.hidden"][0] and found["model.hidden"][1] == "limit_exceeded"


def test_the_json_schema_states_the_limits():
    schema = spec_json_schema()
    defaults = CostLimits()
    defs = schema["$defs"]
    assert defs["SearchSpec"]["properties"]["num_samples"]["maximum"] == defaults.num_samples
    hidden = next(b for b in defs["ModelSpec"]["properties"]["hidden"]["anyOf"] if b.get("type") == "array")
    assert hidden["maxItems"] == defaults.depth and hidden["items"]["maximum"] == defaults.width
    assert defs["FailureSpec"]["properties"]["max_failures"]["maximum"] == defaults.max_failures
    described = schema["x-rfsweep-limits"]
    assert described["weights"] == {
        "value": defaults.weights,
        "setting": "RFSWEEP_LIMIT_WEIGHTS",
        "bounds": described["weights"]["bounds"],
    }
    assert set(described) == {f for f in defaults.__dataclass_fields__}
    assert "maximum" not in json.dumps(spec_json_schema(limits=None)["$defs"]["SearchSpec"])


def test_the_limited_fields_and_datasets_are_rf_cores():
    assert set(COUNTED_FIELDS) <= ALL_FIELDS, "a bounded field was renamed in rf_core: the limit bounds nothing"
    assert set(DATASET_SHAPES) == set(DATASETS)
    for name, data_dir in (
        ("digits", None),
        ("synthetic", None),
        ("fashion_mnist", "/usr/share/datasets/fashion-mnist"),
    ):
        if data_dir and not Path(data_dir).is_dir():
            continue
        splits = load_dataset(name, data_dir, train_subset=10)
        assert (splits.input_dim, splits.num_classes) == DATASET_SHAPES[name]


def test_validate_reports_the_limits_of_a_default_server(tmp_path):
    too_wide = tmp_path / "wide.yaml"
    too_wide.write_text(yaml.safe_dump({"name": "wide", "model": {"hidden": [50000, 50000]}}))
    refused = CliRunner().invoke(app, ["validate", str(too_wide)])
    assert refused.exit_code == 2
    assert "model.hidden" in refused.output and "RFSWEEP_LIMIT_WIDTH" in refused.output
    assert "without them" in refused.output  # says the local runner does not apply them
    line = yaml.safe_dump({"name": "wide", "model": {"hidden": [50000, 50000]}}).splitlines().index("  hidden:") + 1
    assert f"{too_wide}:{line}: model.hidden" in refused.output  # the limit's problem with its line, as any other
    fine = CliRunner().invoke(app, ["validate", "examples/digits_quick.yaml", "--json"])
    assert fine.exit_code == 0, fine.output
    report = json.loads(fine.stdout.strip().splitlines()[-1])
    assert report["limits"]["width"]["setting"] == "RFSWEEP_LIMIT_WIDTH"
