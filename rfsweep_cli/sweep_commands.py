"""`rfsweep` commands of the sweep layer: sweep, validate, schema."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sweep_service.status import SweepStatus, TrialStatus

if TYPE_CHECKING:
    from rich.console import Console, Group

    from sweep_service.limits import CostLimits
    from sweep_service.progress import SweepProgress
    from sweep_service.runner import SweepResult
    from sweep_service.spec import SweepSpec


def _load_spec_or_exit(spec_path: Path, limits: CostLimits | None = None) -> SweepSpec:
    """The spec (within `limits`, when given), or every problem in it at once on stderr, each as
    `FILE:LINE: field: reason` (with a did-you-mean for a misspelt name), and exit status 2."""
    import re

    from rich.console import Console

    from sweep_service.spec import SpecError, did_you_mean, line_of, load_spec_text, source_lines

    console = Console(stderr=True, soft_wrap=True)
    try:
        text = spec_path.read_bytes()  # bytes: a file that is not UTF-8 is a problem of the spec, said as one
    except OSError as exc:
        console.print(f"rfsweep: cannot read the sweep spec {spec_path}: {exc.strerror or exc}", highlight=False)
        raise typer.Exit(code=2) from None
    try:
        return load_spec_text(text, limits)
    except SpecError as exc:
        lines = source_lines(text)
        console.print(f"[bold red]invalid sweep spec[/] {spec_path}: {len(exc.problems)} problem(s)")
        for problem in sorted(exc.problems, key=lambda p: line_of(lines, p.loc) or 0):
            hint = did_you_mean(problem)
            message = re.sub(r"; known: \[.*\]$", "", problem.msg) if hint else problem.msg
            line = line_of(lines, problem.loc)
            where = f"{spec_path}:{line}" if line else str(spec_path)
            console.print(
                f"  {where}: [red]{problem.path or '(document)'}[/]: {message}{hint}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
        if any(p.kind == "limit_exceeded" for p in exc.problems):
            console.print(
                "  (the limits of an API server with its default settings; `rfsweep sweep` runs it here without them)",
                highlight=False,
            )
        raise typer.Exit(code=2) from None


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _short(params: dict[str, Any]) -> str:
    """Parameters for display: floats to 4 significant digits."""
    return json.dumps({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in params.items()})


def _progress_view(progress: SweepProgress, spec_name: str) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    c = progress.counts
    head = Text.assemble(
        ("sweep ", "bold"),
        (spec_name, "bold cyan"),
        f"  {progress.sweep_id}   elapsed {progress.elapsed_seconds:6.1f}s",
    )
    counts = Text.assemble(
        f"trials {c.total}: ",
        (f"running {c.running}", "yellow"),
        "  ",
        (f"finished {c.finished}", "green"),
        "  ",
        (f"stopped early {c.stopped_early}", "cyan"),
        "  ",
        (f"failed {c.failed}", "red"),
        "  ",
        (f"diverged {c.diverged}", "magenta"),
        "  ",
        f"cancelled {c.cancelled}  pending {c.pending}   ",
        f"epochs {c.epochs_done}/{c.max_epochs}",
    )
    best = progress.best
    best_line = Text(
        f"best so far: {best.algorithm} {progress.metric}={best.value:.4f} {_short(best.params)} ({best.trial_id})"
        if best
        else "best so far: –"
    )
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("trial", "algorithm", "status", "epochs", f"last {progress.metric}", "params"):
        table.add_column(column)
    order = {TrialStatus.RUNNING: 0, TrialStatus.PENDING: 1}
    trials = sorted(progress.trials, key=lambda t: (order.get(t.status, 2), t.trial_id))
    for t in trials[:14]:
        table.add_row(t.trial_id, t.algorithm, t.status.value, str(t.epochs), _fmt(t.last_metric), _short(t.params))
    if len(trials) > 14:
        table.add_row("…", f"{len(trials) - 14} more", "", "", "", "")
    return Group(head, counts, best_line, table)


def sweep(
    spec_path: Path = typer.Argument(..., help="sweep spec (YAML or JSON)", exists=False),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (overrides the spec)"),
    json_output: bool = typer.Option(
        False, "--json", help="print the result as one JSON object on the last stdout line"
    ),
    storage_path: str | None = typer.Option(
        None, "--storage-path", help="Tune storage (folder or URI); default $RFSWEEP_HOME/ray_results"
    ),
    sweep_id: str | None = typer.Option(None, "--sweep-id", help="name of this sweep (default: NAME-time-random)"),
    resume: bool = typer.Option(False, "--resume", help="restore the sweep SWEEP_ID from its storage path"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray)"
    ),
) -> None:
    """Run a sweep to completion with a live progress display, then print the best configuration per rule."""
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=json_output)
    spec = _load_spec_or_exit(spec_path)
    if resume and not sweep_id:
        console.print("[red]--resume needs --sweep-id[/]")
        raise typer.Exit(code=2)
    from sweep_service.runner import can_resume, resumable_sweeps, run_sweep, storage_root

    if resume and sweep_id and not can_resume(sweep_id, storage_path):
        known = resumable_sweeps(storage_path)
        there = f"the sweeps there: {', '.join(known)}" if known else "it holds no sweep"
        console.print(f"[red]--resume: no sweep {sweep_id!r} in {storage_root(storage_path)}[/] ({there})")
        raise typer.Exit(code=2)

    # Ctrl-C / SIGTERM cancel the sweep through should_stop (trials `cancelled`, runs KILLED) rather than
    # through Tune's own SIGINT handler, which would end trials as if they had finished.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    interrupted = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: interrupted.set())
    started = time.monotonic()
    live = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None
    shown: list[str] = []

    def on_progress(progress: SweepProgress) -> None:
        if live is not None:
            live.update(_progress_view(progress, spec.name))
            return
        c = progress.counts  # a pipe or a log: one line whenever the counts change
        line = (
            f"{progress.elapsed_seconds:7.1f}s  trials {c.done}/{c.total} done ({c.running} running), "
            f"epochs {c.epochs_done}/{c.max_epochs}"
        )
        if not shown or shown[-1] != line:
            shown.append(line)
            console.print(line, highlight=False)

    if live is not None:
        live.start()
        live.update(f"starting sweep [bold cyan]{spec.name}[/] (Ray, MLflow)…")
    else:
        console.print(f"starting sweep {spec.name} (Ray, MLflow)…", highlight=False)
    try:
        result = run_sweep(
            spec,
            sweep_id=sweep_id,
            tracking_uri=tracking_uri,
            storage_path=storage_path,
            ray_address=ray_address,
            on_progress=on_progress,
            resume=resume,
            should_stop=interrupted.is_set,
        )
    finally:
        if live is not None:
            live.stop()
    _print_summary(console, spec, result, time.monotonic() - started)
    if json_output:
        sys.stdout.flush()
        print(json.dumps(result.to_json(), default=str), flush=True)
    if result.status is SweepStatus.CANCELLED:
        raise typer.Exit(code=130)
    if result.status is SweepStatus.FAILED:
        raise typer.Exit(code=1)


def _print_summary(console: Console, spec: SweepSpec, result: SweepResult, seconds: float) -> None:
    from rfsweep_cli.display import print_best_table

    counts = result.progress
    status = f"[bold red]{result.status}[/]" if result.status is SweepStatus.FAILED else str(result.status)
    console.print(
        f"[bold]sweep {result.sweep_id}[/] {status} in {seconds:.1f}s — "
        f"{counts.finished} finished, {counts.stopped_early} stopped early, {counts.failed} failed, "
        f"{counts.diverged} diverged, {counts.cancelled} cancelled"
    )
    print_best_table(
        metric=result.metric,
        mode=result.mode,
        rules=spec.algorithms,
        best_per_rule=result.best_per_algorithm,
        trials=result.trials,
        overall=result.best,
        rules_without_result=result.rules_without_result,
        error=result.error,
        file=console.file,
    )
    console.print(
        f"MLflow: {result.tracking_uri}  experiment {result.experiment_id}, parent run {result.parent_run_id}; "
        "the sweep page is its sweep_report.html (`rfsweep ui` serves a local store)",
        soft_wrap=True,
    )


def validate(
    spec_path: Path = typer.Argument(..., help="sweep spec (YAML or JSON)"),
    json_output: bool = typer.Option(False, "--json", help="print the budget as JSON"),
) -> None:
    """Check a spec and preview its budget: trials, ASHA rungs, the most epochs the sweep can spend."""
    from rich.console import Console

    from sweep_service.limits import CostLimits

    console = Console()
    limits = CostLimits()  # what an API server with its default settings accepts
    spec = _load_spec_or_exit(spec_path, limits)
    from sweep_service.budget import budget_summary

    summary = budget_summary(spec)
    if json_output:
        print(json.dumps({"valid": True, **summary, "limits": limits.described()}))
        return
    console.print(f"[green]valid[/]: {spec_path} (sweep [bold]{spec.name}[/]), within an API server's default limits")
    console.print(
        f"  algorithms: {', '.join(summary['algorithms'])} — {summary['trials_per_algorithm']} trials each, "
        f"{summary['total_trials']} in all"
    )
    at_once = summary["max_concurrent_trials"] or "as many as fit"
    console.print(
        f"  search: {spec.search.method}, {summary['metric']} ({summary['mode']}), seed {spec.search.seed}, "
        f"at most {at_once} at once"
    )
    if summary["asha_rungs"]:
        console.print(f"  scheduler: ASHA, max_t {summary['max_t']} epochs, rungs at epochs {summary['asha_rungs']}")
    else:
        console.print(f"  scheduler: {summary['scheduler']}, every trial trains {summary['max_t']} epochs")
    console.print(
        f"  epochs: at most {summary['max_epochs']} (every trial to max_t), at least {summary['min_epochs']}, "
        f"about {summary['expected_epochs_with_asha']} if ASHA keeps its 1/reduction_factor per rung"
    )
    for rule in spec.algorithms:
        params = spec.rule_parameters(rule)
        shown = {k: (v.model_dump(exclude_none=True) if hasattr(v, "model_dump") else v) for k, v in params.items()}
        console.print(f"  {rule}: {json.dumps(shown)}", highlight=False)


def schema() -> None:
    """Print the sweep spec's JSON Schema."""
    from sweep_service.spec import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the CLI."""
    app.command("sweep")(sweep)
    app.command("validate")(validate)
    app.command("schema")(schema)
