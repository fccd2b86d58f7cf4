"""The comparison table of docs/RESULTS.md: every learning rule at its defaults, and each variant of a rule that
has them (sign-symmetry's usf, brsf, frsf), trained on one dataset for several seeds; test accuracy at the
best-validation epoch (mean ± sd over the seeds), with each row's activation, step size and locality ledger.

    python -m paper_experiments.baselines RESULTS.jsonl --dataset fashion_mnist --epochs 20 --seeds 0 1 2 \
        [--parallel 2] [--data-dir DIR]
    python -m paper_experiments.baselines RESULTS.jsonl --table-only

The rules, their defaults and ledgers are read from `rfsweep rules --json` (what users see), so the table is of
the rules as shipped. Runs already in RESULTS.jsonl are not run again (a stopped run resumes). Each run uses one
thread (paper_experiments.rf_screen.run_one).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from paper_experiments.rf_screen import run_one
from rf_core import ResultStatus, TrainConfig

VARIANT_FIELD = "variant"  # a rule whose Params offer this choice gets one row per value
LEDGER_MARKS = {  # the ledger's entries, in `rfsweep rules`' order and short names
    "weight_transport": "Wᵀ",
    "feedback_from_weights": "W→F",
    "closed_form_inverse": "inv",
    "batch_global": "batch",
    "output_error_broadcast": "e→all",
    "sign_transport": "sgn",
}


def shipped_rules() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", "rules", "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


# The common training fields a run's result depends on beyond the rule's own (their defaults, written into every
# run's config so that a table's runs say what ran, and a change of default is never matched to an older run).
TRAINING_FIELDS = (
    "val_fraction",
    "activation_slope",
    "bias",
    "init_gain",
    "lr_schedule",
    "weight_decay",
    "batch_size",
    "drop_last",
    "divergence_factor",
)


def table_rows(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per rule, or per variant: its label, the whole flat config it runs (the rule's defaults as `rfsweep
    rules --json` gives them, and the common training fields' defaults), activation, lr, ledger."""
    common = TrainConfig().to_dict()
    rows = []
    for rule in rules:
        variants = rule.get("choices", {}).get(VARIANT_FIELD)
        for variant in variants or [None]:
            config = {
                "algorithm": rule["name"],
                "lr": rule["lr"],
                "activation": rule["activation"],
                **{field: common[field] for field in TRAINING_FIELDS},
                **rule["params"],
                **({VARIANT_FIELD: variant} if variant else {}),
            }
            label = f"{rule['name']} ({variant})" if variant else rule["name"]
            rows.append({"label": label, "config": config, "activation": rule["activation"], "lr": rule["lr"], **rule})
    return rows


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def run(
    rows: list[dict[str, Any]], results: Path, *, common: dict[str, Any], seeds: list[int], data_dir: str, parallel: int
) -> None:
    done = {_key(r["cfg"]) for r in _read(results)}
    jobs = []
    for row in rows:
        for seed in seeds:
            flat = {**row["config"], **common, "seed": seed}
            if _key(flat) not in done:
                jobs.append((flat, data_dir))
    with results.open("a") as out, mp.get_context("spawn").Pool(parallel) as pool:
        for result in pool.imap_unordered(run_one, jobs):
            out.write(json.dumps(result) + "\n")
            out.flush()
            print(json.dumps(result), flush=True)


def _read(results: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.exists() else []


def markdown(rows: list[dict[str, Any]], results: Path, *, common: dict[str, Any], seeds: list[int]) -> str:
    by_config = {_key(r["cfg"]): r for r in _read(results)}
    head = [
        "rule",
        "activation",
        "lr",
        *LEDGER_MARKS.values(),
        "test at best val, mean ± sd",
        "best val, mean",
        "diverged runs",
        "per seed (test at best val)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        runs = [by_config.get(_key({**row["config"], **common, "seed": s})) for s in seeds]
        got = [r for r in runs if r is not None]
        # a run that diverged after some epochs has a best-validation epoch before it: counted, and flagged
        tests = [r["test_at_best_val"] for r in got if r["test_at_best_val"] is not None]
        vals = [r["best_val"] for r in got if r["best_val"] is not None]
        diverged = sum(r["status"] == ResultStatus.DIVERGED for r in got)
        if len(tests) > 1:
            spread = f"{statistics.mean(tests):.4f} ± {statistics.stdev(tests):.4f}"
        else:
            spread = f"{tests[0]:.4f} (one run)" if tests else "–"
        marks = ["✔" if row["ledger"].get(k) else "·" for k in LEDGER_MARKS]
        per_seed = " / ".join(_cell(r) for r in runs)
        cells = [
            row["label"],
            row["activation"],
            f"{row['lr']:g}",
            *marks,
            spread,
            f"{statistics.mean(vals):.4f}" if vals else "–",
            f"{diverged} of {len(got)}",
            per_seed,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(run: dict[str, Any] | None) -> str:
    if run is None or run["test_at_best_val"] is None:
        return "–" if run is None else f"{run['status']} in epoch 1"
    flag = f" ({run['status']} after epoch {run['epochs']})" if run["status"] == ResultStatus.DIVERGED else ""
    return f"{run['test_at_best_val']:.4f}{flag}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--table-only", action="store_true", help="print the table of RESULTS without running")
    args = parser.parse_args()
    rows = table_rows(shipped_rules())
    common = {"dataset": args.dataset, "epochs": args.epochs, "diagnostics": False}
    if not args.table_only:
        run(rows, args.results, common=common, seeds=args.seeds, data_dir=args.data_dir, parallel=args.parallel)
    print(markdown(rows, args.results, common=common, seeds=args.seeds))


if __name__ == "__main__":
    main()
