"""``truckroll bench intake``: signed webhook deliveries per second accepted by the intake service, with none
lost and none duplicated, the accept latency, and how fast the dispatch flows drain behind it.

The service runs under uvicorn in a subprocess on a fresh database (SQLite by default), with the demo company
seeded; flows run in-process (one at a time behind the webhook). The client fires ``requests`` distinct
requests with ``concurrency`` connections in flight; ``retry_share`` of them are delivered a second time with
the same Idempotency-Key, shuffled into the stream so some retries race their original.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SECRET = "bench-secret"


@dataclass
class IntakeResult:
    database: str
    requests: int
    deliveries: int
    retried: int
    concurrency: int
    accepted: int
    refused: int
    seconds: float
    accepted_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    duplicated: int
    retry_mismatches: int
    drained: int
    drain_seconds: float | None
    flows_per_second: float | None
    assigned: int
    escalated: int


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(url: str, requests: int, technicians: int, seed: int) -> list[dict[str, Any]]:
    from demo import company as demo
    from truckroll.db import init_db, make_engine, session_scope

    engine = init_db(make_engine(url))
    day = demo.next_service_day()
    with session_scope(engine) as s:
        demo.seed_company(s, day, technicians=technicians)
    payloads = [r.payload for r in demo.generate_requests(day, requests, seed=seed)]
    engine.dispose()
    return payloads


def _wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the intake service exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the intake service did not start")


async def _fire(base: str, deliveries: list[tuple[str, bytes]], concurrency: int) -> list[tuple[str, int, int, float]]:
    import httpx

    from service.security import sign

    results: list[tuple[str, int, int, float]] = []
    it = iter(deliveries)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    used: set[tuple[str, int]] = set()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for key, body in it:
                # Every delivery is signed afresh: a retry of the same body in the same second gets an earlier
                # timestamp, so its signature differs (the service refuses a signature it has seen: a replay).
                t = int(time.time())
                while (key, t) in used:
                    t -= 1
                used.add((key, t))
                headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                           "X-Truckroll-Signature": sign(body, SECRET, t)}
                t0 = time.perf_counter()
                r = await client.post("/service-requests", content=body, headers=headers)
                ms = (time.perf_counter() - t0) * 1000
                rid = r.json().get("request_id", -1) if r.status_code == 202 else -1
                results.append((key, r.status_code, rid, ms))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def run_intake_bench(*, requests: int = 1000, concurrency: int = 16, retry_share: float = 0.1,
                     technicians: int = 25, database_url: str | None = None, drain: bool = True,
                     drain_timeout: float = 900, seed: int = 5) -> IntakeResult:
    """Start the service, deliver the requests, check every one against the database, wait for the flows."""
    import httpx
    from sqlalchemy import func, text
    from sqlmodel import Session, col, select

    from models import RequestStatus, ServiceRequest
    from truckroll.db import make_engine

    tmp = Path(tempfile.mkdtemp(prefix="truckroll-bench-intake-"))
    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    payloads = _seed(url, requests, technicians, seed)
    rng = random.Random(seed)
    deliveries = [(f"bench-{i}", json.dumps(p).encode()) for i, p in enumerate(payloads)]
    retried = rng.sample(range(len(deliveries)), int(len(deliveries) * retry_share))
    # A retry goes out a little after its original: some race it, some come after it was stored.
    stream = list(deliveries)
    for i in sorted(retried, reverse=True):
        stream.insert(min(len(stream), i + rng.randint(1, 3 * concurrency)), deliveries[i])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TRUCKROLL_DATABASE_URL=url, TRUCKROLL_WEBHOOK_SECRET=SECRET,
               TRUCKROLL_FLOW_RUNS="in-process", TRUCKROLL_REQUEUE_SWEEP_INTERVAL_SECONDS="0",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    log = open(tmp / "service.log", "wb")  # noqa: SIM115 - closed below
    serve = ["serve", "--port", str(port), "--log-level", "warning", "--sweep-seconds", "0"]
    # Its own process group: Prefect's temporary API server, which the service starts, is stopped with it.
    proc = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", *serve], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_up(base, proc)
        t0 = time.perf_counter()
        results = asyncio.run(_fire(base, stream, concurrency))
        seconds = time.perf_counter() - t0
        accepted = [r for r in results if r[1] == 202]
        first_id: dict[str, int] = {}
        mismatches = 0
        for key, _, rid, _ in accepted:
            if first_id.setdefault(key, rid) != rid:
                mismatches += 1
        engine = make_engine(url)
        with Session(engine) as s:
            rows = dict(s.exec(select(ServiceRequest.idempotency_key, ServiceRequest.id)).all())
        lost = sum(1 for key, rid in first_id.items() if rows.get(key) != rid)
        # The unique key would refuse a second row per key; count rows beyond the distinct requests sent anyway.
        duplicated = max(0, len(rows) - len(first_id))
        drain_seconds = None
        finished = 0
        if drain:
            d0 = time.perf_counter()
            done = (RequestStatus.ASSIGNED, RequestStatus.ESCALATED)
            while time.perf_counter() - d0 < drain_timeout:
                with Session(engine) as s:
                    finished = int(s.exec(select(func.count()).select_from(ServiceRequest)
                                          .where(col(ServiceRequest.status).in_(done))).one())
                if finished >= len(rows):
                    break
                time.sleep(1)
            drain_seconds = time.perf_counter() - d0 + seconds  # flows run from the first request on
        with engine.connect() as conn:
            counts: dict[str, int] = {str(status): int(n) for status, n in conn.execute(
                text("SELECT status, count(*) FROM servicerequest GROUP BY status")).all()}
        engine.dispose()
        latencies = [r[3] for r in accepted]
        return IntakeResult(
            database=url.split(":", 1)[0], requests=requests, deliveries=len(stream), retried=len(retried),
            concurrency=concurrency, accepted=len(accepted), refused=len(results) - len(accepted),
            seconds=round(seconds, 2), accepted_per_second=round(len(accepted) / seconds, 1),
            p50_ms=round(_percentile(latencies, 0.5), 1), p99_ms=round(_percentile(latencies, 0.99), 1),
            max_ms=round(max(latencies, default=0.0), 1), lost=lost, duplicated=duplicated,
            retry_mismatches=mismatches, drained=finished,
            drain_seconds=round(drain_seconds, 1) if drain_seconds is not None else None,
            flows_per_second=round(finished / drain_seconds, 2) if drain_seconds else None,
            assigned=int(counts.get("assigned", 0)), escalated=int(counts.get("escalated", 0)))
    finally:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
        except httpx.HTTPError:
            pass
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        _stop_group(proc.pid)
        log.close()
        if database_url is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _stop_group(pgid: int) -> None:
    """SIGTERM, then SIGKILL, to whatever is left of the service's process group."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(2)


def as_dict(result: IntakeResult) -> dict[str, Any]:
    return asdict(result)
