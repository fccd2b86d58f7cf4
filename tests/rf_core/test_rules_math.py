"""The math of each learning rule, pinned in float64 against autograd and against the Newton step."""

import pytest
import torch

from rf_core.config import PINV_METHODS
from rf_core.rules.rf_two_phase import SLEEP_LEARNERS

from rf_core import TrainConfig, get_rule
from rf_core.model import MLP, ForwardCache
from rf_core.activations import make_activation


pytestmark = pytest.mark.usefixtures("float64_default")


def _net(sizes, bias=False, seed=0, activation="leaky_relu"):
    g = torch.Generator().manual_seed(seed)
    return MLP(sizes, make_activation(activation, 0.1), bias=bias, generator=g, dtype=torch.float64), g


def _batch(n, dim, classes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _output_error(logits, y):
    e = torch.softmax(logits, 1)
    e[torch.arange(len(y)), y] -= 1
    return e


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["leaky_relu", "leaky_softplus", "tanh"])
def test_bp_directions_equal_autograd_gradients(bias, activation):
    net, g = _net([7, 6, 5, 3], bias=bias, activation=activation)
    x, y = _batch(9, 7, 3)
    rule = get_rule("bp")(net, TrainConfig(algorithm="bp", bias=bias, activation=activation), g)
    cache = net.forward_cached(x)
    ours = rule.directions(cache, _output_error(cache.logits, y))

    params = [w.detach().clone().requires_grad_(True) for w in net.weights]
    biases = [b.detach().clone().requires_grad_(True) for b in net.biases] if bias else None
    h = x
    for l, w in enumerate(params):
        h = h @ w.T + (biases[l] if bias else 0)
        if l < len(params) - 1:
            h = net.activation.forward(h)
    torch.nn.functional.cross_entropy(h, y).backward()
    for l, (dw, db) in enumerate(ours):
        torch.testing.assert_close(dw, params[l].grad, rtol=1e-10, atol=1e-12)
        if bias:
            torch.testing.assert_close(db, biases[l].grad, rtol=1e-10, atol=1e-12)


def test_bp_step_with_weight_decay_equals_torch_sgd_with_weight_decay():
    net, g = _net([7, 6, 3], bias=True)
    x, y = _batch(9, 7, 3)
    lr, decay = 0.3, 0.05
    params = [w.detach().clone().requires_grad_(True) for w in net.weights]
    biases = [b.detach().clone().requires_grad_(True) for b in net.biases]
    reference = torch.optim.SGD([{"params": params, "weight_decay": decay}, {"params": biases}], lr=lr)
    h = x
    for l, (w, b) in enumerate(zip(params, biases)):
        h = h @ w.T + b
        if l < len(params) - 1:
            h = net.activation.forward(h)
    torch.nn.functional.cross_entropy(h, y).backward()
    reference.step()

    rule = get_rule("bp")(net, TrainConfig(algorithm="bp", bias=True, weight_decay=decay), g)
    rule.step(x, y, lr)
    for ours, theirs in zip([*net.weights, *net.biases], [*params, *biases]):  # biases are not decayed
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-10, atol=1e-12)


def test_fa_with_transposed_weights_as_feedback_equals_bp():
    net, g = _net([8, 6, 4, 3])
    x, y = _batch(5, 8, 3)
    fa = get_rule("fa")(net, TrainConfig(algorithm="fa"), g)
    for l, w in enumerate(net.weights):  # B_l = W_l: the error then travels through W_lᵀ, as in backprop
        getattr(fa, f"feedback_{l}").copy_(w)
    bp = get_rule("bp")(net, TrainConfig(algorithm="bp"), g)
    cache = net.forward_cached(x)
    e = _output_error(cache.logits, y)
    for (a, _), (b, _) in zip(fa.directions(cache, e), bp.directions(cache, e)):
        torch.testing.assert_close(a, b)


def test_feedback_matrices_are_buffers_not_parameters():
    net, g = _net([8, 6, 4, 3])
    for name in ("fa", "dfa", "rf_two_phase", "rf_parallel"):
        rule = get_rule(name)(net, TrainConfig(algorithm=name), g)
        assert list(rule.parameters()) == []
        assert any(k.startswith(("feedback_", "direct_")) for k in rule.state_dict())


