"""The training loop: `train(config, on_epoch=...) -> TrainResult`."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch

from rf_core.config import NEWER_FIELDS_AS_BEFORE, TrainConfig
from rf_core.data import DatasetSplits, load_dataset
from rf_core.metrics import epochs_to_90, evaluate, rule_diagnostics
from rf_core.model import MLP
from rf_core.rules import LearningRule, get_rule

ProgressCallback = Callable[[int, int, int], None]  # (epoch, steps done in it, steps per epoch)
EpochCallback = Callable[[dict[str, Any], Callable[[], dict[str, Any]]], "bool | None"]

METRIC_NAMES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
DIAGNOSTIC_BATCH = 256  # training examples the end-of-run diagnostics look at
DIVERGENCE_CHECK_EVERY = 50
PROGRESS_EVERY = 25  # steps between on_progress calls  # steps; a .item() per step would sync for nothing


class ResultStatus(StrEnum):
    """How a training run ended. Each member equals its string value ("completed" == ResultStatus.COMPLETED), so
    code that compares against the plain strings, and JSON, see no change."""

    COMPLETED = "completed"  # every epoch of the config ran
    DIVERGED = "diverged"  # the loss became NaN/inf or exploded (`divergence_limit`): a result, never an exception
    STOPPED = "stopped"  # `on_epoch` returned False


def divergence_limit(factor: float, num_classes: int, first_epoch_loss: float | None) -> float:
    """The training loss above which a run has diverged although its loss is finite: `factor` × max(the first
    epoch's training loss, ln(classes)). ln(classes) is the loss of a network that guesses uniformly; during the
    first epoch it is the only reference, so a run that explodes within its first epoch cannot set its own."""
    reference = math.log(max(num_classes, 2))
    if first_epoch_loss is not None and math.isfinite(first_epoch_loss):
        reference = max(reference, first_epoch_loss)
    return factor * reference


def _divergence(
    epoch: int, loss: float, factor: float, num_classes: int, first: float | None, *, so_far: bool = False
) -> str | None:
    """Why epoch `epoch`'s mean training loss (`so_far`: over its steps so far) says the run diverged, or None."""
    if not math.isfinite(loss):
        return f"the loss became NaN/inf in epoch {epoch}"
    limit = divergence_limit(factor, num_classes, first)
    if loss > limit:
        reference = f"max(first-epoch loss {first:.4g}, ln {num_classes})" if first is not None else f"ln {num_classes}"
        what = "the training loss (the epoch's mean so far)" if so_far else "the training loss"
        return f"{what} {loss:.4g} exceeded {factor:g} × {reference} = {limit:.4g} in epoch {epoch}"
    return None


@dataclass
class TrainResult:
    status: ResultStatus
    rule: dict[str, Any]  # what ran: algorithm, update form, feedback source, locality ledger (TrainConfig.describe)
    rule_report: dict[str, Any]  # the rule's run totals (RF: sleeps, feedback_fallbacks, ...)
    history: list[dict[str, Any]]
    config: dict[str, Any]
    initial_test_accuracy: float
    seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)
    model_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    divergence: str | None = None  # why the run diverged (with the value), when it did

    @property
    def epochs(self) -> int:
        return len(self.history)

    def _last(self, key: str) -> float | None:
        return self.history[-1][key] if self.history else None

    def _best(self, key: str) -> float | None:
        values = [r[key] for r in self.history if not math.isnan(r[key])]
        return max(values) if values else None

    @property
    def test_accuracy(self) -> float | None:
        return self._last("test_accuracy")

    @property
    def val_accuracy(self) -> float | None:
        return self._last("val_accuracy")

    @property
    def best_test_accuracy(self) -> float | None:
        return self._best("test_accuracy")

    @property
    def best_val_accuracy(self) -> float | None:
        return self._best("val_accuracy")

    @property
    def epochs_to_90(self) -> int | None:
        return epochs_to_90(1 - self.initial_test_accuracy, [1 - r["test_accuracy"] for r in self.history])

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status.value,  # a plain str: yaml.safe_dump refuses str subclasses such as the enum
            "divergence": self.divergence,
            "algorithm": self.config["algorithm"],
            "rule": self.rule,
            **self.rule_report,
            "dataset": self.config["dataset"],
            "test_accuracy": self.test_accuracy,
            "best_test_accuracy": self.best_test_accuracy,
            "val_accuracy": self.val_accuracy,
            "best_val_accuracy": self.best_val_accuracy,
            "epochs": self.epochs,
            "epochs_to_90": self.epochs_to_90,
            "initial_test_accuracy": self.initial_test_accuracy,
            "seconds": self.seconds,
            "config": self.config,
            "diagnostics": self.diagnostics,
            "history": self.history,
        }


