"""Spec → Tune search space → HyperOpt suggestions → training config, for every distribution.

No Ray runtime needed: the searchers are driven directly, as Tune would drive them.
"""

from __future__ import annotations

import math

import pytest

from rf_core import TrainConfig
from sweep_service.space import build_rule_space
from sweep_service.spec import parse_spec
from sweep_service.tune_glue import PerRuleSearcher

HIDDEN_CHOICES = [[64, 32], [128], [32, 32, 16]]
BUNDLES = [{"lr": 0.5, "batch_size": 16}, {"lr": 0.05, "batch_size": 64, "init_gain": 0.5}]

EVERY_DISTRIBUTION = {
    "lr": {"distribution": "loguniform", "low": 1e-3, "high": 1.0},
    "init_gain": {"distribution": "uniform", "low": 0.5, "high": 1.5},
    "activation_slope": {"distribution": "quniform", "low": 0.0, "high": 0.3, "q": 0.05},
    "norm_eps": {"distribution": "qloguniform", "low": 0.01, "high": 1.0, "q": 0.01},
    "batch_size": {"distribution": "randint", "low": 16, "high": 20},
    "pinv_every": {"distribution": "randint", "low": 10, "high": 40, "q": 10},
    "seed": {"distribution": "quniform", "low": 0, "high": 4, "q": 1},
    "activation": {"distribution": "choice", "values": ["leaky_relu", "tanh"]},
    "bias": {"distribution": "choice", "values": [True, False]},
    "hidden": {"distribution": "choice", "values": HIDDEN_CHOICES},
    "feedback": {"distribution": "choice", "values": ["learned", "oracle_cholesky"]},
}


def make_spec(parameters, method="hyperopt", points=(), algorithm="rf_two_phase", num_samples=40):
    return parse_spec(
        {
            "name": "space",
            "algorithm": algorithm,
            "parameters": parameters,
            "search": {"method": method, "num_samples": num_samples, "seed": 3, "points_to_evaluate": list(points)},
            "scheduler": {"type": "fifo", "max_t": 2},
        }
    )


def suggestions(spec, count):
    spaces = {rule: build_rule_space(spec, rule) for rule in spec.algorithms}
    searcher = PerRuleSearcher(
        spaces, spec.search.method, spec.metric, spec.mode, spec.search.num_samples, spec.search.seed
    )
    out = []
    for i in range(count):
        suggested = searcher.suggest(f"t{i}")
        assert isinstance(suggested, dict), suggested
        rule = suggested.pop("algorithm")
        space = spaces[rule]
        out.append((rule, space.parameter_values(suggested), space.decode(suggested)))
        searcher.on_trial_complete(f"t{i}", {spec.metric: 0.1 * (i % 7), "epoch": 1})
    return out


def in_domain(name, value):
    dist = EVERY_DISTRIBUTION[name]
    kind = dist["distribution"]
    if kind == "choice":
        return value in dist["values"]
    low, high, q = dist["low"], dist["high"], dist.get("q")
    if kind == "randint" and q is None:
        return isinstance(value, int) and low <= value < high
    if not low - 1e-9 <= value <= high + 1e-9:
        return False
    return q is None or math.isclose(value / q, round(value / q), abs_tol=1e-6)


@pytest.mark.parametrize("method", ["hyperopt", "random"])
def test_every_distribution_round_trips(method):
    spec = make_spec(EVERY_DISTRIBUTION, method=method)
    seen = {name: set() for name in EVERY_DISTRIBUTION}
    for rule, values, config in suggestions(spec, 40):
        assert rule == "rf_two_phase"
        assert set(values) == set(EVERY_DISTRIBUTION)
        for name, value in values.items():
            assert in_domain(name, value), (name, value)
            seen[name].add(repr(value))
            assert config[name] == value
        assert isinstance(config["batch_size"], int) and isinstance(config["seed"], int)
        assert isinstance(config["pinv_every"], int)
        assert isinstance(config["hidden"], list) and config["hidden"] in HIDDEN_CHOICES
        TrainConfig.from_dict({**config, "hidden": tuple(config["hidden"])})  # a valid training config
    # the sampler really explores: every choice option and several integer values come up
    assert len(seen["hidden"]) == len(HIDDEN_CHOICES)
    assert len(seen["activation"]) == 2 and len(seen["bias"]) == 2 and len(seen["feedback"]) == 2
    assert len(seen["batch_size"]) >= 3 and len(seen["pinv_every"]) >= 3


