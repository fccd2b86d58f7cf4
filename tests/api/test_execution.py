"""Sweeps really run: the API's dispatcher starts driver processes on a shared Ray head; MLflow is real.

CI time is precious, so each store gets what matters most for it: an API restart that follows the live
driver, then cancels through it, on PostgreSQL (what compose deploys); lifecycle with queueing, pause and
resume, and the resume of a dead driver, on the embedded SQLite default."""

from __future__ import annotations

import copy
import datetime
import os
import signal
import time
from pathlib import Path

import pytest
from api_helpers import TINY_SPEC, ApiServer, mlflow_runs, wait_for
from mlflow.tracking import MlflowClient

TERMINAL = ("succeeded", "failed", "cancelled")
LONG_TRIALS = {  # trials that keep running long enough to cancel or restart mid-sweep
    "dataset": {"name": "digits"},
    "model": {"hidden": [64, 32]},
    "scheduler": {"type": "fifo", "max_t": 30},
}

TWO_TRIALS = {**TINY_SPEC["search"], "num_samples": 2}


def spec(name: str, **changes) -> dict:
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = name
    data.update(copy.deepcopy(changes))
    return data


# Every test here runs real sweeps through a live API and drivers (20-40 s each): the full suite's, not the fast
# lane's.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow store for the session (creating one costs seconds); runs are found by sweep id."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def start_server(backend, ray_env, tracking_uri, tmp_path, request):
    """Start (and restart) API servers on one state folder and one store."""
    env = {**ray_env, "RFSWEEP_MAX_RUNNING_SWEEPS": "1", "MLFLOW_TRACKING_URI": tracking_uri}
    if backend == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("make_pg_database")()
    started: list[ApiServer] = []

    def start(**more_env: str) -> ApiServer:
        server = ApiServer(tmp_path / "home", {**env, **more_env}).start()
        started.append(server)
        return server

    start.tracking_uri = env["MLFLOW_TRACKING_URI"]
    yield start
    for server in started:
        server.stop()
    for pid in _driver_pids():  # a failed test must not leave drivers training into the next one
        os.kill(pid, signal.SIGKILL)


def _driver_pids(sweep_id: str = "") -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if "api.driver" in cmdline and sweep_id in cmdline and b"test-token-" in environ:
            pids.append(int(proc.name))
    return pids


def wait_status(client, sweep_id: str, statuses, timeout: float = 240) -> dict:
    def check():
        sweep = client.get(f"/sweeps/{sweep_id}").json()
        return sweep if sweep["status"] in statuses else None

    return wait_for(check, timeout, what=f"sweep {sweep_id} to reach {statuses}")


def assert_one_run_per_trial(tracking_uri: str, sweep_id: str, trials: list[dict]) -> list:
    runs = mlflow_runs(tracking_uri, sweep_id)
    assert len(runs["sweep"]) == 1, "exactly one parent run"
    children = runs["trial"]
    trial_ids = [run.data.tags["rfsweep.trial_id"] for run in children]
    assert len(trial_ids) == len(set(trial_ids)), f"duplicate MLflow runs for a trial: {sorted(trial_ids)}"
    assert {t["mlflow_run_id"] for t in trials if t["mlflow_run_id"]} == {run.info.run_id for run in children}
    parent_id = runs["sweep"][0].info.run_id
    assert all(run.data.tags["mlflow.parentRunId"] == parent_id for run in children)
    assert not [r for r in children if r.info.status == "RUNNING"], "orphan RUNNING runs"
    return children


