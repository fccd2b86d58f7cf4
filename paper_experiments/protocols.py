"""The paper's comparison as sweep specs: the four rules, the two protocols ((a) as printed, (b) tuned), the
budgets, and the search and retrain specs `run_reproduce` runs. The paper's own search domain (A.1) is the
sweep service's default, `sweep_service.spec.PAPER_PARAMETERS`; protocol (a) searches exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from rf_core import TrainConfig, rule_fields
from sweep_service.spec import PAPER_PARAMETERS, SweepSpec, parse_spec
from sweep_service.spec.fields import RESERVED_FIELDS, SECTION_FIELDS

RULES = ("bp", "fa", "rf_parallel", "rf_two_phase")
DATASETS = ("fashion_mnist", "mnist", "cifar10", "digits")

# The paper's Table 1 (test accuracy %, epochs to 90 % of the asymptotic error), for the datasets it ran.
PAPER_TABLE1: dict[str, dict[str, tuple[float, int]]] = {
    "mnist": {"bp": (92.99, 42), "fa": (92.67, 71), "rf_parallel": (92.65, 79), "rf_two_phase": (92.81, 64)},
    "cifar10": {"bp": (40.76, 16), "fa": (40.29, 80), "rf_parallel": (41.46, 44), "rf_two_phase": (41.34, 42)},
}


def _loguniform(low: float, high: float) -> dict[str, Any]:
    return {"distribution": "loguniform", "low": low, "high": high}


# Protocol (a): the paper's search domain, each rule searching the parameters it reads.
PAPER_DOMAINS: dict[str, dict[str, Any]] = {
    rule: {
        name: value for name, value in PAPER_PARAMETERS.items() if isinstance(value, dict) and name in rule_fields(rule)
    }
    for rule in RULES
}
# Wide enough that each rule's optimum is inside (bp/fa: 0.01–0.1; RF's Newton step: λ ≈ 1), plus the RF
# knob that mattered most in the Fashion-MNIST screens (docs/RF_STABILITY.md §5): the hidden layers' step.
# Weight decay because every rule's test loss climbs after ~15 epochs of plain SGD at batch 32 while its
# accuracy stalls (docs/RF_STABILITY.md §6); its domain is per rule because the decay per step is lr·weight_decay
# and RF's λ is ~30× bp's lr.
_RF_KNOBS = {"hidden_step_scale": _loguniform(1.0, 30.0), "weight_decay": _loguniform(1e-6, 5e-4)}
_SGD_KNOBS = {"weight_decay": _loguniform(1e-4, 1e-2)}
TUNED_DOMAINS: dict[str, dict[str, Any]] = {
    "bp": {"lr": _loguniform(1e-3, 0.5), **_SGD_KNOBS},
    "fa": {"lr": _loguniform(1e-3, 0.5), **_SGD_KNOBS},
    "rf_parallel": {"lr": _loguniform(0.05, 5.0), "feedback_lr": _loguniform(1e-6, 1e-2), **_RF_KNOBS},
    "rf_two_phase": {"lr": _loguniform(0.05, 5.0), **_RF_KNOBS},
}
# The search's first point per rule: its defaults, with the weight decay that won a 40-epoch Fashion-MNIST
# screen on validation accuracy (docs/RF_STABILITY.md §6); the rules' own default stays 0, the paper's SGD.
# Held fixed in both protocols: the paper's sleep period (A.1). rf_core's own default is 100, measured as
# accurate and cheaper (docs/RF_CORE.md); the reproduction runs what the paper ran.
PAPER_SLEEP: dict[str, dict[str, Any]] = {"rf_two_phase": {"pinv_every": 20}}
# The paper's RF update (rf_core `update: paper`: ÷σ' and the per-sample Newton step), fixed for the RF rules.
PAPER_UPDATE: dict[str, dict[str, Any]] = {
    rule: {"update": "paper", **PAPER_SLEEP.get(rule, {})} for rule in ("rf_parallel", "rf_two_phase")
}
TUNED_START: dict[str, dict[str, Any]] = {
    "bp": {"weight_decay": 2e-3},
    "fa": {"weight_decay": 2e-4},
    "rf_parallel": {"weight_decay": 6e-5},
    "rf_two_phase": {"weight_decay": 2e-4},
}
# The paper's update, tuned: its step and the leaky-ReLU slope it needs (÷σ' amplifies a displacement 1/slope
# times per layer) searched wide; it started where a validation screen found it best (slope 0.95, λ 3; docs/RF_CORE.md).
PAPER_UPDATE_TUNED_DOMAINS: dict[str, dict[str, Any]] = {
    rule: {
        "lr": _loguniform(0.01, 10.0),
        "activation_slope": {"distribution": "uniform", "low": 0.1, "high": 0.95},
        "weight_decay": _loguniform(1e-6, 5e-4),
    }
    for rule in ("rf_parallel", "rf_two_phase")
}
# (weight decay: near the rules' default of none, inside the log domain)
PAPER_UPDATE_TUNED_START = {
    rule: {"lr": 3.0, "activation_slope": 0.95, "weight_decay": 1e-6} for rule in ("rf_parallel", "rf_two_phase")
}


@dataclass(frozen=True)
class RowGroup:
    """Rules searched together in one sweep (and retrained in another), each with its domain and the values it
    holds fixed; a rule whose fixed values name its `update` is labelled with it in every output."""

    key: str  # "" for a protocol's main group
    rules: tuple[str, ...]
    domains: dict[str, dict[str, Any]]
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: dict[str, dict[str, Any]] | None = None  # None: no first points; else overrides of each rule's defaults

    def label(self, rule: str) -> str:
        update = self.fixed.get(rule, {}).get("update")
        return f"{rule} (update: {update})" if update else rule

    def labels(self) -> list[str]:
        return [self.label(rule) for rule in self.rules]


@dataclass(frozen=True)
class Protocol:
    key: str  # "a" | "b"
    name: str
    metric: str  # what the search and the retrain select on
    groups: tuple[RowGroup, ...]
    activation: str | None  # None: each rule's tuned default
    lr_schedule: str  # constant: the paper's plain SGD; cosine: the step size decays to 0 over max_t epochs
    description: str

    def labels(self) -> list[str]:
        return [label for group in self.groups for label in group.labels()]


PROTOCOLS = (
    Protocol(
        "a",
        "paper",
        "test_accuracy",
        (RowGroup("", RULES, PAPER_DOMAINS, fixed={**PAPER_UPDATE}),),
        "leaky_relu",
        "constant",
        "as the paper specifies: lr log-uniform [1e-4, 1e-2] (rf_parallel feedback lr [1e-6, 1e-3]), "
        "leaky ReLU (slope 0.1, rf_core's default: the paper names none), the RF rules with the paper's update "
        "(update: paper) and feedback learned from noise (rf_core's local sleep in place of Recirculation), a "
        "sleep every 20 steps, selection on test accuracy; reported: the best test accuracy over epochs",
    ),
    Protocol(
        "b",
        "tuned",
        "val_accuracy",
        (
            RowGroup("", RULES, TUNED_DOMAINS, fixed={**PAPER_SLEEP}, start=TUNED_START),
            RowGroup(
                "paper-update",
                ("rf_parallel", "rf_two_phase"),
                PAPER_UPDATE_TUNED_DOMAINS,
                fixed={**PAPER_UPDATE},
                start=PAPER_UPDATE_TUNED_START,
            ),
        ),
        None,
        "cosine",
        "wide domains (bp, fa lr [1e-3, 0.5], weight decay [1e-4, 1e-2]; RF lr [0.05, 5], hidden_step_scale "
        "[1, 30], weight decay [1e-6, 5e-4], rf_parallel feedback lr [1e-6, 1e-2]; the paper's update lr "
        "[0.01, 10] and leaky-ReLU slope [0.1, 0.95]), a cosine learning-rate decay over the epoch budget, each "
        "rule's default activation, its tuned defaults tried first, a sleep every 20 steps, selection on the "
        "validation split; reported: test accuracy at the epoch of best validation accuracy",
    ),
)


@dataclass(frozen=True)
class Budget:
    name: str
    configurations: int  # per rule and protocol
    epochs: int  # ASHA's max_t and the retraining length
    seeds: int
    grace_period: int
    reduction_factor: int
    train_subset: int | None = None

    def describe(self) -> str:
        subset = f", first {self.train_subset} training examples" if self.train_subset else ""
        return (
            f"{self.name}: {self.configurations} configurations per rule, ASHA max_t {self.epochs} epochs "
            f"(grace {self.grace_period}, reduction ×{self.reduction_factor}), best configuration retrained "
            f"{self.epochs} epochs × {self.seeds} seeds{subset}"
        )


PAPER_BUDGET = Budget("paper", configurations=20, epochs=100, seeds=3, grace_period=1, reduction_factor=4)
# quick: sized so fashion_mnist fits in 30 minutes on a 2-core CPU, digits in well under 5 (docs/RESULTS.md).
QUICK_BUDGETS = {
    "digits": Budget("quick", configurations=6, epochs=30, seeds=3, grace_period=3, reduction_factor=3),
    "default": Budget("quick", configurations=5, epochs=20, seeds=3, grace_period=2, reduction_factor=3),
}


def budget_for(name: str, dataset: str, **overrides: int | None) -> Budget:
    if name == "paper":
        base = PAPER_BUDGET
    elif name == "quick":
        base = QUICK_BUDGETS.get(dataset, QUICK_BUDGETS["default"])
    else:
        raise ValueError(f"budget must be 'paper' or 'quick', not {name!r}")
    changes: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return base
    budget = replace(base, **changes)
    return replace(
        budget,
        name=f"{base.name} (changed: {', '.join(f'{k}={v}' for k, v in changes.items())})",
        grace_period=min(budget.grace_period, budget.epochs),
    )


# ---- the specs -------------------------------------------------------------------------------------


def search_spec(
    protocol: Protocol,
    group: RowGroup,
    budget: Budget,
    dataset: str,
    data_dir: str | None,
    experiment: str,
    max_concurrent: int | None,
) -> SweepSpec:
    points = []
    for rule in group.rules if group.start is not None else ():
        defaults = TrainConfig.from_dict({"algorithm": rule, **group.fixed.get(rule, {})}).resolved().to_dict()
        defaults.update((group.start or {}).get(rule, {}))
        points.append({"algorithm": rule, **{k: defaults[k] for k in group.domains[rule]}})
    return parse_spec(
        {
            "name": _sweep_name(dataset, protocol, group, "search"),
            "dataset": _dataset_section(dataset, data_dir, budget),
            "model": {"activation": protocol.activation} if protocol.activation else {},
            "algorithm": list(group.rules),
            "parameters": {"batch_size": PAPER_PARAMETERS["batch_size"], "lr_schedule": protocol.lr_schedule},
            "algorithm_parameters": {
                rule: {**group.domains[rule], **group.fixed.get(rule, {})} for rule in group.rules
            },
            "search": {
                "method": "hyperopt",
                "metric": protocol.metric,
                "mode": "max",
                "num_samples": budget.configurations,
                "max_concurrent_trials": max_concurrent,
                "seed": 0,
                "points_to_evaluate": points,
            },
            "scheduler": {
                "type": "asha",
                "max_t": budget.epochs,
                "grace_period": budget.grace_period,
                "reduction_factor": budget.reduction_factor,
            },
            "tracking": {"experiment": experiment},
        }
    )


def _sweep_name(dataset: str, protocol: Protocol, group: RowGroup, kind: str) -> str:
    return f"reproduce-{dataset}-{protocol.key}{'-' + group.key if group.key else ''}-{kind}"


def retrain_spec(
    protocol: Protocol,
    group: RowGroup,
    budget: Budget,
    dataset: str,
    data_dir: str | None,
    experiment: str,
    best_configs: dict[str, dict[str, Any]],
    max_concurrent: int | None,
) -> SweepSpec:
    """Each rule's best configuration (keyed by rule), fixed, with `seed` as the only searched value: one trial
    per seed."""
    seeds = list(range(budget.seeds))
    per_rule = {}
    for rule, config in best_configs.items():
        own = rule_fields(rule)
        per_rule[rule] = {
            k: v
            for k, v in config.items()
            if k in own
            and k not in RESERVED_FIELDS
            and k != "seed"
            and v is not None
            and not (k in SECTION_FIELDS and k != "activation")
            and not (k == "activation" and protocol.activation)
        }
    return parse_spec(
        {
            "name": _sweep_name(dataset, protocol, group, "retrain"),
            "dataset": _dataset_section(dataset, data_dir, budget),
            "model": {"activation": protocol.activation} if protocol.activation else {},
            "algorithm": list(best_configs),
            "parameters": {"seed": {"distribution": "choice", "values": seeds}},
            "algorithm_parameters": per_rule,
            "search": {
                "method": "random",
                "metric": protocol.metric,
                "mode": "max",
                "num_samples": len(seeds),
                "max_concurrent_trials": max_concurrent,
                "seed": 0,
                "points_to_evaluate": [{"algorithm": r, "seed": s} for r in best_configs for s in seeds],
            },
            "scheduler": {"type": "fifo", "max_t": budget.epochs},
            "tracking": {"experiment": experiment},
        }
    )


def _dataset_section(dataset: str, data_dir: str | None, budget: Budget) -> dict[str, Any]:
    section: dict[str, Any] = {"name": dataset}
    if data_dir:
        section["data_dir"] = data_dir
    if budget.train_subset:
        section["train_subset"] = budget.train_subset
    return section
