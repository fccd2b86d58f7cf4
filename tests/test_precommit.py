"""The pre-commit hooks (.pre-commit-config.yaml) run the checks scripts/test.sh runs before its test suite, so
the two cannot drift apart: a check added to scripts/test.sh fails this test until it is a hook too."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEST_SCRIPT = ROOT / "scripts" / "test.sh"
PRECOMMIT_CONFIG = ROOT / ".pre-commit-config.yaml"


def checks_before_the_suite(script: str) -> list[str]:
    """The commands of the project's tools (`.venv/bin/...`) that `script` runs before the line that runs pytest,
    whitespace-normalised; installing (`pip install`) is not a check."""
    checks = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["exec"]:
            words = words[1:]
        if not words or not words[0].startswith(".venv/bin/"):
            continue
        if "pytest" in words:
            return checks
        if Path(words[0]).name != "pip":  # installing what the checks need is not a check
            checks.append(shlex.join(words))
    raise AssertionError(f"{TEST_SCRIPT} runs no pytest: the checks before it cannot be told apart")


def local_hooks(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [hook for repo in config["repos"] if repo["repo"] == "local" for hook in repo["hooks"]]


def hook_command(hook: dict[str, Any]) -> str:
    """What pre-commit runs for a hook that passes no filenames: its entry, then its args."""
    return shlex.join([*shlex.split(hook["entry"]), *hook.get("args", [])])


def test_every_check_of_the_test_script_is_a_precommit_hook():
    checks = checks_before_the_suite(TEST_SCRIPT.read_text())
    assert ".venv/bin/ruff check" in checks and len(checks) >= 5  # the parse found the checks, not nothing
    hooks = [hook_command(h) for h in local_hooks(yaml.safe_load(PRECOMMIT_CONFIG.read_text()))]
    assert [check for check in checks if check not in hooks] == []


def test_the_hooks_run_the_projects_own_tools_over_the_whole_tree():
    for hook in local_hooks(yaml.safe_load(PRECOMMIT_CONFIG.read_text())):
        command = shlex.split(hook_command(hook))
        # the .venv tool, at the version CI runs ("unsupported" is pre-commit 4.4's new name for "system")
        assert hook["language"] in ("system", "unsupported"), hook["id"]
        assert command[0].startswith(".venv/bin/") and (ROOT / command[0]).exists(), hook["id"]
        assert hook.get("pass_filenames") is False, f"{hook['id']}: checks the tree, as scripts/test.sh does"
        if "pytest" in command:  # a fast test hook names its tests: the whole suite is CI's, not a commit's
            assert any(word.startswith("tests/") for word in command), hook["id"]


def test_the_script_parse_finds_a_check_added_before_the_suite_and_ignores_the_install():
    """The parse itself: a new check line is seen; the install line and the suite are not checks."""
    script = TEST_SCRIPT.read_text().replace(
        ".venv/bin/mypy\n", ".venv/bin/mypy\n.venv/bin/python -m new_checker --strict\n", 1
    )
    checks = checks_before_the_suite(script)
    assert ".venv/bin/python -m new_checker --strict" in checks
    assert not any("pip" in check or "pytest" in check for check in checks)
