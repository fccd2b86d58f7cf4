"""Run compose.yaml's services as local processes, the way the containers would run them.

Each service's `command`, `environment`, `env_file` and `healthcheck` come from compose.yaml (and
its image's ENV from the Dockerfile) with only what a container gives for free translated:
- its own listening ports (`--port`, `--dashboard-port`, and Ray's per-node ports) become free loopback ports;
- `0.0.0.0` becomes 127.0.0.1, container paths become folders under a temporary directory (named
  volumes shared between services, as in Docker);
- non-HTTP references to another service (`postgres:5432`, `ray-head:6379`) become 127.0.0.1:PORT;
- HTTP references (`http://mlflow:5000`) stay as written: every process gets `http_proxy` pointing at
  HostMappingProxy, which forwards `mlflow:5000` to the server's loopback port with the Host header
  unchanged, so the servers see the Host headers they would see in compose.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from compose_model import REPO, command_text, environment_of, healthcheck_text, image_env

VENV_BIN = Path(sys.executable).parent
LISTEN_FLAG = re.compile(r"(--(?:port|dashboard-port)[= ])(\d+)")
# Ray's per-node ports that default to fixed numbers (or collide between nodes on one host); in a
# container each node has them to itself, here each `ray start` gets free ones.
RAY_NODE_PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_addresses() -> list[str]:
    """Addresses of this machine that Ray may pick as its node IP (they must bypass the proxy)."""
    found = {"127.0.0.1", "localhost", "::1"}
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
        found.add(probe.getsockname()[0])
    return sorted(found)


class HostMappingProxy:
    """An HTTP forward proxy that sends `http://NAME:PORT/...` to 127.0.0.1:routes[NAME:PORT], keeping Host."""

    def __init__(self, routes: dict[str, int]):
        self.routes = routes
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()  # (target, Host header)
        self.unrouted: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="host-mapping-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ", 2)
            url = urlsplit(target)
            netloc = url.netloc if url.port else f"{url.hostname}:80"
            port = self.routes.get(netloc)
            if method == "CONNECT" or url.scheme != "http" or port is None:
                self.unrouted.append(f"{method} {target}")
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            headers = [
                h
                for h in header_lines
                if h.split(":", 1)[0].strip().lower() not in ("proxy-connection", "connection", "keep-alive")
            ]
            host = next((h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("host:")), "")
            self.requests[(netloc, host)] += 1
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            # One request per connection keeps the forwarding trivial; clients reconnect as needed.
            new_head = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"]) + "\r\n\r\n"
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=300)
            except OSError:
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            with upstream:
                upstream.sendall(new_head.encode("latin-1") + rest)
                threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
                _pipe(upstream, client)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@dataclass
class NativeService:
    name: str
    script: str  # run with `sh -c`
    health_script: str | None
    health_timeout_s: float
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen | None = None
    last_health_output: str = ""

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                ["sh", "-c", self.script],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def check_health(self) -> bool:
        # Its own process group, killed whole on timeout: `ray health-check` retries for minutes while the
        # GCS is not up, and a surviving grandchild would hold the output pipe open.
        check = subprocess.Popen(
            ["sh", "-c", self.health_script],
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = check.communicate(timeout=self.health_timeout_s)
            returncode = check.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(check.pid, signal.SIGKILL)
            output, _ = check.communicate()
            returncode = f"timeout after {self.health_timeout_s:.0f} s"
        self.last_health_output = output[-2000:]
        last_line = (output.strip().splitlines() or [""])[-1]
        with open(self.log, "a") as out:
            out.write(f"[healthcheck {time.strftime('%H:%M:%S')}] exit {returncode} {last_line}\n")
        return returncode == 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            tail = ""
        return f"{tail}\n[last healthcheck] {self.last_health_output}"


def stop_all(services: list[NativeService], grace_s: float = 5.0) -> None:
    """SIGTERM every service's process group (`ray start --block` stops its node on it), then SIGKILL."""
    groups = [s.process.pid for s in services if s.process is not None]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for service in services:
        if service.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.3)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for service in services:
        if service.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _seconds(value: str | int | None, default: float) -> float:
    if value is None:
        return default
    match = re.fullmatch(r"(\d+)s", str(value))
    return float(match.group(1)) if match else float(value)


