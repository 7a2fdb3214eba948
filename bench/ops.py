"""``truckroll bench ops``: the served stack (scripts/serve.sh, as ``make serve`` runs it) under a burst of signed
webhook deliveries: how long the burst takes to drain, webhook-to-assignment latency, crashed flow runs, and
whether every request ended exactly once.

The demo company (25 technicians) is seeded; ``burst`` requests of its next service day are posted at once
(after ``warmup`` single requests, one at a time on the idle stack, for the idle latency). Latency is from the
POST to the assignment or escalation row's commit (both timestamps from the database clock of this machine).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class OpsResult:
    database: str
    prefect_database: str
    workers: int
    worker_limit: int
    burst: int
    idle_p50_s: float | None
    drain_s: float | None
    finished: int
    assigned: int
    escalated: int
    burst_p50_s: float | None
    burst_p95_s: float | None
    crashed_runs: int
    failed_runs: int
    duplicated: int
    startup_s: float
    left_behind: list[str]
    # CPU seconds per burst request, by part of the stack (server, dispatch workers, intake, other), from /proc:
    # on a shared machine a steadier figure than the drain time.
    cpu_per_request_s: dict[str, float] | None = None
    # The outbox once the burst drained, by status (sent, pending, failed...): every customer told, or not; and
    # how long after the last commit the last sends took (waited for up to a minute).
    messages: dict[str, int] | None = None
    messages_settled_s: float | None = None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _seed(url: str, n: int, seed: int) -> list[dict[str, Any]]:
    from demo import company as demo
    from truckroll.db import init_db, make_engine, session_scope

    engine = init_db(make_engine(url))
    day = demo.next_service_day()
    with session_scope(engine) as s:
        demo.seed_company(s, day, technicians=25)
    engine.dispose()
    return [r.payload for r in demo.generate_requests(day, n, seed=seed)]


async def _post(base: str, secret: str, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, float]]:
    import httpx

    from service.security import sign

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        async def one(key: str, payload: dict[str, Any]) -> tuple[int, float]:
            body = json.dumps(payload).encode()
            sent = time.time()
            r = await client.post("/service-requests", content=body,
                                  headers={"Content-Type": "application/json", "Idempotency-Key": key,
                                           "X-Truckroll-Signature": sign(body, secret)})
            r.raise_for_status()
            return int(r.json()["request_id"]), sent
        return list(await asyncio.gather(*(one(k, p) for k, p in items)))


def _finish_times(url: str, ids: list[int]) -> dict[int, float]:
    """When each request was assigned (its assignment row) or escalated (its escalation row), epoch seconds."""
    from sqlalchemy import text

    from truckroll.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT request_id, min(created_at) FROM ("
                " SELECT request_id, created_at FROM assignment WHERE status != 'cancelled'"
                " UNION ALL SELECT request_id, created_at FROM escalation) t GROUP BY request_id")).all()
    finally:
        engine.dispose()
    out: dict[int, float] = {}
    wanted = set(ids)
    for rid, created in rows:
        if rid in wanted and created is not None:
            if isinstance(created, str):
                from datetime import datetime

                created = datetime.fromisoformat(created)
            if created.tzinfo is None:
                from datetime import UTC

                created = created.replace(tzinfo=UTC)
            out[int(rid)] = created.timestamp()
    return out


def _part(cmd: str) -> str:
    if "prefect server" in cmd or "prefect.server" in cmd or "uvicorn" in cmd:
        return "prefect_server"
    if cmd.endswith("truckroll worker"):
        return "dispatch_workers"
    if "truckroll serve" in cmd:
        return "intake"
    return "other"


def stack_cpu(stack_id: str) -> dict[str, float]:
    """CPU seconds (user + system, with reaped children) of the stack's processes, by part."""
    import os

    from truckroll.stack import processes_with_env

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid, cmd in processes_with_env("TRUCKROLL_STACK_ID", stack_id):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3 of stat): utime, stime, cutime, cstime are fields 14-17.
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
        out[_part(cmd)] = out.get(_part(cmd), 0.0) + cpu
    return out


