"""The training configuration: the fields every run has, and one typed `params` object owned by the rule.

`TrainConfig` holds what every run reads (data, network, optimisation); `params` is the rule's own frozen
dataclass (`get_rule(name).Params`, declared beside the rule in rules/*.py), so which fields a rule reads
comes from its class and cannot drift. Plain dataclasses (no pydantic) so that rf_core runs with torch
alone. At the edges (sweep specs, `--set`, MLflow params, JSON) a configuration is one flat mapping of field
names: `TrainConfig.from_dict` / `to_dict`. Invalid values raise `ConfigError`, whose `.problems` lists
(field, reason) pairs — errors travel as data and are formatted once, at the edge.

Fields retired in rfsweep 0.2 (the flat RF knobs) are translated when the old value has a new spelling
(`pinv_method: cholesky` → `feedback: oracle_cholesky`, the gated joint knobs → `update: gated_joint`) and
refused with the new field's name otherwise (RETIRED_FIELDS).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from rf_core.params import Ledger, Problem, RuleParams
from rf_core.rules import available_rules, get_rule

DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {
    # The paper's architectures (§5.1): 784-400-200-100-50-10 and 3072-1000-500-100-10.
    "mnist": (400, 200, 100, 50),
    "fashion_mnist": (400, 200, 100, 50),
    "cifar10": (1000, 500, 100),
    "digits": (64, 32),
    "synthetic": (32, 16),
}

ACTIVATIONS = ("leaky_relu", "leaky_softplus", "tanh")
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(ValueError):
    """An invalid training configuration; `.problems` lists (field, reason)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in self.problems))


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `lr=None` / `activation=None` mean "the rule's default"; `params` left out, the rule's
    default Params."""

    # what to learn
    algorithm: str = "bp"
    dataset: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    train_subset: int | None = None  # use only the first N training examples (quick runs, tests)

    # the network
    hidden: tuple[int, ...] | None = None  # None: the dataset's default (DEFAULT_HIDDEN)
    activation: str | None = None  # leaky_relu | leaky_softplus | tanh; None: the rule's default
    activation_slope: float = 0.1  # negative-side slope of leaky ReLU / leaky softplus
    bias: bool = False
    init_gain: float = 2.45  # weights ~ U(-g/√fan_in, g/√fan_in); √6 ≈ 2.45 keeps ‖h‖ from shrinking layer to layer

    # optimisation (plain SGD, as in the paper)
    lr: float | None = None
    lr_schedule: str = "constant"  # constant (the paper's plain SGD) | cosine: lr·½(1 + cos(π·step/total steps))
    # L2 pull on the weights (not biases): W ← W − lr_t·(D + weight_decay·W), every rule (kolen_pollack adds its
    # own kp_decay, and decays its feedback alike)
    weight_decay: float = 0.0
    batch_size: int = 32
    # drop each epoch's last, partial batch (Fashion-MNIST's 54,000 training samples in 32s leave one of 16);
    # the samples dropped change every epoch with the order. Chosen on validation (bp, fa, rf_two_phase all
    # 0.1–0.3 points higher with it, seeds 10–12): docs/RF_CORE.md "The last partial batch"
    drop_last: bool = True
    epochs: int = 10
    seed: int = 0
    device: str = "cpu"

    # when a run has diverged: its loss NaN/inf, or its training loss above divergence_factor × max(the first
    # epoch's, ln(classes)) — an explosion that stays finite (rf_core.train.divergence_limit)
    divergence_factor: float = 100.0

    # reporting
    diagnostics: bool = True  # per-epoch feedback round trip; end-of-run pinv distance, residuals, angles, fidelity

    # the rule's own hyperparameters (left out: the rule's defaults)
    params: RuleParams = dataclasses.field(default_factory=RuleParams)

    def __post_init__(self) -> None:
        if self.hidden is not None and not isinstance(self.hidden, tuple):
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if type(self.params) is RuleParams and self.algorithm in available_rules():
            object.__setattr__(self, "params", get_rule(self.algorithm).Params())
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[Problem]:
        """Every reason this configuration is invalid, as (field, reason)."""
        out: list[Problem] = []

        def bad(name: str, reason: str) -> None:
            out.append((name, reason))

        if self.algorithm not in available_rules():
            bad("algorithm", f"unknown rule {self.algorithm!r}; choose one of {available_rules()}")
        elif not isinstance(self.params, get_rule(self.algorithm).Params):
            bad("params", f"{self.algorithm} takes {get_rule(self.algorithm).Params.__name__}")
        else:
            out.extend(self.params.problems())
        if self.dataset not in DEFAULT_HIDDEN:
            bad("dataset", f"unknown dataset {self.dataset!r}; choose one of {sorted(DEFAULT_HIDDEN)}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            bad("activation", f"must be one of {list(ACTIVATIONS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"must be one of {list(LR_SCHEDULES)}")
        for name in ("batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                bad(name, "must be >= 1")
        for name in ("lr", "init_gain"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                bad(name, "must be a finite number")
            elif value is not None and not value > 0:
                bad(name, "must be > 0")
        if not 0 <= self.weight_decay < 1:
            bad("weight_decay", "must be in [0, 1)")
        if not (math.isfinite(self.divergence_factor) and self.divergence_factor > 1):
            bad("divergence_factor", "must be a finite number > 1")
        if not 0 <= self.activation_slope < 1:
            bad("activation_slope", "must be in [0, 1)")
        if not 0 <= self.val_fraction < 1:
            bad("val_fraction", "must be in [0, 1)")
        if self.hidden is not None and any(h < 1 for h in self.hidden):
            bad("hidden", "every width must be >= 1")
        if self.train_subset is not None and self.train_subset < 1:
            bad("train_subset", "must be >= 1")
        if (
            getattr(self.params, "update", None) in ("paper", "paper_as_printed")
            and self.activation_slope == 0
            and self.activation != "tanh"
        ):
            bad("activation_slope", "must be > 0 for the paper's update: it divides by σ'(a)")
        return out

    # ---- flat mappings at the edges --------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from one flat mapping of common and rule fields (retired names translated or refused)."""
        values = dict(values)
        algorithm = values.get("algorithm", "bp")
        problems = _translate_retired(values, algorithm)
        common = {k: v for k, v in values.items() if k in COMMON_FIELDS}
        own = {k: v for k, v in values.items() if k not in COMMON_FIELDS}
        if algorithm not in available_rules():
            problems.append(("algorithm", f"unknown rule {algorithm!r}; choose one of {available_rules()}"))
            raise ConfigError(problems)
        params_type = get_rule(algorithm).Params
        for name in sorted(set(own) - set(params_type.field_names())):
            readers = [r for r in available_rules() if name in get_rule(r).Params.field_names()]
            hint = f" (read by {', '.join(readers)})" if readers else ""
            problems.append(
                (
                    name,
                    f"{algorithm} does not read this field{hint}"
                    if readers or name in ALL_FIELDS
                    else "unknown training-config field",
                )
            )
        if problems:
            raise ConfigError(problems)
        if common.get("hidden") is not None:
            common["hidden"] = tuple(common["hidden"])
        try:
            params = params_type(**own)
        except TypeError as exc:  # pragma: no cover - names were checked above
            raise ConfigError([("params", str(exc))]) from None
        return cls(**common, params=params)

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> TrainConfig:
        """A config written by an earlier version (best_configs.json, checkpoints), where every row held every
        field: fields the rule does not read are dropped; retired ones are translated or refused; a field newer
        than the writer gets the value that reproduces what the writer ran (NEWER_FIELDS_AS_BEFORE)."""
        algorithm = values.get("algorithm", "bp")
        readable = rule_fields(algorithm) | set(RETIRED_FIELDS) if algorithm in available_rules() else set(values)
        return cls.from_dict({**NEWER_FIELDS_AS_BEFORE, **{k: v for k, v in values.items() if k in readable}})

    def to_dict(self) -> dict[str, Any]:
        """One flat mapping: the common fields, then the rule's (resolved values are `resolved().to_dict()`)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "params"}
        if d["hidden"] is not None:
            d["hidden"] = list(d["hidden"])
        d.update(self.params.to_dict())
        return d

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; rule fields may be given flat, as in `from_dict`."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return self.hidden if self.hidden is not None else DEFAULT_HIDDEN[self.dataset]

    def resolved(self) -> TrainConfig:
        """This config with every default decided at run time filled in (the rule's lr and activation, and the
        params' values that depend on other fields)."""
        rule = get_rule(self.algorithm)
        return dataclasses.replace(
            self,
            activation=self.activation if self.activation is not None else rule.default_activation,
            lr=self.lr if self.lr is not None else rule.default_lr,
            params=self.params.resolved(),
        )

    # ---- what runs, for labels --------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return get_rule(self.algorithm).ledger(self.params.resolved())

    def describe(self) -> dict[str, Any]:
        """The rule's update form, feedback source and locality ledger: the label every result carries."""
        description = get_rule(self.algorithm).describe(self.params.resolved())
        return {"algorithm": self.algorithm, **description, "ledger": self.ledger.to_dict()}


# Fields added after rfsweep 0.2, with the value that behaves as 0.2 did: a stored config without one ran that way.
NEWER_FIELDS_AS_BEFORE: dict[str, Any] = {"drop_last": False}

COMMON_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.name != "params")


