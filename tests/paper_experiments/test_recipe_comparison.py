"""The standard-recipe comparison of `rfsweep bench`: both sides train the same network on the same files, and
their epochs interleave (tiny settings here; the full figures are in docs/BENCHMARKS.md)."""

from __future__ import annotations

from test_data import make_idx_dataset

from paper_experiments import recipe_comparison as bench


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
