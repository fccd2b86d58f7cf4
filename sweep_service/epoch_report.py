"""What a trial reports to Tune after every epoch, as one typed record: `EpochReport.to_tune()` in the worker
(`trainable`), `EpochReport.from_tune(result)` in the driver (`monitor`). Its keys are written here only.

A report is rf_core's epoch record (`record`: its metric names, the rule's own metrics, `epoch`, `seconds`,
`eval_seconds`; flat at the top of Tune's result, where the scheduler and searcher read the sweep's metric)
plus where and with what it trained, and, in the first report of each attempt, the trial's full config as the
worker resolved it (`trial_config`: the one place a trial's `TrainConfig` is built), and, in a resumed trial's
first report, the epochs its checkpoint holds (`restored_history`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# rf_core's epoch-record keys besides its metric names (rf_core.train writes them)
EPOCH, SECONDS, EVAL_SECONDS = "epoch", "seconds", "eval_seconds"

DIVERGED = "diverged"
DIVERGENCE = "divergence"  # why a diverged epoch diverged (rf_core's words, with the value)
DEVICE = "device"
NODE_ID = "node_id"
RF_CORE_VERSION = "rf_core_version"
RESUMED_FROM_EPOCH = "resumed_from_epoch"
TRIAL_CONFIG = "trial_config_json"  # JSON: {"values", "notes", "description"} (`configs.FullConfig`)
RESTORED_HISTORY = "restored_history_json"  # JSON: the rf_core epoch records a resumed trial's checkpoint holds


def _is_record_key(key: str) -> bool:
    from rf_core import METRIC_NAMES, RULE_METRIC_PREFIX

    return key in (EPOCH, SECONDS, EVAL_SECONDS) or key in METRIC_NAMES or key.startswith(RULE_METRIC_PREFIX)


@dataclass(frozen=True)
class EpochReport:
    record: dict[str, Any]  # rf_core's epoch record (a diverged epoch's sweep metric: the worst value)
    diverged: bool
    device: str
    node_id: str
    rf_core_version: str
    resumed_from_epoch: int = 0
    divergence: str | None = None
    trial_config: dict[str, Any] | None = None
    restored_history: list[dict[str, Any]] | None = None

    @property
    def epoch(self) -> int:
        return int(self.record[EPOCH])

    def to_tune(self) -> dict[str, Any]:
        """Flat, as `tune.report` takes it; the config and history as JSON text (Tune's loggers keep scalars)."""
        report: dict[str, Any] = {
            **self.record,
            DIVERGED: self.diverged,
            DEVICE: self.device,
            NODE_ID: self.node_id,
            RF_CORE_VERSION: self.rf_core_version,
            RESUMED_FROM_EPOCH: self.resumed_from_epoch,
        }
        if self.divergence is not None:
            report[DIVERGENCE] = self.divergence
        if self.trial_config is not None:
            report[TRIAL_CONFIG] = json.dumps(self.trial_config)
        if self.restored_history is not None:
            report[RESTORED_HISTORY] = json.dumps(self.restored_history)
        return report

    @classmethod
    def from_tune(cls, result: Mapping[str, Any]) -> EpochReport | None:
        """A Tune result back as the report the worker made (Tune's own keys dropped); None for a result that is
        no epoch report (no epoch)."""
        if not result.get(EPOCH):
            return None
        config, history = result.get(TRIAL_CONFIG), result.get(RESTORED_HISTORY)
        return cls(
            record={k: v for k, v in result.items() if _is_record_key(k)},
            diverged=bool(result.get(DIVERGED)),
            device=str(result.get(DEVICE) or ""),
            node_id=str(result.get(NODE_ID) or ""),
            rf_core_version=str(result.get(RF_CORE_VERSION) or ""),
            resumed_from_epoch=int(result.get(RESUMED_FROM_EPOCH) or 0),
            divergence=str(result[DIVERGENCE]) if result.get(DIVERGENCE) else None,
            trial_config=json.loads(config) if config else None,
            restored_history=json.loads(history) if history else None,
        )
