"""compose.yaml: valid against the Compose Specification schema, and wired consistently.

Checks what `docker compose config` cannot: that every dependency is health-gated, every variable the
code reads is set or documented, and every published or referenced port is one a service listens on.
"""

from __future__ import annotations

import json
import re
import subprocess

import jsonschema
import pytest
from compose_model import (
    COMPOSE_SCHEMA,
    RAY_NODE_START,
    REPO,
    InterpolationError,
    command_text,
    compose_dockerfiles,
    dockerfile_instructions,
    documented_env_names,
    env_vars_read_by_code,
    environment_of,
    healthcheck_text,
    image_env,
    load_cluster_compose,
    load_compose,
    raw_compose,
    read_env_file,
    referenced_variables,
    starts_ray_node,
)

TOKENS = {"RFSWEEP_API_TOKEN": "test-api-token", "RAY_AUTH_TOKEN": "test-ray-token"}
CLUSTER_ENV = {"RAY_NODE_IP": "10.1.2.3"}
# Read by the code but deliberately neither set nor listed in .env.example, with the reason.
NOT_DEPLOYMENT_SETTINGS = {
    "XDG_CACHE_HOME": "rf_core's fallback data folder when RFSWEEP_DATA_DIR is unset; compose sets RFSWEEP_DATA_DIR",
    "RFSWEEP_INJECT_CRASH": "fault injection for the sweep layer's own tests",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "MLflow's own switch, turned off by load_best_model while it downloads",
}
# The port a service listens on when its command does not say (the image's default).
IMAGE_DEFAULT_PORTS = {"postgres": {5432}}
LISTEN_FLAG = re.compile(r"--(?:port|dashboard-port)[= ](\d+)")


@pytest.fixture(scope="module")
def compose():
    return load_compose({**read_env_file(), **TOKENS})


def test_compose_file_matches_the_compose_specification_schema(compose):
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    # The schema is strict enough to matter: a misspelt key or a wrong type is an error.
    broken = {**compose, "services": {**compose["services"], "api": {**compose["services"]["api"], "depend_on": []}}}
    assert any("depend_on" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken))
    assert set(compose["services"]) == {
        "postgres",
        "mlflow",
        "data-fetch",
        "ray-head",
        "ray-worker",
        "ray-worker-gpu",
        "api",
    }


def test_the_stack_refuses_to_start_without_either_token():
    env = read_env_file()
    assert env["RFSWEEP_API_TOKEN"] == "" and env["RAY_AUTH_TOKEN"] == "", ".env.example must not ship a token"
    for missing in TOKENS:
        with pytest.raises(InterpolationError, match=missing):
            load_compose({**env, **TOKENS, missing: ""})


