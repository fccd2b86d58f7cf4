"""`rfsweep reproduce`: the paper's Table 1 and Figures 2 and 4, rerun through our own sweep service.

The paper's protocol (appendix A.1) is HyperOpt over the learning rates, ASHA with at most 100 epochs,
20 configurations per rule, batch 32, on its fixed architectures. We run it twice:

- protocol **(a) "paper"**, exactly as printed: forward lr log-uniform [1e-4, 1e-2], rf_parallel's
  feedback lr log-uniform [1e-6, 1e-3], leaky ReLU everywhere, configurations *selected on test accuracy*;
- protocol **(b) "tuned"**, as it should be done: domains wide enough to hold each rule's optimum (RF's
  Newton step wants λ ≈ 1, far above the paper's domain), weight decay and RF's stability knobs searched
  too, each rule's tuned defaults tried first, configurations selected on the *validation* split; test
  accuracy is only reported, at the epoch with the best validation accuracy.

Each protocol is two sweeps on one MLflow experiment: a **search** (one parent run, a HyperOpt + ASHA
search per rule) and a **retrain** of each rule's best configuration to the full epoch budget with several
seeds (a FIFO sweep whose points are the seeds), giving mean ± std. A report run on the same experiment
carries the outputs: table1.md, fig4.png (and fig4_protocol_a.png), fig2.png, best_configs.json, run_ids.json.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from sweep_service import tracking
from sweep_service.spec import RESERVED_FIELDS, SECTION_FIELDS, SweepSpec, parse_spec

RULES = ("bp", "fa", "rf_parallel", "rf_two_phase")
DATASETS = ("fashion_mnist", "mnist", "cifar10", "digits")
TAG_REPRODUCE_ID = "rfsweep.reproduce_id"

# The paper's Table 1 (test accuracy %, epochs to 90 % of the asymptotic error), for the datasets it ran.
PAPER_TABLE1: dict[str, dict[str, tuple[float, int]]] = {
    "mnist": {"bp": (92.99, 42), "fa": (92.67, 71), "rf_parallel": (92.65, 79), "rf_two_phase": (92.81, 64)},
    "cifar10": {"bp": (40.76, 16), "fa": (40.29, 80), "rf_parallel": (41.46, 44), "rf_two_phase": (41.34, 42)},
}


def _loguniform(low: float, high: float) -> dict[str, Any]:
    return {"distribution": "loguniform", "low": low, "high": high}


PAPER_DOMAINS: dict[str, dict[str, Any]] = {
    rule: {"lr": _loguniform(1e-4, 1e-2), **({"feedback_lr": _loguniform(1e-6, 1e-3)} if rule == "rf_parallel" else {})}
    for rule in RULES
}
# Wide enough that each rule's optimum is inside (bp/fa: 0.01–0.1; RF's Newton step: λ ≈ 1), plus the RF
# knob that mattered most in the Fashion-MNIST screens (docs/RF_STABILITY.md §5): the hidden layers' step.
# Weight decay because every rule's test loss climbs after ~15 epochs of plain SGD at batch 32 while its
# accuracy stalls (docs/RF_STABILITY.md §6); its domain is per rule because the decay per step is lr·weight_decay
# and RF's λ is ~30× bp's lr.
_RF_KNOBS = {"hidden_step_scale": _loguniform(1.0, 30.0), "weight_decay": _loguniform(1e-6, 5e-4)}
_SGD_KNOBS = {"weight_decay": _loguniform(1e-4, 1e-2)}
TUNED_DOMAINS: dict[str, dict[str, Any]] = {
    "bp": {"lr": _loguniform(1e-3, 0.5), **_SGD_KNOBS},
    "fa": {"lr": _loguniform(1e-3, 0.5), **_SGD_KNOBS},
    "rf_parallel": {"lr": _loguniform(0.05, 5.0), "feedback_lr": _loguniform(1e-6, 1e-2), **_RF_KNOBS},
    "rf_two_phase": {"lr": _loguniform(0.05, 5.0), **_RF_KNOBS},
}
# The search's first point per rule: its defaults, with the weight decay that won a 40-epoch Fashion-MNIST
# screen on validation accuracy (docs/RF_STABILITY.md §6); the rules' own default stays 0, the paper's SGD.
# Held fixed in both protocols: the paper's sleep period (A.1). rf_core's own default is 100, measured as
# accurate and cheaper (docs/RF_CORE.md §4); the reproduction runs what the paper ran.
PAPER_FIXED: dict[str, dict[str, Any]] = {"rf_two_phase": {"pinv_every": 20}}
TUNED_START: dict[str, dict[str, Any]] = {
    "bp": {"weight_decay": 2e-3},
    "fa": {"weight_decay": 2e-4},
    "rf_parallel": {"weight_decay": 6e-5},
    "rf_two_phase": {"weight_decay": 2e-4},
}


@dataclass(frozen=True)
class Protocol:
    key: str  # "a" | "b"
    name: str
    metric: str  # what the search and the retrain select on
    domains: dict[str, dict[str, Any]]
    activation: str | None  # None: each rule's tuned default
    start_from_defaults: bool  # the rules' tuned defaults (with `start_overrides`) are the search's first point
    lr_schedule: str  # constant: the paper's plain SGD; cosine: the step size decays to 0 over max_t epochs
    description: str
    start_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per rule


PROTOCOLS = (
    Protocol(
        "a",
        "paper",
        "test_accuracy",
        PAPER_DOMAINS,
        "leaky_relu",
        False,
        "constant",
        "as the paper specifies: lr log-uniform [1e-4, 1e-2] (rf_parallel feedback lr [1e-6, 1e-3]), "
        "leaky ReLU, selection on test accuracy; reported: the best test accuracy over epochs",
    ),
    Protocol(
        "b",
        "tuned",
        "val_accuracy",
        TUNED_DOMAINS,
        None,
        True,
        "cosine",
        "wide domains (bp, fa lr [1e-3, 0.5], weight decay [1e-4, 1e-2]; RF lr [0.05, 5], hidden_step_scale "
        "[1, 30], weight decay [1e-6, 5e-4], rf_parallel feedback lr [1e-6, 1e-2]), a cosine learning-rate "
        "decay over the epoch budget, each rule's default activation, its tuned defaults tried first, "
        "selection on the validation split; reported: test accuracy at the epoch of best validation accuracy",
        start_overrides=TUNED_START,
    ),
)


@dataclass(frozen=True)
class Budget:
    name: str
    configurations: int  # per rule and protocol
    epochs: int  # ASHA's max_t and the retraining length
    seeds: int
    grace_period: int
    reduction_factor: int
    train_subset: int | None = None

    def describe(self) -> str:
        subset = f", first {self.train_subset} training examples" if self.train_subset else ""
        return (
            f"{self.name}: {self.configurations} configurations per rule, ASHA max_t {self.epochs} epochs "
            f"(grace {self.grace_period}, reduction ×{self.reduction_factor}), best configuration retrained "
            f"{self.epochs} epochs × {self.seeds} seeds{subset}"
        )


PAPER_BUDGET = Budget("paper", configurations=20, epochs=100, seeds=3, grace_period=1, reduction_factor=4)
# quick: sized so fashion_mnist fits in 30 minutes on a 2-core CPU, digits in well under 5 (docs/RESULTS.md).
QUICK_BUDGETS = {
    "digits": Budget("quick", configurations=6, epochs=30, seeds=3, grace_period=3, reduction_factor=3),
    "default": Budget("quick", configurations=5, epochs=20, seeds=3, grace_period=2, reduction_factor=3),
}


def budget_for(name: str, dataset: str, **overrides: int | None) -> Budget:
    if name == "paper":
        base = PAPER_BUDGET
    elif name == "quick":
        base = QUICK_BUDGETS.get(dataset, QUICK_BUDGETS["default"])
    else:
        raise ValueError(f"budget must be 'paper' or 'quick', not {name!r}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return base
    budget = replace(base, **changes)
    return replace(
        budget,
        name=f"{base.name} (changed: {', '.join(f'{k}={v}' for k, v in changes.items())})",
        grace_period=min(budget.grace_period, budget.epochs),
    )


# ---- the specs -------------------------------------------------------------------------------------


def search_spec(
    protocol: Protocol, budget: Budget, dataset: str, data_dir: str | None, experiment: str, max_concurrent: int | None
) -> SweepSpec:
    from rf_core import TrainConfig

    points = []
    if protocol.start_from_defaults:
        for rule in RULES:
            defaults = TrainConfig(algorithm=rule).resolved().to_dict()
            defaults.update(protocol.start_overrides.get(rule, {}))
            points.append({"algorithm": rule, **{k: defaults[k] for k in protocol.domains[rule]}})
    return parse_spec(
        {
            "name": f"reproduce-{dataset}-{protocol.key}-search",
            "dataset": _dataset_section(dataset, data_dir, budget),
            "model": {"activation": protocol.activation} if protocol.activation else {},
            "algorithm": list(RULES),
            "parameters": {"batch_size": 32, "lr_schedule": protocol.lr_schedule},
            "algorithm_parameters": {
                rule: {**domain, **PAPER_FIXED.get(rule, {})} for rule, domain in protocol.domains.items()
            },
            "search": {
                "method": "hyperopt",
                "metric": protocol.metric,
                "mode": "max",
                "num_samples": budget.configurations,
                "max_concurrent_trials": max_concurrent,
                "seed": 0,
                "points_to_evaluate": points,
            },
            "scheduler": {
                "type": "asha",
                "max_t": budget.epochs,
                "grace_period": budget.grace_period,
                "reduction_factor": budget.reduction_factor,
            },
            "tracking": {"experiment": experiment},
        }
    )


def retrain_spec(
    protocol: Protocol,
    budget: Budget,
    dataset: str,
    data_dir: str | None,
    experiment: str,
    best_configs: dict[str, dict[str, Any]],
    max_concurrent: int | None,
) -> SweepSpec:
    """Each rule's best configuration, fixed, with `seed` as the only searched value: one trial per seed."""
    from rf_core import rule_fields

    seeds = list(range(budget.seeds))
    per_rule = {}
    for rule, config in best_configs.items():
        own = rule_fields(rule)
        per_rule[rule] = {
            k: v
            for k, v in config.items()
            if k in own
            and k not in RESERVED_FIELDS
            and k != "seed"
            and v is not None
            and not (k in SECTION_FIELDS and k != "activation")
            and not (k == "activation" and protocol.activation)
        }
    return parse_spec(
        {
            "name": f"reproduce-{dataset}-{protocol.key}-retrain",
            "dataset": _dataset_section(dataset, data_dir, budget),
            "model": {"activation": protocol.activation} if protocol.activation else {},
            "algorithm": list(best_configs),
            "parameters": {"seed": {"distribution": "choice", "values": seeds}},
            "algorithm_parameters": per_rule,
            "search": {
                "method": "random",
                "metric": protocol.metric,
                "mode": "max",
                "num_samples": len(seeds),
                "max_concurrent_trials": max_concurrent,
                "seed": 0,
                "points_to_evaluate": [{"algorithm": r, "seed": s} for r in best_configs for s in seeds],
            },
            "scheduler": {"type": "fifo", "max_t": budget.epochs},
            "tracking": {"experiment": experiment},
        }
    )


