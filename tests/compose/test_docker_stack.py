"""The compose stack on a real Docker engine, checked from outside as a user sees it.

Run by CI's stack stage (.ci/stack-stage.sh) after it has run README's "Run the stack" commands, with
`--docker-stack`; without that flag this module is not collected (tests/conftest.py). The tests run
in file order and share one stack: each leaves it up and healthy for the next, and the last takes it down.
Environment: STACK_SWEEP_ID (README's sweep), RFSWEEP_API_TOKEN and RAY_AUTH_TOKEN (from .env), and
PYTHON_IMAGE / POSTGRES_IMAGE where stand-in base images are used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from compose_model import REPO

pytestmark = pytest.mark.timeout(900)

API = "http://127.0.0.1:8000"
MLFLOW = "http://127.0.0.1:5000"
DASHBOARD = "http://127.0.0.1:8265"
TERMINAL = ("succeeded", "failed", "cancelled")
# Long enough that a restart lands after the first trial has reported and before the last has (asserted).
LONG_SWEEP = {
    "name": "stack-interrupted",
    "dataset": {"name": "digits"},
    "algorithm": "bp",
    "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.3}, "batch_size": 32},
    "search": {"method": "random", "metric": "val_accuracy", "num_samples": 4, "max_concurrent_trials": 2, "seed": 1},
    "scheduler": {"type": "fifo", "max_t": 120},
    "resources": {"cpu": 1},
}
# This machine's own PostgreSQL and Redis hold 5432 and 6379 on the host network.
CLUSTER_ENV = {"RAY_NODE_IP": "127.0.0.1", "POSTGRES_HOST_PORT": "15432", "RAY_HEAD_PORT": "16379"}
CLUSTER_FILES = ["-f", "compose.yaml", "-f", "compose.cluster.yaml"]


def compose(*args: str, files: list[str] | None = None, env: dict[str, str] | None = None, timeout: int = 900):
    command = ["docker", "compose", *(files or []), *args]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    print(f"$ {' '.join(command)}  ({time.monotonic() - started:.1f} s)")
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def token_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['RFSWEEP_API_TOKEN']}"}


def ray_nodes() -> list[dict]:
    answer = httpx.get(
        f"{DASHBOARD}/api/v0/nodes", headers={"Authorization": f"Bearer {os.environ['RAY_AUTH_TOKEN']}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return [node for node in answer.json()["data"]["result"]["result"] if node["state"] == "ALIVE"]


def wait_for(what: str, probe, timeout_s: float, every_s: float = 1.0):
    """probe() until it returns something truthy; fail naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last_error = exc
        time.sleep(every_s)
    pytest.fail(f"{what}: not within {timeout_s:.0f} s (last error: {last_error!r})")


def sweep(sweep_id: str) -> dict:
    answer = httpx.get(f"{API}/sweeps/{sweep_id}", timeout=30)
    answer.raise_for_status()
    return answer.json()


def wait_terminal(sweep_id: str, timeout_s: float = 600) -> dict:
    return wait_for(f"sweep {sweep_id} ending", lambda: (s := sweep(sweep_id))["status"] in TERMINAL and s, timeout_s)


