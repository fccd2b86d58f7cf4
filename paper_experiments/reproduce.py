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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paper_experiments.protocols import DATASETS, PROTOCOLS, Budget, retrain_spec, search_spec
from paper_experiments.report import RuleOutcome, collect_seed_runs, log_report_run, write_outputs
from sweep_service import tracking
from sweep_service.progress import SweepProgress
from sweep_service.status import SweepStatus


@dataclass
class ReproduceProgress:
    stage: str  # e.g. "protocol (b) search"
    stage_index: int
    stages: int
    sweep: SweepProgress | None  # the current sweep's, None between sweeps
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

    from paper_experiments.pinv_demo import pinv_demo
    from sweep_service.budget import expected_asha_epochs
    from sweep_service.runner import connect_ray, new_sweep_id, run_sweep

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, not {dataset!r}")
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking.resolve_tracking_uri(tracking_uri)
    experiment = experiment or f"reproduce-{dataset}"
    chosen = [p for p in PROTOCOLS if p.key in protocols]
    stages = [(p, g, kind) for p in chosen for g in p.groups for kind in ("search", "retrain")]
    stage_count = len(stages) + 1  # the sweeps, then Figure 2
    expected = sum(
        expected_asha_epochs(search_spec(p, g, budget, dataset, data_dir, experiment, max_concurrent))
        + len(g.rules) * budget.seeds * budget.epochs
        for p in chosen
        for g in p.groups
    )
    done_before = 0
    outcomes: dict[str, dict[str, RuleOutcome]] = {}
    ids: dict[str, Any] = {"tracking_uri": uri, "experiment": experiment}
    started_ray = connect_ray(ray_address)  # one Ray for all the sweeps
    try:
        for index, (protocol, group, kind) in enumerate(stages):
            name = f"protocol ({protocol.key}){' ' + group.key.replace('-', ' ') if group.key else ''} {kind}"
            sweeps = ids.setdefault(protocol.key, {}).setdefault(group.key or "main", {})

            def report(
                progress: SweepProgress, _name: str = name, _index: int = index, _before: int = done_before
            ) -> None:
                if on_progress is not None:
                    on_progress(
                        ReproduceProgress(
                            _name,
                            _index,
                            stage_count,
                            progress,
                            _before + progress.counts.epochs_done,
                            max(expected, _before + progress.counts.epochs_done),  # ASHA may keep more
                            time.monotonic() - started,
                        )
                    )

            if kind == "search":
                spec = search_spec(protocol, group, budget, dataset, data_dir, experiment, max_concurrent)
            else:
                best = {
                    rule: outcomes[protocol.key][group.label(rule)].config
                    for rule in group.rules
                    if group.label(rule) in outcomes.get(protocol.key, {})
                }
                spec = retrain_spec(protocol, group, budget, dataset, data_dir, experiment, best, max_concurrent)
            result = run_sweep(
                spec,
                sweep_id=new_sweep_id(spec),
                tracking_uri=uri,
                storage_path=storage_path,
                on_progress=report,
                should_stop=should_stop,
                best_models=False,  # Table 1 and the figures read the numbers; the weights stay in every run
            )
            done_before += sum(t.epochs for t in result.trials)
            sweeps[kind] = {
                "sweep_id": result.sweep_id,
                "parent_run_id": result.parent_run_id,
                "experiment_id": result.experiment_id,
            }
            ids["experiment_id"] = result.experiment_id
            if result.status is SweepStatus.CANCELLED:
                raise KeyboardInterrupt(f"cancelled during {name}")
            rows = outcomes.setdefault(protocol.key, {})
            if kind == "search":
                for rule, best_trial in result.best_per_algorithm.items():
                    label = group.label(rule)
                    rows[label] = RuleOutcome(label, best_trial.value, best_trial, dict(best_trial.config))
                missing = [group.label(r) for r in group.rules if group.label(r) not in rows]
                if missing:  # every trial of a rule diverged or failed: nothing to retrain, and the table says so
                    sweeps["no_usable_trial"] = missing
            else:
                for rule, runs in collect_seed_runs(result, uri).items():
                    rows[group.label(rule)].seeds = runs
                    for run in runs:
                        sweeps.setdefault("retrain_runs", {}).setdefault(rule, []).append(run.mlflow_run_id)
    finally:
        if started_ray:
            ray.shutdown()

    def figure2_progress(index: int, count: int, name: str) -> None:
        if on_progress is not None:
            stage = f"Figure 2: pseudoinverse demo, setting {index + 1}/{count} ({name})"
            on_progress(
                ReproduceProgress(
                    stage,
                    len(stages),
                    stage_count,
                    None,
                    done_before,
                    max(expected, done_before),
                    time.monotonic() - started,
                )
            )

    demo = pinv_demo(steps=pinv_steps, out_dir=out, on_setting=figure2_progress)
    seconds = time.monotonic() - started  # everything: the sweeps and Figure 2
    files = write_outputs(out, dataset, budget, outcomes, seconds, lambda **kw: demo)
    log_report_run(uri, experiment, out, files, dataset, budget, ids)  # adds ids["report_run_id"], writes run_ids.json
    return ReproduceResult(str(out), dataset, budget, seconds, outcomes, ids, files)
