"""The training loop: every rule learns, divergence is a result, checkpoints resume exactly."""

import math

import pytest
import torch

from rf_core import ConfigError, ResultStatus, TrainConfig, available_rules, train
from rf_core.metrics import epochs_to_90
from rf_core.train import divergence_limit


@pytest.mark.parametrize("rule", available_rules())
def test_every_rule_learns_digits_with_its_defaults(rule):
    result = train(TrainConfig(algorithm=rule, dataset="digits", epochs=8))
    assert result.status is ResultStatus.COMPLETED
    assert result.test_accuracy > 0.8, result.summary()
    assert result.test_accuracy > result.initial_test_accuracy + 0.5


def test_epoch_records_carry_the_contracted_metric_names():
    seen = []
    result = train(TrainConfig(dataset="synthetic", epochs=2, train_subset=500), on_epoch=lambda r, s: seen.append(r))
    assert [r["epoch"] for r in seen] == [1, 2]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "seconds"):
        assert all(math.isfinite(r[key]) for r in seen), key
    assert 0 <= seen[-1]["test_accuracy"] <= 1
    assert result.history == seen


@pytest.mark.parametrize("rule, lr", [("bp", 1e6), ("rf_two_phase", 1e10), ("rf_parallel", 1e10)])
def test_diverging_configuration_ends_with_status_diverged_and_last_good_metrics(rule, lr):
    records = []
    result = train(
        TrainConfig(algorithm=rule, dataset="digits", epochs=5, lr=lr), on_epoch=lambda r, s: records.append(r)
    )
    assert result.status is ResultStatus.DIVERGED
    assert records[-1]["diverged"] is True
    assert all(math.isfinite(r["test_accuracy"]) for r in records)
    assert result.summary()["status"] == "diverged"


def test_an_explosion_that_stays_finite_ends_the_run_diverged_with_the_value():
    """fa at λ 2 with leaky ReLU on digits: its training loss reaches 2.8e3 in epoch 1 and stays finite (shown with
    the limit lifted). At the default divergence_factor (100 × ln 10 = 230 in epoch 1) the run ends `diverged`,
    saying why, with the value."""
    config = TrainConfig(algorithm="fa", dataset="digits", lr=2.0, activation="leaky_relu", epochs=3, diagnostics=False)
    unlimited = train(config.replace(divergence_factor=1e30))
    assert unlimited.status is ResultStatus.COMPLETED
    assert all(math.isfinite(r["train_loss"]) and r["train_loss"] > 1e3 for r in unlimited.history)
    records = []
    result = train(config, on_epoch=lambda r, s: records.append(r))
    assert result.status is ResultStatus.DIVERGED and result.history == []
    assert result.divergence is not None and "exceeded 100 × ln 10 = 230.3 in epoch 1" in result.divergence
    assert records[-1]["diverged"] is True and records[-1]["divergence"] == result.divergence
    assert result.summary()["divergence"] == result.divergence


def test_the_divergence_limit_is_a_multiple_of_the_first_epochs_loss_or_of_ln_classes():
    ln10 = math.log(10)
    assert divergence_limit(100, 10, None) == pytest.approx(100 * ln10)  # epoch 1: nothing of its own counts
    assert divergence_limit(100, 10, 5.0) == pytest.approx(500)
    assert divergence_limit(100, 10, 0.5) == pytest.approx(100 * ln10)  # a good first epoch lowers nothing
    assert divergence_limit(10, 2, float("nan")) == pytest.approx(10 * math.log(2))
    with pytest.raises(ConfigError, match="divergence_factor"):
        TrainConfig(divergence_factor=1.0)


@pytest.mark.parametrize("rule", ["bp", "rf_two_phase", "rf_parallel"])
def test_resuming_from_a_checkpoint_gives_identical_results(rule):
    extra = {"pinv_every": 7} if rule == "rf_two_phase" else {}
    config = TrainConfig.from_dict({"algorithm": rule, "dataset": "digits", "epochs": 4, **extra})
    straight = train(config)
    checkpoints = {}
    train(config.replace(epochs=2), on_epoch=lambda r, get_state: checkpoints.update({r["epoch"]: get_state()}))
    resumed = train(config, resume_state=checkpoints[2])
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6)


