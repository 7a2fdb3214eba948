"""The served stack as `make serve` runs it (scripts/serve.sh on free ports): a burst of signed requests, a
dispatch worker killed mid-run, the scheduler, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

BURST = 16


def _seed(url: str, n: int) -> list[dict[str, Any]]:
    from demo import company as demo
    from truckroll.db import init_db, make_engine, session_scope

    engine = init_db(make_engine(url))
    day = demo.next_service_day()
    with session_scope(engine) as s:
        demo.seed_company(s, day, technicians=25)
    engine.dispose()
    return [r.payload for r in demo.generate_requests(day, n, seed=11)]


def _post_all(base: str, secret: str, payloads: list[dict[str, Any]]) -> list[int]:
    import asyncio

    import httpx

    from service.security import sign

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            async def one(i: int, p: dict[str, Any]) -> int:
                body = json.dumps(p).encode()
                r = await client.post("/service-requests", content=body,
                                      headers={"Content-Type": "application/json", "Idempotency-Key": f"ops-{i}",
                                               "X-Truckroll-Signature": sign(body, secret)})
                assert r.status_code == 202, r.text
                return int(r.json()["request_id"])
            return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads))))

    return asyncio.run(run())


def _flow_runs(api_url: str) -> list[dict[str, Any]]:
    import httpx

    r = httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 200, "sort": "ID_DESC"}, timeout=30)
    r.raise_for_status()
    return list(r.json())


def _set_interval(api_url: str, deployment: str, seconds: int) -> None:
    import httpx

    dep = httpx.get(f"{api_url}/deployments/name/{deployment}", timeout=30)
    dep.raise_for_status()
    (schedule,) = dep.json()["schedules"]
    r = httpx.patch(f"{api_url}/deployments/{dep.json()['id']}/schedules/{schedule['id']}",
                    json={"schedule": {"interval": seconds}}, timeout=30)
    r.raise_for_status()


def test_burst_with_a_killed_worker_ends_every_request_once_and_the_scheduler_fires(tmp_path: Path,
                                                                                     prefect_home: Path) -> None:
    """Every request of a burst ends assigned or escalated exactly once although a dispatch worker is killed
    mid-run (the sweep finds the expired leases, marks the dead runs Crashed and runs the requests again; the
    stack restarts the worker); the scheduler creates runs of the interval-scheduled deployments, and the
    deliver-notifications one sends a message left in the outbox; the workers hear SIGINT; SIGTERM stops every
    process of the stack, the flow runs left running included, and leaves none behind."""
    from sqlalchemy import text
    from sqlmodel import Session

    from truckroll.db import make_engine
    from truckroll.stack import Stack, processes_with_env

    url = f"sqlite:///{tmp_path / 'truckroll.db'}"
    payloads = _seed(url, BURST)
    stack = Stack(tmp_path, database_url=url, workers=1, env={
        "TRUCKROLL_DISPATCH_LEASE_SECONDS": "9", "TRUCKROLL_REQUEUE_AFTER_SECONDS": "60",
        "TRUCKROLL_REQUEUE_SWEEP_INTERVAL_SECONDS": "3", "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"})
    engine = make_engine(url)
    try:
        stack.start()
        # The outbox drain every 10 s instead of prefect.yaml's 2 minutes, as an operator sets a deployment's
        # schedule in the UI (Prefect deletes the runs it had scheduled and schedules anew).
        _set_interval(stack.api_url, "deliver-notifications/deliver-notifications", 10)
        # A message no run or call delivers (as a failed send leaves it): the scheduled drain sends it.
        from truckroll.db import session_scope
        from truckroll.notifications import outbox
        from truckroll.notifications.samples import sample_context

        with session_scope(engine) as s:
            outbox.queue(session=s, dedupe_key="ops-test:left-behind", template="customer_eta_update",
                         recipient="left.behind@example.net", recipient_kind="customer",
                         context=sample_context("customer_eta_update"))
        ids = _post_all(stack.intake_url, stack.secret, payloads)
        assert len(set(ids)) == BURST

        # Kill the worker while it holds runs (leases held by flow runs), as an operator's OOM killer would.
        killed = False
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            with Session(engine) as s:
                held = s.execute(text("SELECT count(*) FROM dispatchlease WHERE holder IS NOT NULL "
                                      "AND holder != 'queued'")).scalar_one()
            if held:
                for pid in stack.worker_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed = True
            time.sleep(0.2)
        assert killed, "no dispatch run ever held a lease"

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with Session(engine) as s:
                done = s.execute(text("SELECT count(*) FROM servicerequest WHERE status IN ('assigned','escalated')"
                                      )).scalar_one()
            if done == BURST:
                break
            time.sleep(2)
        with Session(engine) as s:
            statuses = dict(s.execute(text("SELECT status, count(*) FROM servicerequest GROUP BY status")).all())
            live = dict(s.execute(text("SELECT request_id, count(*) FROM assignment WHERE status != 'cancelled' "
                                       "GROUP BY request_id")).all())
            open_esc = dict(s.execute(text("SELECT request_id, count(*) FROM escalation WHERE resolved_at IS NULL "
                                           "GROUP BY request_id")).all())
            retried = s.execute(text("SELECT count(*) FROM dispatchlease WHERE attempts >= 2")).scalar_one()
            status_of = dict(s.execute(text("SELECT id, status FROM servicerequest")).all())
        assert statuses.get("assigned", 0) + statuses.get("escalated", 0) == BURST, statuses
        for rid in ids:  # exactly once: one live assignment, or one open escalation and no assignment
            if status_of[rid] == "assigned":
                assert live.get(rid) == 1 and rid not in open_esc, rid
            else:
                assert open_esc.get(rid) == 1 and rid not in live, rid
        assert retried >= 1, "the killed worker's runs were never run again"

        # A run the kill interrupted before it claimed its request holds no lease: the sweep ends it once it is
        # older than max(60 s, 3 leases); wait for that rather than read Prefect's runs once.
        deadline = time.monotonic() + 240
        while True:
            runs = _flow_runs(stack.api_url)
            dispatch_runs = [r for r in runs if r["name"].startswith("dispatch request ")]
            hanging = [r for r in dispatch_runs if r["state_type"] in ("RUNNING", "PENDING")]
            if not hanging or time.monotonic() > deadline:
                break
            time.sleep(3)
        crashed = [r for r in dispatch_runs if r["state_type"] == "CRASHED"]
        # The runs the kill interrupted were marked Crashed by the sweep, and each one's request was recovered.
        assert crashed, "no run of the killed worker was marked Crashed"
        for r in crashed:
            rid = int(r["name"].removeprefix("dispatch request "))
            assert status_of[rid] in ("assigned", "escalated")
        assert not hanging, f"a run was left hanging: {hanging}"
        # The scheduler works (SQLAlchemy capped below 2.1): it created runs of the 5-minute requeue sweep.
        sweep_runs = [r for r in runs if r["name"] and r.get("deployment_id") and r["state_type"] == "SCHEDULED"]
        assert sweep_runs, "the scheduler created no run of a scheduled deployment"
        assert "dispatch-worker-1" in stack.log_path.read_text() and "starting it again" in stack.log_path.read_text()
        # Operators are alerted the Prefect way: the automations exist, and a crashed run's alert reached the
        # mail catcher through the notify-operators deployment.
        import httpx

        autos = httpx.post(f"{stack.api_url}/automations/filter", json={}, timeout=30).json()
        assert {"truckroll: a run crashed or failed", "truckroll: a scheduled run is late",
                "truckroll: re-optimisation not applied", "truckroll: escalations are piling up"} <= {
            a["name"] for a in autos}
        from truckroll.notifications.mailsink import read_inbox

        deadline = time.monotonic() + 240
        alerts: list[Any] = []
        while time.monotonic() < deadline and not alerts:
            alerts = [m for m in read_inbox(stack.prefect_home / "mail")
                      if m.subject.startswith("[truckroll]") and "prefect.flow-run.Crashed" in m.subject]
            time.sleep(2)
        assert alerts and alerts[0].to == "operators@example.com", "no operators' alert for the crashed run"
        deadline = time.monotonic() + 300
        drained: list[Any] = []
        while time.monotonic() < deadline and not drained:
            drained = [m for m in read_inbox(stack.prefect_home / "mail") if m.to == "left.behind@example.net"]
            time.sleep(3)
        assert drained, "the deliver-notifications deployment never sent the message left in the outbox"
        # A flow run whose worker is gone lives in a session of its own, outside serve.sh's process tree (as the
        # process worker's runs do): the stack's marker in its environment is how the stop finds it.
        intake = next(pid for pid, cmd in processes_with_env("TRUCKROLL_STACK_ID", stack.id) if "serve --host" in cmd)
        marker = next(v for v in Path(f"/proc/{intake}/environ").read_bytes().split(b"\0")
                      if v.startswith(b"TRUCKROLL_SERVE_ID="))
        # The process worker hears SIGINT (a script's background jobs start with it ignored unless serve.sh gives
        # the default back; then every stop waited 20 s and killed it): SIGINT is not in its ignored signals.
        (worker,) = [pid for pid, cmd in processes_with_env("TRUCKROLL_STACK_ID", stack.id)
                     if "worker start --pool" in cmd]
        ignored = next(line for line in Path(f"/proc/{worker}/status").read_text().splitlines()
                       if line.startswith("SigIgn:"))
        assert not int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)), (worker, ignored)
        serve_id = marker.decode().split("=", 1)[1]
        orphan = subprocess.Popen(["sleep", "600"], env=dict(os.environ, TRUCKROLL_SERVE_ID=serve_id),
                                  start_new_session=True)
    finally:
        left = stack.stop()
        engine.dispose()
    assert left == [], f"processes left behind: {left}"
    assert orphan.wait(5) is not None and "stopping the runs the workers left running" in stack.log_path.read_text()
