"""A trial's training config is derived once: in the driver, `TrainConfig` is built once per trial (when its
record is made), never again on the progress ticks that follow every epoch.

Counted in the driver (this process) over two real sweeps that differ only in their epochs: the counts must be
equal. (The worker builds its own once per attempt, in Ray's processes.)"""

from __future__ import annotations

import pytest

from rf_core.config import TrainConfig
from sweep_service.runner import run_sweep
from sweep_service.spec import parse_spec

pytestmark = pytest.mark.slow


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


def test_the_driver_builds_no_train_config_per_epoch(ray_session, tracking_uri, storage_path, unique_name, monkeypatch):
    built: list[int] = []
    original = TrainConfig.__post_init__

    def counting(self: TrainConfig) -> None:
        built.append(1)
        original(self)

    counts = {}
    for epochs in (2, 8):
        spec = _spec(f"{unique_name}-{epochs}", epochs)  # parsing checks each rule's config: not counted
        built.clear()
        ticks: list[object] = []  # progress ticks: where the best entry used to rebuild the config each time
        monkeypatch.setattr(TrainConfig, "__post_init__", counting)
        result = run_sweep(
            spec, tracking_uri=tracking_uri, storage_path=storage_path, on_progress=ticks.append, best_models=False
        )
        monkeypatch.undo()
        assert result.status == "succeeded" and len(result.trials) == 2
        counts[epochs] = len(built)
    assert counts[2] == counts[8], counts
    assert counts[8] <= 2 * 2, counts  # per trial: its full config resolved (from_dict, then .resolved())
