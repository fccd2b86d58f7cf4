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
    # one layer 4 -> 3 and one 3 -> 2 at batch 1: forward 12+6, weight gradients 12+6,
    # input gradient 6 (not for layer 1)
    assert bench.bp_step_flops(hidden=(3,), batch=1, inputs=4, classes=2) == 2 * (2 * (12 + 6) + 6)


def test_step_cost_reports_every_rule_relative_to_bp():
    report = bench.step_cost(rounds=2, steps=5, variants={"bp": {}, "rf_two_phase": {}, "fa": {}}, hidden=(32, 16))
    assert report["step_time_ratio_vs_bp"]["bp"] == pytest.approx(1.0)
    assert set(report["step_seconds_median"]) == {"bp", "rf_two_phase", "fa"}
    assert all(s > 0 for s in report["step_seconds_median"].values())


def test_the_timed_floor_counts_each_part_a_rule_adds_to_bp():
    two_phase = bench.step_floor("rf_two_phase", rounds=1, repeats=5, hidden=(32, 16))
    parts = two_phase["microseconds_median"]
    assert {"bp_step", "rule_step", "joint_grams_and_inverse", "joint_step_weight_products", "sleep_per_step"} <= set(
        parts
    )
    added = sum(v for k, v in parts.items() if k not in ("bp_step", "rule_step"))
    assert two_phase["floor_ratio"] == pytest.approx(1 + added / parts["bp_step"], abs=2e-3)
    assert bench.step_floor("fa", rounds=1, repeats=5, hidden=(32, 16))["floor_ratio"] == 1.0  # nothing added
    assert (
        "feedback_update"
        in bench.step_floor("rf_parallel", rounds=1, repeats=5, hidden=(32, 16))["microseconds_median"]
    )


def test_cli_quick_json_has_the_headline_fields(tmp_path):
    make_idx_dataset(tmp_path, n_train=128, n_test=32)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rfsweep_cli.main",
            "bench",
            "--quick",
            "--skip-scaling",
            "--json",
            "--threads",
            "1",
            "--rounds",  # the fields are what is checked here, not the figures: as few steps as will do
            "1",
            "--steps",
            "10",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["step_time_ratio_vs_bp"]) == set(bench.STEP_VARIANTS)
    floors = report["step_floor_ratio_vs_bp"]
    assert set(floors) == set(bench.STEP_VARIANTS) - {"bp"}
    assert floors["rf_two_phase"] > 1 and floors["fa"] == 1.0
    assert floors["rf_two_phase[update=paper]"] is None  # no timed-parts model for the paper's update: no floor
    assert report["cpu_model"] and report["share_of_matmul_bound"] > 0
    assert report["epoch_speedup_vs_torch_recipe"] > 0
    assert report["recipe"]["matmul_gflops_same_shapes"] > 0