@pytest.mark.parametrize(
    "loader",
    [load_compose, lambda env: load_cluster_compose({**env, **CLUSTER_ENV})],
    ids=["compose.yaml", "with compose.cluster.yaml"],
)
@pytest.mark.parametrize("token, refused", [("  ", True), ("", True), ("s3cret", False)])
def test_api_command_refuses_a_blank_token(loader, token, refused):
    script = loader({**read_env_file(), **TOKENS})["services"]["api"]["command"][2]
    guard = script.split(RAY_NODE_START)[0].rstrip("; &")
    assert guard.startswith("test -n")
    result = subprocess.run(
        ["sh", "-c", guard],
        env={"RFSWEEP_API_TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (result.returncode != 0) == refused
    assert ("RFSWEEP_API_TOKEN is blank" in result.stderr) == refused


def test_every_dependency_exists_and_is_health_gated(compose):
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a bare list"
        for target, rule in depends_on.items():
            assert target in services, f"{name} depends on {target!r}, which is not a service"
            condition = rule.get("condition")
            target_service = services[target]
            if condition == "service_healthy":
                test = (target_service.get("healthcheck") or {}).get("test")
                assert test and test[0] in ("CMD", "CMD-SHELL"), (
                    f"{name} waits for {target}'s health, which has no check"
                )
                assert not target_service["healthcheck"].get("disable"), f"{target}'s healthcheck is disabled"
            elif condition == "service_completed_successfully":
                assert target_service.get("restart") == "no", f"{target} must be a one-shot (restart: 'no')"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}; use service_healthy")
            target_profiles = set(target_service.get("profiles") or [])
            assert not target_profiles or target_profiles & set(service.get("profiles") or []), (
                f"{name} depends on {target}, which only runs with profile(s) {sorted(target_profiles)}"
            )


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue
        assert healthcheck_text(service), f"{name} has no healthcheck"
        interval = service["healthcheck"].get("interval", "30s")
        assert re.fullmatch(r"\d+s", interval), f"{name}: interval {interval!r}"


def test_api_waits_for_database_tracking_server_and_ray(compose):
    api = compose["services"]["api"]
    assert {k: v["condition"] for k, v in api["depends_on"].items()} == {
        "postgres": "service_healthy",
        "mlflow": "service_healthy",
        "ray-head": "service_healthy",
    }
    env = environment_of(api)
    assert env["RAY_ADDRESS"] == "ray-head:6379"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["RFSWEEP_API_TOKEN"] == TOKENS["RFSWEEP_API_TOKEN"]


def test_ray_token_auth_is_on_for_every_ray_process_and_never_in_an_image(compose):
    for name, service in compose["services"].items():
        if not starts_ray_node(command_text(service)):
            continue
        env = environment_of(service)
        assert env.get("RAY_AUTH_MODE") == "token", f"{name}: RAY_AUTH_MODE"
        assert env.get("RAY_AUTH_TOKEN") == TOKENS["RAY_AUTH_TOKEN"], f"{name}: RAY_AUTH_TOKEN from .env"
    for dockerfile in compose_dockerfiles(compose):
        text = dockerfile.read_text()
        assert "RAY_AUTH_TOKEN" not in text and "RFSWEEP_API_TOKEN" not in text, f"{dockerfile} bakes a token in"


def test_head_schedules_no_trials_and_workers_join_it(compose):
    services = compose["services"]
    head = command_text(services["ray-head"])
    assert f"{RAY_NODE_START} --head --block" in head and "--num-cpus=0" in head and "--dashboard-port=8265" in head
    for worker in ("ray-worker", "ray-worker-gpu"):
        assert "--address=ray-head:6379" in command_text(services[worker])
        assert "--block" in command_text(services[worker])
    assert "--num-cpus=0" in command_text(services["api"]), "the api joins as a driver node without CPUs"
    assert "profiles" not in services["ray-worker"], "a plain `docker compose up` must run trials"
    gpu = services["ray-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_shared_volumes_sit_at_the_same_path_on_every_ray_node(compose):
    services = compose["services"]
    ray_nodes = [n for n, s in services.items() if starts_ray_node(command_text(s))]
    assert set(ray_nodes) == {"ray-head", "ray-worker", "ray-worker-gpu", "api"}
    for name in ray_nodes:
        env = environment_of(services[name])
        volumes = set(services[name]["volumes"])
        assert f"datasets:{env['RFSWEEP_DATA_DIR']}" in volumes, name
        assert f"ray-results:{env['RFSWEEP_STORAGE_PATH']}" in volumes, name
    fetch = services["data-fetch"]
    assert "rfsweep data fetch" in command_text(fetch)
    assert f"datasets:{environment_of(fetch)['RFSWEEP_DATA_DIR']}" in fetch["volumes"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def test_mlflow_server_allows_the_compose_host_header_and_serves_artifacts(compose):
    command = compose["services"]["mlflow"]["command"]
    flags = dict(arg.partition("=")[::2] for arg in command if arg.startswith("--"))
    assert flags["--backend-store-uri"].startswith("postgresql+psycopg://")
    assert "--serve-artifacts" in command
    assert flags["--artifacts-destination"] == "/mlartifacts"
    assert "mlflow-artifacts:/mlartifacts" in compose["services"]["mlflow"]["volumes"]
    allowed = flags["--allowed-hosts"].split(",")
    assert {"mlflow:5000", "localhost:5000", "127.0.0.1:5000"} <= set(allowed)
    assert "*" not in allowed
    assert flags["--cors-allowed-origins"].split(",") == ["http://localhost:5000", "http://127.0.0.1:5000"]
    check = healthcheck_text(compose["services"]["mlflow"])
    assert "/api/2.0/mlflow/" in check and "'Host': 'mlflow:5000'" in check, "healthcheck must make a real API call"
    # Extra hosts from .env are appended, not substituted for the compose ones.
    extended = load_compose({**read_env_file(), **TOKENS, "MLFLOW_EXTRA_ALLOWED_HOSTS": "gpu-box.lan:5000"})
    extended_flags = dict(
        a.partition("=")[::2] for a in extended["services"]["mlflow"]["command"] if a.startswith("--")
    )
    assert extended_flags["--allowed-hosts"] == flags["--allowed-hosts"] + ",gpu-box.lan:5000"


def _listening_ports(name: str, service: dict) -> set[int]:
    return {int(p) for p in LISTEN_FLAG.findall(command_text(service))} | IMAGE_DEFAULT_PORTS.get(name, set())


def test_published_and_referenced_ports_are_ports_the_services_listen_on(compose):
    services = compose["services"]
    listening = {name: _listening_ports(name, service) for name, service in services.items()}
    assert listening["ray-head"] == {6379, 8265} and listening["mlflow"] == {5000}
    assert listening["api"] == {8000}
    for name, service in services.items():
        for port in service.get("ports", []):
            published, _, target = str(port).rpartition(":")
            assert published, f"{name}: publish {port!r} with an explicit host port"
            assert int(target) in listening[name], f"{name} publishes {target}, but listens on {listening[name]}"
            assert published.startswith("127.0.0.1:"), f"{name}: .env.example's default must bind loopback only"
        text = " ".join([command_text(service), healthcheck_text(service), *environment_of(service).values()])
        for host, port in re.findall(r"\b([a-z][a-z0-9-]*):(\d{2,5})\b", text):
            if host in services:
                assert int(port) in listening[host], (
                    f"{name} reaches {host}:{port}; {host} listens on {listening[host]}"
                )
        for local_port in re.findall(r"127\.0\.0\.1:(\d+)", healthcheck_text(service)):
            assert int(local_port) in listening[name], f"{name}'s healthcheck probes {local_port}"


def test_exposed_ports_of_each_image_cover_what_compose_publishes(compose):
    dockerfiles = {ctx: df for df, ctx in compose_dockerfiles(compose).items()}
    for service in compose["services"].values():
        if "build" not in service or not service.get("ports"):
            continue
        build = service["build"]
        dockerfile = (REPO / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile in dockerfiles.values()
        exposed = {int(p) for kw, rest in dockerfile_instructions(dockerfile) if kw == "EXPOSE" for p in rest.split()}
        for port in service["ports"]:
            assert int(str(port).rpartition(":")[2]) in exposed, f"{dockerfile.name} does not EXPOSE {port}"


def test_every_env_var_the_code_reads_is_set_in_compose_or_documented():
    compose = load_compose({**read_env_file(), **TOKENS})
    set_in_compose = set()
    for service in compose["services"].values():
        set_in_compose |= set(environment_of(service))
    set_in_images = set()
    for dockerfile in compose_dockerfiles(compose):
        set_in_images |= set(image_env(dockerfile))
    documented = documented_env_names()
    read = env_vars_read_by_code()
    assert {"DATABASE_URL", "RAY_ADDRESS", "MLFLOW_TRACKING_URI", "RFSWEEP_API_TOKEN"} <= set(read), (
        "the scan must see the API's settings; has api/settings.py moved?"
    )
    missing = {
        name: files
        for name, files in read.items()
        if name not in set_in_compose | set_in_images | documented and name not in NOT_DEPLOYMENT_SETTINGS
    }
    assert not missing, f"read by the code but neither set in compose.yaml nor listed in .env.example: {missing}"


def test_every_variable_compose_interpolates_is_in_env_example():
    # Set there, or shown commented out with its default (the base images, a worker's own share).
    missing = referenced_variables() - set(read_env_file()) - documented_env_names()
    assert not missing, f"compose.yaml uses variables .env.example does not list: {sorted(missing)}"
    unused = set(read_env_file()) - referenced_variables()
    assert not unused, f".env.example sets variables compose.yaml never uses: {sorted(unused)}"


def test_raw_compose_keeps_secrets_out_of_the_file():
    text = (REPO / "compose.yaml").read_text()
    raw = raw_compose()
    for name in ("RAY_AUTH_TOKEN", "RFSWEEP_API_TOKEN"):
        assert re.search(rf"\$\{{{name}:\?", text), f"{name} must be required (${{{name}:?...}})"
    assert "x-ray-env" in raw and raw["x-ray-env"]["RAY_AUTH_MODE"] == "token"


# ---- compose.cluster.yaml: the head host of a multi-host cluster ----------------------------------------

RAY_PORT_FLAG = re.compile(r"--([a-z-]+-port)=(\d+)")


def _fixed_ports(command: str) -> tuple[set[int], range]:
    flags = dict(RAY_PORT_FLAG.findall(command))
    flags.pop("dashboard-port", None)  # the head's published dashboard, counted with the GCS port
    workers = range(int(flags.pop("min-worker-port")), int(flags.pop("max-worker-port")) + 1)
    return {int(v) for v in flags.values()}, workers


def test_cluster_override_is_valid_and_puts_the_ray_nodes_on_the_host_network():
    cluster = load_cluster_compose({**read_env_file(), **TOKENS, **CLUSTER_ENV})
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(cluster))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    services = cluster["services"]
    for name in ("ray-head", "api"):
        assert services[name]["network_mode"] == "host" and "ports" not in services[name], name
        assert "--node-ip-address=10.1.2.3" in command_text(services[name]), name
        for value in environment_of(services[name]).values():
            assert not re.search(r"\b(mlflow|postgres|ray-head):\d", value), f"{name}: {value} needs compose DNS"
    assert environment_of(services["api"])["RAY_ADDRESS"] == "10.1.2.3:6379"
    assert services["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    assert all("bridge-workers" in services[w]["profiles"] for w in ("ray-worker", "ray-worker-gpu"))
    with pytest.raises(InterpolationError, match="RAY_NODE_IP"):
        load_cluster_compose({**read_env_file(), **TOKENS})


def test_fixed_ray_ports_of_head_api_and_documented_worker_do_not_collide():
    """All three may run on the head host, each with the host's network."""
    cluster = load_cluster_compose({**read_env_file(), **TOKENS, **CLUSTER_ENV})
    worker_command = re.search(
        r"ray_node.py --address=HEAD_HOST:6379.*?--disable-usage-stats",
        (REPO / "README.md").read_text(),
        flags=re.S,
    )
    assert worker_command, "README lost the worker's `ray start` command"
    commands = {
        "ray-head": command_text(cluster["services"]["ray-head"]),
        "api": command_text(cluster["services"]["api"]),
        "worker (README)": worker_command.group(0),
    }
    used: dict[int, str] = {}
    for node, command in commands.items():
        ports, workers = _fixed_ports(command)
        assert len(ports) == 6, f"{node}: fix all six per-node ports, found {sorted(ports)}"
        if node == "ray-head":
            ports |= {6379, 8265}
        for port in [*ports, *workers]:
            assert port not in used, f"{node} and {used[port]} both use port {port}"
            used[port] = node
    deploy = (REPO / "docs" / "DEPLOY.md").read_text()
    for node, command in commands.items():
        for port in _fixed_ports(command)[0]:
            assert str(port) in deploy, f"docs/DEPLOY.md's port table misses {node}'s {port}"
