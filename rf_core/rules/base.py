"""The one interface every learning rule implements, and the registry that finds rules by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import nn

from rf_core.model import MLP, ForwardCache
from rf_core.params import Ledger, RuleParams

Tensor = torch.Tensor
P = TypeVar("P", bound=RuleParams)

# Every per-epoch number a rule reports about itself starts with this (the sweep service logs them as metrics).
RULE_METRIC_PREFIX = "feedback_"

_REGISTRY: dict[str, type[LearningRule[Any]]] = {}
R = TypeVar("R", bound="type[LearningRule[Any]]")


def register(cls: R) -> R:
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[LearningRule[Any]]]:
    return dict(_REGISTRY)


# One layer's update direction, factored: D_l = errorsᵀ @ inputs (rank ≤ batch), and the bias direction or None.
# Every rule here moves W_l by an outer product over the batch; kept factored, the step is one in-place
# addmm per layer instead of forming D_l and subtracting it (measured: the 400×784 layer's update ~35 % faster
# timed alone, a whole bp step ~5 %; docs/RF_CORE.md §4).
LayerUpdate = tuple[Tensor, Tensor, Tensor | None]


class LearningRule(nn.Module, Generic[P]):
    """Computes each layer's update direction D_l for a batch; the step is W_l ← W_l − lr·D_l.

    A rule declares its hyperparameters as `Params` (a frozen dataclass: the fields it reads, nothing else),
    its defaults for the common fields it cares about (`default_lr`, `default_activation`), and its locality
    `ledger`. Subclasses implement `factored_directions`; rules with feedback matrices keep them as buffers
    (`register_buffer`), so they travel in state_dict() and never show up as parameters.
    """

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `rfsweep rules`
    params: P
    steps_done: Tensor  # a buffer: training steps taken
    Params: ClassVar[type[RuleParams]] = RuleParams
    default_lr: ClassVar[float]
    default_activation: ClassVar[str] = "leaky_relu"

    def __init__(self, model: MLP, params: P, generator: torch.Generator) -> None:
        super().__init__()
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name} takes {self.Params.__name__}, got {type(params).__name__}")
        self.model = [model]  # a list, so the model is not registered as a submodule of the rule
        self.params = params.resolved()  # type: ignore[assignment]  # resolved() keeps the Params type
        self.generator = generator
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    @property
    def net(self) -> MLP:
        return self.model[0]

    # ---- what the rule is, for labels and the ledger ----------------------------------------------------

    @classmethod
    def ledger(cls, params: P) -> Ledger:
        raise NotImplementedError

    @classmethod
    def describe(cls, params: P) -> dict[str, str]:
        """`update` and `feedback`: short names (for tags and tables); `update_detail` / `feedback_detail`: what
        they are, in words."""
        raise NotImplementedError

    # ---- the step -------------------------------------------------------------------------------------

    def factored_directions(self, cache: ForwardCache, output_error: Tensor) -> list[LayerUpdate]:
        """Per layer (errors, inputs, bias direction or None) with D_l = errorsᵀ @ inputs, for the batch in `cache`.

        `output_error` is e = softmax(logits) − onehot(y), one row per sample (not divided by the batch).
        """
        raise NotImplementedError

    def directions(self, cache: ForwardCache, output_error: Tensor) -> list[tuple[Tensor, Tensor | None]]:
        """Per layer (weight direction D_l, bias direction or None), dense: for diagnostics and tests."""
        return [(errors.T @ inputs, bias) for errors, inputs, bias in self.factored_directions(cache, output_error)]

    def before_step(self) -> None:
        """Hook run before each training step (the two-phase rule's sleep phase lives here)."""

    def after_step(self, cache: ForwardCache) -> None:
        """Hook run after the forward weights moved (the parallel rule trains its feedback here)."""

    def total_weight_decay(self, weight_decay: float) -> float:
        """The decay the step applies to W, given the run's `weight_decay` (Kolen–Pollack adds its own)."""
        return weight_decay

    def after_update(self, updates: list[LayerUpdate], lr: float, decay: float) -> None:
        """Hook run with the step's factored updates, its lr and W's decay factor 1 − lr·total_weight_decay
        (Kolen–Pollack moves its feedback by the same update here). It must not read W."""

    def feedback_matrices(self) -> dict[int, Tensor]:
        """Layer index → feedback matrix, for diagnostics (empty for bp)."""
        return {}

    def epoch_report(self, diagnostics: bool = True) -> dict[str, float]:
        """Per-epoch numbers about the rule's own state, each named with RULE_METRIC_PREFIX (RF: the running
        count of failed sleeps; with `diagnostics`, each layer's feedback round-trip error)."""
        return {}

    def run_report(self) -> dict[str, Any]:
        """Run totals about the rule's own state (RF: sleeps, feedback failures and fallbacks)."""
        return {}

    @torch.no_grad()
    def step(self, x: Tensor, y: Tensor, lr: float, weight_decay: float = 0.0) -> tuple[Tensor, Tensor]:
        """One training step on a batch; returns (logits, per-sample cross-entropy loss) before the update.

        W ← (1 − lr·λ)·W − lr·D in one kernel per layer, λ = total_weight_decay(weight_decay) (the run's
        weight_decay; Kolen–Pollack adds its own); biases are not decayed."""
        self.before_step()
        net = self.net
        cache = net.forward_cached(x)
        logits = cache.logits
        log_probs = torch.log_softmax(logits, dim=1)
        loss = -log_probs.gather(1, y[:, None]).squeeze(1)
        error = log_probs.exp_()
        error[torch.arange(len(y), device=y.device), y] -= 1.0
        decay = 1.0 - lr * self.total_weight_decay(weight_decay)
        updates = self.factored_directions(cache, error)
        for l, (errors, inputs, db) in enumerate(updates):
            net.weights[l].addmm_(errors.T, inputs, beta=decay, alpha=-lr)
            if db is not None and net.biases is not None:
                net.biases[l].sub_(db, alpha=lr)
        self.after_update(updates, lr, decay)
        self.after_step(cache)
        self.steps_done += 1
        return logits, loss


def backprop_through(
    cache: ForwardCache, output_error: Tensor, backward: Sequence[Tensor | None], net: MLP
) -> list[LayerUpdate]:
    """Gradient-style directions with error carried down by `backward[l]` in place of W_l (l ≥ 1; `backward[0]`
    is never read, since the input's error is not needed, and may be None).

    δ_L = e/B; D_l = δ_lᵀ h_{l−1}; δ_{l−1} = (δ_l M_l) ⊙ σ'(a_{l−1}). With M_l = W_l this is backprop;
    with a fixed random M_l it is feedback alignment.
    """
    delta = output_error / output_error.shape[0]
    out: list[LayerUpdate] = [None] * net.num_layers  # type: ignore[list-item]
    for l in range(net.num_layers - 1, -1, -1):
        out[l] = (delta, cache.inputs[l], delta.sum(0) if net.biases is not None else None)
        if l > 0:
            carried = backward[l]
            assert carried is not None
            delta = net.activation.gate(delta @ carried, cache.pre[l - 1])
    return out
