"""The Ray head the API starts when RAY_ADDRESS is unset serves only its own host's drivers: every port it
(and a driver that joins it) listens on is a loopback address."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from api.local_ray import LocalRayHead
from api.settings import Settings

# A driver as the API's are: it joins the head (RAY_ADDRESS and the token from the head's env), runs a task,
# and stays up while the test reads the ports it listens on.
JOIN = """
import os, sys, ray
ray.init(address=os.environ["RAY_ADDRESS"], include_dashboard=False, log_to_driver=False)
assert ray.get(ray.remote(lambda: 21 * 2).remote()) == 42
print("joined", flush=True)
sys.stdin.readline()
ray.shutdown()
"""


def _process_tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _address(hex_ip: str) -> str:
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # /proc writes each 32-bit word little-endian
    return str(ipaddress.ip_address(words))


def listening_addresses(root_pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by the process `root_pid` or its descendants."""
    inodes = set().union(*(_socket_inodes(pid) for pid in _process_tree(root_pid)))
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                hex_ip, hex_port = local.split(":")
                out.add((_address(hex_ip), int(hex_port, 16)))
    return out


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@pytest.mark.slow  # tens of seconds of real runs: the full suite's, not the fast lane's
def test_the_local_ray_head_and_its_drivers_listen_on_loopback_only(tmp_path):
    head = LocalRayHead(Settings(rfsweep_home=str(tmp_path / "home"), ray_num_cpus=1))
    driver = None
    try:
        address = head.ensure()
        assert address.startswith("127.0.0.1:")
        env = {**os.environ, **head.env()}
        driver = subprocess.Popen(
            [sys.executable, "-c", JOIN], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert driver.stdout is not None and driver.stdout.readline().strip() == "joined"
        assert head.process is not None
        for name, pid in (("the head", head.process.pid), ("a driver", driver.pid)):
            listening = listening_addresses(pid)
            assert listening, f"{name} listens on nothing?"
            public = sorted(entry for entry in listening if not is_loopback(entry[0]))
            assert not public, f"{name} listens beyond loopback: {public}"
        assert len(listening_addresses(head.process.pid)) >= 3  # the GCS, the raylet, the agents at least
        with socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=5):
            pass
    finally:
        if driver is not None:
            driver.communicate("\n", timeout=60)
        head.stop()
