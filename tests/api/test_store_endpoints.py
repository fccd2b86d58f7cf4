"""Endpoints against a real uvicorn server in queue-only mode, on SQLite and on PostgreSQL:
auth, validation, 404s, idempotency, keyset pagination, cancel of queued sweeps, health."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
import yaml
from api_helpers import TINY_SPEC, TOKEN, ApiServer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    env = {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_MAX_BODY_BYTES": "65536"}
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("module_pg_database")
    server = ApiServer(tmp_path_factory.mktemp(f"api_{request.param}"), env).start()
    yield server
    server.stop()


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


def spec(**changes):
    data = copy.deepcopy(TINY_SPEC)
    data.update(changes)
    return data


def test_post_requires_the_bearer_token(server):
    with server.client(token=None) as anonymous:
        response = anonymous.post("/sweeps", json=spec())
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing or invalid bearer token"}
    with server.client(token="wrong-" + TOKEN) as wrong:
        assert wrong.post("/sweeps", json=spec()).status_code == 401
        assert wrong.post("/sweeps/some-id/cancel").status_code == 401
    with server.client() as client:
        response = client.post("/sweeps", json=spec())
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "queued"
        assert response.headers["location"] == f"/sweeps/{body['id']}"
        assert body["links"]["best"] == f"/sweeps/{body['id']}/best"
    with server.client(token=None) as anonymous:  # reads are open by default
        assert anonymous.get(f"/sweeps/{body['id']}").status_code == 200
    assert TOKEN not in server.log_tail(10_000)


def test_yaml_body_is_accepted(api):
    response = api.post(
        "/sweeps", content=yaml.safe_dump(spec(name="from-yaml")), headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    detail = api.get(f"/sweeps/{response.json()['id']}").json()
    assert detail["name"] == "from-yaml"
    assert detail["spec"]["search"]["num_samples"] == 3
    assert detail["progress"]["total"] == 3 and detail["progress"]["pending"] == 3
    assert detail["progress"]["max_epochs"] == 9


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"parameters": {"lr": {"distribution": "loguniform", "low": 0, "high": 1}}}, "parameters.lr.low", "> 0"),
        ({"bogus": 1}, "bogus", ""),
        ({"search": {"num_samples": "many"}}, "search.num_samples", "integer"),
        ({"search": {"num_samples": 100000}}, "search.num_samples", "RFSWEEP_LIMIT_NUM_SAMPLES"),
        ({"scheduler": {"type": "asha", "max_t": 100000}}, "scheduler.max_t", "RFSWEEP_LIMIT_MAX_T"),
        ({"resources": {"cpu": 64}}, "resources.cpu", "RFSWEEP_LIMIT_CPU_PER_TRIAL"),
        ({"algorithm": "nope"}, "algorithm", "unknown rule"),
        ({"tracking": {"uri": "file:///etc"}}, "tracking.uri", "MLFLOW_TRACKING_URI"),
        # the cost of one trial: widths, depth, weights, sleep and iteration counts, retries (issue 14)
        ({"model": {"hidden": [50000, 50000]}}, "model.hidden", "RFSWEEP_LIMIT_WIDTH"),
        ({"model": {"hidden": [4000, 4000, 4000]}}, "model.hidden", "RFSWEEP_LIMIT_WEIGHTS"),
        ({"model": {"hidden": [10**9]}}, "model.hidden", "RFSWEEP_LIMIT_WIDTH"),
        ({"model": {"hidden": [16] * 40}}, "model.hidden", "RFSWEEP_LIMIT_DEPTH"),
        ({"model": {}, "parameters": {"hidden": [10**9]}}, "parameters.hidden", "RFSWEEP_LIMIT_WIDTH"),
        (
            {"parameters": {"hidden": {"distribution": "choice", "values": [[16], [50000, 50000]]}}},
            "parameters.hidden.values[1]",
            "RFSWEEP_LIMIT_WIDTH",
        ),
        (
            {"parameters": {"arch": {"distribution": "choice", "values": [{"hidden": [10**6], "lr": 0.1}]}}},
            "parameters.arch.values[0].hidden",
            "RFSWEEP_LIMIT_WIDTH",
        ),
        (
            {"algorithm": "rf_two_phase", "parameters": {"sleep_steps": 10**9}},
            "parameters.sleep_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {"algorithm": "rf_two_phase", "parameters": {"sleep_max_steps": 10**9}},
            "parameters.sleep_max_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {"algorithm": "rf_parallel", "parameters": {"development_steps": 10**9}},
            "parameters.development_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {"algorithm": "rf_two_phase", "parameters": {"sleep_noise_batch": 10**9}},
            "parameters.sleep_noise_batch",
            "RFSWEEP_LIMIT_NOISE_BATCH",
        ),
        (
            {
                "algorithm": "rf_two_phase",
                "parameters": {"sleep_steps": {"distribution": "randint", "low": 1, "high": 10**9}},
            },
            "parameters.sleep_steps.high",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {
                "algorithm": "rf_two_phase",
                "parameters": {"development_steps": {"distribution": "quniform", "low": 0, "high": 1e9, "q": 1}},
            },
            "parameters.development_steps.high",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        (
            {
                "algorithm": ["bp", "rf_two_phase"],
                "algorithm_parameters": {"rf_two_phase": {"development_steps": 10**9}},
            },
            "algorithm_parameters.rf_two_phase.development_steps",
            "RFSWEEP_LIMIT_SLEEP_STEPS",
        ),
        ({"algorithm": "rf_two_phase", "parameters": {"pinv_max_iter": 10**9}}, "parameters.pinv_max_iter", "retired"),
        ({"failure": {"max_failures": 10**9}}, "failure.max_failures", "RFSWEEP_LIMIT_MAX_FAILURES"),
        ({"algorithm": ["bp", "fa", "bp"]}, "algorithm", "non-unique"),
    ],
)
def test_invalid_spec_is_422_naming_the_field(api, change, path, words):
    response = api.post("/sweeps", json=spec(**change))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    match = [e for e in errors if e["path"] == path]
    assert match, errors
    assert words in match[0]["msg"]
    assert match[0]["loc"][0] == "body"


def test_malformed_bodies(api, server):
    bad_json = api.post("/sweeps", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.json()["detail"][0]["msg"]
    bad_yaml = api.post("/sweeps", content=b"a: [1", headers={"Content-Type": "application/yaml"})
    assert bad_yaml.status_code == 422 and "not valid YAML" in bad_yaml.json()["detail"][0]["msg"]
    not_object = api.post("/sweeps", json=[1, 2])
    assert not_object.status_code == 422
    wrong_type = api.post("/sweeps", content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_big = api.post("/sweeps", json=spec(name="big", points=["x" * 70000]))
    assert too_big.status_code == 413 and "65536" in too_big.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(20):
            yield b" " * 8192

    streamed = api.post("/sweeps", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert "Traceback" not in bad_json.text + bad_yaml.text + too_big.text


@pytest.mark.parametrize("suffix", ["", "/best", "/trials"])
def test_unknown_ids_are_404(api, suffix):
    for sweep_id in ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "x" * 300, "42"]:
        response = api.get(f"/sweeps/{sweep_id}{suffix}")
        assert response.status_code == 404, (sweep_id, response.text)
        assert "no sweep" in response.json()["detail"]
    assert api.post("/sweeps/not-a-uuid/cancel").status_code == 404


def test_idempotent_post(api):
    body = spec(name="idem")
    first = api.post("/sweeps", json=body, headers={"Idempotency-Key": "key-1-" + TOKEN})
    again = api.post("/sweeps", json=body, headers={"Idempotency-Key": "key-1-" + TOKEN})
    as_yaml = api.post(
        "/sweeps",
        content=yaml.safe_dump(body),
        headers={"Idempotency-Key": "key-1-" + TOKEN, "Content-Type": "application/yaml"},
    )
    assert first.status_code == again.status_code == as_yaml.status_code == 201
    assert first.json()["id"] == again.json()["id"] == as_yaml.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    conflict = api.post("/sweeps", json=spec(name="idem-other"), headers={"Idempotency-Key": "key-1-" + TOKEN})
    assert conflict.status_code == 409
    assert first.json()["id"] in conflict.json()["detail"]
    without_key = [api.post("/sweeps", json=body).json()["id"] for _ in range(2)]
    assert len(set(without_key)) == 2


def test_concurrent_retries_with_one_key_make_one_sweep(server):
    import concurrent.futures

    body = json.dumps(spec(name="race")).encode()

    def post(_):
        with server.client() as client:
            return client.post(
                "/sweeps",
                content=body,
                headers={"Idempotency-Key": "race-" + TOKEN, "Content-Type": "application/json"},
            )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1


def test_keyset_pagination_newest_first(api):
    created = [api.post("/sweeps", json=spec(name=f"page-{i}")).json()["id"] for i in range(13)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = api.get("/sweeps", params=params).json()
        assert len(page["items"]) <= 5
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if pages == 1:  # rows inserted meanwhile must not shift the following pages
            late = api.post("/sweeps", json=spec(name="late")).json()["id"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a sweep appeared on two pages"
    ours = [s for s in seen if s in created]
    assert ours == list(reversed(created)), "not newest first"
    assert late not in seen
    bad = api.get("/sweeps", params={"cursor": "NOT*A*CURSOR"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["path"] == "query.cursor"
    assert api.get("/sweeps", params={"limit": 0}).status_code == 422
    assert api.get("/sweeps", params={"status": "sleeping"}).status_code == 422


def test_cancel_queued_and_status_filter(api):
    sweep_id = api.post("/sweeps", json=spec(name="to-cancel")).json()["id"]
    first = api.post(f"/sweeps/{sweep_id}/cancel")
    second = api.post(f"/sweeps/{sweep_id}/cancel")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == second.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    # a trial that never started is cancelled with its sweep, not left pending
    progress = first.json()["progress"]
    assert progress["pending"] == 0 and progress["cancelled"] == progress["total"] == 3, progress
    assert api.get(f"/sweeps/{sweep_id}").json()["progress"] == progress
    cancelled = api.get("/sweeps", params={"status": "cancelled", "limit": 200}).json()["items"]
    assert sweep_id in [s["id"] for s in cancelled]
    assert all(s["status"] == "cancelled" for s in cancelled)
    queued = api.get("/sweeps", params={"status": "queued", "limit": 200}).json()["items"]
    assert sweep_id not in [s["id"] for s in queued]


def test_best_is_409_before_any_trial_reported(api):
    sweep_id = api.post("/sweeps", json=spec(name="no-best")).json()["id"]
    response = api.get(f"/sweeps/{sweep_id}/best")
    assert response.status_code == 409
    assert "no trial has reported" in response.json()["detail"]
    trials = api.get(f"/sweeps/{sweep_id}/trials").json()
    assert trials == {"sweep_id": sweep_id, "status": "queued", "trials": []}


def test_health_and_readiness(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["ray"].startswith("ok (queue-only")


def test_openapi_documents_the_spec(api):
    document = api.get("/openapi.json").json()
    body = document["paths"]["/sweeps"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/SweepSpec"}
    assert "application/yaml" in body
    assert "scheduler" in document["components"]["schemas"]["SweepSpec"]["properties"]


def test_protected_reads(tmp_path):
    server = ApiServer(tmp_path, {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_PROTECT_READS": "true"}).start()
    try:
        with server.client(token=None) as anonymous:
            assert anonymous.get("/sweeps").status_code == 401
            assert anonymous.get("/sweeps/x").status_code == 401
            assert anonymous.get("/healthz").status_code == 200
        with server.client() as client:
            assert client.get("/sweeps").status_code == 200
    finally:
        server.stop()


def test_errors_are_json_without_stack_traces(api):
    response = httpx.get(f"{api.base_url}/nowhere")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    response = api.put("/sweeps")
    assert response.status_code == 405 and "detail" in response.json()
    # one path, several routes (GET and POST /sweeps, in an included router): Allow names them all
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert api.options(f"/sweeps/{'x' * 8}/cancel").headers["allow"] == "POST"


@pytest.mark.parametrize("field", [("dataset", "data_dir"), ("tracking", "experiment")])
def test_a_lone_surrogate_never_reaches_the_store(api, field):
    """Such a string could be stored but never read back (GET answered 500 for ever, on both stores)."""
    data = spec(name="surrogate")
    data.setdefault(field[0], {})[field[1]] = "PLACEHOLDER"
    body = json.dumps(data).replace("PLACEHOLDER", "data\\udc80dir").encode()
    response = api.post("/sweeps", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["path"] == ".".join(field)
    assert "Unicode" in response.json()["detail"][0]["msg"]
    page = api.get("/sweeps", params={"limit": 200})
    assert page.status_code == 200
    for item in page.json()["items"]:
        assert api.get(f"/sweeps/{item['id']}").status_code == 200


def test_pause_and_resume_a_queued_sweep_and_refuse_them_on_a_finished_one(api):
    """Queued: paused at once, resumed back to the queue. A cancelled sweep neither pauses nor resumes (409)."""
    sweep_id = api.post("/sweeps", json=spec(name="pause-queued")).json()["id"]
    paused = api.post(f"/sweeps/{sweep_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert api.post(f"/sweeps/{sweep_id}/pause").json()["status"] == "paused"  # idempotent
    assert [s["id"] for s in api.get("/sweeps", params={"status": "paused"}).json()["items"]] == [sweep_id]
    resumed = api.post(f"/sweeps/{sweep_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert api.post(f"/sweeps/{sweep_id}/cancel").json()["status"] == "cancelled"
    for action in ("pause", "resume"):
        refused = api.post(f"/sweeps/{sweep_id}/{action}")
        assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]
    assert api.post("/sweeps/no-such-sweep/pause").status_code == 404


def test_links_point_at_the_local_mlflow_ui_by_default(api):
    """With the local default store, links name the UI `rfsweep ui` starts (none before the sweep ran)."""
    body = api.post("/sweeps", json=spec(name="links")).json()
    assert body["links"]["mlflow"] is None and body["links"]["report"] is None  # not started: no experiment yet


def test_cli_list_fits_80_columns_with_the_full_ids(server, api):
    """`rfsweep list` on an 80-column terminal: every line fits, each sweep's whole id is there to copy."""
    import os
    import subprocess
    import sys

    ids = [api.post("/sweeps", json=spec(name=f"a-rather-long-sweep-name-{i}")).json()["id"] for i in range(2)]
    env = {**os.environ, "COLUMNS": "80", "RFSWEEP_API_TOKEN": TOKEN}
    done = subprocess.run(
        [sys.executable, "-m", "rfsweep_cli.main", "list", "--url", server.url, "--limit", "5"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, lines
    assert all(any(line.startswith(sweep_id) for line in lines) for sweep_id in ids), lines


def test_a_paused_sweep_cancelled_leaves_no_trial_pending(api):
    """Cancelling a paused sweep ends it at once, and its trials with it (issue 14: an ended sweep leaves no
    trial pending)."""
    sweep_id = api.post("/sweeps", json=spec(name="pause-then-cancel")).json()["id"]
    assert api.post(f"/sweeps/{sweep_id}/pause").json()["status"] == "paused"
    cancelled = api.post(f"/sweeps/{sweep_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["pause_requested"] is False
    progress = cancelled["progress"]
    assert progress["pending"] == progress["paused"] == progress["running"] == 0
    assert progress["cancelled"] == progress["total"] > 0
