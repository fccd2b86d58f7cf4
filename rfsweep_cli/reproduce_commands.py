"""`rfsweep reproduce`: the paper's Table 1 and Figures 2 and 4 with one command."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sweep_service.status import SweepStatus, TrialStatus

if TYPE_CHECKING:
    from rich.console import Group

    from paper_experiments.reproduce import ReproduceProgress


def _progress_view(progress: ReproduceProgress, budget_text: str) -> Group:
    from rich.console import Group
    from rich.text import Text

    eta = progress.eta_seconds
    lines = [
        Text.assemble(("reproduce ", "bold"), budget_text),
        Text(
            f"stage {progress.stage_index + 1}/{progress.stages}: {progress.stage}   elapsed "
            f"{progress.elapsed_seconds / 60:5.1f} min   epochs {progress.epochs_done}/~{progress.epochs_expected}   "
            f"time left ~{'–' if eta is None else f'{eta / 60:.1f} min'}"
        ),
    ]
    sweep = progress.sweep
    if sweep is not None:
        running = sorted({t.algorithm for t in sweep.trials if t.status is TrialStatus.RUNNING})
        lines.append(
            Text(f"  trials {sweep.counts.done}/{sweep.counts.total} done, running: {', '.join(running) or '–'}")
        )
        per_rule: dict[str, dict] = {}
        for t in sweep.trials:
            rule = per_rule.setdefault(t.algorithm, {"done": 0, "total": 0, "best": None})
            rule["total"] += 1
            if t.status.terminal:
                rule["done"] += 1
            value = t.last_metric
            if (
                value is not None
                and t.status not in (TrialStatus.DIVERGED, TrialStatus.FAILED)
                and (rule["best"] is None or value > rule["best"])
            ):
                rule["best"] = value
        for name, row in per_rule.items():
            best = "–" if row["best"] is None else f"{row['best']:.4f}"
            lines.append(
                Text(f"    {name:<13} {row['done']}/{row['total']} trials   best {sweep.metric} so far {best}")
            )
    return Group(*lines)


def reproduce(
    dataset: str = typer.Option(..., "--dataset", help="fashion_mnist | mnist | cifar10 | digits"),
    budget: str = typer.Option(
        "quick", "--budget", help="quick (minutes: see README) | paper (20 configurations, 100 epochs, 3 seeds: hours)"
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="dataset folder (default: RFSWEEP_DATA_DIR or a user cache)"
    ),
    out: Path = typer.Option(Path("reproduce-out"), "--out", help="output folder"),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else local SQLite)"
    ),
    configurations: int | None = typer.Option(
        None, "--configurations", help="override: configurations per rule", min=1
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="override: ASHA max_t and retraining epochs", min=1),
    seeds: int | None = typer.Option(None, "--seeds", help="override: seeds per best configuration", min=1),
    train_subset: int | None = typer.Option(
        None, "--train-subset", help="override: train on the first N examples", min=1
    ),
    protocol: list[str] = typer.Option(
        ["a", "b"], "--protocol", help="a (the paper's, as printed) and/or b (tuned, selected on validation)"
    ),
    max_concurrent: int | None = typer.Option(
        None, "--max-concurrent", help="trials at once (default: one per CPU)", min=1
    ),
    storage_path: str | None = typer.Option(
        None, "--storage-path", help="Tune storage (default $RFSWEEP_HOME/ray_results)"
    ),
    ray_address: str | None = typer.Option(None, "--ray-address", help="join this Ray cluster (default: a local Ray)"),
    json_output: bool = typer.Option(False, "--json", help="last stdout line: one JSON object"),
) -> None:
    """Rerun the paper's comparison (bp, fa, rf_parallel, rf_two_phase) with its protocol and with a tuned one;
    write table1.md, fig4.png, fig2.png, best_configs.json and the MLflow ids to --out."""
    from rich.console import Console
    from rich.live import Live

    from paper_experiments.protocols import DATASETS, budget_for
    from paper_experiments.reproduce import run_reproduce

    console = Console(stderr=json_output)
    if dataset not in DATASETS:
        raise typer.BadParameter(f"--dataset must be one of {', '.join(DATASETS)}", param_hint="'--dataset'")
    bad = [p for p in protocol if p not in ("a", "b")]
    if bad:
        raise typer.BadParameter(f"--protocol must be a or b, not {', '.join(bad)}", param_hint="'--protocol'")
    try:
        chosen = budget_for(
            budget, dataset, configurations=configurations, epochs=epochs, seeds=seeds, train_subset=train_subset
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--budget'") from None

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    interrupted = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: interrupted.set())
    console.print(f"budget {chosen.describe()}")
    console.print(
        "protocol (b) also searches weight decay and RF's stability knob hidden_step_scale, "
        "starting from each rule's tuned defaults"
    )
    live = Live(console=console, refresh_per_second=2, transient=False) if console.is_terminal else None
    last_line: list[tuple[str, float]] = []

    def show(progress: ReproduceProgress) -> None:
        if live is not None:
            live.update(_progress_view(progress, chosen.describe()))
            return
        # a pipe or a log: a line when the stage changes, and every 15 s within one
        if not last_line or last_line[-1][0] != progress.stage or progress.elapsed_seconds - last_line[-1][1] >= 15:
            last_line.append((progress.stage, progress.elapsed_seconds))
            console.print(
                f"{progress.elapsed_seconds / 60:5.1f} min  stage {progress.stage_index + 1}/{progress.stages}: "
                f"{progress.stage}  epochs {progress.epochs_done}/~{progress.epochs_expected}",
                highlight=False,
            )

    if live is not None:
        live.start()
        live.update("starting Ray and MLflow…")
    try:
        result = run_reproduce(
            dataset,
            chosen,
            out,
            data_dir=data_dir,
            tracking_uri=tracking_uri,
            storage_path=storage_path,
            ray_address=ray_address,
            max_concurrent=max_concurrent,
            protocols=tuple(dict.fromkeys(protocol)),
            on_progress=show,
            should_stop=interrupted.is_set,
        )
    except KeyboardInterrupt as exc:
        if live is not None:
            live.stop()
        console.print(f"[yellow]{exc or SweepStatus.CANCELLED.value}[/]; the finished sweeps stay in MLflow")
        raise typer.Exit(code=130) from None
    if live is not None:
        live.stop()
    console.print((Path(result.out_dir) / "table1.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {', '.join(result.files)} to {result.out_dir} in {result.seconds / 60:.1f} min")
    console.print(
        f"MLflow: {result.ids['tracking_uri']}  experiment {result.ids['experiment']} "
        f"({result.ids.get('experiment_id')}), report run {result.ids['report_run_id']}"
    )
    if json_output:
        sys.stdout.flush()
        print(json.dumps(result.to_json(), default=str), flush=True)


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
