"""`rfsweep bench`: the step-cost table, the standard-recipe comparison and the growth table are computed for
real (tiny settings here; the full figures are in docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_data import make_idx_dataset

from rf_core import bench


def test_bp_step_flops_counts_forward_weight_and_input_gradients():
    # one layer 4 -> 3 and one 3 -> 2 at batch 1: forward 12+6, weight gradients 12+6, input gradient 6 (not for layer 1)
    assert bench.bp_step_flops(hidden=(3,), batch=1, inputs=4, classes=2) == 2 * (2 * (12 + 6) + 6)


def test_step_cost_reports_every_rule_relative_to_bp():
    report = bench.step_cost(rounds=2, steps=5, variants={"bp": {}, "rf_two_phase": {}, "fa": {}}, hidden=(32, 16))
    assert report["step_time_ratio_vs_bp"]["bp"] == pytest.approx(1.0)
    assert set(report["step_seconds_median"]) == {"bp", "rf_two_phase", "fa"}
    assert all(s > 0 for s in report["step_seconds_median"].values())


def test_recipe_and_ours_train_the_same_network_on_the_same_files(tmp_path):
    make_idx_dataset(tmp_path, n_train=256, n_test=64)
    recipe = bench.torch_recipe(str(tmp_path), epochs=1, lr=0.03, hidden=(32, 16))
    mine = bench.ours(str(tmp_path), epochs=1, lr=0.03, hidden=(32, 16))
    assert recipe[0]["samples"] == mine[0]["samples"] == 256
    assert 0 <= recipe[0]["test_accuracy"] <= 1 and 0 <= mine[0]["test_accuracy"] <= 1
    model = bench._recipe_model((32, 16), 0.1, 2.45, seed=0)
    first = model[0].weight
    assert first.shape == (32, 784) and first.abs().max() <= 2.45 / 28 + 1e-6  # U(±g/√fan_in), as rf_core's MLP


def test_recipe_comparison_interleaves_the_two_sides_epoch_by_epoch(tmp_path):
    make_idx_dataset(tmp_path, n_train=128, n_test=32)
    said: list[str] = []
    report = bench.recipe_comparison(str(tmp_path), epochs=2, progress=said.append)
    order = [line.split()[0] for line in said if " epoch " in line]
    assert order == ["rf_core", "recipe", "rf_core", "recipe"]
    assert len(report["recipe_history"]) == len(report["ours_history"]) == 2
    # the bound: the recipe's epoch against bp's matrix products alone at this machine's own throughput
    assert report["epoch_speedup_bound_from_matmuls"] > 0 and report["epoch_speedup_per_pair_median"] > 0


def test_cli_quick_json_has_the_headline_fields(tmp_path):
    make_idx_dataset(tmp_path, n_train=128, n_test=32)
    done = subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", "bench", "--quick", "--skip-scaling", "--json", "--threads", "1",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["step_time_ratio_vs_bp"]) == set(bench.STEP_VARIANTS)
    assert report["epoch_speedup_vs_torch_recipe"] > 0
    assert report["recipe"]["matmul_gflops_same_shapes"] > 0
