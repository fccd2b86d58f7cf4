"""Learning rules, one module each, found by name.

Every public module of this package is imported here, and each registers its rule (`base.register`), so adding
a rule is adding one file (tests/rf_core/test_rule_contract.py then checks it). Modules whose names start with
`_` are helpers shared by several rules, and `base` is the interface: neither holds a rule of its own.
"""

import importlib
import pkgutil

from rf_core.rules.base import LearningRule, registry


def rule_module_names() -> list[str]:
    """The modules of this package that hold rules, by full name (sorted, so rules register in a fixed order)."""
    return sorted(
        f"{__name__}.{module.name}"
        for module in pkgutil.iter_modules(__path__)
        if not module.name.startswith("_") and module.name != "base"
    )


def _import_rule_modules() -> None:
    for name in rule_module_names():
        importlib.import_module(name)  # importing a rule module runs its @register


_import_rule_modules()


def available_rules() -> list[str]:
    return sorted(registry())


def get_rule(name: str) -> type[LearningRule]:
    rules = registry()
    if name not in rules:
        raise ValueError(f"algorithm: unknown rule {name!r}; choose one of {sorted(rules)}")
    return rules[name]


__all__ = ["LearningRule", "available_rules", "get_rule", "rule_module_names"]
