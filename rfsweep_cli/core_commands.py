"""`rfsweep train`, `rfsweep data fetch`, `rfsweep pinv-demo`: rf_core on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

data_app = typer.Typer(help="Datasets: download, or check the files already on disk.", no_args_is_help=True)


def _parse_assignment(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` → (field, value): the value read as YAML does (numbers, booleans, lists), else a string."""
    if "=" not in text:
        raise typer.BadParameter(f"{text!r}: expected FIELD=VALUE", param_hint="'--set'")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def checked_assignments(texts: list[str], algorithm: str) -> dict[str, Any]:
    """The `--set` values, each converted to its field's type and checked on its own, so a mistake is named
    with its field (`--set pinv_every=abc: pinv_every: Input should be a valid integer`), not found later as a
    Python error inside rf_core. Fields the rule does not read are returned too (the caller warns)."""
    from rf_core import available_rules, rule_fields
    from sweep_service.spec.fields import coerce_field, field_names, field_problem

    values: dict[str, Any] = {}
    for text in texts:
        name, value = _parse_assignment(text)
        reads = algorithm in available_rules() and name in rule_fields(algorithm)
        if name not in field_names():
            problem: str | None = "unknown training-config field" + _did_you_mean(name, sorted(field_names()))
        else:
            problem = field_problem(name, value, algorithm if reads else None)
        if problem is not None:
            raise typer.BadParameter(f"{text}: {name}: {problem}", param_hint="'--set'")
        values[name] = coerce_field(name, value)
    return values


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _hidden_widths(text: str) -> tuple[int, ...]:
    widths = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise typer.BadParameter(
                f"{text!r}: {part!r} is not a positive integer width (e.g. --hidden 400,200,100,50)",
                param_hint="'--hidden'",
            )
        widths.append(int(part))
    return tuple(widths)


def _check_device(device: str) -> None:
    """cpu, or cuda / cuda:N where torch sees a GPU: said before training, not as a CUDA traceback."""
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise typer.BadParameter(f"{device!r}: must be cpu, cuda or cuda:N", param_hint="'--device'")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter(
                f"{device}: torch {torch.__version__} sees no CUDA GPU here (torch.cuda.is_available() is False); "
                "use --device cpu",
                param_hint="'--device'",
            )
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise typer.BadParameter(
                f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)", param_hint="'--device'"
            )


def _show_progress() -> bool:
    return sys.stderr.isatty()


