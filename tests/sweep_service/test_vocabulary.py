"""Every name that crosses a layer has one home, and comes back nowhere else as a literal.

Read from the product's source (rf_core, sweep_service, api, rfsweep_cli, paper_experiments; the Alembic
migrations are history and stay as written): a string literal equal to a trial or sweep status, an rf_core result
status, an MLflow run status, an artifact name or a key of the epoch report, outside the module that defines it,
fails here with its file and line. So does a trial summary or a best entry read by key (`row["trial_id"]`,
`row.get("last_metric")`) anywhere but where the record is defined: they are read by attribute.
Docstrings and the text of f-strings are prose, not names, and are not read."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from rf_core import ResultStatus
from sweep_service import epoch_report
from sweep_service import mlflow_names as names
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.status import SweepStatus, TrialStatus

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("rf_core", "sweep_service", "api", "rfsweep_cli", "paper_experiments")
HISTORY = ("api/migrations",)


def product_files() -> list[Path]:
    files = [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in files if not any(p.relative_to(ROOT).as_posix().startswith(h) for h in HISTORY)]


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, value) of each string literal that is not a docstring and not a piece of an f-string."""
    tree = ast.parse(path.read_text(), filename=str(path))
    prose: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            prose.add(id(node.value))
        if isinstance(node, ast.JoinedStr):
            prose.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            yield node.lineno, node.value


# rf_core's epoch record carries a `diverged` flag (rf_core.train writes it): the key, not the status. Where the
# record is read and passed on, the word is that key; Table 1's statistics name their count of diverged seeds so.
RECORD_FLAG = {
    ("sweep_service/trainable.py", "diverged"),
    ("sweep_service/epoch_report.py", "diverged"),
    ("paper_experiments/report.py", "diverged"),
}


def literals_outside(vocabulary: set[str], homes: tuple[str, ...]) -> list[str]:
    found = []
    for path in product_files():
        where = path.relative_to(ROOT).as_posix()
        if where in homes:
            continue
        found += [
            f"{where}:{line}: {value!r}"
            for line, value in string_literals(path)
            if value in vocabulary and (where, value) not in RECORD_FLAG
        ]
    return found


VOCABULARIES = {
    # "diverged" is in both status enums: each home may say it.
    "trial and sweep statuses": (
        {s.value for s in TrialStatus} | {s.value for s in SweepStatus},
        ("sweep_service/status.py", "rf_core/train.py"),
    ),
    "rf_core's result statuses": ({s.value for s in ResultStatus}, ("rf_core/train.py", "sweep_service/status.py")),
    "MLflow's run statuses": ({s.value for s in names.RunStatus}, ("sweep_service/mlflow_names.py",)),
    "artifact names": (
        {
            names.SPEC_ARTIFACT,
            names.BEST_CONFIG_ARTIFACT,
            names.TRIALS_ARTIFACT,
            names.CURVES_ARTIFACT,
            names.REPORT_ARTIFACT,
            names.SUMMARY_ARTIFACT,
            names.WEIGHTS_FILE,
            names.WEIGHTS_ARTIFACT,
            names.MODEL_CARD,
        },  # not "model" and "weights": ordinary words (a spec section, a state dict's key) before they are names
        ("sweep_service/mlflow_names.py",),
    ),
    "the epoch report's keys": (
        {
            epoch_report.NODE_ID,
            epoch_report.RF_CORE_VERSION,
            epoch_report.RESUMED_FROM_EPOCH,
            epoch_report.TRIAL_CONFIG,
            epoch_report.RESTORED_HISTORY,
        },  # not "epoch", "seconds", "diverged", "device": rf_core's record and config say them first
        ("sweep_service/epoch_report.py",),
    ),
}


@pytest.mark.parametrize("vocabulary", list(VOCABULARIES))
def test_a_vocabulary_is_written_in_its_home_only(vocabulary):
    values, homes = VOCABULARIES[vocabulary]
    assert literals_outside(values, homes) == []


# Fields only a trial summary or a best entry has (not `status`, `config`, `params`, `epochs`, `value`: every
# JSON body has those words; not `eval_seconds`: rf_core's epoch record says it first).
RECORD_KEYS = {"trial_id", "last_metric", "best_metric", "mlflow_run_id", "weights_uri", "model_uri", "model_error"}
RECORD_KEYS |= {"config_notes", "training_seconds", "wall_seconds"}
RECORD_HOMES = ("sweep_service/records.py",)


def keyed_reads(path: Path) -> Iterator[tuple[int, str]]:
    """`x["key"]` and `x.get("key", ...)` reads of a record-only key."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if isinstance(key, str) and key in RECORD_KEYS:
            yield node.lineno, key


def test_trial_summaries_and_best_entries_are_read_by_attribute():
    assert set(TrialSummary.model_fields) | set(BestEntry.model_fields) >= RECORD_KEYS
    found = []
    for path in product_files():
        where = path.relative_to(ROOT).as_posix()
        if where not in RECORD_HOMES:
            found += [f"{where}:{line}: [{key!r}]" for line, key in keyed_reads(path)]
    assert found == []


def test_the_scan_sees_a_literal_and_a_keyed_read(tmp_path):
    """The scanner itself: what it must find, and the prose it must skip."""
    source = tmp_path / "sample.py"
    source.write_text(
        '"""FINISHED in a docstring is prose."""\n'
        "status = 'FINISHED'\n"
        "text = f'FINISHED {status}'\n"
        "row = {}\n"
        "value = row['trial_id'] or row.get('last_metric')\n"
    )
    assert list(string_literals(source)) == [(2, "FINISHED"), (5, "trial_id"), (5, "last_metric")]
    assert list(keyed_reads(source)) == [(5, "trial_id"), (5, "last_metric")]
