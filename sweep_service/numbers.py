"""Numbers on their way out (JSON, PostgreSQL, MLflow, the sweep page): the one test of a usable (finite) value,
and the one JSON-safe copy (NaN/inf as null: PostgreSQL's json type and strict JSON reject them)."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not bool, NaN or ±inf), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf become null, tuples lists, keys strings, numpy/torch arrays and scalars plain
    values; anything else its `str`."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "tolist"):  # numpy / torch arrays and scalars
        return json_safe(value.tolist())
    if hasattr(value, "item"):
        return json_safe(value.item())
    return str(value)
