"""What the spec knows about rf_core's training config: which fields exist, which the spec's sections set,
which a sweep sets itself, each field's type, and why a value is not acceptable (in rf_core's own words)."""

from __future__ import annotations

import typing
from functools import cache, lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from rf_core import TrainConfig
from rf_core.config import ACTIVATIONS, DEFAULT_HIDDEN
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
    return TrainConfig.field_names()


@lru_cache(maxsize=1)
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(_field_types()[name])


def field_kind(name: str) -> str:
    """'int', 'float', 'bool', 'str' or 'other' for a training-config field."""
    hint = _field_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    return base.__name__ if base in (int, float, bool, str) else "other"


def coerce_field(name: str, value: Any) -> Any:
    """A value converted to the training-config field's type (YAML may give '1e-3' as a string)."""
    if field_kind(name) == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    coerced = _adapter(name).validate_python(value)
    if isinstance(coerced, tuple):
        coerced = list(coerced)
    return coerced


def config_problems(exc: ValueError) -> list[tuple[str, str]]:
    """(field, reason) pairs of a training-config error: rf_core's `.problems` where the error carries them,
    else read from its "field: reason; field: reason" message ("" for a reason that names no field)."""
    problems = getattr(exc, "problems", None)
    if problems is not None:
        return [(str(field), str(reason)) for field, reason in problems]
    pairs = []
    for part in str(exc).split("; "):
        field, sep, reason = part.partition(": ")
        pairs.append((field, reason) if sep else ("", part))
    return pairs


def field_problem(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for training-config field `name`, or None."""
    try:
        coerced = coerce_field(name, value)
    except ValidationError as exc:
        return str(exc.errors(include_url=False)[0]["msg"])
    if name in ("lr", "feedback_lr") and coerced is None:
        return None
    try:
        TrainConfig.from_dict({name: tuple(coerced) if isinstance(coerced, list) else coerced})
    except ValueError as exc:
        reasons = [reason for field, reason in config_problems(exc) if field == name]
        return "; ".join(reasons) if reasons else str(exc)
    return None