def _dataset_section(dataset: str, data_dir: str | None, budget: Budget) -> dict[str, Any]:
    section: dict[str, Any] = {"name": dataset}
    if data_dir:
        section["data_dir"] = data_dir
    if budget.train_subset:
        section["train_subset"] = budget.train_subset
    return section


# ---- summarising retrained runs ----------------------------------------------------------------------


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
        from rf_core import epochs_to_90

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
    search_trial: dict[str, Any]
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
            "diverged": sum(s.status == "diverged" for s in self.seeds),
        }


def _histories(client, run_id: str) -> list[dict[str, float]]:
    from rf_core import METRIC_NAMES

    columns = {key: dict(tracking.metric_history(client, run_id, key)) for key in METRIC_NAMES}
    epochs = sorted(set().union(*(c.keys() for c in columns.values())))
    return [
        {"epoch": e, **{k: columns[k].get(e, float("nan")) for k in METRIC_NAMES}}
        for e in epochs
        if all(e in columns[k] for k in ("test_accuracy", "val_accuracy"))
    ]


def collect_seed_runs(result, tracking_uri: str) -> dict[str, list[SeedRun]]:
    """The retrain sweep's trials, grouped by rule, with their per-epoch histories read back from MLflow."""
    from rf_core import TrainConfig, untrained_test_accuracy

    client = tracking.make_client(tracking_uri)
    out: dict[str, list[SeedRun]] = {}
    for trial in result.trials:
        config = trial["config"]
        history = _histories(client, trial["mlflow_run_id"]) if trial.get("mlflow_run_id") else []
        train_config = TrainConfig.from_dict({k: (tuple(v) if k == "hidden" and v else v) for k, v in config.items()})
        out.setdefault(trial["algorithm"], []).append(
            SeedRun(
                seed=int(config.get("seed", 0)),
                trial_id=trial["trial_id"],
                mlflow_run_id=trial.get("mlflow_run_id"),
                status=trial["status"],
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
        f"Budget {budget.describe()}. Wall time {seconds / 60:.1f} min.",
        "",
    ]
    for protocol in PROTOCOLS:
        rows = outcomes.get(protocol.key)
        if not rows:
            continue
        lines += [f"## Protocol ({protocol.key}) {protocol.name}", "", protocol.description + ".", ""]
        head = (
            "| algorithm | test accuracy % (mean ± std) | final-epoch test % | epochs to 90 % | runs | chosen configuration | search "
            + protocol.metric
            + " |"
        )
        sep = "|---|---|---|---|---|---|---|"
        if paper:
            head += " paper: test % / epochs |"
            sep += "---|"
        lines += [head, sep]
        for rule in RULES:
            out = rows.get(rule)
            if out is None:
                continue
            s = out.stats(protocol)
            e90 = (
                "–" if s["epochs_to_90_mean"] is None else f"{s['epochs_to_90_mean']:.1f} ± {s['epochs_to_90_std']:.1f}"
            )
            runs = f"{s['runs']}" + (f" ({s['diverged']} diverged)" if s["diverged"] else "")
            chosen = ", ".join(f"{k} {_sig(v)}" for k, v in sorted((out.search_trial.get("params") or {}).items()))
            row = (
                f"| {rule} | {_pct(s['test_accuracy_mean'], s['test_accuracy_std'])} | "
                f"{_pct(s['final_test_accuracy_mean'], s['final_test_accuracy_std'])} | {e90} | {runs} | "
                f"{chosen or '–'} | {_num(out.search_value, 4)} |"
            )
            if paper:
                acc, epochs = paper[rule]
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
            ax.plot(epochs, mean, style, color=colours.get(rule), linewidth=1.6, label=f"{rule} ({label})")
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


# ---- the driver ------------------------------------------------------------------------------------------


@dataclass
class ReproduceProgress:
    stage: str  # e.g. "protocol (b) search"
    stage_index: int
    stages: int
    sweep: Any  # the current SweepProgress, or None between sweeps
    epochs_done: int  # over all stages so far
    epochs_expected: int  # over all stages (ASHA at its design point)
    elapsed_seconds: float

    @property
    def eta_seconds(self) -> float | None:
        if self.epochs_done <= 0 or self.elapsed_seconds <= 0:
            return None
        rate = self.epochs_done / self.elapsed_seconds
        return max(0.0, (self.epochs_expected - self.epochs_done) / rate)


@dataclass
class ReproduceResult:
    out_dir: str
    dataset: str
    budget: Budget
    seconds: float
    outcomes: dict[str, dict[str, RuleOutcome]]
    ids: dict[str, Any]
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "budget": asdict(self.budget),
            "seconds": round(self.seconds, 1),
            "out_dir": self.out_dir,
            "files": self.files,
            "mlflow": self.ids,
            "protocols": {
                p.key: {rule: o.stats(p) for rule, o in self.outcomes.get(p.key, {}).items()} for p in PROTOCOLS
            },
        }