def _wait(url: str, ids: list[int], timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    done = _finish_times(url, ids)
    while len(done) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
        done = _finish_times(url, ids)
    return done


def run_ops_bench(*, burst: int = 200, workers: int = 2, worker_limit: int = 2, warmup: int = 5,
                  database_url: str | None = None, prefect_database_url: str | None = None,
                  drain_timeout: float = 900, seed: int = 7, env: dict[str, str] | None = None,
                  keep: Path | None = None) -> OpsResult:
    """Start the stack, measure idle latency, post the burst, wait for every request, read Prefect's runs."""
    import signal
    import sys

    import httpx
    from sqlalchemy import text

    from truckroll.db import make_engine
    from truckroll.stack import Stack

    # SIGTERM (a timeout, an operator) unwinds through the finally below, so the stack is stopped with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = keep or Path(tempfile.mkdtemp(prefix="truckroll-bench-ops-"))
    root.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{root / 'truckroll.db'}"
    payloads = _seed(url, burst + warmup, seed)
    stack = Stack(root, database_url=url, prefect_database_url=prefect_database_url, workers=workers,
                  env={"TRUCKROLL_WORKER_LIMIT": str(worker_limit), "PREFECT_LOGGING_LEVEL": "INFO",
                       **(env or {})})
    t0 = time.monotonic()
    stack.start()
    startup = time.monotonic() - t0
    try:
        idle: list[float] = []
        for i in range(warmup):
            ((rid, sent),) = asyncio.run(_post(stack.intake_url, stack.secret, [(f"warm-{i}", payloads[i])]))
            done = _wait(url, [rid], 120)
            if rid in done:
                idle.append(done[rid] - sent)
        items = [(f"burst-{i}", p) for i, p in enumerate(payloads[warmup:])]
        cpu0 = stack_cpu(stack.id)
        b0 = time.time()
        posted = asyncio.run(_post(stack.intake_url, stack.secret, items))
        ids = [rid for rid, _ in posted]
        done = _wait(url, ids, drain_timeout)
        cpu1 = stack_cpu(stack.id)
        cpu = {k: round((cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / max(1, len(ids)), 3) for k in sorted(cpu1)}
        cpu["total"] = round(sum(cpu.values()), 3)
        latencies = [done[rid] - sent for rid, sent in posted if rid in done]
        drain = (max(done.values()) - b0) if len(done) == len(ids) else None
        engine = make_engine(url)
        with engine.connect() as conn:
            statuses: dict[str, int] = {str(status): int(n) for status, n in conn.execute(
                text("SELECT status, count(*) FROM servicerequest GROUP BY status")).all()}
            duplicated = int(conn.execute(text(
                "SELECT count(*) FROM (SELECT request_id FROM assignment WHERE status != 'cancelled' "
                "GROUP BY request_id HAVING count(*) > 1) t")).scalar_one())
        # The last runs send their messages just after their commit: wait (up to a minute) for the sends under way.
        settle0 = time.monotonic()
        while True:
            with engine.connect() as conn:
                messages = {str(status): int(n) for status, n in conn.execute(
                    text("SELECT status, count(*) FROM notification GROUP BY status")).all()}
            if not (messages.get("pending") or messages.get("sending")) or time.monotonic() - settle0 > 60:
                break
            time.sleep(0.5)
        messages_settled_s = round(time.monotonic() - settle0, 1)
        engine.dispose()
        runs = httpx.post(f"{stack.api_url}/flow_runs/filter", timeout=60,
                          json={"limit": 200, "sort": "ID_DESC",
                                "flow_runs": {"state": {"type": {"any_": ["CRASHED", "FAILED"]}}}}).json()
        crashed = sum(1 for r in runs if r["state_type"] == "CRASHED")
        failed = sum(1 for r in runs if r["state_type"] == "FAILED")
    finally:
        left = stack.stop()

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return OpsResult(
        database=url.split(":", 1)[0], prefect_database="postgresql" if prefect_database_url else "sqlite",
        workers=workers, worker_limit=worker_limit, burst=burst,
        idle_p50_s=r(statistics.median(idle)) if idle else None, drain_s=r(drain), finished=len(done),
        assigned=int(statuses.get("assigned", 0)), escalated=int(statuses.get("escalated", 0)),
        burst_p50_s=r(_percentile(latencies, 0.5)), burst_p95_s=r(_percentile(latencies, 0.95)),
        crashed_runs=crashed, failed_runs=failed, duplicated=duplicated, startup_s=round(startup, 1),
        left_behind=[cmd for _, cmd in left], cpu_per_request_s=cpu, messages=messages,
        messages_settled_s=messages_settled_s)


def as_dict(result: OpsResult) -> dict[str, Any]:
    return asdict(result)
