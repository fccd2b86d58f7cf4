"""compose.yaml, .env.example and the Dockerfiles as data, read the way Docker Compose reads them.

Shared by the tests in this folder; no Docker engine needed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
CLUSTER_OVERRIDE = REPO / "compose.cluster.yaml"
ENV_EXAMPLE = REPO / ".env.example"
# The Compose Specification's schema, vendored (Apache-2.0, its LICENSE beside it).
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schema" / "compose-spec.json"
CODE_PACKAGES = ("api", "sweep_service", "rf_core", "paper_experiments", "rfsweep_cli")

# Compose interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME:+alt}, $NAME.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class InterpolationError(ValueError):
    pass


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped; a value in matching quotes is taken
    without them, as Compose and a shell read it)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def documented_env_names(path: Path = ENV_EXAMPLE) -> set[str]:
    """Every NAME that .env.example sets or shows commented out (`# NAME=...`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), flags=re.M))


def interpolate_text(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        is_set, non_empty = value is not None, bool(value)
        if op in (":-", "-"):
            return value if (non_empty if op == ":-" else is_set) else arg
        if op in (":?", "?"):
            if not (non_empty if op == ":?" else is_set):
                raise InterpolationError(f"{name}: {arg or 'required'}")
            return value
        if op in (":+", "+"):
            return arg if (non_empty if op == ":+" else is_set) else ""
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    """compose.yaml after YAML anchors/merges and variable interpolation with `env`."""
    return interpolate(raw_compose(), env)


def referenced_variables(*files: Path) -> set[str]:
    """Every variable the compose files interpolate (escaped `$$NAME` is the container's, not compose's)."""
    names = set()
    for path in files or (COMPOSE_FILE, CLUSTER_OVERRIDE):
        for match in _INTERPOLATION.finditer(path.read_text()):
            if match.group(0) != "$$":
                names.add(match.group("name") or match.group("bare"))
    return names


class _Reset:
    """`!reset` in an override file: drop the base file's value."""


class _Override:
    """`!override`: replace the base file's value instead of merging with it."""

    def __init__(self, value: Any):
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())
_ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: _Override(
        loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node, deep=True)
    ),
)
_MERGED_SEQUENCES = ("ports", "volumes", "expose", "dns", "env_file")  # compose appends these across files


def merge_override(base: Any, override: Any, key: str = "") -> Any:
    """Compose's rules for `-f base -f override`: mappings merge by key, most lists are replaced,
    ports/volumes/... append, `!reset` removes and `!override` replaces."""
    if isinstance(override, _Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            if isinstance(v, _Reset):
                merged.pop(k, None)
            else:
                merged[k] = merge_override(base.get(k), v, k) if k in base else _plain(v)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key in _MERGED_SEQUENCES:
        return base + [item for item in override if item not in base]
    return _plain(override)


def _plain(value: Any) -> Any:
    if isinstance(value, _Override):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, _Reset)}
    return value


def load_cluster_compose(env: dict[str, str]) -> dict[str, Any]:
    """compose.yaml with compose.cluster.yaml on top, interpolated."""
    override = yaml.load(CLUSTER_OVERRIDE.read_text(), Loader=_ComposeLoader)
    return interpolate(merge_override(raw_compose(), override), env)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return command if isinstance(command, str) else " ".join(map(str, command))


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(map(str, test))


# ---- Dockerfiles ------------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def image_env(path: Path) -> dict[str, str]:
    """ENV of a Dockerfile's final stage (KEY=VALUE form), with $PATH-style references left as written."""
    env: dict[str, str] = {}
    for keyword, rest in final_stage(dockerfile_instructions(path)):
        if keyword == "ENV":
            for token in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[token[0]] = token[1].strip('"')
    return env


def compose_dockerfiles(compose: dict[str, Any]) -> dict[Path, Path]:
    """Dockerfile -> build context, for every service that builds."""
    found: dict[Path, Path] = {}
    for service in compose["services"].values():
        build = service.get("build")
        if not build:
            continue
        context = (REPO / (build if isinstance(build, str) else build.get("context", "."))).resolve()
        dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        found[(context / dockerfile).resolve()] = context
    return found


# ---- environment variables the code reads -------------------------------------------------------------


def _string_constants(tree: ast.Module) -> dict[str, str]:
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def env_reads_in_source(source: str) -> set[str]:
    """Variables read through os.environ[...] / .get / os.getenv, and pydantic-settings aliases."""
    tree = ast.parse(source)
    constants = _string_constants(tree)

    def literal(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            name = literal(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            is_get = node.func.attr == "get" and _is_environ(node.func.value)
            is_getenv = node.func.attr == "getenv"
            name = literal(node.args[0]) if (is_get or is_getenv) else None
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AliasChoices":
            names.update(v for v in map(literal, node.args) if v)
            continue
        elif isinstance(node, ast.keyword) and node.arg in ("alias", "validation_alias", "envvar"):
            name = literal(node.value)
        else:
            continue
        if name:
            names.add(name)
    names.update(_settings_field_names(tree))
    return names


def _settings_field_names(tree: ast.Module) -> set[str]:
    """Fields of BaseSettings classes without an explicit alias: env_prefix + FIELD NAME."""
    names = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        if not any(getattr(base, "id", getattr(base, "attr", None)) == "BaseSettings" for base in cls.bases):
            continue
        prefix = ""
        for node in ast.walk(cls):
            if isinstance(node, ast.keyword) and node.arg == "env_prefix" and isinstance(node.value, ast.Constant):
                prefix = node.value.value
        for item in cls.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            aliased = isinstance(item.value, ast.Call) and any(
                k.arg in ("alias", "validation_alias") for k in item.value.keywords
            )
            if not aliased:
                names.add((prefix + item.target.id).upper())
    return names


def env_vars_read_by_code() -> dict[str, list[str]]:
    """NAME -> files that read it, over the project's packages."""
    found: dict[str, list[str]] = {}
    for package in CODE_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for name in env_reads_in_source(path.read_text()):
                found.setdefault(name, []).append(str(path.relative_to(REPO)))
    return found


# Every Ray node of compose.yaml starts through docker/ray_node.py, which is `ray start` with resources sized
# to the container (the image's copy sits at this path).
RAY_NODE_START = "python /opt/rfsweep/ray_node.py"


def starts_ray_node(command: str) -> bool:
    return RAY_NODE_START in command
