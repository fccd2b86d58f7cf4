"""The sweep page: one self-contained interactive HTML file, `sweep_report.html`, for a sweep's parent run.

MLflow renders an HTML artifact inline on the run's artifact page, so this file is the sweep view a W&B
user expects, inside MLflow: the best trial per rule (and the rules with no usable trial, with why),
parallel coordinates over the searched parameters coloured by the sweep's metric, parameter importance
(fANOVA), learning curves per rule with stopped-early and diverged trials marked, and every trial in a
table. Plotly draws the charts; its JavaScript is inlined (no CDN, no network: the file works offline and
inside MLflow's sandboxed frame). Sizes are bounded: past the caps (each in the module it bounds), charts
show a subset and say so.

Entry points:
- `write_sweep_report(trials, SweepInfo(metric=, mode=, ...), path)`: pure apart from writing the file (no
  MLflow); call it after trial results (throttled: fANOVA costs up to ~1 s per rule) and at the sweep's end.
- `log_report_artifact(client, parent_run_id, path)`: the file at the parent run's artifact root.
- `analyse(trials, info)`: the numbers the page shows (best per rule, unusable rules, importance), for tests and
  for callers that want them without HTML.

The modules, one job each:
- `model`: `ReportTrial` (a trial as the page needs it; its value), `SweepInfo`, `RuleSummary`, `SweepAnalysis`.
- `axes`: the searched parameters as labels and axes (linear, log, categorical); an even sample of trials by value.
- `importance`: fANOVA importance per rule (Optuna, imported when used).
- `analysis`: `analyse`: trials by rule, each rule's best trial or why it has none, counts, importance.
- `figures`: the plotly figures (parallel coordinates, importance bars, learning curves; plotly imported when used).
- `page`: the HTML and its sections; `build_report_html`, `write_sweep_report`, `REPORT_FILE`.
- `upload`: `log_report_artifact`.

How a trial's value is read, as the runner ranks trials (`best.best_record`): its metric at its last
reported epoch; diverged and failed trials, and trials whose value is NaN/inf, have none. The best trial
of a rule is the one the caller names in `best_trial_ids` (the runner's choice is the one home); without
it, the trial with the best value, ties going to the trial listed first.
"""

from __future__ import annotations

from sweep_service.report.analysis import analyse
from sweep_service.report.figures import MAX_CURVES_PER_RULE
from sweep_service.report.model import ReportTrial, SweepInfo
from sweep_service.report.page import MAX_TABLE_ROWS, REPORT_FILE, build_report_html, write_sweep_report
from sweep_service.report.upload import log_report_artifact

__all__ = [
    "MAX_CURVES_PER_RULE",
    "MAX_TABLE_ROWS",
    "REPORT_FILE",
    "ReportTrial",
    "SweepInfo",
    "analyse",
    "build_report_html",
    "log_report_artifact",
    "write_sweep_report",
]
