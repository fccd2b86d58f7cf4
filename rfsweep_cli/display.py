"""How the CLI shows a sweep it follows through the API: the progress line, the live bar, the best table.
Shared by `rfsweep submit --wait`, `status`, `best` and `quickstart`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sweep_service.status import ProgressCounts, SweepStatus

if TYPE_CHECKING:
    from api.client import RfsweepClient


def progress_line(sweep: dict[str, Any]) -> str:
    p = ProgressCounts.from_dict(sweep.get("progress") or {})
    best = sweep.get("best") or {}
    value = best.get("value")
    best_text = f" best {best.get('metric')}={value:.4f}" if isinstance(value, float) else ""
    return (
        f"{sweep['status']}: trials {p.finished} finished, {p.stopped_early} stopped early, "
        f"{p.running} running, {p.failed + p.diverged} failed/diverged of "
        f"{p.total}; epochs {p.epochs_done}/{p.max_epochs}{best_text}"
    )


def follow(client: RfsweepClient, sweep_id: str, *, poll_s: float = 1.0) -> dict[str, Any]:
    """Follow a sweep until it ends, with a live bar on a terminal and one line per change elsewhere."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    if not console.is_terminal:  # logs and pipes: one plain line per change
        shown: list[str] = []

        def print_changes(sweep: dict[str, Any]) -> None:
            line = progress_line(sweep)
            if not shown or line != shown[-1]:
                print(line, flush=True)
                shown.append(line)

        return client.wait(sweep_id, poll_s=poll_s, on_update=print_changes)
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

        return client.wait(sweep_id, poll_s=poll_s, on_update=update_bar)


def print_best(best: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    overall = best.get("best") or {}
    table = Table(title=f"Best configuration per algorithm ({overall.get('metric')})")
    table.add_column("algorithm", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("searched parameters", min_width=18)
    table.add_column("trial", no_wrap=True)
    table.add_column("MLflow run", overflow="fold")
    rows = dict(best.get("best_per_algorithm") or {}) or {overall.get("algorithm") or "-": overall}
    for algorithm, entry in rows.items():
        value = entry.get("value")
        params = entry.get("params") or entry.get("config") or {}
        table.add_row(
            str(algorithm),
            f"{value:.4f}" if isinstance(value, float) else str(value),
            ", ".join(f"{k}={_short(v)}" for k, v in params.items()),
            str(entry.get("trial_id")),
            str(entry.get("mlflow_run_id")),
        )
    console = Console()
    console.print(table)
    console.print(f"overall best: {overall.get('algorithm')} {overall.get('metric')}={overall.get('value')}")
    console.print(f"  config: {json.dumps(overall.get('config'), sort_keys=True)}", soft_wrap=True)
    if overall.get("weights_uri"):
        console.print(f"  weights: {overall['weights_uri']}", soft_wrap=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
