"""`rfsweep bench`: rf_core's benchmarks (step cost per rule, epoch throughput against the standard PyTorch
recipe, cost growth with width and batch). The sweep-overhead and API-load benchmarks need services and
run from `benchmarks/` (see docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import typer


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_command(
    quick: bool = typer.Option(False, "--quick", help="fewer steps, rounds and epochs (same network, batch 32)"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    data_dir: str | None = typer.Option(
        None, help="Fashion-MNIST folder for the recipe comparison (default: RFSWEEP_DATA_DIR)"
    ),
    threads: int | None = typer.Option(None, help="torch threads (default: torch's)"),
    skip_scaling: bool = typer.Option(False, "--skip-scaling", help="leave out the width/batch growth table"),
    rounds: int | None = typer.Option(
        None, min=1, help="step-cost rounds (default 7, --quick 3); the timed floors take min(3, rounds)"
    ),
    steps: int | None = typer.Option(
        None, min=1, help="steps per rule per round (default 200, --quick 60), also each floor part's repeats"
    ),
    as_json: bool = typer.Option(False, "--json", help="last stdout line: one JSON object"),
) -> None:
    """Benchmark the learning rules: step cost vs bp, epoch speed vs the standard PyTorch recipe, growth."""
    import torch

    from paper_experiments.recipe_comparison import recipe_comparison
    from rf_core import bench
    from rf_core.data import DatasetNotFound

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    rounds, steps = rounds or (3 if quick else 7), steps or (60 if quick else 200)
    _say(
        f"step cost: {len(bench.STEP_VARIANTS)} rules, {rounds} rounds × {steps} steps, paper network, batch 32, "
        f"{device}"
    )
    steps_report = bench.step_cost(rounds=rounds, steps=steps, device=device, floors=True)
    floors = steps_report["step_floor_ratio_vs_bp"]
    for name, ratio in steps_report["step_time_ratio_vs_bp"].items():
        floor = ""
        if name in floors:
            value = floors[name]
            floor = "  (no timed floor for this rule or update)" if value is None else f"  (timed floor {value:.2f} ×)"
        _say(f"  {name:30s} {steps_report['step_seconds_median'][name] * 1e3:8.3f} ms/step  {ratio:5.2f} × bp{floor}")

    recipe: dict = {}
    try:
        recipe = recipe_comparison(
            data_dir or os.environ.get("RFSWEEP_DATA_DIR") or "", epochs=1 if quick else 5, device=device, progress=_say
        )
        r = recipe
        _say(
            f"  epoch: recipe {r['recipe_epoch_seconds_median']:.2f} s, rf_core {r['ours_epoch_seconds_median']:.2f} s "
            f"→ {r['epoch_speedup_vs_torch_recipe']:.1f}× faster; test accuracy {r['ours_test_accuracy']:.4f} vs "
            f"{r['recipe_test_accuracy']:.4f}; {r['ours_gflops']:.1f} GFLOP/s of {r['matmul_gflops_same_shapes']:.1f} "
            f"(matmuls alone, which bound the speed-up at {r['epoch_speedup_bound_from_matmuls']:.1f}×)"
        )
    except (DatasetNotFound, ImportError) as exc:
        recipe = {"skipped": str(exc)}
        _say(f"recipe comparison skipped: {exc}")

    growth: dict = {}
    if not skip_scaling:
        widths, batches = ((400, 2000), (32, 512)) if quick else ((400, 1000, 2000, 4000), (32, 128, 512, 1024))
        _say(f"growth: first hidden layer {widths}, batch {batches}")
        growth = bench.scaling(
            device=device, widths=widths, batches=batches, steps=10 if quick else 40, rounds=2 if quick else 3
        )
        for row in growth["rows"]:
            _say(
                f"  width {row['first_hidden']:5d} batch {row['batch']:5d}: "
                + ", ".join(f"{n} {ms:.2f} ms" for n, ms in row["step_ms"].items())
            )

    ours, bound = recipe.get("ours_gflops"), recipe.get("matmul_gflops_same_shapes")
    report = {
        "cpu_model": bench.cpu_model(),
        "step_time_ratio_vs_bp": steps_report["step_time_ratio_vs_bp"],
        "step_floor_ratio_vs_bp": floors,
        "share_of_matmul_bound": round(ours / bound, 3) if ours and bound else None,
        "epoch_speedup_vs_torch_recipe": recipe.get("epoch_speedup_vs_torch_recipe"),
        "step_cost": steps_report,
        "recipe": recipe,
        "growth": growth,
        "quick": quick,
        "machine": {**bench.machine(), "threads": torch.get_num_threads(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if as_json:
        print(json.dumps(report))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
