"""Every mistake a user makes on the command line ends in one line that names the option or field and says
why: no traceback, exit status 1 or 2 (the list of the issue, and a few more)."""

from __future__ import annotations

import subprocess
import sys

import pytest

RFSWEEP = [sys.executable, "-m", "rfsweep_cli.main"]
BAD_SPEC = """name: bad
dataset: {name: digits, trainsubset: 10}
algorithm: [bp, rf_two_phas]
parameters:
  lrr: {distribution: loguniform, low: 1.0e-3, high: 1.0}
  lr: {distribution: loguniform, low: 0, high: 1.0}
serch: {num_samples: 2}
scheduler: {type: asha, max_t: 10, grace_period: 20}
"""


def rfsweep(*args: str) -> subprocess.CompletedProcess:
    """The real command, in a process of its own."""
    return subprocess.run([*RFSWEEP, *args], capture_output=True, text=True, timeout=120)


def rfsweep_here(*args: str) -> subprocess.CompletedProcess:
    """The same command line run in this process (Typer's CliRunner): no torch import per case."""
    from typer.testing import CliRunner

    from rfsweep_cli.main import app

    url = ["--url", "http://127.0.0.1:9"] if args and args[0] in ("status", "trials", "pause") else []
    result = CliRunner().invoke(app, [*args, *url], prog_name="rfsweep")
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


CASES = [
    (["train", "--hidden", "10,abc"], ["'--hidden'", "'abc' is not a positive integer width"]),
    pytest.param(
        ["train", "--device", "cuda"],
        ["'--device'", "sees no CUDA GPU"],
        marks=pytest.mark.skipif(_cuda(), reason="this machine has a GPU"),
    ),
    (["train", "--device", "tpu"], ["'--device'", "must be cpu, cuda or cuda:N"]),
    (["train", "--algorithm", "rf_two_phase", "--set", "pinv_every=abc"], ["'--set'", "pinv_every", "integer"]),
    (["train", "--set", "lr=fast"], ["'--set'", "lr: Input should be a valid number"]),
    (["train", "--set", "batch_size=-3"], ["'--set'", "batch_size: must be >= 1"]),
    (["train", "--set", "pinv_evry=3"], ["'--set'", "unknown training-config field; did you mean pinv_every?"]),
    (["train", "--set", "seed"], ["'--set'", "expected FIELD=VALUE"]),
    (["train", "--set", "bias=maybe"], ["'--set'", "bias: Input should be a valid boolean"]),
    (["train", "--epochs", "abc"], ["'--epochs'", "valid integer"]),
    (["train", "--epochs", "0"], ["'--epochs'", "greater than or equal to 1"]),
    (["train", "--dataset", "nope"], ["dataset: unknown dataset 'nope'"]),
    (["train", "--algorithm", "nope"], ["algorithm: unknown rule 'nope'"]),
    (["train", "--lr", "-1"], ["lr: must be > 0"]),
    (["train", "--activation", "relu6"], ["activation: must be one of"]),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], ["DatasetNotFound", "rfsweep data fetch mnist"]),
    (["trian"], ["No such command 'trian'. Did you mean 'train'"]),
    (["train", "--bogus"], ["No such option: --bogus"]),
    (["sweep", "/nonexistent.yaml"], ["cannot read the sweep spec /nonexistent.yaml"]),
    (["reproduce", "--dataset", "nope"], ["--dataset must be one of"]),
    (["reproduce", "--dataset", "digits", "--budget", "huge"], ["--budget", "'paper' or 'quick'"]),
    (["status", "some-id"], ["cannot reach the API"]),
    (["submit", "/nonexistent.yaml"], ["'/nonexistent.yaml'"]),
]


@pytest.mark.parametrize(("args", "words"), CASES)
def test_a_mistake_is_one_line_naming_what_is_wrong(args, words):
    done = rfsweep_here(*args)
    assert done.returncode in (1, 2, 3), (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_the_real_command_answers_a_mistake_in_one_line_too():
    done = rfsweep("train", "--hidden", "10,abc")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "python -m rfsweep_cli.main train: Invalid value for '--hidden': '10,abc': 'abc' is not a positive integer "
        "width (e.g. --hidden 400,200,100,50) (see python -m rfsweep_cli.main train --help)"
    ]


def test_validate_reports_every_problem_at_once_with_lines_and_suggestions(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPEC)
    done = rfsweep_here("validate", str(spec))
    assert done.returncode == 2
    out = done.stderr
    assert "6 problem(s)" in out
    for line, words in [
        (2, "dataset.trainsubset: unknown field; did you mean train_subset?"),
        (3, "algorithm[1]: unknown rule 'rf_two_phas'"),
        (5, "parameters.lrr: unknown training-config field; did you mean lr?"),
        (6, "parameters.lr.low: must be > 0 for loguniform"),
        (7, "serch: unknown field; did you mean search?"),
        (8, "scheduler.grace_period: must be <= max_t (10)"),
    ]:
        assert f"{spec}:{line}: {words}" in out, out


def test_help_shows_flags_as_flags():
    done = rfsweep_here("status", "--help")
    assert done.returncode == 0
    assert "--json " in done.stdout and "<bool>" not in done.stdout
