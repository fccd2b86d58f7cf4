"""The searched parameters as the page reads them: one short label per value, an axis per parameter that varies
(numeric, log10 or categorical), and an even sample of trials by value (the importance and the charts share them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweep_service.report.model import ReportTrial

LOG_AXIS_RATIO = 20.0  # positive numeric values spanning more than this factor get a log axis


def _param_label(value: Any) -> str:
    """Lists (hidden widths), mappings and other non-numbers as one short, stable text."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_label(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


@dataclass
class _Axis:
    """A searched parameter as an axis: numeric (maybe log10) or categorical (codes with labels)."""

    name: str
    kind: str  # "linear" | "log" | "category"
    categories: list[str] = field(default_factory=list)

    def encode(self, value: Any) -> float | None:
        if value is None and self.kind != "category":
            return None
        if self.kind == "linear":
            return float(value)
        if self.kind == "log":
            return math.log10(float(value))
        return float(self.categories.index(_param_label(value)))


def _axes(trials: Sequence[ReportTrial]) -> tuple[list[_Axis], list[str]]:
    """Axes for the parameters that vary across `trials`, and the names of those that do not."""
    names = sorted({k for t in trials for k in t.params})
    axes, constant = [], []
    for name in names:
        values = [t.params.get(name) for t in trials]
        labels = list(dict.fromkeys(_param_label(v) for v in values))
        if len(labels) < 2:
            constant.append(name)
            continue
        if all(_is_number(v) for v in values):
            numbers = [float(v) for v in values if v is not None]
            low, high = min(numbers), max(numbers)
            kind = "log" if low > 0 and high / low > LOG_AXIS_RATIO else "linear"
            axes.append(_Axis(name, kind))
        else:
            axes.append(_Axis(name, "category", sorted(labels, key=_natural_key)))
    return axes, constant


def _natural_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _sample(trials: Sequence[ReportTrial], cap: int, sign: float, keep: ReportTrial | None) -> list[ReportTrial]:
    """At most `cap` trials spread evenly over the ranking by value (the best always kept)."""
    if len(trials) <= cap:
        return list(trials)
    ranked = sorted(trials, key=lambda t: (t.score() is None, -sign * (t.score() or 0.0)))
    step = len(ranked) / cap
    chosen = [ranked[int(i * step)] for i in range(cap)]
    if keep is not None and keep not in chosen:
        chosen[-1] = keep
    return chosen