@pytest.mark.parametrize("name", ["rf_two_phase", "rf_parallel", "pseudobackprop"])
@pytest.mark.parametrize("form", ["newton", "paper"])
def test_rf_single_linear_layer_newton_step_moves_output_by_minus_e(name, form):
    net, g = _net([6, 4])
    x, y = _batch(1, 6, 4)
    config = TrainConfig(algorithm=name, norm_eps=0.0, rf_form=form)
    rule = get_rule(name)(net, config, g)
    before = net(x)
    e = _output_error(before, y)
    rule.step(x, y, lr=1.0)
    torch.testing.assert_close(net(x) - before, -e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backward", ["inverse", "gated"])
def test_rf_propagates_through_the_pseudoinverse_and_the_nonlinearity(backward):
    """Two layers, exact pinv, generous clamp, one sample: Δa_1 = (W_2⁺ e) ⊘ σ'(a_1) as §4.2 writes it
    ("inverse"), or (W_2⁺ e) ⊙ σ'(a_1) ("gated", the default)."""
    net, g = _net([6, 5, 3])
    x, y = _batch(1, 6, 3)
    config = TrainConfig(algorithm="pseudobackprop", norm_eps=0.0, inv_slope_clamp=1e9, layer_step_scale="uniform",
                         hidden_step_scale=1.0, rf_backward=backward)
    rule = get_rule("pseudobackprop")(net, config, g)
    cache = net.forward_cached(x)
    e = _output_error(cache.logits, y)
    dirs = rule.directions(cache, e)
    w2_pinv = torch.linalg.pinv(net.weights[1])
    slope = net.activation.derivative(cache.pre[0])
    d_a1 = (e @ w2_pinv.T) / slope if backward == "inverse" else (e @ w2_pinv.T) * slope
    expected_dw1 = d_a1.T @ x / (x.square().sum())
    torch.testing.assert_close(dirs[0][0], expected_dw1)


@pytest.mark.parametrize("name", ["rf_two_phase", "rf_parallel"])
def test_joint_step_is_the_same_step_whether_solved_on_the_batch_or_the_feature_side(name):
    """Batch 24 against widths 30, 20, 12, 8: the first layer solves its joint step with the 24 × 24 batch
    Gram, the narrower ones with their width × width feature Gram. Both must be
    ΔW_l = s_l Δa_lᵀ (H Hᵀ + ρI)⁻¹ H with ρ = ridge × mean diag(H Hᵀ) + ε, written out here."""
    sizes = [30, 20, 12, 8, 4]
    net, g = _net(sizes)
    x, y = _batch(24, 30, 4)
    config = TrainConfig(algorithm=name, hidden=tuple(sizes[1:-1]), rf_batch="joint", joint_ridge=0.1, norm_eps=1e-3)
    rule = get_rule(name)(net, config, g)
    rule.before_step()  # two-phase: the first sleep fills the feedback matrices
    cache = net.forward_cached(x)
    e = _output_error(cache.logits, y)
    dirs = rule.directions(cache, e)

    feedback = rule.feedback_matrices()
    d_pre, shares = e, [0.25 * config.hidden_step_scale] * 3 + [0.25]
    for l in range(3, -1, -1):
        h = cache.inputs[l]
        gram = h @ h.T
        ridge = 0.1 * gram.diagonal().mean() + 1e-3
        expected = shares[l] * d_pre.T @ torch.linalg.solve(gram + ridge * torch.eye(24), h)
        torch.testing.assert_close(dirs[l][0], expected, rtol=1e-9, atol=1e-12)
        if l > 0:
            d_pre = net.activation.gate(d_pre @ feedback[l].T, cache.pre[l - 1])
    assert [h.shape[1] < 24 for h in cache.inputs] == [False, True, True, True]  # both sides were exercised


def test_rf_parallel_feedback_converges_to_pseudoinverse_on_white_noise():
    """Layer 2's W (3×4) has full row rank; its feedback starts random (feedback_init='random'); its
    inputs y ~ N(0, I₄). The fixed point of δF = (FWy − y)(Wy)ᵀ is then F = W⁺."""
    net, g = _net([10, 4, 3])
    config = TrainConfig(algorithm="rf_parallel", feedback_init="random", feedback_lr=0.05)
    rule = get_rule("rf_parallel")(net, config, g)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(5)))
    net.weights[1].copy_(q[:3] * torch.tensor([[1.0], [0.7], [0.5]]))  # full row rank, condition number 2
    w = net.weights[1]
    noise = torch.Generator().manual_seed(3)
    start = torch.linalg.matrix_norm(rule.feedback_1 - torch.linalg.pinv(w)) / torch.linalg.matrix_norm(torch.linalg.pinv(w))
    for feedback_lr in (0.05, 0.005, 0.0005):  # a decaying rate averages the sampling noise away
        rule.config = config.replace(feedback_lr=feedback_lr)
        for _ in range(1500):
            y = torch.randn(256, 4, generator=noise)  # the layer's input; its width is W's fan-in
            cache = ForwardCache(inputs=[torch.zeros(256, 10), y], pre=[torch.zeros(256, 4), y @ w.T])
            rule.after_step(cache)
    distance = torch.linalg.matrix_norm(rule.feedback_1 - torch.linalg.pinv(w)) / torch.linalg.matrix_norm(torch.linalg.pinv(w))
    assert start > 0.5
    assert distance < 1e-2


@pytest.mark.parametrize("method", PINV_METHODS)
def test_every_sleep_method_learns_the_pseudoinverse_of_each_layer(method):
    assert set(SLEEP_LEARNERS) == set(PINV_METHODS), "each pinv_method has a sleep learner"
    net, g = _net([12, 8, 6, 4])
    rule = get_rule("rf_two_phase")(net, TrainConfig(algorithm="rf_two_phase", pinv_method=method), g)
    rule.sleep()
    rule.sleep()  # a warm start from the first sleep's feedback (newton_schulz, recirculation)
    for l, feedback in rule.feedback_matrices().items():
        target = torch.linalg.pinv(net.weights[l])
        assert torch.linalg.norm(feedback - target) / torch.linalg.norm(target) < 1e-2, (method, l)