def train_command(
    dataset: str = typer.Option("digits", help="digits | synthetic | mnist | fashion_mnist | cifar10"),
    algorithm: str = typer.Option("bp", help="bp | fa | dfa | rf_two_phase | rf_parallel | pseudobackprop | ..."),
    epochs: int = typer.Option(10, min=1),
    lr: float | None = typer.Option(None, help="forward learning rate (default: the rule's tuned default)"),
    feedback_lr: float | None = typer.Option(None, help="rf_parallel's feedback learning rate"),
    batch_size: int = typer.Option(32, min=1),
    hidden: str | None = typer.Option(None, help="hidden widths, e.g. 400,200,100,50 (default: per dataset)"),
    activation: str | None = typer.Option(None, help="leaky_relu | leaky_softplus | tanh"),
    data_dir: str | None = typer.Option(None, help="dataset folder (default: RFSWEEP_DATA_DIR or a user cache)"),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N"),
    seed: int = typer.Option(0),
    set_: list[str] = typer.Option([], "--set", help="any other training-config field, e.g. --set pinv_every=20"),
    tracking_uri: str | None = typer.Option(None, help="log this run to MLflow at this URI"),
    experiment: str = typer.Option("rfsweep-train", help="MLflow experiment for --tracking-uri"),
    save: Path | None = typer.Option(None, help="write the final weights (state dict) here"),
    as_json: bool = typer.Option(False, "--json", help="last stdout line: one JSON object"),
) -> None:
    """Train one network with one learning rule."""
    from rf_core import ALL_FIELDS, ConfigError, TrainConfig, available_rules, rule_fields, train

    values: dict[str, Any] = {
        "dataset": dataset,
        "algorithm": algorithm,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "data_dir": data_dir,
        "device": device,
        "seed": seed,
    }
    if feedback_lr is not None:
        values["feedback_lr"] = feedback_lr
    if hidden:
        values["hidden"] = _hidden_widths(hidden)
    if activation:
        values["activation"] = activation
    assigned = checked_assignments(set_, algorithm)
    # a field another rule reads is a warning, not an error: scripts pass one --set list to several rules
    unread = sorted(
        k for k in assigned if k in ALL_FIELDS and algorithm in available_rules() and k not in rule_fields(algorithm)
    )
    if unread:
        typer.echo(f"warning: {algorithm} does not read {', '.join(unread)}; no effect", err=True)
    values.update({k: v for k, v in assigned.items() if k not in unread})
    try:
        config = TrainConfig.from_dict(values)
    except ConfigError as exc:
        typer.echo(f"rfsweep train: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    _check_device(device)

    progress = None
    if _show_progress():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # The whole run in epochs, and the batches of the epoch under way (rf_core's on_progress hook).
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            transient=False,
        )
        progress.start()
        task = progress.add_task(f"{algorithm} on {dataset}", total=epochs, metrics="", unit="epochs")
        batches = progress.add_task("  epoch 1", total=None, metrics="", unit="batches")

    def on_epoch(record: dict[str, Any], _state: Any) -> None:
        if progress is not None:
            progress.update(task, advance=1, metrics=epoch_line(record))

    def on_progress(epoch: int, done: int, per_epoch: int) -> None:
        if progress is not None:
            progress.update(batches, description=f"  epoch {epoch}", completed=done, total=per_epoch)

    try:
        result = train(config, on_epoch=on_epoch, on_progress=on_progress)
    except (FileNotFoundError, RuntimeError, MemoryError) as exc:  # missing data, CUDA out of memory...
        if progress is not None:
            progress.stop()
        typer.echo(f"rfsweep train: {type(exc).__name__}: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from None
    finally:
        if progress is not None:
            progress.stop()

    summary = result.summary()
    if save is not None:
        import torch

        torch.save(result.model_state, save)
        summary["weights_path"] = str(save)
    if tracking_uri:
        from sweep_service.tracking import log_single_run

        summary["mlflow"] = log_single_run(result, tracking_uri=tracking_uri, experiment=experiment)
    if as_json:
        typer.echo(json.dumps(summary, default=float))
    else:
        typer.echo(
            f"{summary['status']}: {algorithm} on {dataset}, {summary['epochs']} epochs "
            f"in {summary['seconds']:.1f} s — "
            f"test accuracy {summary['test_accuracy']:.4f} (best {summary['best_test_accuracy']:.4f}), "
            f"val accuracy {summary['val_accuracy']:.4f}, epochs to 90 % {summary['epochs_to_90']}"
        )


def epoch_line(record: dict[str, Any]) -> str:
    """One epoch's metrics, each with its name."""
    return (
        f"train loss {record['train_loss']:.4f}  val acc {record['val_accuracy']:.4f}  "
        f"test acc {record['test_accuracy']:.4f}"
    )


@data_app.command("fetch")
def data_fetch(
    name: str = typer.Argument(..., help="mnist | fashion_mnist | cifar10 (digits and synthetic need nothing)"),
    data_dir: str | None = typer.Option(None, help="default: RFSWEEP_DATA_DIR, else a user cache folder"),
    no_download: bool = typer.Option(False, "--no-download", help="only check the files already there"),
) -> None:
    """Download a dataset where the network allows, or check the files already there."""
    from rf_core.data import DatasetNotFound, fetch_dataset, locate

    try:
        folder = fetch_dataset(name, data_dir, download=not no_download)
    except DatasetNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # a failed download: say what is missing instead of a traceback
        try:
            locate(name, data_dir)
        except DatasetNotFound as missing:
            typer.echo(f"download failed ({type(exc).__name__}: {exc}).\n{missing}", err=True)
            raise typer.Exit(1) from None
        raise
    typer.echo(f"{name}: files present in {folder}")


def pinv_demo_command(
    out: Path | None = typer.Option(None, help="write fig2.png (and pinv_demo.json) here"),
    pairs: int = typer.Option(100),
    steps: int = typer.Option(5000),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The paper's Figure 2: pairs of matrices learning to be each other's pseudoinverse."""
    from paper_experiments.pinv_demo import pinv_demo

    report = pinv_demo(pairs=pairs, seed=seed, steps=steps, out_dir=out)
    if out is not None:
        (out / "pinv_demo.json").write_text(json.dumps(report, indent=2))
    if as_json:
        typer.echo(json.dumps(report))
        return
    for s in report["settings"]:
        typer.echo(f"{s['converged']:>4}/{s['total']} converged  {s['setting']}")
    if out is not None:
        typer.echo(f"plot: {report['plot']}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("pinv-demo")(pinv_demo_command)
    app.add_typer(data_app, name="data")
