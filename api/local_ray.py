"""The local Ray head the API starts when RAY_ADDRESS is unset: one for all its drivers (drivers that each
called `ray.init()` locally would start competing clusters), with token auth, listening on loopback only,
found again by a file in the state folder so a restarted API reuses it. Also the process checks the
dispatcher shares with it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from api.settings import Settings

log = logging.getLogger("rfsweep.dispatcher")

# The head serves only the drivers of this host (drivers are processes of the API), so it listens on loopback
# only, whatever address the API itself binds. Ray's switch for a single-node local Ray (`ENABLE_RAY_CLUSTER`,
# ray/_private/ray_constants.py; despite its name it applies on Linux too): the node's address becomes
# 127.0.0.1, and the GCS, raylet, object manager, agents and workers bind to it instead of every interface.
# (`--node-ip-address=127.0.0.1` alone does not: Ray swaps a loopback node address for the host's own.)
# tests/api/test_local_ray.py checks every listening socket of the head and of a driver.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def read_head_address(settings: Settings) -> str | None:
    try:
        info = json.loads(settings.state.ray_head_file.read_text())
    except (OSError, ValueError):
        return None
    return info.get("address") if pid_alive(info.get("pid")) else None


def pid_alive(pid: int | None, must_contain: str | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is dead
            return False
        if must_contain is not None:
            return must_contain in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


class LocalRayHead:
    """One Ray head for all drivers of this API, with token auth (as Ray 2.60's default)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.address: str | None = None
        self.token_path = settings.state.ray_auth_token

    def env(self) -> dict[str, str]:
        return {
            "RAY_ADDRESS": self.address or "",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path.resolve()),
            **LOOPBACK_ONLY,
        }

    def ensure(self) -> str:
        """Reuse the head a previous API process left running, else start one."""
        info = self._read()
        if info and pid_alive(info.get("pid"), "ray") and _port_open(info["address"]):
            self.address = info["address"]
            return self.address
        if not self.token_path.exists():
            self.token_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        port = _free_port()
        address = f"127.0.0.1:{port}"
        cmd = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self._temp_dir()}",
        ]
        if self.settings.ray_num_cpus is not None:
            cmd.append(f"--num-cpus={self.settings.ray_num_cpus}")
        if self.settings.ray_num_gpus is not None:
            cmd.append(f"--num-gpus={self.settings.ray_num_gpus}")
        env = {**os.environ, **self.env()}
        env.pop("RAY_ADDRESS", None)
        logs = self.settings.state.logs
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "ray_head.log", "ab") as out:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ray start --head exited with {self.process.returncode}; see {logs / 'ray_head.log'}"
                )
            if _port_open(address):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("the local Ray head did not open its port within 90 s")
        self.address = address
        self.settings.state.ray_head_file.write_text(json.dumps({"address": address, "pid": self.process.pid}))
        log.info("started a local Ray head at %s (pid %s)", address, self.process.pid)
        return address

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.settings.state.ray_head_file.read_text())
        except (OSError, ValueError):
            return None

    def _temp_dir(self) -> str:
        # Short and per state folder: Ray's socket paths must stay under 107 characters, and a head
        # of its own must not overwrite /tmp/ray's "current cluster" that plain `ray.init()` reads.
        digest = hashlib.sha1(str(self.settings.state.root).encode()).hexdigest()[:10]
        return f"/tmp/rfsweep-ray-{digest}"

    def stop(self) -> None:
        info = self._read()
        pid = self.process.pid if self.process is not None else (info or {}).get("pid")
        if pid and pid_alive(pid, "ray"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and pid_alive(pid):
                if self.process is not None:
                    self.process.poll()
                time.sleep(0.2)
        with contextlib.suppress(OSError):
            self.settings.state.ray_head_file.unlink()
