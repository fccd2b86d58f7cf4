"""The math of each learning rule, pinned in float64 against autograd and against §4's Newton step."""

import pytest
import torch

from rf_core import get_rule
from rf_core.activations import make_activation
from rf_core.metrics import first_order_output_change, newton_fidelity, output_error
from rf_core.model import MLP

pytestmark = pytest.mark.usefixtures("float64_default")


def _net(sizes, bias=False, seed=0, activation="leaky_relu"):
    g = torch.Generator().manual_seed(seed)
    return MLP(sizes, make_activation(activation, 0.1), bias=bias, generator=g, dtype=torch.float64), g


def _batch(n, dim, classes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _rule(name, net, g, **params):
    rule_type = get_rule(name)
    return rule_type(net, rule_type.Params(**params), g)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["leaky_relu", "leaky_softplus", "tanh"])
def test_bp_directions_equal_autograd_gradients(bias, activation):
    net, g = _net([7, 6, 5, 3], bias=bias, activation=activation)
    x, y = _batch(9, 7, 3)
    rule = _rule("bp", net, g)
    cache = net.forward_cached(x)
    ours = rule.directions(cache, output_error(cache.logits, y))

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
    for l, (w, b) in enumerate(zip(params, biases, strict=True)):
        h = h @ w.T + b
        if l < len(params) - 1:
            h = net.activation.forward(h)
    torch.nn.functional.cross_entropy(h, y).backward()
    reference.step()

    _rule("bp", net, g).step(x, y, lr, weight_decay=decay)
    for ours, theirs in zip([*net.weights, *net.biases], [*params, *biases], strict=True):  # biases are not decayed
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-10, atol=1e-12)


def test_fa_with_transposed_weights_as_feedback_equals_bp():
    net, g = _net([8, 6, 4, 3])
    x, y = _batch(5, 8, 3)
    fa = _rule("fa", net, g)
    for l, w in enumerate(net.weights):  # B_l = W_l: the error then travels through W_lᵀ, as in backprop
        getattr(fa, f"feedback_{l}").copy_(w)
    bp = _rule("bp", net, g)
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    for (a, _), (b, _) in zip(fa.directions(cache, e), bp.directions(cache, e), strict=True):
        torch.testing.assert_close(a, b)


class _FeedbackLinear(torch.autograd.Function):
    """h ↦ h Wᵀ whose backward sends the error down through a given B instead of W (autograd does the rest)."""

    @staticmethod
    def forward(ctx, h, w, feedback):
        ctx.save_for_backward(h, feedback)
        return h @ w.T

    @staticmethod
    def backward(ctx, grad):
        h, feedback = ctx.saved_tensors
        return grad @ feedback, grad.T @ h, None


