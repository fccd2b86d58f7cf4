"""The comparison table's runner (paper_experiments/baselines.py): one row per rule and per variant, each with the
whole config it runs, and a table that says which runs diverged, even in their first epoch."""

import json

from paper_experiments.baselines import markdown, shipped_rules, table_rows


def test_every_rule_and_each_sign_symmetry_variant_gets_a_row_with_its_whole_config():
    rows = {row["label"]: row for row in table_rows(shipped_rules())}
    assert {"bp", "fa", "sign_symmetry (usf)", "sign_symmetry (brsf)", "sign_symmetry (frsf)"} <= set(rows)
    assert "sign_symmetry" not in rows and "kolen_pollack" in rows and "weight_mirror" in rows
    fa = rows["fa"]["config"]
    assert (fa["activation"], fa["lr"], fa["drop_last"]) == ("tanh", 0.2, True)  # the defaults, written out
    assert rows["sign_symmetry (brsf)"]["config"]["variant"] == "brsf"
    assert rows["kolen_pollack"]["config"]["kp_decay"] > 0


def test_the_table_flags_diverged_runs_and_keeps_their_seeds_in_view(tmp_path):
    rows = [row for row in table_rows(shipped_rules()) if row["label"] in ("bp", "dfa")]
    common = {"dataset": "digits", "epochs": 3, "diagnostics": False}
    results = tmp_path / "results.jsonl"

    def result(row, seed, status, best_val, test, epochs):
        cfg = {**row["config"], **common, "seed": seed}
        return {"cfg": cfg, "status": status, "best_val": best_val, "test_at_best_val": test, "epochs": epochs}

    bp, dfa = rows
    lines = [
        result(bp, 0, "completed", 0.95, 0.94, 3),
        result(bp, 1, "completed", 0.97, 0.96, 3),
        result(dfa, 0, "diverged", None, None, 0),  # in its first epoch: no best-validation epoch at all
        result(dfa, 1, "diverged", 0.5, 0.4, 2),
    ]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    table = markdown(rows, results, common=common, seeds=[0, 1])
    bp_line, dfa_line = table.splitlines()[2:]
    assert "0.9500 ± 0.0141" in bp_line and "0 of 2" in bp_line
    assert "2 of 2" in dfa_line and "diverged in epoch 1" in dfa_line and "0.4000 (diverged after epoch 2)" in dfa_line
    assert "0.4000 (one run)" in dfa_line
