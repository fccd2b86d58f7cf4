"""The standard feedback baselines (sign-symmetry, Kolen–Pollack, weight mirror), each checked against a
reference computed another way, in float64: autograd through layers whose backward uses the feedback the rule's
source defines (sign-symmetry's formed here from W; Kolen–Pollack's and weight mirror's, which are learned, read
from the rule), and the feedback's own update written out."""

import math

import pytest
import torch
from test_rules_math import _batch, _FeedbackLinear, _net, _rule

from rf_core import feedback
from rf_core.metrics import output_error

pytestmark = pytest.mark.usefixtures("float64_default")

SIZES = [8, 6, 5, 3]


def _reference_directions(net, x, y, feedback):
    """Autograd's weight gradients of the cross-entropy through layers whose backward sends the error down
    through feedback[l] in place of W_l (layer 0's is never used)."""
    weights = [w.detach().clone().requires_grad_(True) for w in net.weights]
    h = x
    for l, w in enumerate(weights):
        h = _FeedbackLinear.apply(h, w, feedback.get(l, torch.zeros_like(w)))
        if l < len(weights) - 1:
            h = net.activation.forward(h)
    torch.nn.functional.cross_entropy(h, y).backward()
    return [w.grad for w in weights]


def _assert_directions(rule, net, x, y, feedback):
    cache = net.forward_cached(x)
    ours = rule.directions(cache, output_error(cache.logits, y))
    for (dw, _), reference in zip(ours, _reference_directions(net, x, y, feedback), strict=True):
        torch.testing.assert_close(dw, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
@pytest.mark.parametrize("magnitude", ["init", "unit"])
def test_usf_carries_the_error_through_a_scaled_sign_of_w(activation, magnitude):
    """Liao et al. 2016's uSF: B_l = c_l·sign(W_l), c_l = 1 (unit) or init_gain/(2√fan_in), W_l's initial mean
    |entry| (init; the test net's init_gain is 1)."""
    net, g = _net(SIZES, activation=activation)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("sign_symmetry", net, g, variant="usf", magnitude=magnitude)
    scale = {l: 1.0 if magnitude == "unit" else 1.0 / (2 * math.sqrt(w.shape[1])) for l, w in enumerate(net.weights)}
    feedback = {l: scale[l] * torch.sign(net.weights[l]) for l in range(1, len(SIZES) - 1)}
    _assert_directions(rule, net, x, y, feedback)


def test_usf_follows_the_sign_of_w_as_w_changes():
    net, g = _net(SIZES)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("sign_symmetry", net, g)
    with torch.no_grad():
        net.weights[2].neg_()  # every sign of the top layer flips; so must its feedback
    _assert_directions(rule, net, x, y, {l: torch.sign(net.weights[l]) / (2 * math.sqrt(SIZES[l])) for l in (1, 2)})


def test_frsf_keeps_fixed_random_magnitudes_with_the_current_sign_of_w():
    """frSF: B_l = |R_l| ⊙ sign(W_l) with R_l drawn once: the same magnitudes at every step, the signs of the
    current W_l (never multiplied into a stored B twice, so a sign flip of W flips B exactly once)."""
    net, g = _net(SIZES)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("sign_symmetry", net, g, variant="frsf")
    magnitudes = {l: getattr(rule, f"frsf_magnitude_{l}").clone() for l in (1, 2)}
    for l, m in magnitudes.items():  # R ~ U(±2c): |R| within [0, 2c], mean c
        assert m.min() >= 0 and m.max() <= 2 / (2 * math.sqrt(SIZES[l]))
    for _ in range(3):
        rule.step(x, y, lr=0.1)
    with torch.no_grad():
        net.weights[1].neg_()
    _assert_directions(rule, net, x, y, {l: m * torch.sign(net.weights[l]) for l, m in magnitudes.items()})
    assert all(torch.equal(getattr(rule, f"frsf_magnitude_{l}"), m) for l, m in magnitudes.items())


def test_brsf_draws_new_random_magnitudes_for_every_batch():
    """brSF: B_l = |R_l| ⊙ sign(W_l) with R_l ~ U(±2c_l) drawn afresh, layer by layer, for each batch from the
    run's generator: replayed here from the same generator state."""
    net, g = _net(SIZES)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("sign_symmetry", net, g, variant="brsf")
    used = []
    for _ in range(2):
        replay = torch.Generator().set_state(g.get_state())
        feedback = {
            l: torch.rand(net.weights[l].shape, generator=replay)
            * (2 / (2 * math.sqrt(SIZES[l])))
            * torch.sign(net.weights[l])
            for l in (1, 2)
        }
        _assert_directions(rule, net, x, y, feedback)
        used.append(rule.feedback_matrices())  # what the rule itself used for that batch
    assert not torch.equal(used[0][1].abs(), used[1][1].abs())  # new magnitudes each batch...
    assert torch.equal(torch.sign(used[1][1]), torch.sign(net.weights[1]))  # ...with W's signs


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_kolen_pollack_directions_are_feedback_alignment_through_its_b(activation):
    net, g = _net(SIZES, activation=activation)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("kolen_pollack", net, g)
    _assert_directions(rule, net, x, y, {l: b.clone() for l, b in rule.feedback_matrices().items()})


def test_kolen_pollack_gives_b_the_update_and_decay_of_w_so_their_difference_shrinks():
    """Akrout et al. 2019: B_l ← (1 − ηλ)B_l − η D_l with W_l's own D_l (the reference gradient here) and
    λ = weight_decay + kp_decay, so B_l − W_l ← (1 − ηλ)(B_l − W_l) exactly."""
    net, g = _net(SIZES)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    lr, weight_decay, kp_decay = 0.3, 0.01, 0.05
    rule = _rule("kolen_pollack", net, g, kp_decay=kp_decay)
    b_before = {l: b.clone() for l, b in rule.feedback_matrices().items()}
    w_before = [w.detach().clone() for w in net.weights]
    grads = _reference_directions(net, x, y, b_before)
    rule.step(x, y, lr, weight_decay=weight_decay)
    shrink = 1 - lr * (weight_decay + kp_decay)
    for l, b in rule.feedback_matrices().items():
        torch.testing.assert_close(b, shrink * b_before[l] - lr * grads[l], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(net.weights[l], shrink * w_before[l] - lr * grads[l], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(b - net.weights[l], shrink * (b_before[l] - w_before[l]), rtol=1e-9, atol=1e-12)


def test_kolen_pollack_refuses_zero_decay():
    from rf_core import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="kp_decay"):
        TrainConfig.from_dict({"algorithm": "kolen_pollack", "kp_decay": 0.0})


def test_a_weight_mirror_sleep_is_the_hebbian_mirror_step_on_the_layers_response_to_noise():
    """Linear mirror mode: per layer (2..L, in order) and mirror step, noise X ~ N(0, 1) of sleep_noise_batch
    rows from the run's generator, Y = X W_lᵀ, B_l ← (1 − λ_B)B_l + η_B YᵀX/n — replayed here in float64."""
    net, g = _net(SIZES)
    params = {"development_steps": 5, "sleep_steps": 2, "sleep_noise_batch": 9, "mirror_rate": 0.3, "mirror_decay": 0.2}
    rule = _rule("weight_mirror", net, g, **params)
    expected = {l: b.clone() for l, b in rule.feedback_matrices().items()}
    replay = torch.Generator().set_state(g.get_state())
    for steps in (5, 2):  # the first sleep (development) takes development_steps, every later one sleep_steps
        for l in expected:
            for _ in range(steps):
                noise = torch.randn(9, SIZES[l], generator=replay)
                response = noise @ net.weights[l].T
                expected[l] = (1 - 0.2) * expected[l] + 0.3 * response.T @ noise / 9
        rule.sleep()
        for l, b in rule.feedback_matrices().items():
            torch.testing.assert_close(b, expected[l], rtol=1e-10, atol=1e-12)


def test_weight_mirror_feedback_settles_at_rate_over_decay_times_w():
    """E[YᵀX/n] = W, so with W fixed B → (η_B/λ_B)·W: the angle to W falls from ~90° to a few degrees."""
    net, g = _net(SIZES)
    rule = _rule(
        "weight_mirror", net, g, mirror_rate=0.1, mirror_decay=0.05, sleep_noise_batch=256, development_steps=0
    )
    assert all(angle > 60 for angle in rule.epoch_report().values())
    for _ in range(300):
        rule.sleep()
    report = rule.epoch_report()
    assert report["feedback_angle_to_w_deg_max"] < 5, report
    for l, b in rule.feedback_matrices().items():
        assert float(b.norm() / net.weights[l].norm()) == pytest.approx(2.0, rel=0.05)
    assert rule.run_report()["sleeps"] == 300


def test_weight_mirror_sleeps_before_every_sleep_every_th_step_and_develops_only_once(monkeypatch):
    """A sleep before steps 0, 3, 6 (sleep_every 3); the first takes development_steps mirror steps per layer, each
    later one sleep_steps: counted as the noise batches drawn, by the step they precede."""
    net, g = _net(SIZES)
    x, y = _batch(7, SIZES[0], SIZES[-1])
    rule = _rule("weight_mirror", net, g, sleep_every=3, development_steps=4, sleep_steps=2)
    drawn_before_step = []
    real_noise = feedback.white_noise

    def counted(probe, batch, generator):
        drawn_before_step.append(int(rule.steps_done))
        return real_noise(probe, batch, generator)

    monkeypatch.setattr(feedback, "white_noise", counted)
    for _ in range(7):
        rule.step(x, y, lr=0.01)
    assert rule.run_report()["sleeps"] == 3
    layers = len(SIZES) - 2  # feedback for layers 2..L
    assert drawn_before_step == [0] * (4 * layers) + [3] * (2 * layers) + [6] * (2 * layers)
