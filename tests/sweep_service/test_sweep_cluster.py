"""`rfsweep sweep --json` against a Ray "cluster" the test starts: `ray start --head` plus a second node.

Ray 2.60's `ray start --head` turns token authentication on; every process (both nodes and the driver)
gets RAY_AUTH_MODE=token and the same RAY_AUTH_TOKEN, so the test leaves ~/.ray/auth_token alone.
Each node is started with --block in a session of its own, and stopped by killing that process group.
The head has no CPUs (it only coordinates), so every trial must run on the second node, which also declares
one GPU that torch cannot see.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from sweep_helpers import ROOT

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_groups(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every node's process group at once, then SIGKILL each group whatever is left of it after 3 s (a
    node's Ray processes outlived 8 s of SIGTERM: the teardown took 8–9 s)."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


PROBE = """
import json, ray
ray.init(logging_level="ERROR")
alive = [n for n in ray.nodes() if n["Alive"]]
workers = [n["NodeID"] for n in alive if "node:__internal_head__" not in n["Resources"]]
print(json.dumps({"alive": len(alive), "workers": workers}))
"""


def wait_for_nodes(env: dict, count: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=90)
        if out.returncode == 0:
            state = json.loads(out.stdout.strip().splitlines()[-1])
            if state["alive"] == count:
                return state
        time.sleep(0.5)
    pytest.fail(f"the Ray cluster did not reach {count} nodes")


@pytest.fixture(scope="module")
def two_node_cluster():
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rfr-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--num-cpus=0",
            f"--port={port}",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
            *common,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        wait_for_nodes({**env, "RAY_ADDRESS": address}, 1)
        nodes.append(
            subprocess.Popen(
                # One logical GPU and no CUDA device: what a trial asking for a GPU meets on a mislabelled node.
                [RAY, "start", f"--address={address}", "--num-cpus=2", "--num-gpus=1", *common],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        state = wait_for_nodes({**env, "RAY_ADDRESS": address}, 2)
        yield {**env, "RAY_ADDRESS": address}, state["workers"]
    finally:
        stop_groups(nodes)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _cli_sweep(spec: dict, cluster_env: dict, tmp_path: Path) -> dict:
    """`rfsweep sweep SPEC --json` against the cluster, the default local store under tmp_path/home: its result."""
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    env = {**cluster_env, "RFSWEEP_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", "sweep", str(spec_file), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cli_sweep_on_a_two_node_cluster_via_ray_address(two_node_cluster, tmp_path, unique_name):
    spec = {
        "name": unique_name,
        "dataset": {"name": "synthetic", "train_subset": 500},
        "model": {"hidden": [32]},
        "algorithm": ["bp", "fa"],
        "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.2}},
        "search": {
            "method": "hyperopt",
            "num_samples": 2,
            "max_concurrent_trials": 2,
            "metric": "test_accuracy",
            "seed": 0,
        },
        "scheduler": {"type": "fifo", "max_t": 3},
        "resources": {"cpu": 1, "gpu": 0},
    }
    worker_nodes = two_node_cluster[1]
    result = _cli_sweep(spec, two_node_cluster[0], tmp_path)
    assert result["status"] == "succeeded"
    assert {t["algorithm"] for t in result["trials"]} == {"bp", "fa"} and len(result["trials"]) == 4
    assert all(t["status"] == "finished" and t["epochs"] == 3 for t in result["trials"])
    assert set(result["best_per_algorithm"]) == {"bp", "fa"}
    best = result["best"]
    assert best["value"] == max(t["last_metric"] for t in result["trials"])
    assert best["weights_uri"].startswith(f"runs:/{best['mlflow_run_id']}/")
    # the trials ran on the cluster's second node (the head has no CPUs), not in a Ray of the CLI's own
    assert {t["node_id"] for t in result["trials"]} == set(worker_nodes)
    # the default local store under RFSWEEP_HOME holds the runs
    assert (tmp_path / "home" / "mlflow.db").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    runs = client.search_runs([result["mlflow"]["experiment_id"]])
    assert (
        len(runs) == 5
        and sum(r.data.tags.get("mlflow.parentRunId") == result["mlflow"]["parent_run_id"] for r in runs) == 4
    )


def test_a_trial_that_asked_for_a_gpu_and_trained_on_the_cpu_says_cpu(two_node_cluster, tmp_path, unique_name):
    """Ray placed it for its GPU; torch found no CUDA device, so it trained on the CPU: its `device` param, its
    config and its tag say cpu (they said cuda, from the spec, before the worker decided)."""
    spec = {
        "name": unique_name,
        "dataset": {"name": "synthetic", "train_subset": 200},
        "model": {"hidden": [16]},
        "algorithm": "bp",
        "parameters": {"lr": 0.05},
        "search": {"method": "random", "num_samples": 1, "metric": "test_accuracy", "seed": 0},
        "scheduler": {"type": "fifo", "max_t": 1},
        "resources": {"cpu": 1, "gpu": 1},
    }
    result = _cli_sweep(spec, two_node_cluster[0], tmp_path)
    (trial,) = result["trials"]
    assert trial["status"] == "finished" and trial["device"] == "cpu"
    assert trial["config"]["device"] == "cpu" and result["best"]["config"]["device"] == "cpu"
    from mlflow.tracking import MlflowClient

    run = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}").get_run(trial["mlflow_run_id"])
    assert run.data.params["device"] == "cpu"
    assert run.data.tags["rfsweep.device"] == "cpu"
    assert json.loads(run.data.tags["rfsweep.config"])["device"] == "cpu"