def test_returning_false_from_on_epoch_stops_the_run():
    result = train(TrainConfig(dataset="synthetic", epochs=5, train_subset=300), on_epoch=lambda r, s: r["epoch"] < 2)
    assert result.status is ResultStatus.STOPPED and result.epochs == 2


def test_the_result_status_is_an_enum_equal_to_the_plain_strings_other_layers_compare_against():
    """sweep_service, api and paper_experiments compare statuses with "completed" / "diverged" / "stopped" and
    look them up in dicts keyed by those strings; the summary (JSON, YAML) carries the plain string."""
    result = train(TrainConfig(dataset="synthetic", epochs=1, train_subset=200))
    assert result.status is ResultStatus.COMPLETED
    assert {status: status.value for status in ResultStatus} == {
        "completed": "completed",
        "diverged": "diverged",
        "stopped": "stopped",
    }
    assert {"completed": "finished"}[result.status] == "finished" and f"{result.status}" == "completed"
    status = result.summary()["status"]
    assert type(status) is str and status == "completed"


def test_epochs_to_90_is_the_first_epoch_within_90_percent_of_the_total_fall():
    # E_0 = 0.9, E_min = 0.1, fall 0.8: the first epoch with E_0 − E_t ≥ 0.72 (E_t ≤ 0.18) is epoch 3.
    assert epochs_to_90(0.9, [0.5, 0.2, 0.15, 0.1, 0.12]) == 3
    assert epochs_to_90(0.9, [0.9, 0.95]) is None


def test_rf_diagnostics_report_pinv_distance_moore_penrose_angle_to_bp_and_newton_fidelity():
    result = train(
        TrainConfig.from_dict(
            {
                "algorithm": "rf_two_phase",
                "dataset": "digits",
                "epochs": 1,
                "feedback": "oracle_cholesky",
                "pinv_every": 1,
            }
        )
    )
    d = result.diagnostics
    assert d["layer2_pinv_distance"] < 0.1  # refreshed before the last step, then moved by one hidden-layer step
    assert {"layer2_mp1_axa", "layer2_mp2_xax", "layer2_mp3_ax_sym", "layer2_mp4_xa_sym"} <= set(d)
    assert 0 <= d["layer1_angle_to_bp_deg"] <= 180
    assert d["layer3_angle_to_bp_deg"] < 90  # the output layer's step points downhill
    assert d["layer3_newton_cos"] == pytest.approx(1, abs=1e-5)  # the output layer's step is exact ...
    assert d["layer1_newton_cos"] < 0.99  # ... the gated hidden layers' are not Newton steps


def test_invalid_configuration_names_the_field_and_reason():
    with pytest.raises(ConfigError) as bad_lr:
        TrainConfig(lr=-1.0, weight_decay=-0.1)
    assert ("lr", "must be > 0") in bad_lr.value.problems
    assert ("weight_decay", "must be in [0, 1)") in bad_lr.value.problems
    with pytest.raises(ConfigError) as unknown:
        TrainConfig.from_dict({"learning_rate": 0.1})
    assert unknown.value.problems == [("learning_rate", "unknown training-config field")]


def test_cosine_schedule_decays_the_step_to_zero_and_resumes_exactly():
    from rf_core.train import _lr_schedule

    config = TrainConfig(algorithm="bp", dataset="digits", epochs=4, lr=0.1, lr_schedule="cosine")
    step_size = _lr_schedule(config, total_steps=100)
    assert (step_size(0), step_size(50), step_size(100)) == pytest.approx((0.1, 0.05, 0.0))
    straight = train(config)
    checkpoints = {}
    train(config, on_epoch=lambda r, get_state: checkpoints.update({r["epoch"]: get_state()}) or r["epoch"] < 2)
    resumed = train(config, resume_state=checkpoints[2])
    assert [r["test_loss"] for r in resumed.history] == pytest.approx(
        [r["test_loss"] for r in straight.history], rel=1e-6
    )
    constant = train(config.replace(lr_schedule="constant"))
    assert constant.history[-1]["train_loss"] != pytest.approx(straight.history[-1]["train_loss"], rel=1e-6)


