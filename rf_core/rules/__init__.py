"""Learning rules, one module each, found by name."""

from rf_core.rules import bp, bp_joint, dfa, fa, pseudobackprop, rf_parallel, rf_two_phase  # noqa: F401  (they register)
from rf_core.rules.base import LearningRule, registry


def available_rules() -> list[str]:
    return sorted(registry())


def get_rule(name: str) -> type[LearningRule]:
    rules = registry()
    if name not in rules:
        raise ValueError(f"algorithm: unknown rule {name!r}; choose one of {sorted(rules)}")
    return rules[name]


__all__ = ["LearningRule", "available_rules", "get_rule"]