def test_choice_over_mappings_sets_fields_together():
    spec = make_spec(
        {
            "combo": {"distribution": "choice", "values": BUNDLES},
            "hidden": {"distribution": "choice", "values": HIDDEN_CHOICES},
        },
        algorithm="bp",
    )
    seen = set()
    for _, values, config in suggestions(spec, 12):
        assert values["combo"] in BUNDLES
        for key, value in values["combo"].items():
            assert config[key] == value
        assert "combo" not in config
        seen.add(values["combo"]["lr"])
    assert seen == {0.5, 0.05}


def test_points_to_evaluate_come_first_exactly_including_lists_and_mappings():
    points = [
        {"lr": 0.01, "hidden": [32, 32, 16], "combo": BUNDLES[1]},
        {"lr": 0.5, "hidden": [64, 32], "combo": BUNDLES[0]},
    ]
    params = {
        "lr": {"distribution": "loguniform", "low": 1e-3, "high": 1.0},
        "hidden": {"distribution": "choice", "values": HIDDEN_CHOICES},
        "combo": {
            "distribution": "choice",
            "values": [{"init_gain": 0.5, "bias": True}, {"init_gain": 1.0, "bias": False}],
        },
    }
    points = [{**p, "combo": params["combo"]["values"][i]} for i, p in enumerate(points)]
    spec = make_spec(params, points=points, algorithm="bp", num_samples=5)
    got = suggestions(spec, 5)
    for (_, values, _), point in zip(got, points, strict=False):  # the first suggestions are the points
        assert values["hidden"] == point["hidden"]
        assert values["combo"] == point["combo"]
        assert values["lr"] == pytest.approx(point["lr"])


def test_points_target_rules_and_skip_parameters_a_rule_lacks():
    params = {
        "lr": {"distribution": "loguniform", "low": 1e-3, "high": 1.0},
        "feedback_lr": {"distribution": "loguniform", "low": 1e-6, "high": 1e-3},
    }
    points = [{"lr": 0.2, "feedback_lr": 1e-4}, {"algorithm": "bp", "lr": 0.03}]
    spec = make_spec(params, points=points, algorithm=["bp", "rf_parallel"], num_samples=3)
    got = suggestions(spec, 6)
    by_rule = {}
    for rule, values, _ in got:
        by_rule.setdefault(rule, []).append(values)
    assert len(by_rule["bp"]) == 3 and len(by_rule["rf_parallel"]) == 3  # num_samples per rule
    assert [v["lr"] for v in by_rule["bp"][:2]] == pytest.approx([0.2, 0.03])
    assert "feedback_lr" not in by_rule["bp"][0]
    assert by_rule["rf_parallel"][0] == pytest.approx({"lr": 0.2, "feedback_lr": 1e-4})


def test_searcher_finishes_after_num_samples_per_rule_and_is_seeded():
    params = {"lr": {"distribution": "loguniform", "low": 1e-3, "high": 1.0}}
    spec = make_spec(params, algorithm=["bp", "fa"], num_samples=2)
    first = suggestions(spec, 4)
    again = suggestions(spec, 4)
    assert [v for _, v, _ in first] == [v for _, v, _ in again]  # same seed, same configurations
    spaces = {rule: build_rule_space(spec, rule) for rule in spec.algorithms}
    searcher = PerRuleSearcher(spaces, "hyperopt", spec.metric, spec.mode, 2, 0)
    for i in range(4):
        assert isinstance(searcher.suggest(f"t{i}"), dict)
    assert searcher.suggest("t5") == "FINISHED"


def test_searcher_state_survives_save_and_restore(tmp_path):
    params = {"lr": {"distribution": "loguniform", "low": 1e-3, "high": 1.0}}
    spec = make_spec(params, algorithm="bp", num_samples=6)
    space = {"bp": build_rule_space(spec, "bp")}
    original = PerRuleSearcher(space, "hyperopt", spec.metric, spec.mode, 6, 0)
    for i in range(3):
        original.suggest(f"t{i}")
        original.on_trial_complete(f"t{i}", {spec.metric: 0.5, "epoch": 1})
    original.save(str(tmp_path / "searcher.pkl"))
    restored = PerRuleSearcher(space, "hyperopt", spec.metric, spec.mode, 6, 0)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.suggest("t3") == original.suggest("t3")
    for i in range(4, 6):
        restored.suggest(f"t{i}")
    assert restored.suggest("t9") == "FINISHED"


def test_constant_only_rule_needs_no_searcher():
    spec = make_spec({"lr": 0.05, "batch_size": 16}, algorithm="bp", num_samples=2)
    got = suggestions(spec, 2)
    assert all(values == {} and config["lr"] == 0.05 and config["batch_size"] == 16 for _, values, config in got)
