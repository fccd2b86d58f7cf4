"""What the sweep page is made of: a trial as the page needs it (`ReportTrial`), what it says about the sweep
(`SweepInfo`), and the analysis it shows (`RuleSummary` per rule, `SweepAnalysis`).

How a trial's value is read (`ReportTrial.score`), as the runner ranks trials (`best.best_record`): its metric
at its last reported epoch; diverged and failed trials, and trials whose value is NaN/inf, have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweep_service import mlflow_ui
from sweep_service.numbers import finite
from sweep_service.records import TrialSummary
from sweep_service.status import TrialStatus

NO_VALUE_STATUSES = frozenset({TrialStatus.DIVERGED.value, TrialStatus.FAILED.value})


@dataclass(frozen=True, eq=False)  # compared by identity: trials are distinct records
class ReportTrial:
    """One trial as the page needs it.

    `curve` maps epoch → the sweep's metric; `value` is the trial's value as the runner ranks it (None:
    read from the curve's last epoch); `reason` says why it stopped early, diverged or failed.
    """

    trial_id: str
    rule: str
    status: str
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    curve: Mapping[int, float] = field(default_factory=dict)
    reason: str | None = None
    mlflow_run_id: str | None = None
    run_name: str | None = None
    value: float | None = None

    @classmethod
    def from_summary(cls, summary: TrialSummary, curve: Mapping[int, float] | None = None) -> ReportTrial:
        """From a trial's summary row (`TrialRecord.summary()`, the API's /trials), with the per-epoch curve of
        the sweep's metric (`TrialRecord.curve`)."""
        return cls(
            trial_id=summary.trial_id,
            rule=summary.algorithm,
            status=summary.status.value,
            params=dict(summary.params),
            config=dict(summary.config),
            curve=dict(curve or {}),
            reason=summary.reason,
            mlflow_run_id=summary.mlflow_run_id,
            run_name=mlflow_ui.trial_run_name(summary.algorithm, summary.trial_id, summary.status.value),
            value=summary.last_metric,
        )

    @property
    def epochs(self) -> int:
        return max((int(e) for e in self.curve), default=0)

    def score(self) -> float | None:
        """The value the trial is ranked by, or None when it has none (diverged, failed, NaN, no epoch)."""
        if self.status in NO_VALUE_STATUSES:
            return None
        value = self.value
        if value is None and self.curve:
            value = self.curve[max(self.curve, key=int)]
        return finite(value)


@dataclass(frozen=True)
class SweepInfo:
    """What the page says about the sweep besides its trials.

    `rules`: the spec's rules, so a rule with no trial yet is listed; `best_trial_ids`: rule → the trial the
    runner chose (marked best); `experiment_id` (+ `mlflow_ui_url`, the UI's address where known): links to
    each trial's run (without an address they are relative to the MLflow server's root, which works where
    the report is opened from the server); `final=False` labels the page as in progress.
    """

    metric: str
    mode: str
    name: str = ""
    sweep_id: str = ""
    rules: tuple[str, ...] = ()
    best_trial_ids: Mapping[str, str] = field(default_factory=dict)
    experiment_id: str | None = None
    mlflow_ui_url: str | None = None
    final: bool = True


@dataclass
class RuleSummary:
    rule: str
    trials: list[ReportTrial]
    best: ReportTrial | None
    usable: list[ReportTrial]  # trials with a finite value
    why_unusable: str | None  # set when `usable` is empty
    importance: dict[str, float] | None = None
    importance_note: str = ""


@dataclass
class SweepAnalysis:
    metric: str
    mode: str
    rules: dict[str, RuleSummary]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what the caps left out, said on the page