def train(
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    resume_state: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train one network with one learning rule.

    After every epoch `on_epoch(record, get_state)` receives the epoch's metrics (names in METRIC_NAMES,
    accuracies as fractions, plus `epoch` and `seconds`) and a function returning a checkpoint; passing that
    checkpoint back as `resume_state` continues from the next epoch with identical results. Returning
    False from `on_epoch` stops the run (ResultStatus.STOPPED). A NaN/inf loss, or a training loss above
    `divergence_limit` (checked every DIVERGENCE_CHECK_EVERY steps on the epoch's mean so far, and at its end),
    ends the run with status ResultStatus.DIVERGED, `divergence` saying why, and the last good metrics (the
    record `on_epoch` gets then has `diverged` and `divergence`), never an exception. `on_progress(epoch, steps_done,
    steps_per_epoch)` is called every PROGRESS_EVERY steps within an epoch and at its end (for a progress bar;
    it reads nothing from the device).
    """
    if resume_state is not None:
        # A checkpoint from before a field existed continues as it started (the epoch length, the schedule).
        written = resume_state.get("config", {})
        config = dataclasses.replace(config, **{k: v for k, v in NEWER_FIELDS_AS_BEFORE.items() if k not in written})
    config, data, generator, net = _untrained(config)
    rule = get_rule(config.algorithm)(net, config.params, generator).to(config.device)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume_state is not None:
        load_training_state(resume_state, net, rule, generator)
        history = list(resume_state["history"])
        start_epoch = resume_state["epoch"]
        initial_test_accuracy = resume_state["initial_test_accuracy"]
    else:
        initial_test_accuracy = evaluate(net, data.x_test, data.y_test)[1]

    def get_state() -> dict[str, Any]:
        return {
            "epoch": len(history),
            **training_state(net, rule, generator),
            "history": list(history),
            "initial_test_accuracy": initial_test_accuracy,
            "config": config.to_dict(),
        }

    status = ResultStatus.COMPLETED
    divergence: str | None = None
    started = time.perf_counter()
    batch = config.batch_size
    n_train = epoch_samples(len(data.y_train), batch, config.drop_last)
    steps_per_epoch = math.ceil(n_train / batch)
    lr_at = _lr_schedule(config, steps_per_epoch * config.epochs)
    for epoch in range(start_epoch + 1, config.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(len(data.y_train), generator=generator)[:n_train].to(config.device)
        x_epoch, y_epoch = data.x_train[order], data.y_train[order]
        loss_sum = torch.zeros((), device=config.device)
        correct = torch.zeros((), dtype=torch.long, device=config.device)
        first_loss = float(history[0]["train_loss"]) if history else None
        why: str | None = None
        for step, begin in enumerate(range(0, n_train, batch), start=1):
            xb, yb = x_epoch[begin : begin + batch], y_epoch[begin : begin + batch]
            logits, loss = rule.step(xb, yb, lr_at((epoch - 1) * steps_per_epoch + step - 1), config.weight_decay)
            loss_sum += loss.sum()
            correct += (logits.argmax(1) == yb).sum()
            if step % DIVERGENCE_CHECK_EVERY == 0:
                mean_so_far = float(loss_sum) / min(step * batch, n_train)
                why = _divergence(
                    epoch, mean_so_far, config.divergence_factor, data.num_classes, first_loss, so_far=True
                )
                if why is not None:
                    break
            if on_progress is not None and (step % PROGRESS_EVERY == 0 or step == steps_per_epoch):
                on_progress(epoch, step, steps_per_epoch)
        seconds = time.perf_counter() - epoch_start
        val_loss, val_acc = evaluate(net, data.x_val, data.y_val)
        test_loss, test_acc = evaluate(net, data.x_test, data.y_test)
        eval_seconds = time.perf_counter() - epoch_start - seconds
        train_loss = float(loss_sum) / n_train
        if why is None:
            why = _divergence(epoch, train_loss, config.divergence_factor, data.num_classes, first_loss)
        if why is None and not (math.isfinite(test_loss) and (not data.x_val.numel() or math.isfinite(val_loss))):
            why = f"the evaluation loss became NaN/inf in epoch {epoch}"
        if why is not None:
            status, divergence = ResultStatus.DIVERGED, why
            last_good = dict(history[-1]) if history else _untrained_record(initial_test_accuracy)
            last_good.update(epoch=epoch, seconds=seconds, diverged=True, divergence=why)
            if on_epoch is not None:
                on_epoch(last_good, get_state)
            break
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": int(correct) / n_train,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "seconds": seconds,
            "eval_seconds": eval_seconds,
        }
        record.update(rule.epoch_report(config.diagnostics))
        history.append(record)
        if on_epoch is not None and on_epoch(dict(record), get_state) is False:
            status = ResultStatus.STOPPED
            break

    diagnostics: dict[str, float] = {}
    if config.diagnostics and status != ResultStatus.DIVERGED:
        diagnostics = rule_diagnostics(rule, data.x_train[:DIAGNOSTIC_BATCH], data.y_train[:DIAGNOSTIC_BATCH])
    return TrainResult(
        status=status,
        rule=config.describe(),
        rule_report=rule.run_report(),
        history=history,
        config=config.to_dict(),
        initial_test_accuracy=initial_test_accuracy,
        seconds=time.perf_counter() - started,
        diagnostics=diagnostics,
        model_state={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        divergence=divergence,
    )


def epoch_samples(n_train: int, batch_size: int, drop_last: bool) -> int:
    """How many training samples an epoch steps through: all, or (`drop_last`) whole batches only — and all of
    them when there are fewer than one batch (an epoch always takes at least one step)."""
    if not drop_last or n_train <= batch_size:
        return n_train
    return n_train - n_train % batch_size


def training_state(net: MLP, rule: LearningRule, generator: torch.Generator) -> dict[str, Any]:
    """What a checkpoint holds of the state training steps change: the network's and the rule's state_dicts
    (weights; feedback buffers and counters) and the generator's state, copied. `load_training_state` puts it
    back into a freshly built network and rule, after which the next steps are the ones the saved run takes."""
    return {
        "model": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "rule": {k: v.detach().clone() for k, v in rule.state_dict().items()},
        "generator": generator.get_state(),
    }


def load_training_state(state: dict[str, Any], net: MLP, rule: LearningRule, generator: torch.Generator) -> None:
    """Put a `training_state` (or a whole checkpoint of `train`'s, which contains one) back in place."""
    net.load_state_dict(state["model"])
    rule.load_state_dict(state["rule"])
    generator.set_state(state["generator"])


def _lr_schedule(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The step size at global step t (0-based). A function of t alone, so a resumed run repeats it exactly."""
    if config.lr is None:
        raise ValueError("lr: resolve the config first (TrainConfig.resolved)")
    lr = config.lr
    if config.lr_schedule == "cosine":
        # Decays to 0 at the last step of `epochs`: the late, small steps average out SGD's noise.
        return lambda t: lr * 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / total_steps))
    return lambda t: lr


def _untrained(config: TrainConfig) -> tuple[TrainConfig, DatasetSplits, torch.Generator, MLP]:
    """The resolved config, its data, the seeded generator and the initial network `train` starts from."""
    config = config.resolved()
    data = load_dataset(
        config.dataset,
        config.data_dir,
        val_fraction=config.val_fraction,
        seed=config.seed,
        device=config.device,
        train_subset=config.train_subset,
    )
    generator = torch.Generator().manual_seed(config.seed)
    net = MLP.from_config(config, data.input_dim, data.num_classes, generator)
    return config, data, generator, net


def untrained_test_accuracy(config: TrainConfig) -> float:
    """The test accuracy of the network `train(config)` starts from: E_0 of `epochs_to_90` (deterministic
    given the seed), for callers that hold a run's history but not its start, such as a sweep's trials."""
    _, data, _, net = _untrained(config)
    return evaluate(net, data.x_test, data.y_test)[1]


def _untrained_record(initial_test_accuracy: float) -> dict[str, Any]:
    nan = float("nan")
    return {
        "train_loss": nan,
        "train_accuracy": nan,
        "val_loss": nan,
        "val_accuracy": nan,
        "test_loss": nan,
        "test_accuracy": initial_test_accuracy,
    }