def rule_fields(name: str) -> frozenset[str]:
    """The flat field names rule `name` reads: the common ones and its Params'."""
    return COMMON_FIELDS | frozenset(get_rule(name).Params.field_names())


def _all_rule_field_types() -> dict[str, Any]:
    types: dict[str, Any] = {}
    for rule in available_rules():
        params_type = get_rule(rule).Params
        hints = typing.get_type_hints(params_type)
        for name in params_type.field_names():
            if name in types and types[name] != hints[name]:  # pragma: no cover - guarded by a test
                raise TypeError(f"field {name} has two types across rules")
            types[name] = hints[name]
    return types


def field_types() -> dict[str, Any]:
    """Every flat field name (common and any rule's) → its type hint, for coercing values at the edges."""
    hints = typing.get_type_hints(TrainConfig)
    hints.pop("params")
    return {**hints, **_all_rule_field_types()}


def field_choices() -> dict[str, tuple[str, ...]]:
    """Every string field with a fixed set of values → those values (for schemas and help texts)."""
    out: dict[str, tuple[str, ...]] = {
        "activation": ACTIVATIONS,
        "lr_schedule": LR_SCHEDULES,
        "algorithm": tuple(available_rules()),
        "dataset": tuple(DEFAULT_HIDDEN),
    }
    for rule in available_rules():
        for name, allowed in get_rule(rule).Params.choices.items():
            out[name] = tuple(dict.fromkeys(out.get(name, ()) + allowed))
    return out