def run_reproduce(
    dataset: str,
    budget: Budget,
    out_dir: str | Path,
    *,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    storage_path: str | None = None,
    ray_address: str | None = None,
    max_concurrent: int | None = None,
    protocols: tuple[str, ...] = ("a", "b"),
    experiment: str | None = None,
    pinv_steps: int = 5000,  # Figure 2's iterations (the paper's); tests run fewer
    on_progress: Callable[[ReproduceProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ReproduceResult:
    """Search, retrain and report for each protocol; write the outputs to `out_dir` and to an MLflow run."""
    import ray

    from rf_core.pinv_demo import pinv_demo
    from sweep_service.budget import expected_asha_epochs
    from sweep_service.runner import _connect_ray, new_sweep_id, run_sweep

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, not {dataset!r}")
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking.resolve_tracking_uri(tracking_uri)
    experiment = experiment or f"reproduce-{dataset}"
    chosen = [p for p in PROTOCOLS if p.key in protocols]
    stages = [(p, kind) for p in chosen for kind in ("search", "retrain")]
    expected_search = {
        p.key: expected_asha_epochs(search_spec(p, budget, dataset, data_dir, experiment, max_concurrent))
        for p in chosen
    }
    expected = sum(expected_search.values()) + len(chosen) * len(RULES) * budget.seeds * budget.epochs
    done_before = 0
    outcomes: dict[str, dict[str, RuleOutcome]] = {}
    ids: dict[str, Any] = {"tracking_uri": uri, "experiment": experiment}
    started_ray = _connect_ray(ray_address)  # one Ray for all four sweeps
    try:
        for index, (protocol, kind) in enumerate(stages):
            name = f"protocol ({protocol.key}) {kind}"

            def report(progress, _name=name, _index=index) -> None:
                if on_progress is not None:
                    on_progress(
                        ReproduceProgress(
                            _name,
                            _index,
                            len(stages),
                            progress,
                            done_before + progress.epochs_done,
                            expected,
                            time.monotonic() - started,
                        )
                    )

            if kind == "search":
                spec = search_spec(protocol, budget, dataset, data_dir, experiment, max_concurrent)
            else:
                best = {rule: o.config for rule, o in outcomes[protocol.key].items()}
                spec = retrain_spec(protocol, budget, dataset, data_dir, experiment, best, max_concurrent)
            result = run_sweep(
                spec,
                sweep_id=new_sweep_id(spec),
                tracking_uri=uri,
                storage_path=storage_path,
                on_progress=report,
                should_stop=should_stop,
            )
            done_before += sum(t["epochs"] for t in result.trials)
            ids.setdefault(protocol.key, {})[kind] = {
                "sweep_id": result.sweep_id,
                "parent_run_id": result.parent_run_id,
                "experiment_id": result.experiment_id,
            }
            ids["experiment_id"] = result.experiment_id
            if result.status == "cancelled":
                raise KeyboardInterrupt(f"cancelled during {name}")
            if kind == "search":
                outcomes[protocol.key] = {
                    rule: RuleOutcome(rule, best["value"], best, dict(best["config"]))
                    for rule, best in result.best_per_algorithm.items()
                }
                missing = [r for r in RULES if r not in outcomes[protocol.key]]
                if missing:  # every trial of a rule diverged or failed: nothing to retrain, and the table says so
                    ids[protocol.key]["no_usable_trial"] = missing
            else:
                for rule, runs in collect_seed_runs(result, uri).items():
                    outcomes[protocol.key][rule].seeds = runs
                    for run in runs:
                        ids[protocol.key].setdefault("retrain_runs", {}).setdefault(rule, []).append(run.mlflow_run_id)
    finally:
        if started_ray:
            ray.shutdown()

    seconds = time.monotonic() - started
    files = _write_outputs(out, dataset, budget, outcomes, ids, seconds, lambda **kw: pinv_demo(steps=pinv_steps, **kw))
    _log_report_run(uri, experiment, out, files, dataset, budget, ids)  # adds ids["report_run_id"], writes run_ids.json
    return ReproduceResult(str(out), dataset, budget, seconds, outcomes, ids, files)


def _write_outputs(out: Path, dataset: str, budget: Budget, outcomes, ids, seconds: float, pinv_demo) -> list[str]:
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
                "search_value": o.search_value,
                "search_trial_id": o.search_trial.get("trial_id"),
                "search_run_id": o.search_trial.get("mlflow_run_id"),
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
                "budget": asdict(budget),
                "protocols": {p.key: p.description for p in PROTOCOLS},
                "best": best,
            },
            indent=2,
            default=str,
        )
    )
    files.append("best_configs.json")
    return files + ["run_ids.json"]


def _log_report_run(uri: str, experiment: str, out: Path, files: list[str], dataset: str, budget: Budget, ids) -> None:
    """The run the MLflow UI shows the outputs on, tagged with the four sweeps' parent runs."""
    client = tracking.make_client(uri)
    experiment_id = tracking.ensure_experiment(client, experiment, uri)
    run = client.create_run(
        experiment_id,
        run_name=f"reproduce-{dataset}",
        tags={tracking.TAG_ROLE: "reproduce", "rfsweep.dataset": dataset},
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
            f"rfsweep.sweep.{k}.{kind}": v["parent_run_id"]
            for k in ("a", "b")
            if k in ids
            for kind, v in ids[k].items()
            if isinstance(v, dict) and "parent_run_id" in v
        },
    )
    (out / "run_ids.json").write_text(json.dumps(ids, indent=2))
    for name in files:
        if (out / name).exists():
            client.log_artifact(run_id, str(out / name))
    client.set_terminated(run_id, "FINISHED")