@dataclass
class StackPlan:
    """How compose.yaml's services map onto this machine."""

    compose: dict
    dotenv: dict[str, str]
    root: Path
    proxy_routes: dict[str, int] = field(default_factory=dict)
    tcp_routes: dict[str, int] = field(default_factory=dict)
    own_ports: dict[str, dict[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        services = self.compose["services"]
        http = set()
        for name, service in services.items():
            listened = {int(p) for _, p in LISTEN_FLAG.findall(command_text(service))}
            if name == "postgres":  # the real PostgreSQL on this machine stands in for it, on its own port
                listened.add(5432)
            self.own_ports[name] = {p: (5432 if name == "postgres" else free_port()) for p in listened}
            http |= {(name, int(p)) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", healthcheck_text(service))}
        for name, ports in self.own_ports.items():
            for container_port, local_port in ports.items():
                key = f"{name}:{container_port}"
                (self.proxy_routes if (name, container_port) in http else self.tcp_routes)[key] = local_port

    def volume_dir(self, volume: str) -> Path:
        return self.root / "volumes" / volume

    def path_map(self, name: str, image_paths: list[str]) -> list[tuple[str, Path]]:
        # The image's venv is this one; its copy of docker/ray_node.py is the repository's.
        mapping = {"/opt/venv": Path(sys.prefix), "/opt/rfsweep/ray_node.py": REPO / "docker" / "ray_node.py"}
        for volume in self.compose["services"][name].get("volumes", []):
            source, _, target = volume.partition(":")
            target = target.split(":")[0]
            if not source.startswith((".", "/")):
                mapping[target] = self.volume_dir(source)
        for path in image_paths:
            if not any(path == t or path.startswith(t + "/") for t in mapping):
                mapping[path] = self.root / "fs" / name / path.lstrip("/")
        return sorted(mapping.items(), key=lambda item: -len(item[0]))

    def localize(self, text: str, name: str, paths: list[tuple[str, Path]], *, health: bool = False) -> str:
        for key, port in self.tcp_routes.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(key)}(?!\d)", f"127.0.0.1:{port}", text)
        own = self.own_ports[name]
        text = LISTEN_FLAG.sub(lambda m: f"{m.group(1)}{own.get(int(m.group(2)), m.group(2))}", text)
        if health:
            text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{own.get(int(m.group(1)), m.group(1))}", text)
        text = text.replace("0.0.0.0", "127.0.0.1")
        for container_path, local in paths:
            text = re.sub(rf"(?<![\w/.]){re.escape(container_path)}(?=/|\b|$)", str(local), text)
        return text

    def service(self, name: str, proxy: HostMappingProxy) -> NativeService:
        spec = self.compose["services"][name]
        dockerfile = REPO / spec["build"]["context"] / spec["build"]["dockerfile"] if "build" in spec else None
        from_image = image_env(dockerfile) if dockerfile else {}
        image_paths = [v for k, v in from_image.items() if v.startswith("/") and k not in ("PATH", "VIRTUAL_ENV")]
        paths = self.path_map(name, image_paths)
        env: dict[str, str] = {}
        env.update({k: v.replace("$PATH", "/usr/local/bin:/usr/bin:/bin") for k, v in from_image.items()})
        if spec.get("env_file"):
            env.update(self.dotenv)
        env.update(environment_of(spec))
        env = {k: self.localize(v, name, paths) for k, v in env.items()}
        env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        home = self.root / "fs" / name / "home"  # the image's WORKDIR
        home.mkdir(parents=True, exist_ok=True)
        no_proxy = ",".join(local_addresses())
        env.update(
            {
                "HOME": str(home),
                "LANG": "C.UTF-8",
                "http_proxy": proxy.url,
                "HTTP_PROXY": proxy.url,
                "no_proxy": no_proxy,
                "NO_PROXY": no_proxy,
            }
        )
        command = spec.get("command") or []
        script = command[2] if command[:2] == ["sh", "-c"] else "exec " + shlex.join(command)
        script = self.localize(script, name, paths)
        ray_start = next((c for c in ("ray start ", "ray_node.py ") if c in script), None)
        if ray_start:
            node_dir = tempfile.mkdtemp(prefix="rfsc-", dir="/tmp")  # Ray's socket paths must stay short
            extra = [f"--temp-dir={node_dir}"] + [f"{flag}={free_port()}" for flag in RAY_NODE_PORT_FLAGS]
            script = script.replace(ray_start, ray_start + " ".join(extra) + " ", 1)
        health = spec.get("healthcheck", {})
        test = health.get("test") or []
        health_script = None
        if test:
            health_script = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
            health_script = self.localize(health_script, name, paths, health=True)
        log_dir = self.root / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        return NativeService(
            name=name,
            script=script,
            health_script=health_script,
            health_timeout_s=_seconds(health.get("timeout"), 30),
            env=env,
            cwd=home,
            log=log_dir / f"{name}.log",
        )
