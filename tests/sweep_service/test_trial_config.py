"""A trial's training config is built once, in the worker: `TrainConfig.from_dict` runs there once per attempt,
and the full config it resolves to travels to the driver in the attempt's first report (`EpochReport`), which
the driver keeps on the trial's record and logs as the run's params. The driver builds none — not when a trial
starts, not on the progress ticks that follow every epoch.

The driver is counted over two real sweeps (this process; the trials run in Ray's worker processes) that differ
only in their epochs; the worker over one in-process trial, Tune's session calls stood in for."""

from __future__ import annotations

import pytest
from sweep_helpers import in_process_trial_settings, stand_in_tune_session

from rf_core.config import TrainConfig
from sweep_service.runner import run_sweep
from sweep_service.spec import parse_spec


def _spec(name: str, epochs: int):
    return parse_spec(
        {
            "name": name,
            "dataset": {"name": "synthetic", "train_subset": 200},
            "model": {"hidden": [16]},
            "algorithm": ["bp", "fa"],
            "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.1}},
            "search": {"method": "random", "num_samples": 1, "metric": "val_accuracy", "seed": 0},
            "scheduler": {"type": "fifo", "max_t": epochs},
            "resources": {"cpu": 1},
        }
    )


def _count_train_configs(monkeypatch) -> list[str]:
    """Every TrainConfig made from now on: 'from_dict' for one built from values, 'made' for every instance
    (a `.resolved()` copy included)."""
    built: list[str] = []
    original_post_init, original_from_dict = TrainConfig.__post_init__, TrainConfig.from_dict.__func__

    def counting_post_init(self: TrainConfig) -> None:
        built.append("made")
        original_post_init(self)

    def counting_from_dict(cls, values, *args, **kwargs):
        built.append("from_dict")
        return original_from_dict(cls, values, *args, **kwargs)

    monkeypatch.setattr(TrainConfig, "__post_init__", counting_post_init)
    monkeypatch.setattr(TrainConfig, "from_dict", classmethod(counting_from_dict))
    return built


@pytest.mark.slow
def test_the_driver_builds_no_train_config(ray_session, tracking_uri, storage_path, unique_name, monkeypatch):
    for epochs in (2, 8):
        spec = _spec(f"{unique_name}-{epochs}", epochs)  # parsing checks each rule's config: before the count
        ticks: list[object] = []  # progress ticks: where the best entry used to rebuild the config each time
        built = _count_train_configs(monkeypatch)
        result = run_sweep(
            spec, tracking_uri=tracking_uri, storage_path=storage_path, on_progress=ticks.append, best_models=False
        )
        monkeypatch.undo()
        assert result.status == "succeeded" and len(result.trials) == 2 and len(ticks) >= 2
        assert built == [], f"{epochs} epochs: the driver built {len(built)} TrainConfig(s): {built}"
        for trial in result.trials:  # the worker's config reached the record: resolved, with its device
            assert trial.config["epochs"] == epochs and trial.config["device"] == "cpu"
            assert trial.config["hidden"] == [16] and "seed" in trial.config


def test_the_worker_builds_it_once_and_sends_it_with_its_first_report(monkeypatch):
    from sweep_service.epoch_report import EpochReport
    from sweep_service.trainable import run_trial

    spec = _spec("worker-builds-once", 3)
    reports = stand_in_tune_session(monkeypatch)
    settings = in_process_trial_settings(spec, checkpoint_every=100, gpus=1)  # a GPU asked; this worker has none
    built = _count_train_configs(monkeypatch)

    run_trial({"algorithm": "fa", "lr": 0.05}, settings)

    assert built.count("from_dict") == 1, built
    parsed = [EpochReport.from_tune(r) for r in reports]
    assert [r.epoch for r in parsed if r] == [1, 2, 3]
    first, *rest = [r for r in parsed if r]
    assert first.trial_config is not None and all(r.trial_config is None for r in rest)
    values = first.trial_config["values"]
    assert values["algorithm"] == "fa" and values["lr"] == 0.05 and values["epochs"] == 3
    assert values["device"] == first.device == "cpu"  # what ran, not what the spec asked for
    assert first.trial_config["description"]["ledger"]["weight_transport"] is False
