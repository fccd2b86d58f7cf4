"""Fixtures of the sweep and experiment tests: one real local Ray for the whole session, one MLflow SQLite
store, names of their own. (Requested by name; only the fault-injection guard applies to every test.)"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray (2 CPUs) shared by every sweep test of the session."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
        )
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rfsweep-state")


@pytest.fixture(scope="session")
def tracking_uri(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'mlflow.db'}"


@pytest.fixture
def storage_path(state_dir: Path) -> str:
    path = state_dir / "ray_results"
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture
def unique_name(request) -> str:
    """A sweep name (and so an MLflow experiment) of the test's own."""
    return f"{request.node.name.replace('[', '-').replace(']', '')[:60]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def mlflow_client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture(autouse=True)
def _no_fault_injection(monkeypatch):
    monkeypatch.delenv("RFSWEEP_INJECT_CRASH", raising=False)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


# tests/compose/test_docker_stack.py checks a stack that CI's stack stage has started (.ci/stack-stage.sh):
# collected only when asked for with --docker-stack, never part of the suite's own run.
DOCKER_STACK_MODULE = "test_docker_stack.py"


def pytest_addoption(parser):
    parser.addoption(
        "--docker-stack",
        action="store_true",
        help="check the compose stack that .ci/stack-stage.sh started (tests/compose/test_docker_stack.py)",
    )


def pytest_ignore_collect(collection_path, config):
    if collection_path.name == DOCKER_STACK_MODULE and not config.getoption("--docker-stack"):
        return True
    return None
