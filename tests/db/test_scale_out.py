"""Scale out: a real Prefect server, the dispatch deployment from prefect.yaml, two process workers on one
work pool, truckroll on PostgreSQL. Every request is dispatched exactly once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from models import Assignment, AssignmentStatus, Escalation, RequestStatus, ServiceRequest
from tests import factories as f
from tests.pg import PostgresServer, free_port
from truckroll import store
from truckroll.db import session_scope
from truckroll.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REQUESTS = 8

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"prefect server not healthy after {timeout} s: {log.read_text()[-3000:]}")


@pytest.fixture
def prefect_server(tmp_path: Path, postgres_server: PostgresServer, pg_db: str) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port (its own database on the PostgreSQL server); yields the env the
    CLI, the workers and the flow runs use."""
    port = free_port()
    prefect_db = postgres_server.create_database("prefect").replace("+psycopg", "+asyncpg")
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_DATABASE_CONNECTION_URL=prefect_db,
               PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="2",
               PREFECT_LOGGING_LEVEL="INFO", TRUCKROLL_DATABASE_URL=pg_db,
               TRUCKROLL_REQUEUE_SWEEP_INTERVAL_SECONDS="0")
    env.pop("PREFECT_PROFILES_PATH", None)
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        _wait_healthy(env["PREFECT_API_URL"], server, log)
        yield env
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def _flow_runs(env: dict[str, str]) -> list[dict[str, object]]:
    r = httpx.post(f"{env['PREFECT_API_URL']}/flow_runs/filter", json={"limit": 200}, timeout=10)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_two_workers_drain_one_queue_dispatching_each_request_once(prefect_server: dict[str, str],
                                                                   tmp_path: Path) -> None:
    """8 requests submitted to the dispatch deployment (prefect.yaml), two `prefect worker start` processes
    on the same pool: every request ends assigned or escalated with at most one active assignment, every flow
    run completes, no flow run is executed by both workers (both may start to submit one; only one claims it),
    and no technician's jobs overlap."""
    env = prefect_server
    with session_scope() as s:
        f.add_job_type(s)
        for name in ("Ana", "Ben", "Cy"):
            f.add_technician(s, name)
        ids = []
        for i in range(REQUESTS):
            row, _ = store.create_request(f.request_payload(customer_name=f"Customer {i}"), session=s,
                                          horizon_days=get_settings().planning_horizon_days)
            ids.append(row.id)

    run = dict(env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    pool = subprocess.run([str(BIN / "prefect"), "work-pool", "create", "truckroll-pool", "--type", "process"], **run)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run([sys.executable, "-m", "flows.deploy", "--name", "dispatch"], **run)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr

    workers, logs = [], []
    for name in ("w1", "w2"):
        logs.append(tmp_path / f"{name}.log")
        with open(logs[-1], "wb") as out:
            workers.append(subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "truckroll-pool", "--name", name],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        submit = subprocess.run([sys.executable, "-c", (
            "import sys; from flows.runs import submit_to_deployment\n"
            "for rid in map(int, sys.argv[1:]): submit_to_deployment(rid)\n"
            # A second hand-over of the same request (a retried submission) must not create a second run.
            "submit_to_deployment(int(sys.argv[1]))\n"), *map(str, ids)], **run)
        assert submit.returncode == 0, submit.stderr
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = _flow_runs(env)
            if len(runs) >= REQUESTS and all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
                                             for r in runs):
                break
            time.sleep(2)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()

    runs = _flow_runs(env)
    assert len(runs) == REQUESTS, [(r["name"], r["state_type"]) for r in runs]
    assert Counter(r["state_type"] for r in runs) == {"COMPLETED": REQUESTS}, \
        [r["state_type"] for r in runs] + [lg.read_text()[-2000:] for lg in logs]
    assert sorted(r["parameters"]["request_id"] for r in runs) == sorted(ids)  # type: ignore[index]
    # A worker logs "submitting" before it claims the run; the one that loses the claim logs "Aborted submission".
    taken: Counter[str] = Counter()
    for lg in logs:
        text = lg.read_text()
        taken.update(set(re.findall(r"submitting flow run '([0-9a-f-]+)'", text))
                     - set(re.findall(r"Aborted submission of flow run '([0-9a-f-]+)'", text)))
    assert set(taken) == {str(r["id"]) for r in runs} and set(taken.values()) == {1}, taken
    with session_scope() as s:
        rows = s.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(ids))).all()
        assert {r.status for r in rows} <= {RequestStatus.ASSIGNED, RequestStatus.ESCALATED}
        active = s.exec(select(Assignment).where(col(Assignment.status) != AssignmentStatus.CANCELLED)).all()
        per_request = Counter(a.request_id for a in active)
        assert set(per_request.values()) <= {1}
        assert set(per_request) == {r.id for r in rows if r.status == RequestStatus.ASSIGNED}
        escalated = {e.request_id for e in s.exec(select(Escalation)).all()}
        assert escalated == {r.id for r in rows if r.status == RequestStatus.ESCALATED}
        by_tech: dict[int, list[Assignment]] = {}
        for a in active:
            by_tech.setdefault(a.technician_id, []).append(a)
        for jobs in by_tech.values():
            jobs.sort(key=lambda a: a.scheduled_start)
            for a, b in zip(jobs, jobs[1:], strict=False):
                assert a.scheduled_end <= b.scheduled_start
