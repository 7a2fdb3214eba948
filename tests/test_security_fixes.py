"""Issue 12's failures: an escalated booking with a delivery URL configured (foreign key), reschedule messages on
the customer's own channel, and Prefect's temporary API under concurrent first flow runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models import Decision, Escalation, Notification, NotificationAttempt, ServiceRequest, StopChange, TimeWindow
from tests.factories import (
    ORIGIN,
    add_job_type,
    add_technician,
    at,
    book_right_after_the_check,
    north_km,
    request_payload,
)

TZ = ZoneInfo("America/Chicago")
ROOT = Path(__file__).resolve().parents[1]


def _booking(day: date, hour: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "repipe", "lat": ORIGIN.lat, "lon": ORIGIN.lon, "estimated_value": 300.0,
        "customer_name": "Dana Reyes", "customer_email": "dana@example.net",
        "window": {"start": at(hour, day=day).isoformat(), "end": at(hour + 2, day=day).isoformat()},
        "time_windows": [{"start": at(0, day=day).isoformat(), "end": at(23, day=day).isoformat()}],
    }
    return body | over


@pytest.mark.usefixtures("prefect_harness")
def test_escalated_booking_with_a_delivery_url_leaves_nothing(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a dispatch delivery URL configured, a refused booking once left delivery attempts of messages it had
    queued (FOREIGN KEY constraint failed, a 500). Now the booking decides and commits in one transaction: WindowTaken,
    and nothing of the refused booking is written (no request, escalation, message or attempt)."""
    from truckroll.booking import windows as booking
    from truckroll.booking.windows import clear_forecast_cache
    from truckroll.db import session_scope
    from truckroll.settings import get_settings

    # Nothing listens on port 9: the attempt is recorded as failed, as with any unreachable channel.
    monkeypatch.setenv("TRUCKROLL_NOTIFY_DISPATCH_URL", "json://127.0.0.1:9/hook")
    get_settings.cache_clear()
    clear_forecast_cache()
    day = datetime.now(TZ).date() + timedelta(days=1)
    with session_scope() as s:
        add_job_type(s, "repipe", minutes=120)
        add_technician(s, "Ana", day=day)

    book_right_after_the_check(monkeypatch, _booking(day, 8, customer_name="Quick Customer"))
    far = north_km(5)
    try:
        with pytest.raises(booking.WindowTaken):
            booking.book(_booking(day, 8, lat=far.lat, lon=far.lon), settings=get_settings())
    finally:
        get_settings.cache_clear()
    with session_scope() as s:
        rows = s.exec(select(ServiceRequest)).all()
        assert [r.customer_name for r in rows] == ["Quick Customer"]
        assert s.exec(select(Escalation)).all() == []
        kept = {n.id for n in s.exec(select(Notification)).all()}
        assert all(a.notification_id in kept for a in s.exec(select(NotificationAttempt)).all())


def test_reschedule_message_goes_to_a_phone_only_customer_by_sms(db: str) -> None:
    """A customer with a phone and no e-mail whose promised window moves gets the reschedule message as an SMS to
    that phone (it was queued as e-mail and never sent); every customer message uses a channel the customer has."""
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.dispatch import commit
    from truckroll.settings import get_settings

    horizon = get_settings().planning_horizon_days
    with session_scope() as s:
        add_job_type(s, minutes=60)
        tech = add_technician(s, "Ana")
        phone_only, _ = store.create_request(request_payload(customer_email="", customer_phone="+1-469-555-0199"),
                                             session=s, horizon_days=horizon, now=at(0) - timedelta(days=1))
        new, _ = store.create_request(request_payload(customer_email="", customer_phone="+1-469-555-0101"),
                                      session=s, horizon_days=horizon, now=at(0) - timedelta(days=1))
        assert phone_only.id is not None and new.id is not None and tech.id is not None
        moved = StopChange(request_id=phone_only.id, old_start=at(9), new_start=at(11), new_end=at(12),
                           window=TimeWindow(at(8), at(10)), breaks_promise=True)
        result = commit.CommittedAssignment(
            request_id=new.id, assignment_id=1, technician_id=tech.id, technician_name="Ana", start=at(9),
            end=at(10), window_start=at(9), window_end=at(11), moved=[moved])
        job = store.requirements_of(new.id, session=s, tz=get_settings().company_timezone)
        commit.queue_assignment_notifications(
            result, job, new, tech, session=s, tz="America/Chicago",
            decision=Decision(request_id=new.id, chosen=None, candidates=[]), settings=get_settings())
    with session_scope() as s:
        notes = s.exec(select(Notification).where(Notification.recipient_kind == "customer")).all()
    by_template = {n.template: n for n in notes}
    reschedule = by_template["customer_reschedule"]
    assert (reschedule.recipient, reschedule.channel) == ("+1-469-555-0199", "sms")
    arrival = by_template["customer_arrival_window"]
    assert (arrival.recipient, arrival.channel) == ("+1-469-555-0101", "sms")


@pytest.mark.slow
def test_concurrent_first_flow_runs_start_prefects_temporary_api_once(tmp_path: Path, prefect_home: Path) -> None:
    """20 threads start work right after start-up, as 20 concurrent POST /bookings do, in a fresh process with no
    Prefect server configured. Every one goes through ensure_prefect_api (as every in-process flow start does):
    one temporary API is started, and all 20 reach it (before, 19 of 20 failed on a half-started server)."""
    script = textwrap.dedent("""
        import json, threading
        from prefect.client.orchestration import get_client
        from prefect.server.api.server import SubprocessASGIServer
        from flows.runs import ensure_prefect_api

        results = []
        gate = threading.Barrier(20)

        def first_request():
            gate.wait()
            try:
                ensure_prefect_api()
                with get_client(sync_client=True) as client:
                    results.append(client.api_healthcheck() is None)
            except Exception as exc:
                results.append(repr(exc))

        threads = [threading.Thread(target=first_request) for _ in range(20)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(json.dumps({"results": results, "servers": len(SubprocessASGIServer._instances)}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "PREFECT_LOGGING_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["results"] == [True] * 20, report
    assert report["servers"] == 1
    assert out.stderr.count("Starting temporary server") <= 1
