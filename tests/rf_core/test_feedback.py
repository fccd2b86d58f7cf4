"""Feedback learned from activity (rf_core/feedback.py), the round-trip check, and no silent fallback."""

import math

import pytest
import torch

from rf_core import TrainConfig, get_rule, train
from rf_core import feedback as fb
from rf_core.activations import make_activation
from rf_core.model import MLP

PAPER_LAYERS = [(400, 200), (200, 100), (100, 50), (50, 10)]  # layers 2..5 of 784-400-200-100-50-10


def _layer(fan_in, fan_out, seed=0, gain=2.45):
    g = torch.Generator().manual_seed(seed)
    bound = gain / math.sqrt(fan_in)
    return (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound  # the network's own initialisation


def _distance(f, w):
    target = torch.linalg.pinv(w.double())
    return float(torch.linalg.matrix_norm(f.double() - target) / torch.linalg.matrix_norm(target))


@pytest.mark.parametrize("fan_in, fan_out", PAPER_LAYERS)
def test_noise_sleep_learns_the_pseudoinverse_from_zero_at_the_papers_layer_sizes(fan_in, fan_out):
    """From F = 0, with only y ↦ W y: 200 LMS steps at the default rate make F a right inverse of W (round trip
    below 1e-3). What is left is sampling noise in null(W), about √rate in size: lowering the rate step by step
    takes F to W⁺ itself (measured at 0.05 relative distance for the 200×400 layer at rate 0.03)."""
    w = _layer(fan_in, fan_out)
    probe, g = fb.ForwardProbe(w), torch.Generator().manual_seed(1)
    f = torch.zeros(fan_in, fan_out)
    direction = torch.nn.functional.normalize(torch.randn(fan_out, generator=g), dim=0)
    fb.sleep_on_noise(probe, f, direction, steps=200, noise_batch=256, rate=1.0, generator=g)
    assert fb.roundtrip_error(probe, f, 1024, g) < 1e-3
    distances = [_distance(f, w)]
    for rate, steps in ((0.3, 200), (0.1, 200), (0.03, 300)):
        fb.sleep_on_noise(probe, f, direction, steps=steps, noise_batch=256, rate=rate, generator=g)
        distances.append(_distance(f, w))
    assert distances == sorted(distances, reverse=True) and distances[-1] < 0.06, distances


def test_the_activity_eigenvalue_estimate_finds_the_largest_eigenvalue_of_w_wT():
    w = _layer(200, 100)
    g = torch.Generator().manual_seed(2)
    direction = torch.nn.functional.normalize(torch.randn(100, generator=g), dim=0)
    u = fb.ForwardProbe(w)(torch.randn(20000, 200, generator=g))
    for _ in range(30):
        estimate = fb.top_eigenvalue_step(u, direction)
    assert estimate == pytest.approx(float(torch.linalg.eigvalsh(w @ w.T)[-1]), rel=0.05)


def test_roundtrip_error_is_zero_for_a_right_inverse_and_large_for_random_feedback():
    w = _layer(100, 50)
    probe, g = fb.ForwardProbe(w), torch.Generator().manual_seed(3)
    assert fb.roundtrip_error(probe, torch.linalg.pinv(w), 512, g) < 1e-5
    assert fb.roundtrip_error(probe, torch.randn(100, 50, generator=g) * 0.1, 512, g) > 0.5


def test_parallel_rule_reaches_w_plus_on_white_inputs_and_a_right_inverse_on_correlated_ones():
    """§3.1: on white inputs the fixed point of δF = (F u − y) uᵀ is W⁺; on correlated inputs (covariance C)
    it is C Wᵀ(W C Wᵀ)⁻¹, another right inverse (W F = I), not W⁺."""
    torch.set_default_dtype(torch.float64)
    try:
        w = _layer(8, 4, seed=4)
        g = torch.Generator().manual_seed(5)
        mix = torch.randn(8, 8, generator=g) * 0.5 + torch.eye(8)
        for inputs, target in (("white", torch.linalg.pinv(w)), ("correlated", None)):
            f = torch.zeros(8, 4)
            for rate in (0.05, 0.005, 0.0005):  # a decaying rate averages the sampling noise away
                for _ in range(2000):
                    y = torch.randn(256, 8, generator=g)
                    y = y @ mix.T if inputs == "correlated" else y
                    fb.track_on_activity(f, y, y @ w.T, rate)
            if target is None:
                c = mix @ mix.T
                target = c @ w.T @ torch.linalg.inv(w @ c @ w.T)
                assert _distance(f, w) > 0.05  # not W⁺ ...
                torch.testing.assert_close(w @ f, torch.eye(4), atol=2e-2, rtol=0)  # ... but a right inverse
            assert torch.linalg.matrix_norm(f - target) / torch.linalg.matrix_norm(target) < 2e-2, inputs
    finally:
        torch.set_default_dtype(torch.float32)


def _roundtrips(rule):
    return [v for k, v in rule.epoch_report().items() if k.startswith("feedback_roundtrip_error")]


def _rule(name, sizes=(20, 16, 12, 8, 4), **params):
    g = torch.Generator().manual_seed(0)
    net = MLP(list(sizes), make_activation("leaky_relu", 0.1), init_gain=2.45, generator=g)
    rule_type = get_rule(name)
    return rule_type(net, rule_type.Params(**params), g)


@pytest.mark.parametrize("name", ["rf_two_phase", "rf_parallel"])
def test_development_sleep_makes_random_feedback_a_right_inverse_without_reading_w(name):
    rule = _rule(name)
    rule.before_step()
    report = rule.run_report()
    assert report["feedback_fallbacks"] == 0 and report["sleeps"] == 1
    assert max(_roundtrips(rule)) < 0.05


@pytest.mark.parametrize("method", fb.ORACLE_METHODS)
def test_every_oracle_sleep_gives_the_pseudoinverse_of_each_layer(method):
    """No fallback hides a broken oracle: each method's own result must be W⁺ (and is counted if not)."""
    rule = _rule("rf_two_phase", feedback=method, sleep_max_steps=300)
    rule.sleep()
    rule.sleep()  # a warm start from the first sleep's feedback (newton_schulz, recirculation)
    assert rule.run_report()["feedback_fallbacks"] == 0
    for l, f in rule.feedback_matrices().items():
        assert _distance(f, rule.net.weights[l]) < 1e-2, (method, l)


def test_a_failed_sleep_is_counted_and_left_alone_unless_a_fallback_is_opted_into():
    """A learner that cannot converge (a rate 1e-6 of the stable step) fails its round trip: counted in
    feedback_fallbacks either way; only fallback: oracle replaces it by the closed-form W⁺."""
    broken = _rule("rf_two_phase", sleep_rate=1e-6, development_steps=25)
    broken.before_step()
    assert broken.run_report()["feedback_fallbacks"] == 3  # each of layers 2..4
    assert broken.run_report()["feedback_oracle_replacements"] == 0
    assert min(_roundtrips(broken)) > 0.5  # still the (nearly untouched) random feedback

    rescued = _rule("rf_two_phase", sleep_rate=1e-6, development_steps=25, fallback="oracle")
    rescued.before_step()
    assert rescued.run_report()["feedback_fallbacks"] == 3
    assert rescued.run_report()["feedback_oracle_replacements"] == 3
    assert max(_roundtrips(rescued)) < 1e-4


@pytest.mark.parametrize("rule", ["rf_two_phase", "rf_parallel"])
def test_default_runs_learn_feedback_from_activity_with_zero_failures_and_report_it_each_epoch(rule):
    result = train(TrainConfig(algorithm=rule, dataset="digits", epochs=6))
    assert result.status == "completed"
    assert result.rule_report["feedback_fallbacks"] == 0
    assert result.rule["ledger"]["feedback_from_weights"] is False
    layers = [f"feedback_roundtrip_error_layer{l}" for l in (2, 3)]
    assert all(key in record for record in result.history for key in layers)
    if rule == "rf_two_phase":  # sleeps every 100 steps: ~45 steps an epoch on digits
        assert result.rule_report["sleeps"] == 1 + (6 * 45) // 100
    summary = result.summary()
    assert summary["feedback_fallbacks"] == 0
    assert summary["rule"]["feedback"] == {"rf_two_phase": "learned", "rf_parallel": "random+development+on_data"}[rule]
