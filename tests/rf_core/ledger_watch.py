"""A rule's locality ledger observed by watching what the rule touches (not by reading its declaration).

Shared by tests/rf_core/test_rule_contract.py (every registered rule, its defaults) and test_ledger.py (the
settings that change a ledger). Each entry of `observed_ledger` is seen as:

- weight_transport: the backward pass (`factored_directions`) reads a forward weight W (other than its sign).
- sign_transport: the backward pass reads the sign of a forward weight (`torch.sign(W)`).
- feedback_from_weights: forming, refreshing or training the feedback (`__init__`, `before_step`, `after_step`,
  `after_update`) reads W other than through a ForwardProbe (y ↦ W y, what the layer itself computes).
- closed_form_inverse: any of those calls a matrix inverse, solve or factorisation.
- batch_global: the batch's direction differs from the mean of its samples' own directions.
- output_error_broadcast: a hidden layer's direction ignores the layers between it and the output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from rf_core import get_rule
from rf_core.activations import make_activation
from rf_core.feedback import probe_active
from rf_core.metrics import output_error
from rf_core.model import MLP

INVERSE_OPS = {
    "cholesky",
    "cholesky_ex",
    "cholesky_inverse",
    "cholesky_solve",
    "inv",
    "inv_ex",
    "pinv",
    "solve",
    "solve_ex",
    "svd",
    "lstsq",
    "solve_triangular",
    "eigh",
    "qr",
}
METADATA = {"shape", "dtype", "device", "ndim", "layout", "requires_grad", "is_cuda"}


class Watch(TorchFunctionMode):
    """Records torch calls that take one of `weights` (outside a ForwardProbe) and calls of inverse ops."""

    def __init__(self, weights):
        super().__init__()
        self.weight_ids = {id(w) for w in weights}
        self.read_weights = False
        self.read_signs = False
        self.inverses: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        descriptor = getattr(getattr(func, "__self__", None), "__name__", "")
        reads_values = descriptor not in METADATA  # a layer may know its own shape, not its weights
        name = getattr(func, "__name__", "")
        if reads_values and not probe_active() and any(id(a) in self.weight_ids for a in (*args, *kwargs.values())):
            if name == "sign":
                self.read_signs = True
            else:
                self.read_weights = True
        if name in INVERSE_OPS or (name.startswith("linalg_") and name[7:] in INVERSE_OPS):
            self.inverses.add(name)
        return func(*args, **kwargs)


def small_network(seed: int = 0) -> tuple[MLP, torch.Generator, torch.Tensor, torch.Tensor]:
    """A 12-10-8-6-4 leaky-ReLU network, its generator and a batch of 6 random samples, all from `seed`."""
    g = torch.Generator().manual_seed(seed)
    net = MLP([12, 10, 8, 6, 4], make_activation("leaky_relu", 0.1), init_gain=2.45, generator=g)
    x = torch.randn(6, 12, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    return net, g, x, y


def observed_ledger(name: str, params: dict[str, Any]) -> dict[str, bool]:
    """Rule `name` with Params(**params) run on `small_network()`; the ledger entries its calls showed."""
    net, g, x, y = small_network()
    weights = list(net.weights)
    rule_type = get_rule(name)
    feedback_watch, backward_watch = Watch(weights), Watch(weights)
    with feedback_watch:
        rule = rule_type(net, rule_type.Params(**params), g)
        rule.before_step()  # two-phase: the first sleep; rf_parallel: development
    for _ in range(3):
        rule.step(x, y, lr=0.01)  # outside any watch: the forward pass and the update legitimately use W
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    with feedback_watch:
        rule.feedback_matrices()  # pseudobackprop forms its feedback here, from W
        if hasattr(rule, "sleep"):
            rule.sleep()  # a periodic sleep, warm-started
        rule.after_step(cache)
    updates = rule.factored_directions(cache, e)  # outside the watch: the backward pass is watched below
    with feedback_watch:
        rule.after_update(updates, 0.01, 1.0)  # Kolen–Pollack moves its feedback here
    draws = g.get_state()  # each call below draws the same batchwise randomness (brsf's magnitudes), so only
    with backward_watch:  # a dependence on the other samples' data can tell the batch from its samples
        batch = rule.directions(cache, e)
    singles = []
    for i in range(len(y)):
        g.set_state(draws)
        singles.append(rule.directions(net.forward_cached(x[i : i + 1]), e[i : i + 1]))
    mean_of_singles = [sum(s[l][0] for s in singles) / len(singles) for l in range(net.num_layers)]
    batch_global = any(
        not torch.allclose(b[0], m, rtol=1e-4, atol=1e-6) for b, m in zip(batch, mean_of_singles, strict=True)
    )

    shifted = net.forward_cached(x)  # perturb what lies between layer 1 and the output, keep e
    for l in range(1, net.num_layers - 1):
        shifted.pre[l] = shifted.pre[l] + 3.0
    g.set_state(draws)
    broadcast = torch.allclose(rule.directions(shifted, e)[0][0], batch[0][0])
    return {
        "weight_transport": backward_watch.read_weights,
        # the sign of W is W's information too when it forms feedback outside the backward pass
        "feedback_from_weights": feedback_watch.read_weights or feedback_watch.read_signs,
        "closed_form_inverse": bool(feedback_watch.inverses | backward_watch.inverses),
        "batch_global": batch_global,
        "output_error_broadcast": broadcast,
        "sign_transport": backward_watch.read_signs,
    }


def declared_ledger(name: str, params: dict[str, Any]) -> dict[str, bool]:
    """What rule `name` says its ledger is with Params(**params)."""
    rule_type = get_rule(name)
    return rule_type.ledger(rule_type.Params(**params).resolved()).to_dict()