def submit(spec: dict) -> str:
    created = httpx.post(f"{API}/sweeps", json=spec, headers=token_headers(), timeout=60)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def mlflow_runs(experiment_id: str) -> list[dict]:
    answer = httpx.post(
        f"{MLFLOW}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment_id], "max_results": 1000},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json().get("runs", [])


def tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def trial_runs(detail: dict) -> list[dict]:
    parent = detail["mlflow"]["parent_run_id"]
    return [
        run for run in mlflow_runs(detail["mlflow"]["experiment_id"]) if tags(run).get("mlflow.parentRunId") == parent
    ]


def assert_one_run_per_trial(detail: dict) -> list[dict]:
    runs = trial_runs(detail)
    trial_ids = [tags(run).get("rfsweep.trial_id") for run in runs]
    assert len(runs) == detail["progress"]["total"], f"{len(runs)} runs for {detail['progress']['total']} trials"
    assert len(set(trial_ids)) == len(trial_ids), f"a trial with two runs: {sorted(trial_ids)}"
    return runs


def interrupt_mid_sweep(interrupt) -> dict:
    """Submit LONG_SWEEP, call interrupt() once its first trial has reported and before its last has, then
    follow it to its end: the detail of the ended sweep."""
    sweep_id = submit(LONG_SWEEP)
    wait_for("the first epoch reported", lambda: sweep(sweep_id)["progress"]["epochs_done"] > 0, 300, 0.5)
    before = sweep(sweep_id)
    assert before["status"] == "running" and before["progress"]["finished"] < before["progress"]["total"], before
    print(f"interrupting at {before['progress']}")
    interrupt()
    ended = wait_terminal(sweep_id)
    assert ended["status"] == "succeeded", ended
    assert ended["progress"]["finished"] == LONG_SWEEP["search"]["num_samples"], ended["progress"]
    detail = sweep(sweep_id)
    assert detail["attempts"] == 2, f"expected a resumed driver (attempt 2): {detail['attempts']}"
    assert_one_run_per_trial(detail)
    return detail


def ps_states(files: list[str] | None = None, env: dict[str, str] | None = None) -> dict[str, tuple[str, str, int]]:
    """container name -> (state, health, exit code), every container of the project."""
    lines = compose("ps", "-a", "--format", "json", files=files, env=env).splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return {row["Name"]: (row["State"], row.get("Health", ""), row.get("ExitCode", 0)) for row in rows}


# ---- README's stack ------------------------------------------------------------------------------------------


def test_every_service_is_healthy_and_data_fetch_exited_0():
    states = ps_states()
    expected = {"postgres", "mlflow", "data-fetch", "ray-head", "ray-worker", "api"}
    assert {re.sub(r"^rfsweep-|-\d+$", "", name) for name in states} == expected, states
    for name, (state, health, exit_code) in states.items():
        if "data-fetch" in name:
            assert (state, exit_code) == ("exited", 0), (name, state, exit_code)
        else:
            assert (state, health) == ("running", "healthy"), (name, state, health)


def test_readmes_sweep_succeeds_on_the_worker_with_its_runs_report_and_model_in_mlflow():
    sweep_id = os.environ["STACK_SWEEP_ID"]
    ended = wait_terminal(sweep_id)
    assert ended["status"] == "succeeded", ended
    detail = sweep(sweep_id)
    runs = assert_one_run_per_trial(detail)
    assert detail["progress"]["total"] == 12 and len(runs) == 12

    # Trials ran on the worker container's node only: it is the one node with CPUs, and every run names it.
    nodes = ray_nodes()
    with_cpus = [node for node in nodes if node["resources_total"].get("CPU", 0) > 0]
    assert len(with_cpus) == 1 and not with_cpus[0]["is_head_node"], nodes
    worker_ip = subprocess.run(
        [
            "docker",
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "rfsweep-ray-worker-1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert with_cpus[0]["node_ip"] == worker_ip, (with_cpus[0]["node_ip"], worker_ip)
    assert {tags(run).get("rfsweep.node_id") for run in runs} == {with_cpus[0]["node_id"]}

    # The MLflow server (PostgreSQL store): the parent run with the sweep page, the best model loads and predicts.
    parent_id = detail["mlflow"]["parent_run_id"]
    parent = httpx.get(f"{MLFLOW}/api/2.0/mlflow/runs/get", params={"run_id": parent_id}, timeout=30).json()["run"]
    assert parent["info"]["status"] == "FINISHED"
    artifacts = httpx.get(f"{MLFLOW}/api/2.0/mlflow/artifacts/list", params={"run_id": parent_id}, timeout=30).json()
    assert "sweep_report.html" in {item["path"] for item in artifacts.get("files", [])}, artifacts
    best = httpx.get(f"{API}/sweeps/{sweep_id}/best", timeout=30).json()["best"]
    assert best["model_uri"], best
    predicted = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numpy as np, mlflow; "
            "model = mlflow.pyfunc.load_model(sys.argv[1]); "
            "print(model.predict(np.arange(5 * 64, dtype=np.float64).reshape(5, 64) % 17).to_json())",
            best["model_uri"],
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": MLFLOW},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert len(rows["label"]) == 5 and all(0 <= int(v) <= 9 for v in rows["label"].values()), rows
    probabilities = np.array([[rows[f"probability_{k}"][str(i)] for k in range(10)] for i in range(5)])
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def test_ray_containers_keep_the_object_store_in_dev_shm():
    for service in ("ray-head", "ray-worker", "api"):
        logs = compose("logs", "--no-color", service)
        assert "harm performance" not in logs, f"{service}: {[line for line in logs.splitlines() if 'harm' in line]}"
        assert "ray_node: ray start" in logs, f"{service} did not start through docker/ray_node.py"


# ---- interruptions -------------------------------------------------------------------------------------------


def test_restarting_the_api_mid_sweep_resumes_it_with_one_run_per_trial():
    interrupt_mid_sweep(lambda: compose("restart", "api"))


def test_down_and_up_mid_sweep_resumes_it_and_keeps_every_sweep_run_and_artifact():
    sweeps_before = {item["id"] for item in httpx.get(f"{API}/sweeps", timeout=30).json()["items"]}
    readme_detail = sweep(os.environ["STACK_SWEEP_ID"])
    runs_before = {run["info"]["run_id"] for run in trial_runs(readme_detail)}

    def down_up():
        compose("down")
        compose("up", "-d", "--wait")

    interrupt_mid_sweep(down_up)
    sweeps_after = {item["id"] for item in httpx.get(f"{API}/sweeps", timeout=30).json()["items"]}
    assert sweeps_before < sweeps_after, (sweeps_before, sweeps_after)
    assert {run["info"]["run_id"] for run in trial_runs(readme_detail)} == runs_before
    artifacts = httpx.get(
        f"{MLFLOW}/api/2.0/mlflow/artifacts/list",
        params={"run_id": readme_detail["mlflow"]["parent_run_id"]},
        timeout=30,
    ).json()
    assert "sweep_report.html" in {item["path"] for item in artifacts.get("files", [])}


def test_scaled_workers_never_advertise_more_than_the_host_has():
    compose("up", "-d", "--wait", env={"RAY_WORKER_REPLICAS": "2"})
    wait_for("two worker nodes", lambda: len([n for n in ray_nodes() if n["resources_total"].get("CPU", 0)]) == 2, 120)
    nodes = ray_nodes()
    total_cpus = sum(node["resources_total"].get("CPU", 0) for node in nodes)
    total_memory = sum(node["resources_total"].get("memory", 0) for node in nodes)
    host_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"ray: {len(nodes)} nodes, {total_cpus} CPUs, {total_memory / 2**30:.1f} GiB; host {os.cpu_count()} CPUs")
    assert total_cpus <= os.cpu_count(), nodes
    assert total_memory <= host_memory, (total_memory, host_memory)
    print(compose("exec", "-T", "ray-head", "ray", "status"))


def assert_nothing_of_the_project_left() -> None:
    """No container, network or volume of the project: by compose's label, or by name (a volume that a plain
    `docker run -v rfsweep_datasets:...` made carries no label)."""
    for kind, extra in (("container", ["-a"]), ("network", []), ("volume", [])):
        for selector in ("label=com.docker.compose.project=rfsweep", "name=rfsweep"):
            command = ["docker", kind, "ls", *extra, "-q", "--filter", selector]
            listed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
            assert not listed, f"{kind}s left ({selector}): {listed}"


def test_down_v_leaves_no_container_network_or_volume_of_the_project():
    compose("down", "-v")
    assert_nothing_of_the_project_left()


# ---- README "Add machines": the cluster override and a `docker run` worker on one host ----------------------


def readme_block(after_heading: str, containing: str) -> str:
    """The bash block of README.md's section `after_heading` that contains `containing`."""
    section = (REPO / "README.md").read_text().split(f"## {after_heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_the_cluster_override_runs_trials_on_a_worker_started_with_readmes_docker_run():
    compose("up", "-d", "--wait", files=CLUSTER_FILES, env=CLUSTER_ENV)
    states = ps_states(CLUSTER_FILES, CLUSTER_ENV)
    assert not any("ray-worker" in name for name in states), f"bridge workers run under the override: {states}"
    # One host stands in for two: the head's address is loopback (its GCS on RAY_HEAD_PORT), and the
    # "shared" Tune storage is the head's own ray-results volume instead of an NFS mount.
    script = readme_block("Add machines", "docker run -d")
    substitutions = {
        "HEAD_HOST:6379": f"127.0.0.1:{CLUSTER_ENV['RAY_HEAD_PORT']}",
        "HEAD_HOST": "127.0.0.1",
        "THIS_HOST_IP": "127.0.0.1",
        "/mnt/rfsweep/ray_results": "rfsweep_ray-results",
    }
    for placeholder, value in substitutions.items():
        assert placeholder in script, f"README's worker command lost {placeholder}"
        script = script.replace(placeholder, value)
    print(script)
    done = subprocess.run(
        ["bash", "-euc", script], cwd=REPO, env=os.environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    node = wait_for(
        "the docker-run worker's node",
        lambda: [n for n in ray_nodes() if n["resources_total"].get("CPU", 0) > 0],
        180,
    )
    assert len(node) == 1, node
    spec = {**LONG_SWEEP, "name": "stack-cluster", "scheduler": {"type": "fifo", "max_t": 3}}
    ended = wait_terminal(submit(spec))
    assert ended["status"] == "succeeded", ended
    runs = assert_one_run_per_trial(sweep(ended["id"]))
    assert {tags(run).get("rfsweep.node_id") for run in runs} == {node[0]["node_id"]}
    print(compose("exec", "-T", "ray-head", "ray", "status", files=CLUSTER_FILES, env=CLUSTER_ENV))
    subprocess.run(["docker", "rm", "-f", "rfsweep-worker"], capture_output=True, timeout=120)
    # The override turns data-fetch off: its container (from the plain stack) is an orphan here.
    compose("down", "-v", "--remove-orphans", files=CLUSTER_FILES, env=CLUSTER_ENV)
    assert_nothing_of_the_project_left()
