"""Fixtures of the API tests: a real PostgreSQL database of our own, one Ray head for the whole
session, real uvicorn servers (api_helpers.ApiServer)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from api_helpers import PG_ADMIN_URL, ApiServer, free_port

# --- PostgreSQL ----------------------------------------------------------------------------------


def _pg_connect(url: str = PG_ADMIN_URL):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        _pg_connect().close()
        return True
    except Exception:
        return False


@pytest.fixture
def make_pg_database(pg_available):
    """Create databases of the test's own; drop them afterwards."""
    if not pg_available:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    created: list[str] = []

    def make() -> str:
        name = f"rfsweep_api_test_{uuid.uuid4().hex[:10]}"
        with _pg_connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    yield make
    for name in created:
        _drop_database(name)


def _drop_database(name: str) -> None:
    with _pg_connect() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def module_pg_database(pg_available):
    if not pg_available:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"rfsweep_api_test_{uuid.uuid4().hex[:10]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    _drop_database(name)


# --- Ray: one head for the whole session -------------------------------------------------------


@pytest.fixture(scope="session")
def ray_env(tmp_path_factory) -> dict[str, str]:
    """A `ray start --head` the API's drivers join (RAY_ADDRESS), with Ray 2.60's token auth on."""
    if os.environ.get("RFSWEEP_TEST_RAY_ADDRESS"):
        yield {"RAY_ADDRESS": os.environ["RFSWEEP_TEST_RAY_ADDRESS"]}
        return
    folder = tmp_path_factory.mktemp("ray_head")
    token_path = folder / "token"
    token_path.write_text(secrets.token_hex(32))
    port = free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}
    ray = str(Path(sys.executable).with_name("ray"))
    temp_dir = f"/tmp/rfsweep-test-ray-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths have a length limit
    cmd = [
        ray,
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    log = open(folder / "head.log", "ab")  # noqa: SIM115 (the Ray head writes it while it runs)
    process = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (folder / "head.log").read_text()
        if b"Ray runtime started" in (folder / "head.log").read_bytes():
            break
        time.sleep(0.3)
    else:
        raise RuntimeError("ray start --head did not come up in 90 s")
    yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture
def servers():
    """Start API servers; every one still running is stopped at the end of the test."""
    started: list[ApiServer] = []

    def start(home: Path, env: dict[str, str], **kwargs) -> ApiServer:
        server = ApiServer(home, env, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
