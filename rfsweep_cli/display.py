"""How the CLI shows a sweep: the progress line, the live bar, and the one best-per-rule table that
`rfsweep sweep`, `submit --wait`, `status`, `best` and `quickstart` all print."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweep_service.ranking import default_mode
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import ProgressCounts, SweepStatus

if TYPE_CHECKING:
    from api.client import RfsweepClient


def progress_line(sweep: dict[str, Any]) -> str:
    p = ProgressCounts.from_dict(sweep.get("progress") or {})
    best = best_entry(sweep.get("best"))
    best_text = f" best {best.metric}={best.value:.4f}" if best is not None else ""
    paused = f"{p.paused} paused, " if p.paused else ""
    return (
        f"{sweep['status']}: trials {p.finished} finished, {p.stopped_early} stopped early, "
        f"{p.running} running, {paused}{p.failed + p.diverged} failed/diverged of "
        f"{p.total}; epochs {p.epochs_done}/{p.max_epochs}{best_text}"
    )


def follow(client: RfsweepClient, sweep_id: str, *, poll_s: float = 1.0) -> dict[str, Any]:
    """Follow a sweep until it ends (or pauses), with a live bar on a terminal and one line per change
    elsewhere."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    until = (*(s.value for s in SweepStatus if s.terminal), SweepStatus.PAUSED.value)
    if not console.is_terminal:  # logs and pipes: one plain line per change
        shown: list[str] = []

        def print_changes(sweep: dict[str, Any]) -> None:
            line = progress_line(sweep)
            if not shown or line != shown[-1]:
                print(line, file=sys.stderr, flush=True)
                shown.append(line)

        return client.wait(sweep_id, poll_s=poll_s, on_update=print_changes, until=until)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("sweep", total=None, detail=SweepStatus.QUEUED.value)

        def update_bar(sweep: dict[str, Any]) -> None:
            p = ProgressCounts.from_dict(sweep.get("progress") or {})
            detail = progress_line(sweep).split(": ", 1)[1]
            bar.update(
                task, total=p.max_epochs or None, completed=p.epochs_done, description=sweep["status"], detail=detail
            )

        return client.wait(sweep_id, poll_s=poll_s, on_update=update_bar, until=until)


def print_best_table(
    *,
    metric: str,
    mode: str,
    rules: Sequence[str],
    best_per_rule: dict[str, BestEntry],
    trials: Sequence[TrialSummary],
    overall: BestEntry | None,
    rules_without_result: dict[str, str] | None = None,
    error: str | None = None,
    file: Any = None,
) -> None:
    """The best trial of each rule, the rules with no usable trial and why, the overall best with its model,
    and how ties are broken; a failed sweep's reason (`error`) under it. `trials` are the sweep's trial rows
    (`rfsweep sweep --json`, GET /trials); `rules_without_result` is an ended sweep's own word on the rules
    with no usable trial (`rules_without_result` of its result and GET /best), shown with its trials' reasons."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from sweep_service.best import TIE_BREAK
    from sweep_service.report import ReportTrial, SweepInfo, analyse

    info = SweepInfo(
        metric=metric,
        mode=mode,
        rules=tuple(rules),
        best_trial_ids={rule: entry.trial_id for rule, entry in best_per_rule.items()},
    )
    analysis = analyse([ReportTrial.from_summary(t) for t in trials], info, importance=False)
    without = rules_without_result or {}
    better = "higher" if mode == "max" else "lower"
    table = Table(title=f"Best configuration per rule ({metric}, {better} is better)", title_justify="left")
    for column in ("rule", metric, "trial", "epochs", "searched parameters", "MLflow run"):
        table.add_column(column, overflow="fold")
    for rule in dict.fromkeys([*rules, *best_per_rule, *without, *analysis.rules]):
        entry = best_per_rule.get(rule)
        if entry:
            table.add_row(
                rule,
                f"{entry.value:.4f}",
                entry.trial_id,
                str(entry.epochs),
                short_params(entry.params),
                entry.mlflow_run_id or "–",
            )
        else:
            summary = analysis.rules.get(rule)
            if rule in without:  # the ended sweep's counts, then what its trials said
                reasons = [f"{t.trial_id}: {t.reason}" for t in (summary.trials if summary else []) if t.reason][:3]
                why = without[rule] + (" — " + "; ".join(reasons) if reasons else "")
            else:
                why = f"no usable trial: {summary.why_unusable if summary is not None else 'no trial has reported yet'}"
            table.add_row(rule, "–", "", "", Text(why, style="red"), "")
    console = Console(file=file, soft_wrap=False)
    if not console.is_terminal:  # a pipe or a log: rows are not folded to 80 columns
        console = Console(file=file, soft_wrap=False, width=200)
    console.print(table)
    if error:
        console.print(Text(f"failed: {error}", style="bold red"), soft_wrap=True)
    if overall:
        console.print(
            f"[bold green]best[/]: {overall.algorithm} {metric}={overall.value:.4f} "
            f"(trial {overall.trial_id}; {TIE_BREAK})",
            highlight=False,
        )
        if overall.model_uri:
            console.print(f"  model: {overall.model_uri}  (mlflow.pyfunc.load_model; raw features in)", soft_wrap=True)
        elif overall.weights_uri:
            console.print(f"  weights: {overall.weights_uri}", soft_wrap=True)
        console.print(f"  config: {json.dumps(overall.config, sort_keys=True)}", soft_wrap=True, highlight=False)


def best_entry(data: dict[str, Any] | None) -> BestEntry | None:
    """A best entry from an API body (`best` of a sweep, of GET /best), or None."""
    return BestEntry.model_validate(data) if data else None


def short_params(params: dict[str, Any]) -> str:
    """Searched parameters for display: floats to 4 significant digits."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={json.dumps(v)}" for k, v in params.items())


def print_sweep_best(client: RfsweepClient, sweep_id: str, sweep: dict[str, Any] | None = None) -> None:
    """The best table of a sweep followed through the API (its spec names the rules)."""
    sweep = sweep or client.get(sweep_id)
    best = client.best(sweep_id)
    spec = sweep.get("spec") or {}
    rules = spec.get("algorithm") or []
    rules = [rules] if isinstance(rules, str) else list(rules)
    overall = best_entry(best.get("best"))
    search = spec.get("search") or {}
    metric = overall.metric if overall else str(search.get("metric") or "val_accuracy")
    print_best_table(
        metric=metric,
        mode=str(search.get("mode") or default_mode(metric)),
        rules=rules,
        best_per_rule={rule: BestEntry.model_validate(e) for rule, e in (best.get("best_per_algorithm") or {}).items()},
        trials=[TrialSummary.model_validate(t) for t in client.trials(sweep_id)],
        overall=overall,
        rules_without_result=best.get("rules_without_result") or {},
        error=sweep.get("error") if sweep.get("status") == SweepStatus.FAILED else None,
    )
