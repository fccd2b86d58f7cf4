"""The reproduction's outputs: each retrained run read back from MLflow, its statistics, Table 1 (markdown),
Figure 4 (plot), best_configs.json, and the report run that carries them all in MLflow."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paper_experiments.protocols import PAPER_TABLE1, PROTOCOLS, Budget, Protocol
from rf_core import METRIC_NAMES, TrainConfig, epochs_to_90, untrained_test_accuracy
from sweep_service import mlflow_names as names
from sweep_service import tracking
from sweep_service.records import BestEntry
from sweep_service.runner import SweepResult
from sweep_service.status import TrialStatus

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# A column of Table 1's statistics (best_configs.json, `reproduce --json`): how many seeds diverged. A count named
# after the status, not the status itself (tests/sweep_service/test_vocabulary.py lets it be).
DIVERGED_SEEDS = "diverged"


@dataclass
class SeedRun:
    seed: int
    trial_id: str
    mlflow_run_id: str | None
    status: str
    history: list[dict[str, float]]  # per epoch, rf_core's metric names
    initial_test_accuracy: float

    @property
    def final_test_accuracy(self) -> float | None:
        return self.history[-1]["test_accuracy"] if self.history else None

    @property
    def best_test_accuracy(self) -> float | None:
        return max((r["test_accuracy"] for r in self.history), default=None)

    @property
    def test_accuracy_at_best_val(self) -> float | None:
        if not self.history:
            return None
        return max(self.history, key=lambda r: (r["val_accuracy"], -r["epoch"]))["test_accuracy"]

    @property
    def epochs_to_90(self) -> int | None:
        return epochs_to_90(1 - self.initial_test_accuracy, [1 - r["test_accuracy"] for r in self.history])

    def selected_test_accuracy(self, protocol: Protocol) -> float | None:
        """What the protocol reports: (a) selects on test, so its best test; (b) test at the best-val epoch."""
        return self.best_test_accuracy if protocol.metric == "test_accuracy" else self.test_accuracy_at_best_val


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None, int]:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None, 0
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0), len(xs)


@dataclass
class RuleOutcome:
    rule: str
    search_value: float | None  # the protocol's metric for the best search trial
    search_trial: BestEntry
    config: dict[str, Any]
    seeds: list[SeedRun] = field(default_factory=list)

    def stats(self, protocol: Protocol) -> dict[str, Any]:
        sel = _mean_std([s.selected_test_accuracy(protocol) for s in self.seeds])
        final = _mean_std([s.final_test_accuracy for s in self.seeds])
        e90 = _mean_std([s.epochs_to_90 for s in self.seeds])
        return {
            "test_accuracy_mean": sel[0],
            "test_accuracy_std": sel[1],
            "runs": sel[2],
            "final_test_accuracy_mean": final[0],
            "final_test_accuracy_std": final[1],
            "epochs_to_90_mean": e90[0],
            "epochs_to_90_std": e90[1],
            DIVERGED_SEEDS: sum(s.status == TrialStatus.DIVERGED for s in self.seeds),
        }

    def describe(self) -> dict[str, Any]:
        """What ran: the rule's update form, feedback source and locality ledger (rf_core's label)."""
        flat = {k: (tuple(v) if k == "hidden" and v else v) for k, v in self.config.items()}
        return TrainConfig.from_dict(flat).describe()


def _histories(client: MlflowClient, run_id: str) -> list[dict[str, float]]:
    columns = {key: dict(tracking.metric_history(client, run_id, key)) for key in METRIC_NAMES}
    epochs = sorted(set().union(*(c.keys() for c in columns.values())))
    return [
        {"epoch": e, **{k: columns[k].get(e, float("nan")) for k in METRIC_NAMES}}
        for e in epochs
        if all(e in columns[k] for k in ("test_accuracy", "val_accuracy"))
    ]


def collect_seed_runs(result: SweepResult, tracking_uri: str) -> dict[str, list[SeedRun]]:
    """The retrain sweep's trials, grouped by rule, with their per-epoch histories read back from MLflow."""
    client = tracking.make_client(tracking_uri)
    out: dict[str, list[SeedRun]] = {}
    for trial in result.trials:
        config = trial.config
        history = _histories(client, trial.mlflow_run_id) if trial.mlflow_run_id else []
        train_config = TrainConfig.from_dict({k: (tuple(v) if k == "hidden" and v else v) for k, v in config.items()})
        out.setdefault(trial.algorithm, []).append(
            SeedRun(
                seed=int(config.get("seed", 0)),
                trial_id=trial.trial_id,
                mlflow_run_id=trial.mlflow_run_id,
                status=trial.status.value,
                history=history,
                initial_test_accuracy=untrained_test_accuracy(train_config),
            )
        )
    for runs in out.values():
        runs.sort(key=lambda r: r.seed)
    return out