# On SQLite; the PostgreSQL store runs a sweep to its cancel in the follow-and-cancel test below and one to success
# in the compose test, and every store query on both backends in test_store_endpoints.py.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_lifecycle_and_queueing(start_server):
    """queued → running → succeeded; /best is the best child run in MLflow; /trials lists every trial
    with its run; with RFSWEEP_MAX_RUNNING_SWEEPS=1 the second sweep waits for the first."""
    server = start_server()
    with server.client() as client:
        first = client.post("/sweeps", json=spec("life-1")).json()["id"]
        second = client.post("/sweeps", json=spec("life-2", search={**TINY_SPEC["search"], "num_samples": 2})).json()
        second = second["id"]
        seen = []

        def observe():
            sweep = client.get(f"/sweeps/{first}").json()
            if not seen or seen[-1] != sweep["status"]:
                seen.append(sweep["status"])
            if sweep["status"] == "running":
                assert client.get(f"/sweeps/{second}").json()["status"] == "queued"
            return sweep if sweep["status"] in TERMINAL else None

        done = wait_for(observe, 240, interval=0.1, what="the first sweep to end")
        assert done["status"] == "succeeded", done.get("error")
        assert seen[-2:] == ["running", "succeeded"] and set(seen) <= {"queued", "running", "succeeded"}
        assert done["progress"]["total"] == 3 and done["progress"]["finished"] == 3
        assert done["progress"]["epochs_done"] == done["progress"]["max_epochs"] == 9
        assert done["mlflow"]["experiment_id"] and done["mlflow"]["parent_run_id"]
        experiment = MlflowClient(tracking_uri=start_server.tracking_uri).get_experiment(
            done["mlflow"]["experiment_id"]
        )
        assert experiment.name == "api/life-1", "the server's prefix names the experiment"

        trials = client.get(f"/sweeps/{first}/trials").json()["trials"]
        assert len(trials) == 3 and all(t["status"] == "finished" and t["epochs"] == 3 for t in trials)
        children = assert_one_run_per_trial(start_server.tracking_uri, first, trials)
        assert done["mlflow"]["parent_run_id"] == mlflow_runs(start_server.tracking_uri, first)["sweep"][0].info.run_id

        best = client.get(f"/sweeps/{first}/best").json()
        top = max(run.data.metrics["val_accuracy"] for run in children)
        best_runs = {run.info.run_id for run in children if run.data.metrics["val_accuracy"] == top}  # ties happen
        assert best["best"]["mlflow_run_id"] in best_runs
        assert best["best"]["value"] == pytest.approx(top)
        assert best["best"]["metric"] == "val_accuracy"
        assert best["best_per_algorithm"]["bp"]["trial_id"] == best["best"]["trial_id"]
        assert best["best"]["weights_uri"]

        later = wait_status(client, second, TERMINAL)
        assert later["status"] == "succeeded", later.get("error")
        assert later["started_at"] >= done["finished_at"], "the second sweep started before the first ended"


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_restarted_api_follows_the_live_driver_and_cancels_through_it(start_server):
    """kill -9 the API mid-sweep and start it again: the new API follows the driver that outlived it (no second
    attempt), and a cancel sent to it stops the sweep: `cancelled`, never-started trials cancelled too, one
    MLflow run per trial, the cancelled ones KILLED, the driver gone."""
    server = start_server()
    with server.client() as client:
        # Trials far longer than the test: the cancel, not the sweep's end, must be what stops it.
        endless = {**LONG_TRIALS, "scheduler": {"type": "fifo", "max_t": 200}}
        sweep_id = client.post(
            "/sweeps", json=spec("cancel-me", **endless, search={**TINY_SPEC["search"], "num_samples": 4})
        ).json()["id"]
        before_kill = wait_for(
            lambda: client.get(f"/sweeps/{sweep_id}").json()["progress"]["epochs_done"],
            240,
            what="a trial to train",
        )
    server.kill()
    assert _driver_pids(sweep_id), "the driver should outlive the API"
    server = start_server()
    with server.client() as client:
        wait_for(
            lambda: client.get(f"/sweeps/{sweep_id}").json()["progress"]["epochs_done"] > before_kill,
            240,
            what="the driver to report epochs to the new API",
        )
        # Several dispatch rounds (0.3 s each) before the cancel: a dispatcher that took the live driver for
        # dead would have started a second attempt by now.
        time.sleep(2)
        followed = client.get(f"/sweeps/{sweep_id}").json()
        assert followed["status"] == "running" and followed["attempts"] == 1, followed
        answer = client.post(f"/sweeps/{sweep_id}/cancel")
        assert answer.status_code == 200 and answer.json()["cancel_requested"] is True
        done = wait_status(client, sweep_id, TERMINAL, timeout=120)
        assert done["status"] == "cancelled", done.get("error")
        assert done["attempts"] == 1, "a live driver is followed, not restarted"
        assert client.post(f"/sweeps/{sweep_id}/cancel").json()["status"] == "cancelled"  # idempotent
        trials = client.get(f"/sweeps/{sweep_id}/trials").json()["trials"]
        assert trials and not [t for t in trials if t["status"] in ("running", "pending")]
        assert any(t["status"] == "cancelled" for t in trials)
        # the sweep's counts are the runner's: a trial that never started is cancelled too, as in MLflow
        progress = done["progress"]
        assert progress["pending"] == progress["running"] == 0 and progress["total"] == 4
        assert sum(progress[s] for s in ("finished", "stopped_early", "failed", "diverged", "cancelled")) == 4
    children = assert_one_run_per_trial(start_server.tracking_uri, sweep_id, trials)
    by_trial = {t["mlflow_run_id"]: t for t in trials}
    for run in children:
        if by_trial[run.info.run_id]["status"] == "cancelled":
            assert run.info.status == "KILLED"
    wait_for(lambda: not _driver_pids(sweep_id), 60, what="the driver to exit")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restart_resumes_a_dead_driver(start_server):
    """kill -9 the API and the sweep's driver: the next start resumes the sweep from Tune's storage."""
    server = start_server()
    with server.client() as client:
        sweep_id = client.post("/sweeps", json=spec("resume-me", **LONG_TRIALS, search=TWO_TRIALS)).json()["id"]
        wait_for(
            lambda: client.get(f"/sweeps/{sweep_id}").json()["progress"]["epochs_done"] >= 2,
            240,
            what="a trial to train",
        )
    server.kill()
    for pid in _driver_pids(sweep_id):
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    server = start_server()
    with server.client() as client:
        done = wait_status(client, sweep_id, TERMINAL)
        assert done["status"] == "succeeded", done.get("error")
        assert done["attempts"] == 2
        trials = client.get(f"/sweeps/{sweep_id}/trials").json()["trials"]
    assert len(trials) == 2 and all(t["status"] == "finished" and t["epochs"] == 30 for t in trials), [
        (t["status"], t["epochs"], t.get("reason")) for t in trials
    ]
    assert_one_run_per_trial(start_server.tracking_uri, sweep_id, trials)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sweeps_without_a_usable_trial_end_failed_with_the_reason(start_server, tmp_path):
    """Every trial crashes (a dataset folder without its files), every trial diverges (lr 1e6): both sweeps
    end `failed`, the reason and the counts in the API and on the MLflow parent run (FAILED)."""
    (tmp_path / "empty").mkdir()
    one_trial = {**TINY_SPEC["search"], "num_samples": 1}
    crashing = spec(
        "all-crash",
        dataset={"name": "mnist", "data_dir": str(tmp_path / "empty")},
        search=one_trial,
        failure={"max_failures": 0},
    )
    diverging = spec("all-diverge", parameters={"lr": 1e6, "batch_size": 32}, search=one_trial)
    # Both drivers start together on an MLflow store of their own, which they create: one at a time
    # (tracking.make_client's lock; without it MLflow's migrations collided and one sweep failed).
    tracking_uri = f"sqlite:///{tmp_path / 'fresh-mlflow.db'}"
    server = start_server(RFSWEEP_MAX_RUNNING_SWEEPS="2", MLFLOW_TRACKING_URI=tracking_uri)
    with server.client() as client:
        ids = {
            key: client.post("/sweeps", json=body).json()["id"]
            for key, body in (("failed", crashing), ("diverged", diverging))
        }
        for count_key, sweep_id in ids.items():
            done = wait_status(client, sweep_id, TERMINAL)
            assert done["status"] == "failed", done
            assert f"no trial produced a usable result (1 {count_key} of 1)" in done["error"], done["error"]
            assert done["progress"][count_key] == 1 and done["progress"]["pending"] == 0
            best = client.get(f"/sweeps/{sweep_id}/best")
            assert best.status_code == 409 and done["error"] in best.json()["detail"]  # the reason, not "yet"
            trials = client.get(f"/sweeps/{sweep_id}/trials").json()["trials"]
            assert [t["status"] for t in trials] == [count_key]
            runs = mlflow_runs(tracking_uri, sweep_id)
            parent = runs["sweep"][0]
            assert parent.info.status == "FAILED"
            assert parent.data.tags["rfsweep.sweep_status"] == "failed"
            assert done["error"] == parent.data.tags["rfsweep.failure_reason"]
            assert len(runs["trial"]) == 1 and runs["trial"][0].info.status == "FAILED"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_pause_restart_resume_loses_no_epoch(start_server):
    """Pause a running sweep, restart the API while it is paused, resume: it finishes with one MLflow run per
    trial, the same runs as before the pause, and every epoch logged exactly once. Trials run one at a time, so
    the pause catches the first mid-training (its run SCHEDULED, resumed from its checkpoint) and the second
    before it started (it gets its run after the resume)."""
    server = start_server()
    with server.client() as client:
        # One trial at a time, 200 epochs each (~30 ms apiece on a fast host), paused once the API shows two: the
        # API's progress lags the driver by up to a heartbeat (1 s) and the pause takes up to another two to land,
        # so shorter first trials finished before it on fast hosts (30 and 50 epochs both did, 2026-12-02).
        one_at_a_time = {**TWO_TRIALS, "max_concurrent_trials": 1}
        long_trials = {**LONG_TRIALS, "scheduler": {"type": "fifo", "max_t": 200}}
        sweep_id = client.post("/sweeps", json=spec("pause-me", **long_trials, search=one_at_a_time)).json()["id"]
        wait_for(
            lambda: client.get(f"/sweeps/{sweep_id}").json()["progress"]["epochs_done"] >= 2,
            240,
            what="a trial to train",
        )
        assert client.post(f"/sweeps/{sweep_id}/pause").json()["pause_requested"] is True
        paused = wait_status(client, sweep_id, ("paused", *TERMINAL), timeout=120)
        assert paused["status"] == "paused", paused.get("error")
        before = client.get(f"/sweeps/{sweep_id}/trials").json()["trials"]
    wait_for(lambda: not _driver_pids(sweep_id), 60, what="the driver to exit on pause")
    epochs_at_pause = paused["progress"]["epochs_done"]
    assert 2 <= epochs_at_pause < paused["progress"]["max_epochs"] == 400, "the pause was not mid-sweep"
    assert all(t["status"] in ("paused", "pending", "finished") for t in before)
    runs_at_pause = {run.info.run_id: run for run in mlflow_runs(start_server.tracking_uri, sweep_id)["trial"]}
    assert {r.info.status for r in runs_at_pause.values()} <= {"SCHEDULED", "FINISHED"}
    tracking = MlflowClient(start_server.tracking_uri)
    epochs_logged_at_pause = {
        run_id: len(tracking.get_metric_history(run_id, "val_accuracy")) for run_id in runs_at_pause
    }
    paused_mid_training = {
        run_id
        for run_id, run in runs_at_pause.items()
        if run.info.status == "SCHEDULED" and epochs_logged_at_pause[run_id] >= 1
    }
    assert paused_mid_training, f"no trial was paused mid-training: {epochs_logged_at_pause}"
    server.stop()

    server = start_server()
    with server.client() as client:
        assert client.get(f"/sweeps/{sweep_id}").json()["status"] == "paused"  # survived the restart
        time.sleep(2)  # the dispatcher leaves a paused sweep alone
        assert client.get(f"/sweeps/{sweep_id}").json()["status"] == "paused" and not _driver_pids(sweep_id)
        assert client.post(f"/sweeps/{sweep_id}/resume").json()["status"] in ("queued", "running")
        done = wait_status(client, sweep_id, TERMINAL)
        assert done["status"] == "succeeded", done.get("error")
        trials = client.get(f"/sweeps/{sweep_id}/trials").json()["trials"]
    assert len(trials) == 2 and all(t["status"] == "finished" and t["epochs"] == 200 for t in trials), [
        (t["status"], t["epochs"], t.get("reason")) for t in trials
    ]
    assert done["progress"]["epochs_done"] == 400
    children = assert_one_run_per_trial(start_server.tracking_uri, sweep_id, trials)
    assert set(runs_at_pause) <= {run.info.run_id for run in children}, "a resumed trial got a new run"
    for run in children:
        steps = sorted(int(m.step) for m in tracking.get_metric_history(run.info.run_id, "val_accuracy"))
        assert steps == list(range(1, 201)), f"epochs lost or repeated in {run.info.run_name}: {steps}"
        if run.info.run_id in paused_mid_training:  # from its checkpoint, not from epoch 0
            assert int(run.data.tags["rfsweep.resumed_from_epoch"]) >= 1, run.data.tags
    for trial in trials:  # ISO 8601 times, the first start before the pause
        assert datetime.datetime.fromisoformat(trial["started_at"]) < datetime.datetime.fromisoformat(trial["ended_at"])
