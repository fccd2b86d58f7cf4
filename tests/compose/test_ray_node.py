"""docker/ray_node.py: what each Ray node of the stack advertises, from what its container has."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from compose_model import REPO

spec = importlib.util.spec_from_file_location("ray_node", REPO / "docker" / "ray_node.py")
ray_node = importlib.util.module_from_spec(spec)
sys.modules["ray_node"] = ray_node
spec.loader.exec_module(ray_node)

GiB = 1024**3


def test_workers_sharing_a_host_split_its_cpus_and_memory_and_never_claim_more():
    """Two scaled workers once advertised 2 CPUs and ~16 GiB each on a 2-core, 24 GiB host."""
    for host_cpus, workers in [(2, 1), (2, 2), (8, 3), (16, 5)]:
        plans = [ray_node.plan(cpus=host_cpus, memory=24 * GiB, shm=2 * GiB, workers=workers) for _ in range(workers)]
        cpus = sum(p.num_cpus for p in plans)
        memory = sum(p.memory + p.object_store_memory for p in plans)
        assert cpus <= host_cpus and memory <= 24 * GiB, (workers, plans)
    assert ray_node.plan(cpus=2, memory=24 * GiB, shm=2 * GiB, workers=2).num_cpus == 1
    with pytest.raises(ValueError, match="fewer than one each"):
        ray_node.plan(cpus=2, memory=24 * GiB, shm=2 * GiB, workers=3)


def test_the_object_store_always_fits_in_dev_shm():
    """Ray's default (30 % of memory) exceeded a 2 GB /dev/shm and moved the store to /tmp ("harm performance")."""
    for shm in (256 * 1024**2, 2 * GiB, 8 * GiB, 64 * GiB):
        plan = ray_node.plan(cpus=8, memory=24 * GiB, shm=shm)
        assert plan.object_store_memory <= shm * ray_node.OBJECT_STORE_SHM_FRACTION
        assert plan.object_store_memory <= 0.3 * 24 * GiB
    with pytest.raises(ValueError, match="does not fit in /dev/shm"):
        ray_node.plan(cpus=2, memory=24 * GiB, shm=GiB, env={"RAY_OBJECT_STORE_MEMORY": str(2 * GiB)})


def test_settings_override_the_share_and_flags_on_the_command_line_override_both():
    env = {"RAY_NODE_CPUS": "3", "RAY_NODE_MEMORY": str(4 * GiB)}
    plan = ray_node.plan(cpus=16, memory=64 * GiB, shm=8 * GiB, workers=4, env=env)
    assert (plan.num_cpus, plan.memory) == (3, 4 * GiB)
    argv = ray_node.ray_start_argv(["--head", "--num-cpus=0", "--num-gpus=0"], {})
    assert argv[:5] == ["ray", "start", "--head", "--num-cpus=0", "--num-gpus=0"]
    assert argv.count("--num-cpus=0") == 1 and "--memory=0" in argv, argv
    assert any(a.startswith("--object-store-memory=") for a in argv)


def test_cgroup_limits_are_read_in_both_cgroup_versions(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    (v2 / "memory.max").write_text(f"{3 * GiB}\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: {24 * 1024**2} kB\n")
    assert ray_node.container_cpus(str(v2)) == min(1.5, len(__import__("os").sched_getaffinity(0)))
    assert ray_node.container_memory(str(v2), str(meminfo)) == 3 * GiB
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "memory").mkdir()
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert ray_node.container_cpus(str(v1)) == len(__import__("os").sched_getaffinity(0))
    assert ray_node.container_memory(str(v1), str(meminfo)) == 24 * GiB


def test_the_worker_count_comes_from_the_host_setting_else_the_replicas():
    def cpus(env: dict[str, str]) -> str:
        return next(a for a in ray_node.ray_start_argv(["--block"], env) if a.startswith("--num-cpus="))

    host = int(ray_node.container_cpus())
    assert cpus({}) == f"--num-cpus={host}"
    assert cpus({"RAY_WORKER_REPLICAS": str(host)}) == "--num-cpus=1"
    # RAY_HOST_WORKERS (CPU and GPU workers together) wins over the CPU workers' count.
    assert cpus({"RAY_WORKER_REPLICAS": str(host), "RAY_HOST_WORKERS": "1"}) == f"--num-cpus={host}"
