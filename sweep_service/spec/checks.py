"""The spec's second pass: what pydantic's structure cannot tell. Which rules exist, which training-config
fields each rule reads, the values rf_core accepts, the distributions' arguments, `points_to_evaluate`
inside their domains. Each problem names the spec location it comes from."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from rf_core import ConfigError, TrainConfig, available_rules, rule_fields
from rf_core.config import RETIRED_FIELDS
from sweep_service.problems import Loc, Problem, dotted, shown
from sweep_service.spec.fields import (
    RESERVED_FIELDS,
    SECTION_FIELDS,
    coerce_field,
    config_problems,
    field_kind,
    field_names,
    field_problem,
)
from sweep_service.spec.model import AshaSchedulerSpec, Distribution, SweepSpec, applies, canonical, is_bundle

MAX_PROBLEMS = 100  # the checks stop there: a document with thousands of bad values costs no more than this


def semantic_problems(spec: SweepSpec) -> list[Problem]:
    """What is wrong with a structurally valid spec, up to MAX_PROBLEMS problems (empty: nothing)."""
    return _Checker(spec).run()


class _Enough(Exception):
    """MAX_PROBLEMS found: the checks stop."""


class _Checker:
    def __init__(self, spec: SweepSpec):
        self.spec = spec
        self.problems: list[Problem] = []
        self._taken: set[Loc] = set()
        self.rules = available_rules()
        self.fields = field_names()

    def bad(self, loc: Loc, msg: str) -> None:
        if loc not in self._taken:  # the first reason for a location is the useful one
            self._taken.add(loc)
            self.problems.append(Problem(loc, msg))
            if len(self.problems) >= MAX_PROBLEMS:
                raise _Enough

    def run(self) -> list[Problem]:
        with contextlib.suppress(_Enough):
            self._run()
        return self.problems

    def _run(self) -> None:
        spec = self.spec
        known_rules = self._check_algorithms()
        self._check_parameters(known_rules)
        if not self.problems:
            self._check_fixed_configs(known_rules)
        val_fraction = spec.dataset.val_fraction if spec.dataset.val_fraction is not None else 0.1
        if spec.search.metric.startswith("val_") and val_fraction == 0:
            self.bad(("search", "metric"), f"{spec.search.metric} needs a validation split (dataset.val_fraction > 0)")
        if not self.problems:
            self._check_points(known_rules)
        if isinstance(spec.scheduler, AshaSchedulerSpec) and spec.scheduler.grace_period > spec.scheduler.max_t:
            self.bad(("scheduler", "grace_period"), f"must be <= max_t ({spec.scheduler.max_t})")

    def _check_algorithms(self) -> list[str]:
        algorithms = self.spec.algorithms
        if not algorithms:
            self.bad(("algorithm",), "name at least one rule")
        seen: set[str] = set()
        for i, rule in enumerate(algorithms):
            loc: Loc = ("algorithm",) if isinstance(self.spec.algorithm, str) else ("algorithm", i)
            if rule not in self.rules:
                self.bad(loc, f"unknown rule {shown(rule)}; choose one of {self.rules}")
            elif rule in seen:
                self.bad(loc, f"{rule} is listed twice")
            seen.add(rule)
        return list(dict.fromkeys(r for r in algorithms if r in self.rules))

    def _check_parameters(self, known_rules: list[str]) -> None:
        spec, fields = self.spec, self.fields
        for name, value in (spec.parameters or {}).items():
            loc: Loc = ("parameters", name)
            self._check_parameter(loc, name, value)
            if known_rules and (name in fields or is_bundle(name, value)):
                users = [r for r in known_rules if applies(name, value, rule_fields(r))]
                if not users and name not in RESERVED_FIELDS:
                    owners = [r for r in self.rules if applies(name, value, rule_fields(r))]
                    hint = f"; it belongs to {owners}" if owners else ""
                    self.bad(loc, f"no listed rule uses it ({', '.join(known_rules)}){hint}")
        for rule, overrides in spec.algorithm_parameters.items():
            if rule not in spec.algorithms:
                self.bad(
                    ("algorithm_parameters", rule),
                    f"{shown(rule)} is not in `algorithm` ({', '.join(spec.algorithms)})",
                )
                continue
            if rule not in self.rules:
                continue
            own = rule_fields(rule)
            for name, value in overrides.items():
                loc = ("algorithm_parameters", rule, name)
                self._check_parameter(loc, name, value)
                named = name in fields or is_bundle(name, value)
                if named and not applies(name, value, own) and name not in RESERVED_FIELDS:
                    self.bad(loc, f"{rule} does not use {name}")

    def _check_parameter(self, loc: Loc, name: str, value: Any) -> None:
        if name in RETIRED_FIELDS:
            self.bad(loc, RETIRED_FIELDS[name])
            return
        if name in RESERVED_FIELDS:
            self.bad(loc, f"not a sweep parameter: {RESERVED_FIELDS[name]}")
            return
        if name in SECTION_FIELDS and self.spec.section_value(name) is not None:
            self.bad(loc, f"also set by {dotted(SECTION_FIELDS[name])}; give it in one place")
        if name not in self.fields and not (isinstance(value, Distribution) and value.distribution == "choice"):
            self.bad(loc, f"unknown training-config field; known: {sorted(self.fields - set(RESERVED_FIELDS))}")
            return
        if isinstance(value, Distribution):
            self._check_distribution(loc, name, value)
        else:
            problem = field_problem(name, value)
            if problem:
                self.bad(loc, problem)

    def _check_fixed_configs(self, known_rules: list[str]) -> None:
        """The fixed part of every rule's config must be a valid training config."""
        for rule in known_rules:
            constants = self.spec.base_config(rule)
            for name, value in self.spec.rule_parameters(rule).items():
                if not isinstance(value, Distribution):
                    constants[name] = coerce_field(name, value)
            if isinstance(constants.get("hidden"), list):
                constants["hidden"] = tuple(constants["hidden"])
            try:
                TrainConfig.from_dict(constants)
            except ConfigError as exc:
                for field, reason in config_problems(exc):
                    self.bad(self._where(rule, field), reason)

    def _where(self, rule: str, field: str) -> Loc:
        """The spec location that set a training-config field for `rule` (() where no field is named)."""
        spec = self.spec
        if field in spec.algorithm_parameters.get(rule, {}):
            return ("algorithm_parameters", rule, field)
        if spec.parameters is not None and field in spec.parameters:
            return ("parameters", field)
        if field in SECTION_FIELDS:
            return SECTION_FIELDS[field]
        return (field,) if field else ()

    def _check_distribution(self, loc: Loc, name: str, dist: Distribution) -> None:
        if dist.distribution == "choice":
            self._check_choice(loc, name, dist)
            return
        kind, bad = dist.distribution, self.bad
        if dist.values is not None:
            bad((*loc, "values"), f"not an argument of {kind} (only choice takes values)")
        for arg in ("low", "high"):
            if getattr(dist, arg) is None:
                bad((*loc, arg), f"required for {kind}")
        if dist.low is None or dist.high is None:
            return
        low, high, q = dist.low, dist.high, dist.q
        if not (math.isfinite(low) and math.isfinite(high)):
            bad((*loc, "low"), "bounds must be finite")
            return
        if kind in ("quniform", "qloguniform") and q is None:
            bad((*loc, "q"), f"required for {kind}")
        if kind in ("uniform", "loguniform") and q is not None:
            bad((*loc, "q"), f"not an argument of {kind} (use q{kind})")
        if q is not None and not q > 0:
            bad((*loc, "q"), "must be > 0")
            q = None
        if kind in ("loguniform", "qloguniform") and not low > 0:
            bad((*loc, "low"), f"must be > 0 for {kind}")
        if not low < high:
            bad((*loc, "high"), f"must be > low ({low:g})")
        if kind == "randint":
            for arg, v in (("low", low), ("high", high)):
                if not float(v).is_integer():
                    bad((*loc, arg), "randint bounds must be integers")
            if q is not None and not float(q).is_integer():
                bad((*loc, "q"), "randint's q must be an integer")
        if q is not None and kind in ("quniform", "qloguniform", "randint"):
            for arg, v in (("low", low), ("high", high)):
                if not _is_multiple(v, q):
                    bad((*loc, arg), f"must be a multiple of q ({q:g}) for {kind}")
        if name not in self.fields:
            bad(loc, f"{name} is not a training-config field (only a choice over mappings may have another name)")
            return
        kind_of_field = field_kind(name)
        if kind_of_field in ("str", "bool", "other"):
            takes = kind_of_field if kind_of_field != "other" else "list"
            bad((*loc, "distribution"), f"{name} takes a {takes}: use choice")
            return
        if kind_of_field == "int":
            integral = kind == "randint" or (
                q is not None and float(q).is_integer() and kind in ("quniform", "qloguniform")
            )
            if not integral:
                bad(
                    (*loc, "distribution"),
                    f"{name} is an integer: use randint, or quniform/qloguniform with an integer q",
                )
        # the bounds themselves must be acceptable values (randint's high is exclusive)
        top = high - 1 if kind == "randint" and q is None else high
        for arg, v in (("low", low), ("high", top)):
            problem = field_problem(name, int(v) if kind_of_field == "int" and float(v).is_integer() else v)
            if problem:
                bad((*loc, arg), problem)

    def _check_choice(self, loc: Loc, name: str, dist: Distribution) -> None:
        bad = self.bad
        for arg in ("low", "high", "q"):
            if getattr(dist, arg) is not None:
                bad((*loc, arg), "not an argument of choice (give `values`)")
        if not dist.values:
            bad((*loc, "values"), "choice needs a non-empty list of values")
            return
        bundle = name not in self.fields
        for i, value in enumerate(dist.values):
            vloc = (*loc, "values", i)
            if not bundle:
                problem = field_problem(name, value)
                if problem:
                    bad(vloc, problem)
                continue
            if not isinstance(value, dict) or not value:
                bad(vloc, f"{name} is not a training-config field, so its values must be mappings of fields")
                continue
            for key, item in value.items():
                if key in RESERVED_FIELDS:
                    bad((*vloc, key), f"not a sweep parameter: {RESERVED_FIELDS[key]}")
                elif key not in self.fields:
                    bad((*vloc, key), "unknown training-config field")
                else:
                    problem = field_problem(key, item)
                    if problem:
                        bad((*vloc, key), problem)

    def _check_points(self, rules: list[str]) -> None:
        spec, bad = self.spec, self.bad
        per_rule = {rule: spec.rule_parameters(rule) for rule in rules}
        counts = dict.fromkeys(rules, 0)
        choice_keys: dict[int, frozenset[str]] = {}  # the parameters (and so their ids) live as long as `spec`
        for i, point in enumerate(spec.search.points_to_evaluate):
            loc: Loc = ("search", "points_to_evaluate", i)
            target = point.get("algorithm")
            if target is not None and target not in rules:
                bad((*loc, "algorithm"), f"{shown(target)} is not in `algorithm` ({', '.join(spec.algorithms)})")
                continue
            targets = [target] if target else rules
            searched_any = set().union(
                *({n for n, v in per_rule[r].items() if isinstance(v, Distribution)} for r in targets)
            )
            for key in point:
                if key != "algorithm" and key not in searched_any:
                    bad((*loc, key), "not a searched parameter (only distributions can be given a point)")
            for rule in targets:
                counts[rule] += 1
                for name, dist in per_rule[rule].items():
                    if not isinstance(dist, Distribution):
                        continue
                    if name not in point:
                        bad((*loc, name), f"missing: a point gives every searched parameter of {rule}")
                    elif not _domain_contains(dist, point[name], choice_keys):
                        bad((*loc, name), f"{shown(point[name])} is outside the {dist.distribution} domain")
        for rule, count in counts.items():
            if count > spec.search.num_samples:
                bad(
                    ("search", "points_to_evaluate"),
                    f"{count} points for {rule} but num_samples is {spec.search.num_samples}",
                )


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    if not math.isfinite(ratio):
        return False
    return math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-9)


def _domain_contains(dist: Distribution, value: Any, choice_keys: dict[int, frozenset[str]]) -> bool:
    """Whether `value` is in the distribution's domain; a choice's values as canonical JSON are computed once per
    choice (`choice_keys`), so that points are checked in linear time."""
    if dist.distribution == "choice":
        keys = choice_keys.get(id(dist))
        if keys is None:
            keys = choice_keys[id(dist)] = frozenset(canonical(v) for v in dist.values or [])
        return canonical(value) in keys
    if isinstance(value, bool) or not isinstance(value, (int, float)) or dist.low is None or dist.high is None:
        return False
    high_ok = value < dist.high if dist.distribution == "randint" and dist.q is None else value <= dist.high
    return dist.low <= value and high_ok