# ---- outputs --------------------------------------------------------------------------------------------


def _pct(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.2f} ± {100 * (std or 0):.2f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table1_markdown(dataset: str, budget: Budget, outcomes: dict[str, dict[str, RuleOutcome]], seconds: float) -> str:
    paper = PAPER_TABLE1.get(dataset)
    lines = [
        f"# Table 1 on {dataset} — rfsweep reproduce",
        "",
        f"Budget {budget.describe()}. Wall time {seconds / 60:.1f} min (searches, retraining and Figure 2).",
        "",
    ]
    for protocol in PROTOCOLS:
        rows = outcomes.get(protocol.key)
        if not rows:
            continue
        lines += [f"## Protocol ({protocol.key}) {protocol.name}", "", protocol.description + ".", ""]
        head = (
            "| row | update | feedback | non-local (ledger) | test accuracy % (mean ± std) | final-epoch test % "
            f"| epochs to 90 % | runs | chosen configuration | search {protocol.metric} |"
        )
        sep = "|---|---|---|---|---|---|---|---|---|---|"
        if paper:
            head += " paper: test % / epochs |"
            sep += "---|"
        lines += [head, sep]
        for label in protocol.labels():
            out = rows.get(label)
            if out is None:
                lines.append(f"| {label} | | | | no usable trial (every trial diverged or failed) | | | 0 | | |")
                continue
            s = out.stats(protocol)
            e90 = (
                "–" if s["epochs_to_90_mean"] is None else f"{s['epochs_to_90_mean']:.1f} ± {s['epochs_to_90_std']:.1f}"
            )
            runs = f"{s['runs']}" + (f" ({s[DIVERGED_SEEDS]} diverged)" if s[DIVERGED_SEEDS] else "")
            chosen = ", ".join(f"{k} {_sig(v)}" for k, v in sorted(out.search_trial.params.items()))
            what = out.describe()
            nonlocal_parts = ", ".join(k.replace("_", " ") for k, used in what["ledger"].items() if used) or "none"
            row = (
                f"| {label} | {what['update']} | {what['feedback']} | {nonlocal_parts} | "
                f"{_pct(s['test_accuracy_mean'], s['test_accuracy_std'])} | "
                f"{_pct(s['final_test_accuracy_mean'], s['final_test_accuracy_std'])} | {e90} | {runs} | "
                f"{chosen or '–'} | {_num(out.search_value, 4)} |"
            )
            if paper:
                acc, epochs = paper[out.rule.split(" ")[0]]
                row += f" {acc:.2f} / {epochs} |"
            lines.append(row)
        lines.append("")
    lines += [
        "Epochs to 90 %: the first epoch t with E_0 − E_t ≥ 0.9 (E_0 − E_min), E = test error, E_0 the "
        "untrained network's (the paper's Table 1 \"Epochs\" column).",
        "",
    ]
    return "\n".join(lines)


def _sig(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.3g}"
    return "–" if value is None else str(value)


def plot_fig4(outcomes: dict[str, RuleOutcome], title: str, path: Path) -> Path:
    """Train (solid) and test (dashed) loss and accuracy vs epoch, mean over seeds, one colour per rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"bp": "tab:blue", "fa": "tab:orange", "rf_parallel": "tab:green", "rf_two_phase": "tab:red"}
    paper_colours = {"rf_parallel": "tab:olive", "rf_two_phase": "tab:purple"}  # the same rules, the paper's update
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for rule, out in outcomes.items():
        runs = [s for s in out.seeds if s.history]
        if not runs:
            continue
        length = min(len(s.history) for s in runs)
        epochs = [runs[0].history[i]["epoch"] for i in range(length)]
        for key, ax, style, label in (
            ("train_loss", ax_loss, "-", "train"),
            ("test_loss", ax_loss, "--", "test"),
            ("train_accuracy", ax_acc, "-", "train"),
            ("test_accuracy", ax_acc, "--", "test"),
        ):
            scale = 100 if key.endswith("accuracy") else 1
            mean = [scale * statistics.fmean(s.history[i][key] for s in runs) for i in range(length)]
            name = rule.split(" ")[0]
            colour = paper_colours.get(name) if "update: paper" in rule else colours.get(name)
            ax.plot(epochs, mean, style, color=colour, linewidth=1.6, label=f"{rule} ({label})")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


ABSENT_NOTE = (
    "No value is null. A configuration holds every field its rule reads, resolved; a field it leaves out is "
    "named in its config_notes with the reason. A number with no value (no seed finished; epochs_to_90 never "
    "reached; a std of one seed) is left out and named in the `absent` list beside it."
)


def _without_nulls(value: Any) -> Any:
    """`value` with every None left out; a mapping that lost some names them in its `absent` list."""
    if isinstance(value, dict):
        kept = {k: _without_nulls(v) for k, v in value.items() if v is not None}
        missing = [k for k, v in value.items() if v is None]
        return {**kept, "absent": missing} if missing else kept
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def write_outputs(
    out: Path,
    dataset: str,
    budget: Budget,
    outcomes: dict[str, dict[str, RuleOutcome]],
    seconds: float,
    pinv_demo: Callable[..., dict[str, Any]],
) -> list[str]:
    (out / "table1.md").write_text(table1_markdown(dataset, budget, outcomes, seconds))
    main = "b" if "b" in outcomes else next(iter(outcomes), None)
    files = ["table1.md"]
    for key, rows in outcomes.items():
        protocol = next(p for p in PROTOCOLS if p.key == key)
        target = out / ("fig4.png" if key == main else f"fig4_protocol_{key}.png")
        plot_fig4(
            rows,
            f"{dataset}, protocol ({key}) {protocol.name}: best configuration per rule, mean of "
            f"{budget.seeds} seeds (solid train, dashed test)",
            target,
        )
        files.append(target.name)
    demo = pinv_demo(out_dir=out)
    (out / "pinv_demo.json").write_text(json.dumps({k: v for k, v in demo.items() if k != "settings"}, indent=2))
    files += ["fig2.png", "pinv_demo.json"]
    best = {
        key: {
            rule: {
                "config": o.config,
                "config_notes": o.search_trial.config_notes,
                "rule": o.describe(),
                "search_value": o.search_value,
                "search_trial_id": o.search_trial.trial_id,
                "search_run_id": o.search_trial.mlflow_run_id,
                **o.stats(next(p for p in PROTOCOLS if p.key == key)),
                "seeds": [
                    {
                        "seed": s.seed,
                        "run_id": s.mlflow_run_id,
                        "status": s.status,
                        "epochs": len(s.history),
                        "final_test_accuracy": s.final_test_accuracy,
                        "best_test_accuracy": s.best_test_accuracy,
                        "test_accuracy_at_best_val": s.test_accuracy_at_best_val,
                        "epochs_to_90": s.epochs_to_90,
                        "initial_test_accuracy": s.initial_test_accuracy,
                    }
                    for s in o.seeds
                ],
            }
            for rule, o in rows.items()
        }
        for key, rows in outcomes.items()
    }
    (out / "best_configs.json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "budget": _without_nulls(asdict(budget)),
                "protocols": {p.key: p.description for p in PROTOCOLS},
                "absent": ABSENT_NOTE,
                "best": _without_nulls(best),
            },
            indent=2,
            default=str,
        )
    )
    files.append("best_configs.json")
    return [*files, "run_ids.json"]


def log_report_run(
    uri: str, experiment: str, out: Path, files: list[str], dataset: str, budget: Budget, ids: dict[str, Any]
) -> None:
    """The run the MLflow UI shows the outputs on, tagged with the four sweeps' parent runs."""
    client = tracking.make_client(uri)
    experiment_id = tracking.ensure_experiment(client, experiment, uri)
    run = client.create_run(
        experiment_id,
        run_name=f"reproduce-{dataset}",
        tags={names.ROLE: names.Role.REPRODUCE, names.DATASET: dataset},
    )
    run_id = ids["report_run_id"] = run.info.run_id
    tracking.log_params(
        client,
        run_id,
        {
            "dataset": dataset,
            "budget": budget.name,
            "configurations": str(budget.configurations),
            "epochs": str(budget.epochs),
            "seeds": str(budget.seeds),
        },
    )
    tracking.log_tags(
        client,
        run_id,
        {
            names.reproduce_sweep(f"{k}.{group}" if group != "main" else k, kind): v["parent_run_id"]
            for k in ("a", "b")
            for group, sweeps in ids.get(k, {}).items()
            for kind, v in sweeps.items()
            if isinstance(v, dict) and "parent_run_id" in v
        },
    )
    (out / "run_ids.json").write_text(json.dumps(ids, indent=2))
    for name in files:
        if (out / name).exists():
            client.log_artifact(run_id, str(out / name))
    client.set_terminated(run_id, names.RunStatus.FINISHED)
