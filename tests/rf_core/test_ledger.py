"""Each rule's locality ledger, proven by watching what the rule touches (not by reading its declaration).

- weight_transport: the backward pass (`factored_directions`) reads a forward weight W.
- feedback_from_weights: forming, refreshing or training the feedback (`__init__`, `before_step`, `after_step`)
  reads W other than through a ForwardProbe (y ↦ W y, what the layer itself computes).
- closed_form_inverse: any of those calls a matrix inverse, solve or factorisation.
- batch_global: the batch's direction differs from the mean of its samples' own directions.
- output_error_broadcast: a hidden layer's direction ignores the layers between it and the output.
"""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from rf_core import TrainConfig, get_rule
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

# (rule, params): the defaults of every rule, and each setting that changes the ledger
CONFIGURATIONS = [
    ("bp", {}),
    ("bp_joint", {}),
    ("fa", {}),
    ("dfa", {}),
    ("pseudobackprop", {}),
    ("pseudobackprop", {"update": "paper"}),
    ("rf_two_phase", {}),
    ("rf_two_phase", {"update": "paper"}),
    ("rf_two_phase", {"feedback": "oracle_cholesky"}),
    ("rf_two_phase", {"feedback": "oracle_recirculation"}),
    ("rf_two_phase", {"fallback": "oracle", "sleep_rate": 1e-6}),
    ("rf_parallel", {}),
    ("rf_parallel", {"update": "paper_as_printed"}),
    ("rf_parallel", {"feedback_init": "oracle"}),
]


class Watch(TorchFunctionMode):
    """Records torch calls that take one of `weights` (outside a ForwardProbe) and calls of inverse ops."""

    def __init__(self, weights):
        super().__init__()
        self.weight_ids = {id(w) for w in weights}
        self.read_weights = False
        self.inverses: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        descriptor = getattr(getattr(func, "__self__", None), "__name__", "")
        reads_values = descriptor not in METADATA  # a layer may know its own shape, not its weights
        if reads_values and not probe_active() and any(id(a) in self.weight_ids for a in (*args, *kwargs.values())):
            self.read_weights = True
        name = getattr(func, "__name__", "")
        if name in INVERSE_OPS or (name.startswith("linalg_") and name[7:] in INVERSE_OPS):
            self.inverses.add(name)
        return func(*args, **kwargs)


def _setup(name, params):
    g = torch.Generator().manual_seed(0)
    net = MLP([12, 10, 8, 6, 4], make_activation("leaky_relu", 0.1), init_gain=2.45, generator=g)
    x = torch.randn(6, 12, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    return net, g, x, y


def observed_ledger(name, params):
    net, g, x, y = _setup(name, params)
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
    with backward_watch:
        batch = rule.directions(cache, e)
    singles = [rule.directions(net.forward_cached(x[i : i + 1]), e[i : i + 1]) for i in range(len(y))]
    mean_of_singles = [sum(s[l][0] for s in singles) / len(singles) for l in range(net.num_layers)]
    batch_global = any(
        not torch.allclose(b[0], m, rtol=1e-4, atol=1e-6) for b, m in zip(batch, mean_of_singles, strict=True)
    )

    shifted = net.forward_cached(x)  # perturb what lies between layer 1 and the output, keep e
    for l in range(1, net.num_layers - 1):
        shifted.pre[l] = shifted.pre[l] + 3.0
    broadcast = torch.allclose(rule.directions(shifted, e)[0][0], batch[0][0])
    return {
        "weight_transport": backward_watch.read_weights,
        "feedback_from_weights": feedback_watch.read_weights,
        "closed_form_inverse": bool(feedback_watch.inverses | backward_watch.inverses),
        "batch_global": batch_global,
        "output_error_broadcast": broadcast,
    }


@pytest.mark.parametrize("name, params", CONFIGURATIONS, ids=[f"{n}-{p}" for n, p in CONFIGURATIONS])
def test_each_rules_declared_ledger_is_what_it_does(name, params):
    declared = get_rule(name).ledger(get_rule(name).Params(**params).resolved()).to_dict()
    assert observed_ledger(name, params) == declared


def test_with_defaults_no_rf_rule_reads_w_to_form_or_refresh_its_feedback_and_the_oracles_do():
    for name in ("rf_two_phase", "rf_parallel"):
        assert observed_ledger(name, {})["feedback_from_weights"] is False
        assert TrainConfig(algorithm=name).describe()["ledger"]["feedback_from_weights"] is False
    assert observed_ledger("rf_two_phase", {"feedback": "oracle_cholesky"})["feedback_from_weights"] is True
    assert observed_ledger("rf_parallel", {"feedback_init": "oracle"})["feedback_from_weights"] is True


def test_the_watch_sees_a_read_of_w_that_bypasses_the_probe():
    """The guard itself: a learner that reads W directly (not as y ↦ W y) is caught."""
    net, *_ = _setup("rf_two_phase", {})
    watch = Watch(list(net.weights))
    with watch:
        torch.linalg.norm(net.weights[1])
    assert watch.read_weights
