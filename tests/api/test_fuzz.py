"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis), queue-only so
that generated specs never train: no 5xx, every response conforms to the schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import TOKEN, ApiServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_TIME_S = os.environ.get("RFSWEEP_FUZZ_SECONDS", "15")  # docs/API.md has the long run


@pytest.mark.slow  # tens of seconds of real runs: the full suite's, not the fast lane's
def test_schemathesis_finds_nothing(tmp_path):
    server = ApiServer(tmp_path, {"RFSWEEP_MAX_RUNNING_SWEEPS": "0"}).start()
    try:
        st = str(Path(sys.executable).with_name("schemathesis"))
        cmd = [
            st,
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            "--max-time",
            MAX_TIME_S,
            "--workers",
            "2",
            "--no-color",
            "--request-timeout",
            "20",
        ]
        # cwd: schemathesis keeps a crash cache (.schemathesis/) in its working directory, not in the repo
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=int(MAX_TIME_S) + 240, cwd=tmp_path)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    summary = "\n".join(output.splitlines()[-25:])
    assert result.returncode == 0, summary
    assert re.search(r"(\d+) generated", output), summary
    assert "Server error" not in output and "Traceback" not in server.log_tail(100_000)
