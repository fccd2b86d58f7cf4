"""The training configuration: every hyperparameter of one training run, in one typed object.

Plain dataclasses (no pydantic) so that rf_core runs with torch alone. The sweep layer builds its
spec model on top of these field names; `RULE_SPECIFIC_FIELDS` tells it which fields a learning rule
reads, so a sweep parameter goes only to the rules that have it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {
    # The paper's architectures (§5.1): 784-400-200-100-50-10 and 3072-1000-500-100-10.
    "mnist": (400, 200, 100, 50),
    "fashion_mnist": (400, 200, 100, 50),
    "cifar10": (1000, 500, 100),
    "digits": (64, 32),
    "synthetic": (32, 16),
}

ACTIVATIONS = ("leaky_relu", "leaky_softplus", "tanh")
PINV_METHODS = ("cholesky", "newton_schulz", "exact", "recirculation")
RF_FORMS = ("newton", "paper")
RF_BACKWARDS = ("gated", "inverse")
RF_BATCH_MODES = ("per_sample", "joint", "delta")
FEEDBACK_INITS = ("pinv", "transpose", "random")
LAYER_STEP_SCALES = ("uniform", "inverse_depth")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `lr=None` / `feedback_lr=None` mean "the rule's tuned default"."""

    # what to learn
    algorithm: str = "bp"
    dataset: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    train_subset: int | None = None  # use only the first N training examples (quick runs, tests)

    # the network
    hidden: tuple[int, ...] | None = None  # None: the dataset's default (DEFAULT_HIDDEN)
    activation: str | None = None  # leaky_relu | leaky_softplus | tanh; None: the rule's default (leaky_relu; tanh for fa)
    activation_slope: float = 0.1  # negative-side slope of leaky ReLU / leaky softplus
    bias: bool = False
    init_gain: float = 2.45  # weights ~ U(-g/√fan_in, g/√fan_in); √6 ≈ 2.45 keeps ‖h‖ from shrinking layer to layer

    # optimisation (plain SGD, as in the paper)
    lr: float | None = None
    lr_schedule: str = "constant"  # constant (the paper's plain SGD) | cosine: lr·½(1 + cos(π·step/total steps))
    weight_decay: float = 0.0  # L2 pull on the weights (not biases): W ← W − lr_t·(D + weight_decay·W), every rule
    batch_size: int = 32
    epochs: int = 10
    seed: int = 0
    device: str = "cpu"

    # feedback alignment (fa, dfa): scale of the fixed random feedback matrices
    feedback_scale: float = 1.0

    # Reciprocal Feedback (rf_two_phase, rf_parallel, pseudobackprop): stability knobs
    rf_form: str = "newton"  # "newton": divide every layer's own update by σ'; "paper": §4.2 literally
    inv_slope_clamp: float = 2.0  # largest factor 1/σ'(a) may apply to a displacement
    norm_eps: float = 1.0  # ε in ΔW = Δa hᵀ / (‖h‖² + ε)
    layer_step_scale: str = "inverse_depth"  # each of L layers fixes 1/L of the error (see rules/_rf.py)
    rf_batch: str = "joint"  # per_sample: mean of each sample's Newton step; joint: one step for the batch
    joint_ridge: float = 0.1  # joint: ridge added to the batch Gram matrix, relative to its mean diagonal
    hidden_step_scale: float = 10.0  # extra factor on the hidden layers' steps (the output layer keeps 1);
    # 10: RF's hidden layers learn too little at 1 (Fashion-MNIST train acc. 0.90 vs bp's 0.99), RF_STABILITY.md §5
    pinv_damping: float = 0.0  # μ: feedback Wᵀ(WWᵀ + μ·mean σ²·I)⁻¹ (Levenberg–Marquardt), 0 = W⁺
    rf_backward: str = "gated"  # Δa_{l−1} from Δh_{l−1}: "gated" ×σ'(a), "inverse" ÷σ'(a) clamped (§4.2's D_σ⁺)
    max_gain: float | None = None  # per layer, ‖Δh_{l−1}‖ ≤ max_gain·‖Δa_l‖ for each sample (None: off)

    # rf_two_phase: the sleep phase
    # Feedback recomputed every 100 update steps. The paper (A.1) uses 20; on Fashion-MNIST 100 and 200 trained
    # as well as 20 (docs/RF_CORE.md §4) at a step ~6 % cheaper. `rfsweep reproduce` runs the paper's 20.
    pinv_every: int = 100
    pinv_method: str = "cholesky"
    pinv_tol: float = 1e-4
    pinv_max_iter: int = 30
    sleep_damping: float = 0.9  # λ of the damped Ben-Israel–Cohen / Recirculation update (paper A.4)
    sleep_steps: int = 200  # recirculation: noise-driven iterations per sleep phase
    sleep_noise_batch: int = 256

    # rf_parallel: feedback trained every step by a linear-autoencoder rule (§3.1)
    feedback_lr: float | None = None
    feedback_init: str = "pinv"

    # reporting
    diagnostics: bool = True  # per-epoch pinv distance, Moore–Penrose residuals, angle to BP

    def __post_init__(self) -> None:
        if self.hidden is not None and not isinstance(self.hidden, tuple):
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason this configuration is invalid, as 'field: reason' strings."""
        from rf_core.rules import available_rules  # late: rules import config

        out: list[str] = []

        def bad(name: str, reason: str) -> None:
            out.append(f"{name}: {reason}")

        if self.algorithm not in available_rules():
            bad("algorithm", f"unknown rule {self.algorithm!r}; choose one of {sorted(available_rules())}")
        if self.dataset not in DEFAULT_HIDDEN:
            bad("dataset", f"unknown dataset {self.dataset!r}; choose one of {sorted(DEFAULT_HIDDEN)}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            bad("activation", f"must be one of {list(ACTIVATIONS)}")
        if self.pinv_method not in PINV_METHODS:
            bad("pinv_method", f"must be one of {list(PINV_METHODS)}")
        if self.rf_form not in RF_FORMS:
            bad("rf_form", f"must be one of {list(RF_FORMS)}")
        if self.rf_backward not in RF_BACKWARDS:
            bad("rf_backward", f"must be one of {list(RF_BACKWARDS)}")
        if self.rf_batch not in RF_BATCH_MODES:
            bad("rf_batch", f"must be one of {list(RF_BATCH_MODES)}")
        if self.joint_ridge < 0:
            bad("joint_ridge", "must be >= 0")
        if self.feedback_init not in FEEDBACK_INITS:
            bad("feedback_init", f"must be one of {list(FEEDBACK_INITS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"must be one of {list(LR_SCHEDULES)}")
        if self.layer_step_scale not in LAYER_STEP_SCALES:
            bad("layer_step_scale", f"must be one of {list(LAYER_STEP_SCALES)}")
        for name in ("batch_size", "epochs", "pinv_every", "pinv_max_iter", "sleep_steps", "sleep_noise_batch"):
            if int(getattr(self, name)) < 1:
                bad(name, "must be >= 1")
        for name in ("lr", "feedback_lr"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                bad(name, "must be > 0")
        for name in ("init_gain", "feedback_scale", "inv_slope_clamp", "pinv_tol"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        if not self.hidden_step_scale > 0:
            bad("hidden_step_scale", "must be > 0")
        if not 0 <= self.weight_decay < 1:
            bad("weight_decay", "must be in [0, 1)")
        if self.pinv_damping < 0:
            bad("pinv_damping", "must be >= 0")
        if self.norm_eps < 0:
            bad("norm_eps", "must be >= 0")
        if not 0 <= self.activation_slope < 1:
            bad("activation_slope", "must be in [0, 1)")
        if not 0 <= self.sleep_damping < 1:
            bad("sleep_damping", "must be in [0, 1)")
        if not 0 <= self.val_fraction < 1:
            bad("val_fraction", "must be in [0, 1)")
        if self.hidden is not None and any(h < 1 for h in self.hidden):
            bad("hidden", "every width must be >= 1")
        if self.train_subset is not None and self.train_subset < 1:
            bad("train_subset", "must be >= 1")
        if self.max_gain is not None and not self.max_gain > 0:
            bad("max_gain", "must be > 0")
        return out

    # ---- conveniences -------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        unknown = set(values) - cls.field_names()
        if unknown:
            raise ValueError(f"unknown training-config fields: {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["hidden"] is not None:
            d["hidden"] = list(d["hidden"])
        return d

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return self.hidden if self.hidden is not None else DEFAULT_HIDDEN[self.dataset]

    def resolved(self) -> "TrainConfig":
        """This config with the rule's defaults (learning rates, activation) filled in."""
        from rf_core.rules import get_rule

        rule = get_rule(self.algorithm)
        changes: dict[str, Any] = {}
        if self.activation is None:
            changes["activation"] = rule.default_activation
        if self.lr is None:
            changes["lr"] = rule.default_lr
        if self.feedback_lr is None and rule.default_feedback_lr is not None:
            changes["feedback_lr"] = rule.default_feedback_lr
        return self.replace(**changes) if changes else self


# Fields that every rule reads; the rest belong to the rules that list them (see rules/*.py).
COMMON_FIELDS: frozenset[str] = frozenset(
    {
        "algorithm", "dataset", "data_dir", "val_fraction", "train_subset", "hidden", "activation",
        "activation_slope", "bias", "init_gain", "lr", "lr_schedule", "weight_decay", "batch_size", "epochs", "seed", "device",
        "diagnostics",
    }
)
RF_FIELDS: frozenset[str] = frozenset(
    {"rf_form", "inv_slope_clamp", "norm_eps", "layer_step_scale", "max_gain", "pinv_damping", "hidden_step_scale",
     "rf_batch", "joint_ridge", "rf_backward"}
)
SLEEP_FIELDS: frozenset[str] = frozenset(
    {"pinv_every", "pinv_method", "pinv_tol", "pinv_max_iter", "sleep_damping", "sleep_steps", "sleep_noise_batch"}
)