def _rule_directions(name, activation):
    """A small float64 net, a batch, the rule's directions on it, and fresh leaf copies of W for a reference."""
    net, g = _net([8, 6, 5, 3], activation=activation)
    x, y = _batch(7, 8, 3)
    rule = _rule(name, net, g)
    cache = net.forward_cached(x)
    ours = rule.directions(cache, output_error(cache.logits, y))
    return net, rule, x, y, ours, [w.detach().clone().requires_grad_(True) for w in net.weights]


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_fa_directions_equal_autograd_through_a_backward_that_uses_its_feedback(activation):
    """An independent reference: autograd through layers whose backward uses B_l in place of W_l (Lillicrap et
    al. 2014), with the cross-entropy's own gradient at the top."""
    net, fa, x, y, ours, weights = _rule_directions("fa", activation)
    h = x
    for l, w in enumerate(weights):
        h = _FeedbackLinear.apply(h, w, getattr(fa, f"feedback_{l}"))
        if l < len(weights) - 1:
            h = net.activation.forward(h)
    torch.nn.functional.cross_entropy(h, y).backward()
    for (dw, _), w in zip(ours, weights, strict=True):
        torch.testing.assert_close(dw, w.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_dfa_directions_equal_autograd_on_the_error_each_layer_is_sent(activation):
    """An independent reference (Nøkland 2016): each hidden layer alone, its input held fixed, takes the gradient
    of ⟨σ(a_l), (∂L/∂logits) D_l⟩ — the output error sent to it by its fixed D_l; the top layer the cross-entropy's
    gradient. No error travels through any W."""
    net, dfa, x, y, ours, weights = _rule_directions("dfa", activation)
    logits = net(x).detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(logits, y).backward()
    sent = logits.grad  # ∂L/∂logits = e / batch
    total = torch.zeros((), dtype=torch.float64)
    h = x
    for l, w in enumerate(weights):
        a = h.detach() @ w.T
        if l < len(weights) - 1:
            h = net.activation.forward(a)
            total = total + (h * (sent @ getattr(dfa, f"direct_{l}"))).sum()
        else:
            total = total + torch.nn.functional.cross_entropy(a, y)
    total.backward()
    for (dw, _), w in zip(ours, weights, strict=True):
        torch.testing.assert_close(dw, w.grad, rtol=1e-10, atol=1e-12)


def test_feedback_matrices_are_buffers_not_parameters():
    net, g = _net([8, 6, 4, 3])
    for name in ("fa", "dfa", "rf_two_phase", "rf_parallel"):
        rule = _rule(name, net, g)
        assert list(rule.parameters()) == []
        assert any(k.startswith(("feedback_", "direct_")) for k in rule.state_dict())


@pytest.mark.parametrize("name", ["rf_two_phase", "rf_parallel", "pseudobackprop"])
@pytest.mark.parametrize("update", ["paper", "paper_as_printed"])
def test_rf_single_linear_layer_newton_step_moves_output_by_minus_e(name, update):
    net, g = _net([6, 4])
    x, y = _batch(1, 6, 4)
    rule = _rule(name, net, g, update=update)
    before = net(x)
    e = output_error(before, y)
    rule.step(x, y, lr=1.0)
    torch.testing.assert_close(net(x) - before, -e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["leaky_relu", "leaky_softplus", "tanh"])
@pytest.mark.parametrize("name", ["pseudobackprop", "rf_two_phase"])
def test_deep_reciprocal_property_every_layer_step_alone_moves_the_output_by_minus_e(name, activation):
    """§4.2 applied layer by layer: with the paper's update and exact feedback (W_l F_l = I, every W_l of a
    contracting net has full row rank), the step of any single layer moves the output by exactly −e to first
    order, through three hidden layers and their nonlinearities."""
    net, g = _net([12, 10, 8, 6, 4], activation=activation)
    x, y = _batch(1, 12, 4)
    params = {"update": "paper"} | ({"feedback": "oracle_svd"} if name == "rf_two_phase" else {})
    rule = _rule(name, net, g, **params)
    rule.before_step()  # two-phase: the sleep computes the exact feedback
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    for l, (dw, _) in enumerate(rule.directions(cache, e)):
        torch.testing.assert_close(first_order_output_change(net, cache, l, -dw, None), -e, rtol=1e-8, atol=1e-10)
    fidelity = newton_fidelity(rule, *_batch(4, 12, 4))
    assert all(fidelity[f"layer{l}_newton_ratio"] == pytest.approx(1, abs=1e-8) for l in range(1, 5))
    assert all(fidelity[f"layer{l}_newton_cos"] == pytest.approx(1, abs=1e-8) for l in range(1, 5))


@pytest.mark.parametrize("update", ["gated_joint", "paper_as_printed"])
def test_the_other_updates_are_not_newton_steps_in_the_hidden_layers(update):
    """What rules/_rf.py says of them: the output layer's step is exact, a hidden layer's is not."""
    net, g = _net([12, 10, 8, 6, 4])
    rule = _rule("pseudobackprop", net, g, update=update)
    fidelity = newton_fidelity(rule, *_batch(8, 12, 4))
    assert fidelity["layer4_newton_cos"] == pytest.approx(1, abs=1e-8)
    for l in (1, 2, 3):
        off = abs(fidelity[f"layer{l}_newton_ratio"] - 1) + (1 - fidelity[f"layer{l}_newton_cos"])
        assert off > 0.05, (l, fidelity)


def test_paper_update_divides_by_the_slope_and_gated_joint_multiplies():
    """Two layers, exact pinv, one sample: Δa_1 = (W_2⁺ e) ⊘ σ'(a_1) in the paper's update (§4.2's D_σ⁺), and
    the layer step is Δa_1 xᵀ / ‖x‖²."""
    net, g = _net([6, 5, 3])
    x, y = _batch(1, 6, 3)
    rule = _rule("pseudobackprop", net, g, update="paper")
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    w2_pinv = torch.linalg.pinv(net.weights[1])
    slope = net.activation.derivative(cache.pre[0])
    torch.testing.assert_close(rule.directions(cache, e)[0][0], ((e @ w2_pinv.T) / slope).T @ x / x.square().sum())


def test_paper_as_printed_uses_the_pre_activation_below_and_the_displacement_of_h():
    net, g = _net([6, 5, 4, 3])
    x, y = _batch(1, 6, 3)
    rule = _rule("pseudobackprop", net, g, update="paper_as_printed")
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    d_h2 = e @ torch.linalg.pinv(net.weights[2]).T  # Δh_2 = W_3⁺ e (the top layer is linear: Δa_3 = e)
    a1 = cache.pre[0]
    torch.testing.assert_close(rule.directions(cache, e)[1][0], d_h2.T @ a1 / a1.square().sum())


@pytest.mark.parametrize("name", ["rf_two_phase", "rf_parallel"])
def test_joint_step_is_the_same_step_whether_solved_on_the_batch_or_the_feature_side(name):
    """Batch 24 against widths 30, 20, 12, 8: the first layer solves its joint step with the 24 × 24 batch
    Gram, the narrower ones with their width × width feature Gram. Both must be
    ΔW_l = s_l Δa_lᵀ (H Hᵀ + ρI)⁻¹ H with ρ = ridge × mean diag(H Hᵀ) + ε, written out here."""
    sizes = [30, 20, 12, 8, 4]
    net, g = _net(sizes)
    x, y = _batch(24, 30, 4)
    rule = _rule(name, net, g, joint_ridge=0.1, norm_eps=1e-3)
    rule.before_step()  # the first (development) sleep fills the feedback matrices
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    dirs = rule.directions(cache, e)

    feedback = rule.feedback_matrices()
    d_pre, shares = e, [0.25 * 10] * 3 + [0.25]
    for l in range(3, -1, -1):
        h = cache.inputs[l]
        gram = h @ h.T
        ridge = 0.1 * gram.diagonal().mean() + 1e-3
        expected = shares[l] * d_pre.T @ torch.linalg.solve(gram + ridge * torch.eye(24), h)
        torch.testing.assert_close(dirs[l][0], expected, rtol=1e-9, atol=1e-12)
        if l > 0:
            d_pre = net.activation.gate(d_pre @ feedback[l].T, cache.pre[l - 1])
    assert [h.shape[1] < 24 for h in cache.inputs] == [False, True, True, True]  # both sides were exercised


def test_bp_joint_takes_the_joint_step_on_the_backpropagated_error():
    """bp_joint: Δa_1 = (e W_2) ⊙ σ'(a_1), then the same ridge least-squares step as RF's gated_joint."""
    net, g = _net([6, 5, 3])
    x, y = _batch(4, 6, 3)
    rule = _rule("bp_joint", net, g, layer_step_scale="uniform", hidden_step_scale=1.0, joint_ridge=0.0, norm_eps=1e-3)
    cache = net.forward_cached(x)
    e = output_error(cache.logits, y)
    d_a1 = (e @ net.weights[1]) * net.activation.derivative(cache.pre[0])
    expected = d_a1.T @ torch.linalg.solve(x @ x.T + 1e-3 * torch.eye(4), x)
    torch.testing.assert_close(rule.directions(cache, e)[0][0], expected)
