"""How a sweep's metric is ordered: its mode (guessed from its name when the spec does not say), the sign that
turns "better" into "larger", the best of some values (finite ones: `numbers.finite`), and the worst
value a diverged trial reports. Every layer that ranks, sorts or colours by the metric asks here."""

from __future__ import annotations

from typing import Literal

from sweep_service.numbers import finite

Mode = Literal["max", "min"]
MODES: tuple[str, ...] = ("max", "min")


def default_mode(metric: str) -> Mode:
    """The mode a spec gets when it names none: losses are minimised, everything else (accuracies) maximised."""
    return "min" if metric.endswith("loss") else "max"


def sign(mode: str) -> float:
    """+1 where higher is better (`max`), -1 where lower is (`min`): `sign(mode) * value` is larger when better."""
    if mode not in MODES:
        raise ValueError(f"mode: must be 'max' or 'min', not {mode!r}")
    return 1.0 if mode == "max" else -1.0


def maximizes(mode: str) -> bool:
    return mode == "max"


def best_of(values: list[float | None], mode: str) -> float | None:
    """The best finite value for a metric to `mode`, or None."""
    usable = [v for v in map(finite, values) if v is not None]
    if not usable:
        return None
    return max(usable) if maximizes(mode) else min(usable)


def worst_value(metric: str, mode: str) -> float:
    """What a diverged trial reports to Tune: the worst its metric can be (finite: HyperOpt sorts by it)."""
    if metric.endswith("accuracy"):
        return 0.0 if maximizes(mode) else 1.0
    return -1e30 if maximizes(mode) else 1e30
