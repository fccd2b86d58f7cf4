"""The minimum Docker Compose version: what the files use that needs it, what the docs say, and the check
script users run (`docker/check-compose-version.sh`), against a stand-in `docker` on PATH."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from compose_model import REPO, load_compose, read_env_file

MINIMUM = "2.24.0"
CHECK = REPO / "docker" / "check-compose-version.sh"
# Each feature that needs Compose v2.24+, and how to find it in the raw files.
FEATURES = {
    "env_file.required": (REPO / "compose.yaml", re.compile(r"^\s+required:\s+false", re.M)),
    "${VAR:+…}": (REPO / "compose.yaml", re.compile(r"\$\{[A-Z_]+:\+")),
    "!reset": (REPO / "compose.cluster.yaml", re.compile(r"!reset\b")),
}


@pytest.mark.parametrize("feature", FEATURES)
def test_the_files_use_what_the_documented_minimum_is_for(feature):
    path, pattern = FEATURES[feature]
    assert pattern.search(path.read_text()), f"{path.name} no longer uses {feature}: update the minimum in the docs"


@pytest.mark.parametrize("doc", ["README.md", "docs/DEPLOY.md"])
def test_docs_state_the_minimum_and_why(doc):
    text = (REPO / doc).read_text()
    assert "Compose v2.24" in text, f"{doc} must say that Docker Compose v2.24+ is needed"
    for feature in FEATURES:
        assert feature.replace("…", "") in text.replace("…", ""), f"{doc} must name {feature} as a reason"
    assert "check-compose-version.sh" in text


def _run_check(tmp_path, docker_script: str | None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker_script is not None:
        docker = bin_dir / "docker"
        docker.write_text("#!/bin/sh\n" + docker_script)
        docker.chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(
        ["/bin/sh", str(CHECK)], capture_output=True, text=True, env={**os.environ, "PATH": path}, timeout=30
    )


@pytest.mark.parametrize(
    "reported, ok", [("v2.24.0", True), ("2.29.7", True), ("2.23.3", False), ("v2.9.1", False), ("3.0.0", True)]
)
def test_check_script_accepts_exactly_the_minimum_and_later(tmp_path, reported, ok):
    result = _run_check(tmp_path, f'[ "$1 $2 $3" = "compose version --short" ] && echo {reported} || exit 2\n')
    assert (result.returncode == 0) is ok, (result.stdout, result.stderr)
    if not ok:
        assert f"older than {MINIMUM}" in result.stderr and "!reset" in result.stderr


def test_check_script_says_what_is_missing_without_the_plugin(tmp_path):
    result = _run_check(tmp_path, "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1\n")
    assert result.returncode == 1 and f"needs Docker Compose v{MINIMUM}" in result.stderr


def test_one_shot_data_fetch_does_not_inherit_the_api_images_healthcheck():
    compose = load_compose({**read_env_file(), "RFSWEEP_API_TOKEN": "t", "RAY_AUTH_TOKEN": "t"})
    assert "HEALTHCHECK" in (REPO / "docker" / "Dockerfile").read_text()  # what it would inherit
    fetch = compose["services"]["data-fetch"]
    assert fetch["restart"] == "no"
    assert fetch.get("healthcheck") == {"disable": True}
