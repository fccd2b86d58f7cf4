"""Hostile and careless bodies against a live server (one uvicorn per module, queue-only, no token, the
default body limit): every answer is a 2xx or a 4xx, within 2 s, the server's memory stays put, and a
refused body creates nothing. First the cases found by hand (issue 14), then property-based bodies."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import PG_ADMIN_URL, TINY_SPEC, ApiServer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sweep_service.spec import parse_spec

LATENCY_BUDGET_S = 2.0
RSS_BUDGET_MB = 100
BODY_LIMIT = 256 * 1024  # the default RFSWEEP_MAX_BODY_BYTES
ALLOWED_ORIGIN = "https://ui.example"  # the operator's RFSWEEP_ALLOWED_ORIGINS on the module's server


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
        return self.remember(response)

    def remember(self, response: httpx.Response) -> httpx.Response:
        """Keep the id of a sweep a response created (every one must be accounted for at the end)."""
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
    env = {"RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_API_TOKEN": "", "RFSWEEP_ALLOWED_ORIGINS": ALLOWED_ORIGIN}
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
    victim = probe.remember(probe.client.post("/sweeps", json=spec(name="victim"))).json()["id"]
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
    own = probe.remember(probe.client.post("/sweeps", json=spec(name="same-origin"), headers={"Origin": server.url}))
    assert own.status_code == 201, own.text
    localhost = probe.remember(
        probe.client.post(
            "/sweeps",
            json=spec(name="localhost"),
            headers={"Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"},
        )
    )
    assert localhost.status_code == 201, localhost.text
    headers = {"Sec-Fetch-Site": "same-origin"}
    same = probe.remember(probe.client.post("/sweeps", json=spec(name="fetch-same"), headers=headers))
    assert same.status_code == 201
    assert probe.remember(probe.client.post("/sweeps", json=spec(name="curl"))).status_code == 201


def test_allowed_origins_are_the_operators_choice(probe):
    allowed = probe.client.post("/sweeps", json=spec(name="ui"), headers={"Origin": ALLOWED_ORIGIN.upper() + "/"})
    assert probe.remember(allowed).status_code == 201, allowed.text
    other = probe.client.post("/sweeps", json=spec(name="ui"), headers={"Origin": "https://other.example"})
    assert other.status_code == 403


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


# ---- property-based bodies -------------------------------------------------------------------------------
# Each strategy builds bodies at or under the size limit, cheaply (big ones by repetition, not by drawing
# every byte), and plants them where a spec's values go, so they reach the deep checks, not only the parser.

EXAMPLES = int(os.environ.get("RFSWEEP_ADVERSARIAL_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree
    # CI: the same bodies on every run; RFSWEEP_ADVERSARIAL_EXAMPLES=N: N new ones per property
    derandomize="RFSWEEP_ADVERSARIAL_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

SPEC_PLACES = [
    ("name",),
    ("dataset",),
    ("dataset", "name"),
    ("dataset", "data_dir"),
    ("dataset", "train_subset"),
    ("model", "hidden"),
    ("model", "activation"),
    ("algorithm",),
    ("parameters",),
    ("parameters", "lr"),
    ("parameters", "lr", "high"),
    ("parameters", "lr", "values"),
    ("parameters", "hidden"),
    ("parameters", "bundle"),
    ("algorithm_parameters",),
    ("algorithm_parameters", "bp"),
    ("search", "num_samples"),
    ("search", "max_concurrent_trials"),
    ("search", "seed"),
    ("search", "points_to_evaluate"),
    ("scheduler",),
    ("scheduler", "max_t"),
    ("scheduler", "reduction_factor"),
    ("resources", "cpu"),
    ("failure", "max_failures"),
    ("tracking", "experiment"),
    ("checkpoint_every",),
]
ODD_STRINGS = ["\ud800", "a\udfffb", "\x00", "\u202e", "\U0010ffff", "bp", "", " ", "💥" * 3, "x" * 5000]
HUGE_NUMBERS = [2**53, -(2**53), 2**63, 10**309, -(10**309), 10**4000]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=[]), max_size=20),
    st.sampled_from(ODD_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=25,
)


def nested(depth: int, kind: str, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


big_values = st.one_of(
    st.builds(nested, st.integers(1, 5000), st.sampled_from(["list", "dict"])),
    st.builds(lambda n, item: [item] * n, st.integers(1, 40_000), st.sampled_from([0, 1.5, "bp", None, [], {}])),
    st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.integers(1, 15_000)),
    st.builds(lambda n: "x" * n, st.integers(1, 200_000)),
)


def planted(place: tuple[str, ...], value: object) -> dict:
    data = spec()
    node = data
    for key in place[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[place[-1]] = value
    return data


def json_text(data: object) -> bytes:
    try:
        return json.dumps(data).encode()  # NaN, Infinity and lone surrogates (escaped) go through as sent
    except RecursionError:
        return b"[" * 3000 + b"]" * 3000


@st.composite
def yaml_bodies(draw) -> str:
    kind = draw(st.sampled_from(["bomb", "merge-bomb", "deep", "tagged", "escaped", "long", "number", "spec"]))
    if kind == "bomb":
        levels, fanout = draw(st.integers(2, 12)), draw(st.integers(2, 10))
        anchors = [f"&a0 [{', '.join(['1'] * fanout)}]"]
        anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels + 1)]
        where = draw(st.sampled_from(["points", "values", "top"]))
        if where == "points":
            return "name: y\nsearch:\n  points_to_evaluate:\n" + "".join(f"    - {{lr: {a}}}\n" for a in anchors)
        if where == "values":
            return f"name: y\nparameters: {{lr: {{distribution: choice, values: [{', '.join(anchors)}]}}}}\n"
        return "name: y\n" + "".join(f"k{i}: {a}\n" for i, a in enumerate(anchors))
    if kind == "merge-bomb":
        levels = draw(st.integers(2, 10))
        lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5}"]
        lines += [
            f"m{i}: &m{i} {{x{i}: [*m{i - 1}, *m{i - 1}, *m{i - 1}, *m{i - 1}], <<: *m{i - 1}}}"
            for i in range(1, levels + 1)
        ]
        return "name: y\n" + "\n".join(lines) + f"\nparameters: {{<<: *m{levels}}}\n"
    if kind == "deep":
        depth = draw(st.integers(1, 60_000))
        style = draw(st.sampled_from(["[", "{a: ", "- "]))
        if style == "[":
            return "name: y\nx: " + "[" * depth + "]" * depth + "\n"
        if style == "{a: ":
            return "name: y\nx: " + "{a: " * depth + "1" + "}" * depth + "\n"
        return "- " * min(depth, 5000) + "1\n"
    if kind == "tagged":
        tag = draw(
            st.sampled_from(
                [
                    "!!binary",
                    "!!set",
                    "!!omap",
                    "!!pairs",
                    "!!timestamp",
                    "!!python/object:os.system",
                    "!!python/name:os.system",
                    "!x",
                    "!!float",
                    "!!int",
                    "!!str",
                    "!!null",
                    "!!bool",
                    "!!merge",
                    "!!value",
                    "!<tag:yaml.org,2002:binary>",
                ]
            )
        )
        value = draw(st.sampled_from(["aGVsbG8=", "{a, b}", "[{a: 1}]", "2020-01-01", "1", "x", "''", "[]"]))
        place = draw(
            st.sampled_from(["name", "dataset: {data_dir", "search: {num_samples", "parameters: {lr", "algorithm"])
        )
        closing = "}" if "{" in place else ""
        return f"{place}: {tag} {value}{closing}\n" if place != "name" else f"name: {tag} {value}\n"
    if kind == "escaped":
        escape = draw(
            st.sampled_from(["\\ud800", "\\udfff", "\\U00110000", "\\x00", "\\N", "\\_", "\\L", "\\P", "\\uZZZZ", "\\"])
        )
        return f'name: y\ndataset: {{data_dir: "a{escape}b"}}\ntracking: {{experiment: "{escape}"}}\n'
    if kind == "long":
        n = draw(st.integers(1, 60_000))
        item = draw(st.sampled_from(["bp", "1", "x", "{}", "[]", "bp, fa"]))
        where = draw(st.sampled_from(["algorithm", "values", "points", "hidden"]))
        items = ", ".join([item] * n)
        if where == "algorithm":
            return f"name: y\nalgorithm: [{items}]\n"
        if where == "values":
            return f"name: y\nparameters: {{lr: {{distribution: choice, values: [{items}]}}}}\n"
        if where == "points":
            return "name: y\nsearch:\n  points_to_evaluate: [" + ", ".join(["{lr: 0.01}"] * min(n, 20_000)) + "]\n"
        return f"name: y\nmodel: {{hidden: [{', '.join(['64'] * n)}]}}\n"
    if kind == "number":
        digits = draw(st.integers(1, 6000))
        text = draw(
            st.sampled_from(
                [
                    "1" + "0" * digits,
                    "0x" + "f" * digits,
                    "1e" + str(digits),
                    "-1" + "0" * digits,
                    ".inf",
                    "-.inf",
                    ".nan",
                    "1:" * min(digits, 500) + "1",
                ]
            )
        )
        field = draw(
            st.sampled_from(
                [
                    "search: {num_samples",
                    "scheduler: {max_t",
                    "search: {max_concurrent_trials",
                    "search: {seed",
                    "resources: {cpu",
                ]
            )
        )
        return f"name: y\n{field}: {text}}}\n"
    place, value = draw(st.sampled_from(SPEC_PLACES)), draw(json_values | big_values)
    return json_text(planted(place, value)).decode()


def _fits(body: bytes) -> bytes:
    """Bodies over the size limit get a 413 before they are read; these checks are about those under it."""
    assume(len(body) <= BODY_LIMIT)
    return body


@FUZZ
@given(place=st.sampled_from(SPEC_PLACES), value=json_values | big_values)
def test_json_bodies_with_hostile_values_are_answered_2xx_or_4xx(probe, place, value):
    probe.post(_fits(json_text(planted(place, value))))


@FUZZ
@given(text=yaml_bodies())
def test_yaml_bodies_with_hostile_structure_are_answered_2xx_or_4xx(probe, text):
    probe.post(_fits(text.encode("utf-8", "surrogatepass")), "application/yaml")


@FUZZ
@given(data=json_values | big_values)
def test_whole_hostile_documents_are_answered_2xx_or_4xx(probe, data):
    probe.post(_fits(json_text(data)))


@FUZZ
@given(
    raw=st.binary(max_size=2048),
    content_type=st.sampled_from(
        ["application/json", "application/yaml", "application/merge-patch+json", "text/yaml; charset=latin-1"]
    ),
)
def test_arbitrary_bytes_are_answered_2xx_or_4xx(probe, raw, content_type):
    probe.post(raw, content_type)


def test_what_was_created_is_whole_and_the_server_held_its_budget(probe):
    """Run last in this module: every 201 above made one complete sweep and nothing else was stored; the
    server's memory grew less than RSS_BUDGET_MB and its slowest answer took under LATENCY_BUDGET_S."""
    listed, cursor = {}, None
    while True:
        page = probe.client.get("/sweeps", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        listed.update({item["id"]: item for item in page.json()["items"]})
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert set(listed) == set(probe.created), "a sweep was stored that no 201 announced, or one went missing"
    for sweep_id in probe.created:
        detail = probe.client.get(f"/sweeps/{sweep_id}")
        assert detail.status_code == 200, detail.text[:300]
        body = detail.json()
        assert body["status"] in ("queued", "cancelled") and body["spec"]["name"] == body["name"]
        assert body["progress"]["total"] == parse_spec(body["spec"]).total_trials
    growth = probe.rss_growth_mb()
    created = len(probe.created)
    print(f"adversarial: {created} sweeps created, slowest answer {probe.slowest:.3f} s, RSS growth {growth:.1f} MB")
    assert growth < RSS_BUDGET_MB
    assert probe.slowest < LATENCY_BUDGET_S
