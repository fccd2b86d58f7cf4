"""Open-model load test of the rfsweep API: requests leave on a fixed schedule whatever the answers
take (no coordinated omission), from this process, against a server in another process.

    # queue-only server on PostgreSQL, 200 req/s for 60 s, then the highest rate with GET p99 <= 50 ms
    python benchmarks/api_load.py --serve --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        --rate 200 --duration 60 --find-max

Latency is measured from each request's *scheduled* send time, so a server (or generator) that falls
behind shows up in the percentiles instead of silently lowering the offered rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sweep_service.status import SweepStatus

REPO = Path(__file__).resolve().parents[1]
VALID_SPEC = {
    "name": "load-valid",
    "dataset": {"name": "digits", "train_subset": 300},
    "model": {"hidden": [16]},
    "algorithm": ["bp", "rf_two_phase"],
    "parameters": {"lr": {"distribution": "loguniform", "low": 0.001, "high": 1.0}, "batch_size": 32},
    "search": {"method": "hyperopt", "metric": "test_accuracy", "num_samples": 6, "max_concurrent_trials": 2},
    "scheduler": {"type": "asha", "max_t": 10, "grace_period": 1, "reduction_factor": 4},
    "resources": {"cpu": 1, "gpu": 0},
}
INVALID_SPEC = {
    **VALID_SPEC,
    "name": "load-invalid",
    "parameters": {"lr": {"distribution": "loguniform", "low": 0, "high": 1.0}},
}
DEFAULT_MIX = {"get_sweep": 0.40, "get_best": 0.15, "list": 0.25, "post_valid": 0.10, "post_invalid": 0.10}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Sample:
    kind: str
    status: int  # 0: transport error
    latency_ms: float  # from the scheduled send time
    service_ms: float  # from the actual send time
    lag_ms: float  # how late the generator sent it


@dataclass
class Run:
    rate: float
    duration: float
    samples: list[Sample] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        gets = [s for s in self.samples if s.kind in ("get_sweep", "get_best", "list")]
        posts = [s for s in self.samples if s.kind.startswith("post")]
        by_kind: dict[str, dict] = {}
        for kind in sorted({s.kind for s in self.samples}):
            chosen = [s for s in self.samples if s.kind == kind]
            codes: dict[str, int] = {}
            for s in chosen:
                codes[str(s.status)] = codes.get(str(s.status), 0) + 1
            lat = [s.latency_ms for s in chosen]
            by_kind[kind] = {
                "n": len(chosen),
                "codes": codes,
                "p50_ms": _r(percentile(lat, 50)),
                "p99_ms": _r(percentile(lat, 99)),
                "max_ms": _r(max(lat) if lat else None),
            }
        get_lat = [s.latency_ms for s in gets]
        return {
            "offered_rate": self.rate,
            "duration_s": self.duration,
            "requests": len(self.samples),
            "server_errors_5xx": sum(1 for s in self.samples if s.status >= 500),
            "transport_errors": sum(1 for s in self.samples if s.status == 0),
            "get_p50_ms": _r(percentile(get_lat, 50)),
            "get_p90_ms": _r(percentile(get_lat, 90)),
            "get_p99_ms": _r(percentile(get_lat, 99)),
            "get_max_ms": _r(max(get_lat) if get_lat else None),
            "get_service_p99_ms": _r(percentile([s.service_ms for s in gets], 99)),
            "post_p50_ms": _r(percentile([s.latency_ms for s in posts], 50)),
            "post_p99_ms": _r(percentile([s.latency_ms for s in posts], 99)),
            "generator_lag_p99_ms": _r(percentile([s.lag_ms for s in self.samples], 99)),
            "created": len(self.created_ids),
            "by_kind": by_kind,
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def fire(session, kind: str, ids: list[str], scheduled: float, run: Run, rng: random.Random) -> None:
    import aiohttp

    now = time.perf_counter()
    lag = (now - scheduled) * 1000
    try:
        if kind == "get_sweep":
            request = session.get(f"/sweeps/{rng.choice(ids)}")
        elif kind == "get_best":
            request = session.get(f"/sweeps/{rng.choice(ids)}/best")
        elif kind == "list":
            params = {"limit": "20"}
            if rng.random() < 0.3:
                params["status"] = rng.choice(
                    [SweepStatus.QUEUED.value, SweepStatus.SUCCEEDED.value, SweepStatus.CANCELLED.value]
                )
            request = session.get("/sweeps", params=params)
        elif kind == "post_valid":
            body = {**VALID_SPEC, "name": f"load-{uuid.uuid4().hex[:8]}"}
            request = session.post("/sweeps", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        else:
            request = session.post("/sweeps", json=INVALID_SPEC)
        async with request as response:
            payload = await response.read()
            status = response.status
        if kind == "post_valid" and status == 201:
            run.created_ids.append(json.loads(payload)["id"])
    except (TimeoutError, aiohttp.ClientError):
        status = 0
    end = time.perf_counter()
    run.samples.append(Sample(kind, status, (end - scheduled) * 1000, (end - now) * 1000, lag))


async def open_model(
    url: str, token: str | None, rate: float, duration: float, ids: list[str], mix: dict[str, float], seed: int = 0
) -> Run:
    """Send round(rate*duration) requests at t0 + i/rate, never waiting for answers before sending.
    (aiohttp: httpx's client costs several times more CPU per request, enough to make the generator,
    not the server, the bottleneck on a small machine.)"""
    import aiohttp

    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    run = Run(rate, duration)
    connector = aiohttp.TCPConnector(limit=1024, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector, timeout=timeout) as session:

        async def warm():
            async with session.get("/healthz") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(min(64, int(rate // 4) + 1))))
        tasks = []
        total = round(rate * duration)
        t0 = time.perf_counter() + 0.2
        for i in range(total):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = rng.choices(kinds, weights)[0]
            tasks.append(asyncio.create_task(fire(session, kind, ids, scheduled, run, rng)))
        await asyncio.gather(*tasks)
    return run


def run_open_model(*args, **kwargs) -> Run:
    try:
        import uvloop

        return uvloop.run(open_model(*args, **kwargs))
    except ImportError:
        return asyncio.run(open_model(*args, **kwargs))


def all_listed_ids(url: str, token: str | None) -> set[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    seen: set[str] = set()
    cursor = None
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = client.get("/sweeps", params=params).json()
            seen.update(item["id"] for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return seen


# --- a server in a process of its own --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, database_url: str | None, workers: int, home: Path, token: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RFSWEEP_MAX_RUNNING_SWEEPS": "0", "RFSWEEP_HOME": str(home), "RFSWEEP_API_TOKEN": token}
        if database_url:
            env["DATABASE_URL"] = database_url
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-c", "from api.app import ensure_schema; ensure_schema()"], env=env, check=True, cwd=home
        )
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        self.log = open(home / "server.log", "ab")  # noqa: SIM115 (the server writes it until stop())
        self.process = subprocess.Popen(cmd, env=env, cwd=home, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        time.sleep(1.0 * workers)  # let every worker finish its start-up

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def seed_sweeps(url: str, token: str, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        return [client.post("/sweeps", json={**VALID_SPEC, "name": f"seed-{i}"}).json()["id"] for i in range(n)]


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{os.cpu_count()} cores, {model}; load average at start {os.getloadavg()[0]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an API already running (queue-only, please); else use --serve")
    parser.add_argument("--token", default=os.environ.get("RFSWEEP_API_TOKEN"))
    parser.add_argument("--serve", action="store_true", help="start a queue-only server in its own process")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="with --serve: the store (a fresh database is created on this PostgreSQL server)",
    )
    parser.add_argument("--workers", type=int, default=2, help="with --serve: uvicorn workers")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--seed-sweeps", type=int, default=200, help="sweeps created before the run, for the GETs")
    parser.add_argument("--find-max", action="store_true", help="then raise the rate until GET p99 > --p99-ms")
    parser.add_argument("--step-duration", type=float, default=20)
    parser.add_argument("--p99-ms", type=float, default=50)
    parser.add_argument("--max-rate", type=float, default=1000, help="--find-max stops here")
    parser.add_argument("--json", dest="json_out", help="write the results here")
    args = parser.parse_args()

    server, database = None, None
    token = args.token or secrets.token_urlsafe(16)
    url = args.url
    if args.serve:
        database_url = args.database_url
        if database_url and database_url.startswith("postgres"):
            database, database_url = _fresh_database(database_url)
        server = Server(database_url, args.workers, Path(f"/tmp/rfsweep-load-{uuid.uuid4().hex[:6]}"), token)
        url = server.url
    if not url:
        parser.error("give --url or --serve")
    results: dict = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "workers": args.workers if args.serve else None,
        "store": "postgresql" if (args.database_url or "").startswith("postgres") else "sqlite",
    }
    try:
        ids = seed_sweeps(url, token, args.seed_sweeps)
        run = run_open_model(url, token, args.rate, args.duration, ids, DEFAULT_MIX)
        summary = run.summary()
        listed = all_listed_ids(url, token)
        summary["lost_sweeps"] = len(set(run.created_ids) - listed)
        summary["pass"] = (
            summary["server_errors_5xx"] == 0
            and summary["transport_errors"] == 0
            and summary["get_p99_ms"] is not None
            and summary["get_p99_ms"] <= args.p99_ms
            and summary["lost_sweeps"] == 0
        )
        summary["load_average_1m_after"] = round(os.getloadavg()[0], 1)
        results["main"] = summary
        print(json.dumps({k: v for k, v in summary.items() if k != "by_kind"}), flush=True)
        print(json.dumps(summary["by_kind"]), flush=True)
        if args.find_max:
            steps, rate, best = [], args.rate, None
            while True:
                step = run_open_model(url, token, rate, args.step_duration, ids, DEFAULT_MIX, seed=int(rate))
                s = step.summary()
                ok = (
                    s["server_errors_5xx"] == 0
                    and s["transport_errors"] == 0
                    and (s["get_p99_ms"] or 1e9) <= args.p99_ms
                )
                steps.append(
                    {
                        k: s[k]
                        for k in (
                            "offered_rate",
                            "get_p50_ms",
                            "get_p99_ms",
                            "post_p99_ms",
                            "server_errors_5xx",
                            "generator_lag_p99_ms",
                        )
                    }
                    | {"ok": ok}
                )
                print(json.dumps(steps[-1]), flush=True)
                if not ok or rate >= args.max_rate:
                    break
                best = rate
                rate = rate * 1.25 if rate < 400 else rate + 100
            results["max_rate"] = {"highest_rate_with_p99_ok": best, "steps": steps}
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            _drop_database(*database)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0 if results["main"]["pass"] else 1


def _fresh_database(url: str) -> tuple[tuple[str, str], str]:
    import psycopg

    admin = url if url.rsplit("/", 1)[-1] else url + "postgres"
    name = f"rfsweep_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return (admin, name), f"{admin.rsplit('/', 1)[0]}/{name}"


def _drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


if __name__ == "__main__":
    sys.exit(main())
