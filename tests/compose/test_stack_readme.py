"""README's "Run the stack" section is what CI's stack stage runs: the commands of the section's bash blocks
stand, in order and as written, between `# README: begin` and `# README: end` of .ci/stack-stage.sh, which
may differ only where a line says `# substitutes: WHAT` (the two tokens, the offline datasets, the sweep ID)
and by `echo` lines (curl prints no newline)."""

from __future__ import annotations

import re

from compose_model import REPO

STAGE = REPO / ".ci" / "stack-stage.sh"
SUBSTITUTABLE = {"tokens", "offline datasets", "sweep ID"}


def logical_lines(text: str) -> list[str]:
    """Shell commands of a script or block: continuation lines joined, comments and blank lines dropped,
    a trailing `# ...` comment kept apart (it may carry the substitution marker)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def split_marker(line: str) -> tuple[str, str | None]:
    command, _, marker = line.partition("  # substitutes: ")
    if marker:
        return command.strip(), marker.strip()
    return re.sub(r"\s+#\s.*$", "", line).strip(), None


def readme_commands(readme: str) -> list[str]:
    section = readme.split("## Run the stack\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [split_marker(line)[0] for block in blocks for line in logical_lines(block)]


def stage_commands(script: str) -> list[tuple[str, str | None]]:
    region = script.split("# README: begin\n", 1)[1].split("# README: end\n", 1)[0]
    return [split_marker(line) for line in logical_lines(region)]


def differences(readme: str, script: str) -> list[str]:
    """What the stage runs that README does not say, or leaves out; empty when the two agree."""
    wanted = [line.replace("/sweeps/ID", "/sweeps/$SWEEP_ID") for line in readme_commands(readme)]
    problems = []
    run: list[str] = []
    for command, marker in stage_commands(script):
        if marker is not None and marker not in SUBSTITUTABLE:
            problems.append(f"unknown substitution {marker!r}: {command}")
        if command == "echo":
            continue
        if marker == "sweep ID" and " | tee " in command:
            run.append(command.split(" | tee ", 1)[0])  # README's submit, its answer kept for the ID
        elif marker is None:
            run.append(command)
    # README's token generator is what the `tokens` substitutions replace.
    wanted = [line for line in wanted if "secrets.token_urlsafe" not in line]
    if run != wanted:
        problems.append("README says:\n  " + "\n  ".join(wanted) + "\nthe stage runs:\n  " + "\n  ".join(run))
    return problems


def test_the_stack_stage_runs_readmes_stack_commands_as_written():
    assert not differences((REPO / "README.md").read_text(), STAGE.read_text())


def test_a_readme_edit_the_stage_does_not_follow_is_caught():
    readme = (REPO / "README.md").read_text()
    script = STAGE.read_text()
    assert "docker compose ps -a" in readme_commands(readme), "README shows exited containers (data-fetch) too"
    edited = readme.replace("docker compose up -d --build --wait", "docker compose up -d --build")
    assert edited != readme and differences(edited, script)
    # ...and a substitution the rules do not allow is caught too.
    sneaky = script.replace("docker compose ps -a\n", "docker compose ps -a  # substitutes: anything\n")
    assert any("unknown substitution" in p for p in differences(readme, sneaky))


# What each substitution may do: a stage line marked with it must have this shape (so a marker cannot hide a
# command README does not run).
_TOKEN = re.escape("""$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')""")
_ID = re.escape(
    """SWEEP_ID=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$out/submitted.json")"""
)
SUBSTITUTION_SHAPES = {
    "tokens": r'sed -i "s\|\^(RFSWEEP_API_TOKEN|RAY_AUTH_TOKEN)=\\\$\|\1=' + _TOKEN + r'\|" \.env',
    "offline datasets": re.escape("sed -i 's|^RFSWEEP_DATASETS=.*|RFSWEEP_DATASETS=|' .env"),
    "sweep ID": r"curl -sS -X POST http://localhost:8000/sweeps .*|" + _ID,
}


def test_each_substituted_line_only_substitutes_what_its_marker_names():
    marked = [(command, marker) for command, marker in stage_commands(STAGE.read_text()) if marker]
    assert {marker for _, marker in marked} == SUBSTITUTABLE
    for command, marker in marked:
        assert re.fullmatch(SUBSTITUTION_SHAPES[marker], command), (marker, command)
    sneaky = 'sed -i "s|^RAY_AUTH_TOKEN=$|RAY_AUTH_TOKEN=x|" .env; rm -rf /'
    assert not re.fullmatch(SUBSTITUTION_SHAPES["tokens"], sneaky)


def test_ci_runs_the_stack_stage_after_the_suite_and_the_stage_fails_without_an_engine():
    """.ci/run: the suite, then the stage, under `set -e` and never masked; the stage exits 1 when dockerd does
    not answer (it never skips)."""
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "set -euo pipefail" in lines
    assert lines.index("bash scripts/test.sh") < lines.index("bash .ci/stack-stage.sh")
    stage = STAGE.read_text()
    assert "set -euo pipefail" in stage.splitlines()
    assert re.search(r'docker info >/dev/null 2>&1 \|\| \{[^}]*"dockerd did not start" >&2; exit 1; \}', stage)
