"""How the API's reads scale with the store: p50/p99 of GET /sweeps (first page), GET /sweeps at a deep
cursor, and GET /sweeps/{id}, at a fixed open-model rate, with 10, 1 000 and 100 000 sweeps in PostgreSQL.

    python benchmarks/api_store_scaling.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Rows are bulk-inserted straight into a fresh database (then ANALYZEd); the server runs queue-only in its
own process; the load comes from this process (benchmarks/api_load.py's generator).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import Server, _drop_database, _fresh_database, machine, percentile

from sweep_service.records import BestEntry
from sweep_service.status import ProgressCounts, SweepStatus, TrialStatus

STATUSES = [SweepStatus.SUCCEEDED] * 6 + [
    SweepStatus.FAILED,
    SweepStatus.CANCELLED,
    SweepStatus.QUEUED,
    SweepStatus.RUNNING,
]


def fill(database_url: str, n: int, seed: int = 0) -> list[str]:
    """Insert n sweeps (oldest first), shaped like real ones, in batches; returns their ids."""
    import sqlalchemy as sa

    from api.db import Sweep, make_engine, upgrade
    from api.settings import Settings

    url = Settings(database_url=database_url).resolved_database_url
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(seed)
    spec = {
        "name": "filled",
        "dataset": {"name": "digits"},
        "algorithm": ["bp", "rf_two_phase"],
        "parameters": {"lr": {"distribution": "loguniform", "low": 0.001, "high": 1.0}},
        "search": {"num_samples": 6},
        "scheduler": {"type": "asha", "max_t": 10},
    }
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = []
    batch = []
    with engine.begin() as conn:
        for i in range(n):
            status = rng.choice(STATUSES)
            sweep_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ids.append(sweep_id)
            done = status.terminal
            best = (
                BestEntry(
                    algorithm="bp",
                    config={"lr": rng.random()},
                    metric="test_accuracy",
                    value=rng.random(),
                    trial_id=uuid.uuid4().hex[:8],
                    mlflow_run_id=uuid.uuid4().hex,
                    status=TrialStatus.FINISHED,
                ).to_json()
                if status is SweepStatus.SUCCEEDED
                else None
            )
            created = start + dt.timedelta(seconds=i)
            batch.append(
                dict(
                    id=sweep_id,
                    name=f"filled-{i}",
                    status=status.value,
                    spec=spec,
                    total_trials=12,
                    max_epochs=120,
                    created_at=created,
                    updated_at=created,
                    started_at=created if status is not SweepStatus.QUEUED else None,
                    finished_at=created if done else None,
                    cancel_requested=status is SweepStatus.CANCELLED,
                    progress=(
                        ProgressCounts(total=12, finished=12, epochs_done=120, max_epochs=120)
                        if done
                        else ProgressCounts.queued(12, 120)
                    ).to_dict(),
                    best=best,
                    best_per_algorithm={"bp": best} if best else None,
                    trials=[
                        {
                            "trial_id": f"t{k}",
                            "algorithm": "bp",
                            "config": {"lr": 0.01},
                            "status": TrialStatus.FINISHED.value,
                            "epochs": 10,
                            "last_metric": 0.9,
                            "best_metric": 0.9,
                            "mlflow_run_id": None,
                        }
                        for k in range(12)
                    ]
                    if done
                    else None,
                    attempts=1 if status is not SweepStatus.QUEUED else 0,
                )
            )
            if len(batch) == 5000:
                conn.execute(sa.insert(Sweep), batch)
                batch = []
        if batch:
            conn.execute(sa.insert(Sweep), batch)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE sweeps"))
    engine.dispose()
    return ids


async def fixed_rate(url: str, paths: list[str], rate: float, duration: float) -> list[float]:
    """GET the given paths round-robin on a fixed schedule; latencies from the scheduled times (ms)."""
    import aiohttp

    latencies: list[float] = []
    errors = 0

    async def one(session, path, scheduled):
        nonlocal errors
        try:
            async with session.get(path) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
        except (TimeoutError, aiohttp.ClientError):
            errors += 1
        latencies.append((time.perf_counter() - scheduled) * 1000)

    connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        base_url=url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def warm():
            async with session.get("/healthz") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(32)))
        tasks, total = [], int(rate * duration)
        t0 = time.perf_counter() + 0.2
        for i in range(total):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, paths[i % len(paths)], scheduled)))
        await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{errors} requests failed")
    return latencies


def run_fixed_rate(*args) -> list[float]:
    try:
        import uvloop

        return uvloop.run(fixed_rate(*args))
    except ImportError:
        return asyncio.run(fixed_rate(*args))


def deep_cursor(url: str, depth_fraction: float, n: int) -> str:
    """The cursor a client holds after paging depth_fraction of the way into the table.

    A cursor encodes the last row's sequence number, and a fresh table's rows have seq 1..n, so the
    page after row k (newest first) is addressed without paging there first."""
    from api.store import encode_cursor

    return encode_cursor(max(1, int(n * (1 - depth_fraction))))


def explain(database_url: str, cursor_seq: int, sweep_id: str) -> dict[str, dict]:
    """What PostgreSQL does for each read (EXPLAIN ANALYZE, BUFFERS): independent of other tenants' load."""
    import re

    import sqlalchemy as sa

    from api.db import make_engine
    from api.settings import Settings

    columns = "seq, id, name, status, created_at, updated_at, started_at, finished_at, error, progress, best"
    queries = {
        "list_first_page": f"SELECT {columns} FROM sweeps ORDER BY seq DESC LIMIT 21",
        "list_deep_page": f"SELECT {columns} FROM sweeps WHERE seq < {int(cursor_seq)} ORDER BY seq DESC LIMIT 21",
        "get_sweep": f"SELECT * FROM sweeps WHERE id = '{sweep_id}'",
    }
    engine = make_engine(Settings(database_url=database_url).resolved_database_url)
    out = {}
    with engine.connect() as conn:
        for kind, sql in queries.items():
            conn.execute(sa.text(sql)).all()  # warm
            plan = [row[0] for row in conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
            text = "\n".join(plan)
            buffers = re.search(r"Buffers: shared hit=(\d+)", text)
            scan = next((line for line in plan if "Scan" in line), plan[0])
            out[kind] = {
                "plan": scan.replace("->", "").split("  (")[0].strip(),
                "execution_ms": float(re.search(r"Execution Time: ([0-9.]+)", text).group(1)),
                "shared_buffers_hit": int(buffers.group(1)) if buffers else None,
            }
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--rate", type=float, default=100, help="requests/s for each kind of request")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per kind; medians are reported")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    results = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "rate": args.rate,
        "duration_s": args.duration,
        "workers": args.workers,
        "repeat": args.repeat,
        "sizes": {},
    }
    for n in [int(s) for s in args.sizes.split(",")]:
        database, url = _fresh_database(args.database_url)
        try:
            t = time.monotonic()
            ids = fill(url, n)
            fill_s = time.monotonic() - t
            server = Server(url, args.workers, Path(f"/tmp/rfsweep-scale-{uuid.uuid4().hex[:6]}"), "unused")
            try:
                rng = random.Random(1)
                cursor = deep_cursor(server.url, 0.9, n)
                kinds = {
                    "list_first_page": ["/sweeps?limit=20"],
                    "list_deep_page": [f"/sweeps?limit=20&cursor={cursor}"],
                    "get_sweep": [f"/sweeps/{rng.choice(ids)}" for _ in range(500)],
                }
                # Warm every worker first (imports finish in the background after start-up).
                run_fixed_rate(server.url, [p for ps in kinds.values() for p in ps[:5]], 50, 5)
                row = {"fill_seconds": round(fill_s, 1)}
                # Kinds measured in rotation, --repeat times: other tenants of a shared machine come and go,
                # and the median over rounds is what a noisy minute does not decide.
                rounds: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
                for _ in range(args.repeat):
                    for kind, paths in kinds.items():
                        lat = run_fixed_rate(server.url, paths, args.rate, args.duration)
                        rounds[kind].append((percentile(lat, 50), percentile(lat, 99)))
                for kind, values in rounds.items():
                    row[kind] = {
                        "p50_ms": round(statistics.median(v[0] for v in values), 2),
                        "p99_ms": round(statistics.median(v[1] for v in values), 2),
                        "p99_each_round_ms": [round(v[1], 2) for v in values],
                        "n_per_round": int(args.rate * args.duration),
                    }
                row["postgres_explain"] = explain(url, max(1, int(n * 0.1)), ids[len(ids) // 2])
                results["sizes"][str(n)] = row
                print(json.dumps({"sweeps": n, **row}), flush=True)
            finally:
                server.stop()
        finally:
            _drop_database(*database)
    sizes = sorted(results["sizes"], key=int)
    if len(sizes) >= 2:
        small, large = results["sizes"][sizes[0]], results["sizes"][sizes[-1]]
        results["p99_ratio_largest_vs_smallest"] = {
            kind: round(large[kind]["p99_ms"] / small[kind]["p99_ms"], 2)
            for kind in ("list_first_page", "list_deep_page", "get_sweep")
        }
        print(json.dumps(results["p99_ratio_largest_vs_smallest"]), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
