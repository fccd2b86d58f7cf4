"""`rfsweep train`, `rfsweep pinv-demo` and `rfsweep data fetch` as a user runs them."""

import json
import os
import subprocess
import sys

RFSWEEP = [sys.executable, "-m", "rfsweep_cli.main"]


def run(*args, timeout=300):
    return subprocess.run([*RFSWEEP, *args], capture_output=True, text=True, timeout=timeout)


def test_train_json_last_line_has_the_contracted_fields():
    done = run("train", "--dataset", "digits", "--algorithm", "rf_parallel", "--epochs", "3", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "test_accuracy",
        "best_test_accuracy",
        "val_accuracy",
        "epochs",
        "epochs_to_90",
        "status",
        "seconds",
        "history",
    ):
        assert key in summary, key
    assert summary["status"] == "completed" and summary["epochs"] == 3 and len(summary["history"]) == 3
    assert summary["config"]["feedback_lr"] is not None  # the rule's default was filled in


def test_train_rejects_an_invalid_field_with_its_name():
    done = run("train", "--algorithm", "rf_two_phase", "--set", "pinv_every=0")
    assert done.returncode == 2
    assert "pinv_every: must be >= 1" in done.stderr


def test_train_warns_about_a_field_the_rule_does_not_read_and_still_trains():
    done = run(
        "train",
        "--dataset",
        "digits",
        "--algorithm",
        "bp",
        "--epochs",
        "1",
        "--set",
        "pinv_every=20",
        "--set",
        "weight_decay=1e-4",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert "warning: bp does not read pinv_every; no effect" in done.stderr
    assert "weight_decay" not in done.stderr  # every rule reads it
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "completed"


def test_pinv_demo_json_reports_default_and_paper_settings(tmp_path):
    done = run("pinv-demo", "--json", "--pairs", "20", "--steps", "1000", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["total"] == 20 and report["converged"] >= 19
    assert report["paper_setting"]["total"] == 20
    assert report["paper_setting"]["converged"] < report["converged"]
    assert (tmp_path / "fig2.png").stat().st_size > 10_000


def test_data_fetch_without_network_names_the_missing_files(tmp_path):
    done = run("data", "fetch", "mnist", "--data-dir", str(tmp_path), "--no-download")
    assert done.returncode == 1
    assert "train-images-idx3-ubyte" in done.stderr


def test_rules_json_lists_every_rule_with_update_feedback_and_ledger():
    done = run("rules", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {
        "bp",
        "bp_joint",
        "dfa",
        "fa",
        "kolen_pollack",
        "pseudobackprop",
        "rf_parallel",
        "rf_two_phase",
        "sign_symmetry",
        "weight_mirror",
    }
    for row in rows.values():
        assert {"update", "feedback", "ledger", "choices"} <= set(row)
        assert {"weight_transport", "feedback_from_weights", "batch_global", "sign_transport"} <= set(row["ledger"])
    assert rows["bp"]["ledger"]["weight_transport"] is True
    # sign-symmetry: its variants listed, and the sign of W (not W) in its ledger
    assert rows["sign_symmetry"]["choices"]["variant"] == ["usf", "brsf", "frsf"]
    assert rows["sign_symmetry"]["ledger"]["sign_transport"] is True
    assert rows["sign_symmetry"]["ledger"]["weight_transport"] is False
    assert rows["kolen_pollack"]["params"]["kp_decay"] > 0  # decay is part of Kolen–Pollack's defaults
    assert not any(any(rows[name]["ledger"].values()) for name in ("kolen_pollack", "weight_mirror"))
    assert rows["rf_two_phase"]["ledger"]["feedback_from_weights"] is False  # the default learns from activity
    oracle = json.loads(run("rules", "--json", "--set", "feedback=oracle_cholesky").stdout)
    assert next(r for r in oracle if r["name"] == "rf_two_phase")["ledger"]["feedback_from_weights"] is True


def test_rules_table_reads_at_80_columns_with_every_rule_and_its_feedback_whole():
    done = subprocess.run(
        [*RFSWEEP, "rules"], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"}
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "…" not in done.stdout  # nothing cut short
    for word in ("rf_two_phase", "rf_parallel", "pseudobackprop", "oracle_svd_every_step", "weight transport"):
        assert word in done.stdout