def field_problem(name: str, value: Any, algorithm: str | None = None) -> str | None:
    """Why `value` is not acceptable for field `name` (of `algorithm`, or of any rule that reads it), or None."""
    rules = [algorithm] if algorithm else [r for r in available_rules() if name in rule_fields(r)]
    if name in RETIRED_FIELDS:
        return RETIRED_FIELDS[name]
    if not rules:
        return "unknown training-config field"
    reasons: list[str] = []
    for rule in rules:
        try:
            TrainConfig.from_dict({"algorithm": rule, name: value})
            return None
        except ConfigError as exc:
            reasons += [reason for field, reason in exc.problems if field == name] or [str(exc)]
    return reasons[0]


ALL_FIELDS: frozenset[str] = frozenset(field_types())

# ---- fields retired in 0.2 -----------------------------------------------------------------------------

RETIRED_FIELDS: dict[str, str] = {
    "rf_form": "retired: use update (gated_joint | paper | paper_as_printed)",
    "rf_backward": "retired: use update (gated_joint multiplies by σ'; paper divides)",
    "rf_batch": "retired: use update (gated_joint takes the joint batch step; paper the per-sample step)",
    "inv_slope_clamp": "retired: update paper divides by σ' without a clamp; gated_joint never divides",
    "max_gain": "retired: it did not help (docs/RF_STABILITY.md §2)",
    "pinv_damping": "retired: a damped feedback did not help (docs/RF_STABILITY.md §2)",
    "pinv_method": "retired: use feedback (learned | oracle_cholesky | oracle_svd | oracle_newton_schulz | "
    "oracle_recirculation)",
    "pinv_tol": "retired: oracle_newton_schulz uses a fixed tolerance (1e-4)",
    "pinv_max_iter": "retired: oracle_newton_schulz uses a fixed iteration limit",
    "sleep_damping": "retired: oracle_recirculation uses the paper's λ = 0.9 (A.4)",
}
_PINV_METHOD_TO_FEEDBACK = {
    "cholesky": "oracle_cholesky",
    "exact": "oracle_svd",
    "newton_schulz": "oracle_newton_schulz",
    "recirculation": "oracle_recirculation",
}
_RETIRED_DEFAULTS = {
    "inv_slope_clamp": 2.0,
    "max_gain": None,
    "pinv_damping": 0.0,
    "pinv_tol": 1e-4,
    "pinv_max_iter": 30,
    "sleep_damping": 0.9,
}


def _translate_retired(values: dict[str, Any], algorithm: str) -> list[Problem]:
    """Rewrite retired fields in place where the old value has an exact new spelling; else a problem.

    The old default RF update (gated backward, joint batch step, newton form) is `update: gated_joint`;
    the old default sleep (`pinv_method: cholesky`) was an oracle and becomes `feedback: oracle_cholesky`.
    """
    problems: list[Problem] = []
    if not RETIRED_FIELDS.keys() & values.keys():
        return problems
    reads = set(get_rule(algorithm).Params.field_names()) if algorithm in available_rules() else set()
    form = (values.pop("rf_backward", "gated"), values.pop("rf_batch", "joint"), values.pop("rf_form", "newton"))
    if form == ("gated", "joint", "newton"):
        if "update" in reads:
            values.setdefault("update", "gated_joint")
    else:
        problems.append(("rf_backward", RETIRED_FIELDS["rf_backward"] + f"; {form} has no exact new spelling"))
    if "pinv_method" in values:
        method = values.pop("pinv_method")
        if "feedback" in reads:
            values.setdefault("feedback", _PINV_METHOD_TO_FEEDBACK.get(method, method))
    if values.get("feedback_init") == "pinv":  # 0.1's rf_parallel start; no other rule read the field then
        if "oracle" in get_rule(algorithm).Params.choices.get("feedback_init", ()):
            values["feedback_init"] = "oracle"
        else:
            values.pop("feedback_init")
    elif values.get("feedback_init") == "transpose":
        problems.append(("feedback_init", "retired value 'transpose': use random, zero or oracle"))
    for name, default in _RETIRED_DEFAULTS.items():
        if name in values:
            value = values.pop(name)
            if value != default and not (name == "inv_slope_clamp" and form[0] == "gated"):
                problems.append((name, RETIRED_FIELDS[name]))
    return problems
