"""`ray start` with resources that fit the container: every Ray node of compose.yaml starts through this.

    python /opt/rfsweep/ray_node.py --address=ray-head:6379 --block ...   (any `ray start` flags)

Plain `ray start` in a container advertises what it reads off the host, so several workers on one host
each claim every CPU and most of the memory (two scaled workers on a 2-core, 24 GiB host showed 4 CPUs and
~65 GiB), and it sizes its object store at 30 % of memory whatever /dev/shm holds, so with Docker's
`shm_size` smaller than that the store falls back to /tmp ("This will harm performance!"). Here:

- CPUs: RAY_NODE_CPUS if set, else the container's CPU limit (cgroup quota or cpuset) divided by
  RAY_HOST_WORKERS (the number of worker containers sharing this host: set it where CPU and GPU workers
  run side by side), else RAY_WORKER_REPLICAS (the CPU workers' count); a worker that would get less
  than one CPU refuses to start, saying so;
- memory: RAY_NODE_MEMORY (bytes) if set, else the container's memory limit (cgroup, else the host's
  MemTotal) divided by RAY_HOST_WORKERS, less the object store (Ray counts them apart);
- object store: RAY_OBJECT_STORE_MEMORY (bytes) if set, else 80 % of /dev/shm, at most 30 % of the node's
  memory share (Ray's own default proportion), so it always lives in /dev/shm.

A flag given on the command line (`--num-cpus=0` on the head and the api) wins over all of this; a node
started with `--num-cpus=0` runs no task and offers no task memory either.
Standard library only: it runs before anything else in the image and is tested on its own.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

OBJECT_STORE_SHM_FRACTION = 0.8  # headroom in /dev/shm for Ray's own files beside the store
OBJECT_STORE_MEMORY_FRACTION = 0.3  # Ray's DEFAULT_OBJECT_STORE_MEMORY_PROPORTION
OBJECT_STORE_MIN_BYTES = 80 * 1024**2  # Ray refuses less than 75 MiB
NO_LIMIT = 1 << 60  # cgroup v1 writes a number near 2**63 for "no limit"


@dataclass(frozen=True)
class NodeResources:
    num_cpus: int
    memory: int
    object_store_memory: int

    def flags(self) -> list[str]:
        return [
            f"--num-cpus={self.num_cpus}",
            f"--memory={self.memory}",
            f"--object-store-memory={self.object_store_memory}",
        ]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def container_cpus(root: str = "/sys/fs/cgroup") -> float:
    """The CPUs this container may use: its cgroup quota (v2 cpu.max, v1 cfs quota/period), else its cpuset."""
    cpuset = len(os.sched_getaffinity(0))
    quota = None
    v2 = _read(f"{root}/cpu.max")
    if v2 and not v2.startswith("max"):
        limit, period = v2.split()
        quota = int(limit) / int(period)
    else:
        limit_v1, period_v1 = _read(f"{root}/cpu/cpu.cfs_quota_us"), _read(f"{root}/cpu/cpu.cfs_period_us")
        if limit_v1 and period_v1 and int(limit_v1) > 0:
            quota = int(limit_v1) / int(period_v1)
    return min(cpuset, quota) if quota else float(cpuset)


def container_memory(root: str = "/sys/fs/cgroup", meminfo: str = "/proc/meminfo") -> int:
    """Bytes of memory this container may use: its cgroup limit, else the host's MemTotal."""
    total = NO_LIMIT
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    for path in (f"{root}/memory.max", f"{root}/memory/memory.limit_in_bytes"):
        value = _read(path)
        if value and value.isdigit() and int(value) < NO_LIMIT:
            return min(total, int(value))
    return total


def shm_bytes(path: str = "/dev/shm") -> int:
    stat = os.statvfs(path)
    return stat.f_blocks * stat.f_frsize


def plan(cpus: float, memory: int, shm: int, workers: int = 1, env: dict[str, str] | None = None) -> NodeResources:
    """The resources one node advertises, from what its container has and the settings in `env`."""
    env = env or {}
    if workers < 1:
        raise ValueError(f"RAY_HOST_WORKERS must be at least 1, got {workers}")
    if env.get("RAY_NODE_CPUS"):
        num_cpus = int(env["RAY_NODE_CPUS"])
    else:
        num_cpus = math.floor(cpus / workers)
        if num_cpus < 1:
            raise ValueError(
                f"{workers} workers share {cpus:g} CPUs: fewer than one each. Lower RAY_WORKER_REPLICAS "
                "(RAY_HOST_WORKERS) or set RAY_WORKER_CPUS"
            )
    share = int(env["RAY_NODE_MEMORY"]) if env.get("RAY_NODE_MEMORY") else memory // workers
    if env.get("RAY_OBJECT_STORE_MEMORY"):
        store = int(env["RAY_OBJECT_STORE_MEMORY"])
    else:
        store = min(int(shm * OBJECT_STORE_SHM_FRACTION), int(share * OBJECT_STORE_MEMORY_FRACTION))
        store = max(store, OBJECT_STORE_MIN_BYTES)
    if store > shm:
        raise ValueError(
            f"the object store ({store} bytes) does not fit in /dev/shm ({shm} bytes): raise RAY_SHM_SIZE "
            "or lower RAY_OBJECT_STORE_MEMORY"
        )
    memory_resource = share if env.get("RAY_NODE_MEMORY") else max(share - store, 0)
    return NodeResources(num_cpus=num_cpus, memory=memory_resource, object_store_memory=store)


def ray_start_argv(args: list[str], env: dict[str, str]) -> list[str]:
    """`ray start ARGS` plus the resource flags ARGS does not set itself."""
    workers = int(env.get("RAY_HOST_WORKERS") or env.get("RAY_WORKER_REPLICAS") or 1)
    resources = plan(container_cpus(), container_memory(), shm_bytes(), workers, env)
    given = {arg.split("=", 1)[0] for arg in args}
    if "--num-cpus=0" in args and not env.get("RAY_NODE_MEMORY"):
        # A node without CPUs runs no task (the head, the api's driver node): no task memory to offer.
        resources = NodeResources(0, 0, resources.object_store_memory)
    extra = [flag for flag in resources.flags() if flag.split("=", 1)[0] not in given]
    return ["ray", "start", *args, *extra]


def main() -> None:
    argv = ray_start_argv(sys.argv[1:], dict(os.environ))
    print("ray_node:", " ".join(argv), file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
