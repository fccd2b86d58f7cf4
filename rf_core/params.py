"""What a learning rule owns: its typed hyperparameters (`RuleParams`) and its locality ledger (`Ledger`).

Each rule declares a frozen dataclass of the fields it reads (beside the rule, in rules/*.py), so which
fields a rule reads comes from its class and cannot drift. `TrainConfig` (config.py) holds the fields every
run has plus one `RuleParams` instance. This module imports nothing of rf_core, so rules and config can both
depend on it without a circle.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

Problem = tuple[str, str]  # (field, reason): errors travel as data and are formatted at the edge


@dataclass(frozen=True)
class RuleParams:
    """The hyperparameters one rule reads beyond the common ones. Subclasses add fields with defaults."""

    # Per field, its allowed values (for str fields) — checked by `problems`, shown in schemas and help.
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def problems(self) -> list[Problem]:
        """Every reason these values are invalid, as (field, reason)."""
        out: list[Problem] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            allowed = self.choices.get(f.name)
            if allowed is not None and value is not None and value not in allowed:
                out.append((f.name, f"must be one of {list(allowed)}"))
            elif isinstance(value, float) and not math.isfinite(value):
                out.append((f.name, "must be a finite number"))
        return out

    def resolved(self) -> RuleParams:
        """These params with every 'None: decided by another field' default filled in."""
        return self

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def positive(params: RuleParams, *names: str) -> list[Problem]:
    return [(n, "must be > 0") for n in names if getattr(params, n) is not None and not getattr(params, n) > 0]


def at_least_one(params: RuleParams, *names: str) -> list[Problem]:
    return [(n, "must be >= 1") for n in names if getattr(params, n) is not None and int(getattr(params, n)) < 1]


@dataclass(frozen=True)
class Ledger:
    """The non-local information a rule uses, in its configuration — what a neuron would not have.

    Each entry is proven by tests/rf_core/test_ledger.py, which runs the rule and watches what it touches.
    """

    weight_transport: bool  # the backward pass reads W (as Wᵀ) to carry the error down
    feedback_from_weights: bool  # W is read to form, refresh or initialise the feedback matrices
    closed_form_inverse: bool  # a matrix inverse or solve computed numerically (Cholesky, SVD), not learned
    batch_global: bool  # one sample's update depends on the other samples of the batch (e.g. a joint solve)
    output_error_broadcast: bool = False  # every layer receives the output error directly (DFA)
    # the backward pass reads the sign of each W entry (not its magnitude) to carry the error down (sign-symmetry)
    sign_transport: bool = False

    def to_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)

    def nonlocal_parts(self) -> list[str]:
        return [name for name, used in self.to_dict().items() if used]