def test_on_progress_reports_the_batches_of_each_epoch():
    calls = []
    train(
        TrainConfig(dataset="synthetic", epochs=2, train_subset=1000, batch_size=32),
        on_progress=lambda epoch, done, total: calls.append((epoch, done, total)),
    )
    steps = 900 // 32  # 1000 examples, 10 % held out for validation; the last partial batch dropped (drop_last)
    assert calls == [(e, d, steps) for e in (1, 2) for d in (*range(25, steps + 1, 25), steps)]


def test_drop_last_steps_through_whole_batches_only_and_otherwise_keeps_the_run(monkeypatch):
    """900 training examples in 32s: 28 whole batches and one of 4. drop_last leaves the 4 out — others each
    epoch, as the order changes — and changes nothing else: the same initial weights, the same order, the
    metrics over the samples stepped through."""
    from rf_core.rules.base import LearningRule

    seen: list[torch.Tensor] = []
    real_step = LearningRule.step

    def recorded(rule, x, y, lr, weight_decay=0.0):
        seen.append(x[:, 0].clone())  # the synthetic inputs' first feature tells the samples apart
        return real_step(rule, x, y, lr, weight_decay)

    monkeypatch.setattr(LearningRule, "step", recorded)
    config = TrainConfig(dataset="synthetic", epochs=2, train_subset=1000, batch_size=32, diagnostics=False)
    assert config.drop_last is True  # the default (chosen on validation: docs/RF_CORE.md)
    runs, batches = {}, {}
    for drop_last in (False, True):
        seen.clear()
        runs[drop_last] = train(config.replace(drop_last=drop_last))
        batches[drop_last] = list(seen)
    kept, dropped = batches[False], batches[True]
    assert [len(b) for b in kept] == ([32] * 28 + [4]) * 2 and [len(b) for b in dropped] == [32] * 56
    assert torch.equal(kept[0], dropped[0])  # the same order: epoch 1's first batch is the same batch
    left_out = [set(kept[28].tolist()), set(kept[57].tolist())]  # each epoch's last 4 (the same shuffle)
    assert left_out[0] != left_out[1]  # other samples are left out in each epoch...
    everyone = set(torch.cat(kept[:29]).tolist())
    for epoch in (0, 1):  # ...and drop_last leaves out exactly those
        assert everyone - set(torch.cat(dropped[28 * epoch : 28 * (epoch + 1)]).tolist()) == left_out[epoch]
    assert runs[True].initial_test_accuracy == runs[False].initial_test_accuracy
    correct = runs[True].history[0]["train_accuracy"] * 28 * 32
    assert correct == pytest.approx(round(correct))  # accuracy over the 896 samples stepped through
    one_batch = config.replace(drop_last=True, batch_size=2000)  # fewer examples than a batch: one batch of all
    seen.clear()
    train(one_batch)
    assert [len(b) for b in seen] == [900, 900]


def test_a_checkpoint_or_stored_config_from_before_drop_last_continues_with_every_batch():
    """rfsweep 0.2 kept the last partial batch; what it wrote (checkpoints, best_configs.json) has no drop_last.
    Resumed or reloaded today, it keeps every batch, so a resumed run is the run that started."""
    config = TrainConfig(dataset="synthetic", epochs=2, train_subset=1000, batch_size=32, diagnostics=False)
    saved = {}
    train(config.replace(drop_last=False, epochs=1), on_epoch=lambda record, state: saved.update(state()))
    del saved["config"]["drop_last"]  # as 0.2 wrote it
    totals: set[int] = set()
    train(config, resume_state=saved, on_progress=lambda e, d, n: totals.add(n))
    assert totals == {29}  # 900 samples in 32s, the partial batch kept
    assert TrainConfig.from_stored({"algorithm": "bp", "dataset": "digits"}).drop_last is False
    assert TrainConfig.from_stored({"algorithm": "bp", "drop_last": True}).drop_last is True
