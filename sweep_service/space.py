"""Spec → Ray Tune search spaces, one per learning rule, and the way back (sampled → training config).

Every `choice` becomes a choice over indices: HyperOpt mishandles categories that are lists or mappings
(it recurses into mappings and converts `points_to_evaluate` by value), so Tune and HyperOpt only ever
see integers and `decode` maps them back to the spec's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweep_service.spec import Distribution, SweepSpec, is_bundle, points_for_rule, same_value
from sweep_service.spec.fields import coerce_field, field_kind


@dataclass
class RuleSpace:
    rule: str
    domains: dict[str, Any]  # parameter name -> Tune Domain
    constants: dict[str, Any]  # training-config field -> value fixed for this rule
    choices: dict[str, list[Any]] = field(default_factory=dict)  # parameter name -> the choice's values
    bundles: set[str] = field(default_factory=set)  # choices whose values are mappings of fields
    points: list[dict[str, Any]] = field(default_factory=list)  # points_to_evaluate, choices as indices

    def decode(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """A complete training config (TrainConfig.from_dict-able) for one sampled point."""
        config = dict(self.constants)
        for name, value in self.parameter_values(sampled).items():
            if name in self.bundles:
                config.update({k: coerce_field(k, v) for k, v in value.items()})
            else:
                config[name] = value
        return config

    def parameter_values(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """The searched parameters' values for one sampled point, as the spec names them."""
        out: dict[str, Any] = {}
        for name in self.domains:
            value = sampled[name]
            if name in self.choices:
                out[name] = self.choices[name][int(value)]
            elif field_kind(name) == "int":
                out[name] = round(float(value))
            else:
                out[name] = coerce_field(name, float(value))
        return out

    def encode_point(self, point: dict[str, Any]) -> dict[str, Any]:
        encoded = {}
        for name, value in point.items():
            if name in self.choices:
                encoded[name] = next(i for i, v in enumerate(self.choices[name]) if same_value(v, value))
            else:
                encoded[name] = value
        return encoded


def tune_domain(dist: Distribution) -> Any:
    """The Ray Tune domain with the spec's semantics (choices as indices; see module docstring)."""
    from ray import tune

    kind = dist.distribution
    if kind == "choice":
        return tune.choice(list(range(len(dist.values or []))))
    # the spec's checks guarantee the bounds (and q where the distribution takes one)
    low, high, q = float(dist.low or 0), float(dist.high or 0), float(dist.q or 0)
    if kind == "uniform":
        return tune.uniform(low, high)
    if kind == "loguniform":
        return tune.loguniform(low, high)
    if kind == "quniform":
        return tune.quniform(low, high, q)
    if kind == "qloguniform":
        return tune.qloguniform(low, high, q)
    if kind == "randint":
        if dist.q is None:
            return tune.randint(int(low), int(high))
        return tune.qrandint(int(low), int(high), int(q))
    raise ValueError(f"unknown distribution {kind!r}")


def build_rule_space(spec: SweepSpec, rule: str) -> RuleSpace:
    constants = spec.base_config(rule)
    domains: dict[str, Any] = {}
    choices: dict[str, list[Any]] = {}
    bundles: set[str] = set()
    for name, value in spec.rule_parameters(rule).items():
        if isinstance(value, Distribution):
            domains[name] = tune_domain(value)
            if value.distribution == "choice":
                choices[name] = list(value.values or [])
                if is_bundle(name, value):
                    bundles.add(name)
        else:
            constants[name] = coerce_field(name, value)
    space = RuleSpace(rule=rule, domains=domains, constants=constants, choices=choices, bundles=bundles)
    space.points = [space.encode_point(p) for p in points_for_rule(spec, rule)]
    return space


def build_spaces(spec: SweepSpec) -> dict[str, RuleSpace]:
    return {rule: build_rule_space(spec, rule) for rule in spec.algorithms}


@dataclass(frozen=True)
class SampledTrial:
    """One trial's configuration as Tune hands it over, decoded (the worker and the driver read it alike)."""

    rule: str
    config: dict[str, Any]  # the complete training config
    params: dict[str, Any]  # the searched parameters' values, as the spec names them


def decode_trial(spaces: dict[str, RuleSpace], tune_config: dict[str, Any]) -> SampledTrial:
    rule = tune_config["algorithm"]
    sampled = {k: v for k, v in tune_config.items() if k != "algorithm"}
    space = spaces[rule]
    return SampledTrial(rule, space.decode(sampled), space.parameter_values(sampled))
