"""What the spec knows about rf_core's training config: which fields exist, which the spec's sections set,
which a sweep sets itself, each field's type, and why a value is not acceptable (in rf_core's own words)."""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from rf_core import ALL_FIELDS, ConfigError, field_types
from rf_core import field_problem as rf_field_problem
from rf_core.config import ACTIVATIONS, DEFAULT_HIDDEN, RETIRED_FIELDS
from sweep_service.problems import Loc, dotted

DATASETS: tuple[str, ...] = tuple(DEFAULT_HIDDEN)  # rf_core's datasets, each with its default architecture
__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "RESERVED_FIELDS",
    "SECTION_FIELDS",
    "coerce_field",
    "field_kind",
    "field_problem",
]

# Training-config field -> the spec section attribute that sets it (left out there: the rule's default).
SECTION_FIELDS: dict[str, Loc] = {
    "dataset": ("dataset", "name"),
    "data_dir": ("dataset", "data_dir"),
    "train_subset": ("dataset", "train_subset"),
    "val_fraction": ("dataset", "val_fraction"),
    "hidden": ("model", "hidden"),
    "activation": ("model", "activation"),
    "bias": ("model", "bias"),
}
# Training-config fields a sweep sets itself; a parameter naming one is an error, with this reason.
RESERVED_FIELDS: dict[str, str] = {
    "algorithm": "set by the spec's `algorithm`",
    "epochs": "set by scheduler.max_t",
    "device": "chosen from resources.gpu (the GPU Ray assigns, else the CPU)",
    **{name: f"set by {dotted(SECTION_FIELDS[name])}" for name in ("dataset", "data_dir")},
}


def field_names() -> frozenset[str]:
    """Every training-config field of any rule (rf_core's typed Params, flattened), and the retired ones, which
    checks answer with the field that replaced them."""
    return ALL_FIELDS | frozenset(RETIRED_FIELDS)


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(field_types()[name])


@cache
def field_kind(name: str) -> str:
    """'int', 'float', 'bool', 'str' or 'other' for a training-config field."""
    hint = field_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    return base.__name__ if base in (int, float, bool, str) else "other"


def coerce_field(name: str, value: Any) -> Any:
    """A value converted to the training-config field's type (YAML may give '1e-3' as a string)."""
    if name in RETIRED_FIELDS:
        return value
    if field_kind(name) == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    coerced = _adapter(name).validate_python(value)
    if isinstance(coerced, tuple):
        coerced = list(coerced)
    return coerced


def config_problems(exc: ConfigError) -> list[tuple[str, str]]:
    """(field, reason) pairs of rf_core's training-config error."""
    return [(str(field), str(reason)) for field, reason in exc.problems]


def field_problem(name: str, value: Any, algorithm: str | None = None) -> str | None:
    """Why `value` is not acceptable for training-config field `name` (of `algorithm`, or of some rule that
    reads it), or None — in rf_core's words; a retired field's reason names the field that replaced it."""
    if name in RETIRED_FIELDS:
        return RETIRED_FIELDS[name]
    try:
        coerced = coerce_field(name, value)
    except ValidationError as exc:
        return str(exc.errors(include_url=False)[0]["msg"])
    return rf_field_problem(name, tuple(coerced) if isinstance(coerced, list) else coerced, algorithm)
