"""Hostile and careless bodies against a live server (one uvicorn per module, queue-only, no token, the
default body limit): every answer is a 2xx or a 4xx, within 2 s, the server's memory stays put, and a
refused body creates nothing. First the cases found by hand (issue 14), then property-based bodies."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import PG_ADMIN_URL, TINY_SPEC, ApiServer

LATENCY_BUDGET_S = 2.0
RSS_BUDGET_MB = 100
BODY_LIMIT = 256 * 1024  # the default RFSWEEP_MAX_BODY_BYTES


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Probe:
    """Posts bodies to a live server and keeps what the checks need: the slowest answer, the statuses,
    the sweeps created."""

    def __init__(self, server: ApiServer):
        self.server = server
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.created: list[str] = []
        self.slowest = 0.0
        self.baseline_rss = rss_mb(server.process.pid)

    def post(self, body: bytes, content_type: str | None = "application/json", **headers: str) -> httpx.Response:
        if content_type is not None:
            headers["Content-Type"] = content_type
        assert len(body) <= BODY_LIMIT, f"the body is {len(body)} bytes, over the limit these checks are about"
        started = time.monotonic()
        response = self.client.post("/sweeps", content=body, headers=headers)
        elapsed = time.monotonic() - started
        self.slowest = max(self.slowest, elapsed)
        assert response.status_code < 500, (response.status_code, response.text[:500])
        assert elapsed < LATENCY_BUDGET_S, f"answered in {elapsed:.2f} s"
        assert len(response.content) < 64 * 1024, f"a {len(response.content)}-byte answer"
        if response.status_code == 201:
            self.created.append(response.json()["id"])
        return response

    def yaml(self, text: str) -> httpx.Response:
        return self.post(text.encode(), "application/yaml")

    def json(self, data: object) -> httpx.Response:
        return self.post(json.dumps(data).encode())

    def rss_growth_mb(self) -> float:
        return rss_mb(self.server.process.pid) - self.baseline_rss


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_API_TOKEN": ""}
    server = ApiServer(tmp_path_factory.mktemp("adversarial"), env).start()
    with httpx.Client(base_url=server.url, timeout=30) as warm:  # the first POST imports the spec model
        warm.post("/sweeps", json={}, headers={"Content-Type": "application/json"})
    yield server
    server.stop()
    assert "Traceback" not in server.log_tail(100_000), server.log_tail(200)


@pytest.fixture(scope="module")
def probe(server):
    probe = Probe(server)
    yield probe
    probe.client.close()


def spec(**changes) -> dict:
    data = copy.deepcopy(TINY_SPEC)
    data.update(changes)
    return data


def assert_refused(response: httpx.Response, path: str | None = None, words: str = "") -> None:
    assert response.status_code == 422, response.text[:500]
    errors = response.json()["detail"]
    if path is not None:
        match = [e for e in errors if e["path"] == path]
        assert match, errors
        assert words in match[0]["msg"], match[0]["msg"]


def alias_bomb(levels: int, where: str = "points") -> str:
    """The billion laughs: each level an anchored list of ten aliases of the level below."""
    levels_text = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, levels + 1):
        levels_text.append(f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    if where == "points":
        points = "\n".join(f"    - {{lr: {text}}}" for text in levels_text)
        return f"name: bomb\nsearch:\n  points_to_evaluate:\n{points}\n"
    values = ", ".join(levels_text)
    return f"name: bomb\nparameters:\n  lr: {{distribution: choice, values: [{values}]}}\n"


# ---- the cases found by hand --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["points", "parameters"])
def test_a_yaml_alias_bomb_is_refused_in_bounded_time_and_memory(probe, where):
    body = alias_bomb(7, where)
    assert len(body) < 1024
    response = probe.yaml(body)
    assert_refused(response)
    assert "alias" in response.text
    assert probe.rss_growth_mb() < RSS_BUDGET_MB
    assert probe.client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 1000 + b"]" * 1000, "application/json"),
        (b'{"name": "deep", "x": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}", "application/json"),
        (b"- " * 500 + b"1", "application/yaml"),
        (b"name: deep\nx: " + b"[" * 500 + b"]" * 500, "application/yaml"),
    ],
    ids=["json-1000-lists", "json-1000-objects", "yaml-500-block", "yaml-500-flow"],
)
def test_deep_nesting_is_a_4xx(probe, body, content_type):
    response = probe.post(body, content_type)
    assert response.status_code == 422, response.text[:300]


@pytest.mark.parametrize(
    "field", [("search", "num_samples"), ("scheduler", "max_t"), ("search", "max_concurrent_trials")]
)
@pytest.mark.parametrize("form", ["json", "yaml", "json-float", "yaml-float"])
def test_numbers_beyond_range_are_a_4xx_naming_the_field(probe, field, form):
    section, key = field
    data = spec()
    data.setdefault(section, {})[key] = 10**309
    text = json.dumps(data)
    if form.endswith("float"):
        text = text.replace(str(10**309), "1e309")
    if form.startswith("yaml"):
        response = probe.yaml(text)
    else:
        response = probe.post(text.encode())
    assert_refused(response, f"{section}.{key}")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_non_numbers_are_a_4xx(probe, literal):
    text = json.dumps(spec(parameters={"lr": 0.1, "batch_size": 32})).replace("0.1", literal)
    assert_refused(probe.post(text.encode()), "parameters.lr")


@pytest.mark.parametrize(
    "value",
    [
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [{a: 1}]",
        "!!pairs [{a: 1}]",
        "!!timestamp 2020-01-01",
        "!!python/object:os.system {}",
        "!unknown thing",
        "2020-01-01",
    ],
)
def test_yaml_tags_without_a_json_meaning_are_a_4xx(probe, value):
    response = probe.yaml(f"name: tags\ndataset:\n  name: digits\n  data_dir: {value}\n")
    if value == "2020-01-01":  # YAML 1.1 would make it a date; as JSON it is the string it looks like
        assert response.status_code == 422 or response.status_code == 201
        if response.status_code == 201:
            detail = probe.client.get(f"/sweeps/{response.json()['id']}").json()
            assert detail["spec"]["dataset"]["data_dir"] == "2020-01-01"
        return
    assert_refused(response)


def test_non_string_keys_are_a_4xx(probe):
    assert_refused(probe.yaml("name: keys\nparameters: {1: 2, lr: 0.1}\n"))
    assert_refused(probe.yaml("name: keys\n? [a, b]\n: 1\n"))


def test_a_20000_entry_algorithm_list_is_answered_fast_and_briefly(probe):
    body = json.dumps(spec(algorithm=["bp"] * 20_000)).encode()
    assert len(body) > 100_000
    response = probe.post(body)
    assert_refused(response, "algorithm")
    assert len(response.content) < 10_000
    unknown = json.dumps(spec(algorithm=[f"rule-{i}" for i in range(15_000)])).encode()
    response = probe.post(unknown)
    assert_refused(response, "algorithm")
    assert len(response.content) < 10_000


def test_error_messages_do_not_echo_unbounded_input(probe):
    huge = "x" * 200_000
    for data in (
        spec(algorithm=huge),
        spec(parameters={huge: 1}),
        spec(search={**TINY_SPEC["search"], "points_to_evaluate": [{"lr": [huge]}]}),
        spec(dataset={"name": huge}),
    ):
        response = probe.json(data)
        assert response.status_code == 422
        assert len(response.content) < 10_000


@pytest.mark.parametrize("where", [("dataset", "data_dir"), ("tracking", "experiment"), ("name",)])
@pytest.mark.parametrize("form", ["json-escape", "yaml-escape", "raw-bytes"])
def test_a_lone_surrogate_is_a_4xx(probe, where, form):
    data = spec()
    if len(where) == 1:
        data["name"] = "PLACEHOLDER"
    else:
        data.setdefault(where[0], {})[where[1]] = "PLACEHOLDER"
    text = json.dumps(data)
    if form == "json-escape":
        body, ctype = text.replace("PLACEHOLDER", "a\\ud800b").encode(), "application/json"
    elif form == "yaml-escape":
        body, ctype = text.replace("PLACEHOLDER", "a\\ud800b").encode(), "application/yaml"
    else:
        body, ctype = text.encode().replace(b"PLACEHOLDER", b"a\xed\xa0\x80b"), "application/json"
    response = probe.post(body, ctype)
    assert response.status_code == 422, response.text[:300]
    listing = probe.client.get("/sweeps", params={"limit": 200})
    assert listing.status_code == 200


# ---- writes need proof of intent (no token configured) -----------------------------------------------------


def _count(probe) -> int:
    count, cursor = 0, None
    while True:
        page = probe.client.get("/sweeps", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another port of the same host is another origin
        {"Origin": "http://evil.example:{port}", "Host": "evil.example:{port}"},  # DNS rebinding
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["other-site", "null", "other-port", "rebinding", "fetch-metadata"],
)
def test_cross_origin_writes_are_refused_without_a_token(probe, server, headers):
    headers = {k: v.format(port=server.port) for k, v in headers.items()}
    before = _count(probe)
    created = probe.client.post("/sweeps", json=spec(name="csrf"), headers=headers)
    assert created.status_code == 403, created.text
    assert "origin" in created.json()["detail"].lower()
    victim = probe.client.post("/sweeps", json=spec(name="victim")).json()["id"]
    cancel = probe.client.post(f"/sweeps/{victim}/cancel", headers=headers)
    assert cancel.status_code == 403
    assert probe.client.get(f"/sweeps/{victim}").json()["status"] == "queued"
    assert _count(probe) == before + 1


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, json.dumps(spec(name="no-type")).encode()),
        ("text/plain", json.dumps(spec(name="plain")).encode()),
        ("application/x-www-form-urlencoded", b"name=form&algorithm=bp"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'),
    ],
    ids=["none", "text-plain", "form", "multipart"],
)
def test_a_body_without_a_json_or_yaml_type_is_415(probe, content_type, body):
    before = _count(probe)
    response = probe.post(body, content_type)
    assert response.status_code == 415, response.text
    assert _count(probe) == before


def test_same_origin_and_non_browser_writes_pass(probe, server):
    own = probe.client.post("/sweeps", json=spec(name="same-origin"), headers={"Origin": server.url})
    assert own.status_code == 201, own.text
    localhost = probe.client.post(
        "/sweeps",
        json=spec(name="localhost"),
        headers={"Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"},
    )
    assert localhost.status_code == 201, localhost.text
    same = probe.client.post("/sweeps", json=spec(name="fetch-same"), headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201
    assert probe.client.post("/sweeps", json=spec(name="curl")).status_code == 201


def test_allowed_origins_are_the_operators_choice(tmp_path):
    env = {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_API_TOKEN": "", "RFSWEEP_ALLOWED_ORIGINS": "https://ui.example"}
    server = ApiServer(tmp_path, env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            allowed = client.post("/sweeps", json=spec(name="ui"), headers={"Origin": "https://ui.example"})
            assert allowed.status_code == 201, allowed.text
            other = client.post("/sweeps", json=spec(name="ui"), headers={"Origin": "https://other.example"})
            assert other.status_code == 403
    finally:
        server.stop()


# ---- after a 500 the connection still answers ----------------------------------------------------------------


def test_a_500_leaves_the_keep_alive_connection_usable(tmp_path, make_pg_database):
    """The store vanishes under a running server (its database dropped): every request is a 500, and each
    one on the same keep-alive connection gets its answer."""
    import psycopg

    url = make_pg_database()
    server = ApiServer(tmp_path, {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "DATABASE_URL": url}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/sweeps").status_code == 200
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                name = url.rsplit("/", 1)[1]
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                admin.execute(f'DROP DATABASE "{name}"')
            statuses = []
            for _ in range(20):
                response = client.get("/sweeps")
                statuses.append(response.status_code)
                assert response.json() == {"detail": "internal server error"}
                assert response.headers.get("connection", "keep-alive").lower() in ("keep-alive", "close")
            assert set(statuses) == {500}
        log = server.log_tail(100_000)
        assert len(log) < 200_000, f"{len(log)} bytes of log for 20 errors"
    finally:
        server.stop()
