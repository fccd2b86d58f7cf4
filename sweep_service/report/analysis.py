"""The numbers the page shows: trials grouped by rule, each rule's best trial (or why it has none), the
counts by status, and per rule the importance of the searched parameters (`importance`).

The best trial of a rule is the one the caller names in `SweepInfo.best_trial_ids` (the runner's choice is the
one home); without it, the trial with the best value, ties going to the trial listed first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from sweep_service import ranking
from sweep_service.report.importance import _importance
from sweep_service.report.model import ReportTrial, RuleSummary, SweepAnalysis, SweepInfo
from sweep_service.status import TrialStatus


def _why_unusable(trials: Sequence[ReportTrial], metric: str) -> str:
    if not trials:
        return "no trial ran"
    counts = Counter(t.status for t in trials)
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    reasons = [f"{t.trial_id}: {t.reason}" for t in trials if t.reason][:5]
    text = f"no trial with a finite {metric} ({', '.join(parts)})"
    if reasons:
        text += " — " + "; ".join(reasons)
    return text


def analyse(trials: Iterable[ReportTrial], info: SweepInfo, *, importance: bool = True) -> SweepAnalysis:
    """Group trials by rule (the spec's rules first, even those with no trial), find each rule's best trial
    (or why it has none) and, per rule, fANOVA importance of the searched parameters for the sweep's metric."""
    metric, mode = info.metric, info.mode
    sign = ranking.sign(mode)
    trials = list(trials)
    order = list(dict.fromkeys([*info.rules, *(t.rule for t in trials)]))
    by_rule: dict[str, RuleSummary] = {}
    for rule in order:
        own = [t for t in trials if t.rule == rule]
        usable = [t for t in own if t.score() is not None]
        best = None
        wanted = info.best_trial_ids.get(rule)
        if wanted is not None:
            best = next((t for t in own if t.trial_id == wanted), None)
        if best is None and usable:
            best = max(usable, key=lambda t: sign * (t.score() or 0.0))  # max() keeps the first of equals
        summary = RuleSummary(rule, own, best, usable, None if usable else _why_unusable(own, metric))
        if importance:
            summary.importance, summary.importance_note = _importance(usable, metric, mode)
        by_rule[rule] = summary
    counts = Counter(t.status for t in trials)
    return SweepAnalysis(
        metric, mode, by_rule, {s.value: counts.get(s.value, 0) for s in TrialStatus} | {"total": len(trials)}
    )
