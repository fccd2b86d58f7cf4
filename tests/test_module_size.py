"""No module grows past 400 lines holding more than one job.

Every Python file of the repository (product, tests, benchmarks, scripts) over MAX_LINES is listed here with the
one job it holds; a module that grows past the limit fails this test until it is split along its sections or its
one job is written down below (and a reviewer agrees that it is one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400

ONE_JOB_EACH = {
    "tests/api/test_adversarial.py": "hostile and careless bodies against a live server, by hand and property-based",
    "benchmarks/api_load.py": "the open-model load test of the API: its schedule, its latencies, the highest rate",
}


def python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_the_modules_over_400_lines_are_the_listed_ones():
    files = python_files()
    assert len(files) > 100, "git lists the repository's files"
    long = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in files}
    over = {name: lines for name, lines in long.items() if lines > MAX_LINES}
    assert sorted(over) == sorted(ONE_JOB_EACH), f"over {MAX_LINES} lines: {over}"
