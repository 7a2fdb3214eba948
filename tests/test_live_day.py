"""A whole day of a real company, end to end: onboarded from a file with the CLI, requests through the dispatch
flow, status events through the HTTP API (one job finishes early, one runs late, one is cancelled, one cannot be
completed), checked against values computed by hand.

Geometry: Ana's home and six customers due north of it at 10 km steps; travel is set to 60 km/h with no road
detour, so every 10 km is exactly 10 minutes. Arrival windows told to customers are 60 minutes wide on a
30-minute grid. Times below are America/Chicago on Monday 2030-01-07.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models import Assignment, AssignmentStatus, Notification, RequestStatus, ServiceRequest
from models.company_tables import LiveEvent, StopProgress
from tests.factories import api_key as _api_key
from tests.factories import at, wait_until
from truckroll.db import session_scope

DATA = Path(__file__).parent / "data" / "company_day.yaml"
KM = {"C1": 10, "C2": 20, "C3": 30, "C4": 40, "C5": 50, "C6": 30}


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TRUCKROLL_DATABASE_URL=url)
    return subprocess.run([sys.executable, "-m", "cli.__main__", *args], capture_output=True, text=True,
                          env=env, timeout=180)


@pytest.fixture
def day_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_TRAVEL_DETOUR_FACTOR", "1.0")
    monkeypatch.setenv("TRUCKROLL_TRAVEL_SPEED_KMH", "60")
    monkeypatch.setenv("TRUCKROLL_DISPATCH__ARRIVAL_WINDOW_MINUTES", "60")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _payload(ref: str, h1: int, h2: int, value: float = 100.0) -> dict[str, Any]:
    from tests.factories import ORIGIN

    return {"customer_ref": ref, "customer_name": f"customer {ref}", "customer_email": f"{ref.lower()}@example.net",
            "address": f"{ref} North Rd", "lat": round(ORIGIN.lat + KM[ref] / 111.19492664, 6), "lon": ORIGIN.lon,
            "job_type": "leak repair", "estimated_value": value,
            "time_windows": [{"start": at(h1).isoformat(), "end": at(h2).isoformat()}]}


def _row(rid: int) -> Assignment:
    with session_scope() as s:
        a = s.exec(select(Assignment).where(Assignment.request_id == rid,
                                            Assignment.status != AssignmentStatus.CANCELLED)).one()
    return a


def _times(rid: int) -> tuple[str, str, str, str]:
    from tests.factories import TZ

    a = _row(rid)
    return tuple(f"{t.astimezone(TZ):%H:%M}" for t in (a.scheduled_start, a.scheduled_end, a.window_start,
                                                        a.window_end))  # type: ignore[return-value]


def _notes(template: str) -> list[Notification]:
    with session_scope() as s:
        return list(s.exec(select(Notification).where(Notification.template == template)
                           .order_by(Notification.id)).all())


@pytest.mark.usefixtures("prefect_harness", "day_settings")
def test_a_day_from_onboarding_to_metrics(db: str) -> None:
    """Hand-computed: the planned route, each event's re-timed ETAs and re-promised windows, the messages,
    escalated work placed in freed time, a follow-up after a shift exception, and the day's metrics."""
    from cli.core import compute_day_metrics
    from flows.dispatch import dispatch_service_request
    from flows.runs import BackgroundDispatcher, run_in_process
    from service.app import create_app

    # 1. Onboard from the file; the same file again changes nothing.
    first = _cli("company", "import", str(DATA), url=db)
    assert first.returncode == 0, first.stderr
    assert "1 technicians created" in first.stdout and "6 customers created" in first.stdout
    again = _cli("company", "import", str(DATA), url=db)
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stdout + again.stderr

    # 2. Requests. Ana leaves home at 08:00; each customer is 10 minutes further north.
    ids = {}
    for ref, h1, h2 in (("C1", 8, 10), ("C2", 9, 12), ("C3", 10, 13), ("C4", 11, 15), ("C5", 12, 16)):
        out = dispatch_service_request(payload=_payload(ref, h1, h2))
        data = out.result() if hasattr(out, "result") else out
        assert data["status"] == "assigned", data
        ids[ref] = data["request_id"]
    # C6 (30 km, 10:00-12:00) has no room: every position breaks a promise.
    out = dispatch_service_request(payload=_payload("C6", 10, 12))
    data = out.result() if hasattr(out, "result") else out
    assert data["status"] == "escalated"
    ids["C6"] = data["request_id"]
    r1, r2, r3, r4, r5, r6 = (ids[k] for k in ("C1", "C2", "C3", "C4", "C5", "C6"))
    assert _times(r1) == ("08:10", "09:10", "08:00", "09:00")
    assert _times(r2) == ("09:20", "10:20", "09:00", "10:00")
    assert _times(r3) == ("10:30", "11:30", "10:00", "11:00")
    assert _times(r4) == ("11:40", "12:40", "11:00", "12:00")
    assert _times(r5) == ("12:50", "13:50", "12:00", "13:00")

    recorder: list[int] = []
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, _a: recorder.append(rid)),
                     init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": _api_key()}) as client:
        def status(rid: int, event: str, hh: int, mm: int, **extra: Any) -> dict[str, Any]:
            r = client.post(f"/service-requests/{rid}/status", json={"event": event, "at": at(hh, mm).isoformat(),
                                                                     **extra})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        # 3. Early: C1 done at 09:00 instead of 09:10; every later stop 10 minutes earlier.
        out1 = status(r1, "en_route", 8, 0)
        assert out1["route"][0]["start"] == at(8, 10).isoformat()  # ETA computed: 10 km
        status(r1, "arrived", 8, 10)
        status(r1, "completed", 9, 0)
        assert _times(r2)[:2] == ("09:10", "10:10")
        assert _times(r5)[:2] == ("12:40", "13:40")
        # A report out of order is refused and changes nothing.
        bad = client.post(f"/service-requests/{r1}/status", json={"event": "arrived", "at": at(9, 1).isoformat()})
        assert bad.status_code == 409 and "completed" in bad.json()["detail"]

        # 4. Late: C2 runs 45 minutes over; it ends 10:55 and C3, C4, C5 leave their windows by 45 minutes.
        status(r2, "en_route", 9, 0)
        status(r2, "arrived", 9, 10)
        late = status(r2, "late", 9, 40, minutes=45)
        assert sorted(late["repromised"]) == [r3, r4, r5]
        assert _times(r2)[:2] == ("09:10", "10:55")
        assert _times(r3) == ("11:05", "12:05", "10:45", "11:45")
        assert _times(r4) == ("12:15", "13:15", "11:45", "12:45")
        assert _times(r5) == ("13:25", "14:25", "12:45", "13:45")
        moved = _notes("customer_reschedule")
        assert [n.recipient for n in moved] == ["c3@example.net", "c4@example.net", "c5@example.net"]
        assert "10:45-11:45" in moved[0].subject + moved[0].body and "Previously" in moved[0].body

        # 5. Cancellation: C3 cancels at 10:30. The freed time goes to escalated C6 (30 km, 10:00-12:00): after
        # C2 (10:55 at 20 km) it starts 11:05, window 10:30-11:30; C4 then starts 12:15, C5 13:25.
        cancel = client.post(f"/service-requests/{r3}/cancel", json={"at": at(10, 30).isoformat(),
                                                                     "reason": "fixed it myself"})
        assert cancel.status_code == 200, cancel.text
        offered = cancel.json()["offered"]
        assert [o["request_id"] for o in offered] == [r6]
        assert _times(r6) == ("11:05", "12:05", "10:30", "11:30")
        assert _times(r4)[:2] == ("12:15", "13:15") and _times(r5)[:2] == ("13:25", "14:25")
        with session_scope() as s:
            assert s.get(ServiceRequest, r3).status == RequestStatus.CANCELLED  # type: ignore[union-attr]
            assert s.get(ServiceRequest, r6).status == RequestStatus.ASSIGNED  # type: ignore[union-attr]

        status(r6, "en_route", 10, 55)
        status(r6, "arrived", 11, 5)
        status(r6, "completed", 12, 5)

        # 6. Cannot complete: C4 needs a valve; the job stops at 12:45 and a follow-up is created and dispatched.
        status(r4, "en_route", 12, 5)
        status(r4, "arrived", 12, 15)
        cc = status(r4, "cannot_complete", 12, 45, note="needs a valve",
                    follow_up={"parts_needed": {"valve": 1}, "estimated_duration_minutes": 30})
        follow = cc["follow_up_request_id"]
        assert follow and wait_until(lambda: recorder == [follow]), recorder
        assert _times(r5)[:2] == ("12:55", "13:55")
        status(r5, "en_route", 12, 45)
        status(r5, "arrived", 12, 55)
        status(r5, "completed", 13, 50)

    # The follow-up: Tuesday is Ana's training day (a shift exception), so Wednesday 08:40 (40 km).
    outcome = run_in_process(follow)
    assert outcome["status"] == "assigned", outcome
    from tests.factories import TZ

    fa = _row(follow)
    assert fa.scheduled_start.astimezone(TZ).isoformat() == "2030-01-09T08:40:00-06:00"
    with session_scope() as s:
        fr = s.get(ServiceRequest, follow)
        assert fr is not None and fr.parts_needed == {"valve": 1} and f"#{r4}" in fr.notes
        assert s.exec(select(StopProgress).where(StopProgress.request_id == r4)).one().follow_up_request_id == follow
        # 3 + 3 + 1 (cancel) + 3 + 3 + 3 reports; the refused one is not kept.
        assert len(s.exec(select(LiveEvent)).all()) == 16

    # ETAs told: 08:10 (C1), 09:10 (C2), 11:05 (C6), 12:15 (C4), 12:55 (C5).
    etas = [(n.recipient, n.subject.rsplit(" ", 1)[-1]) for n in _notes("customer_eta_update")]
    assert etas == [("c1@example.net", "08:10"), ("c2@example.net", "09:10"), ("c6@example.net", "11:05"),
                    ("c4@example.net", "12:15"), ("c5@example.net", "12:55")]

    # 7. The day's metrics from actual times: work 50 + 105 + 60 + 30 + 55 = 300 min, driving 5 legs of 10 min
    # and 50 min home = 100 min, over a 540-minute shift.
    m = compute_day_metrics(at(8).date())
    assert m["jobs"] == 5 and m["technicians"] == 1
    assert m["average_utilisation"] == pytest.approx(400 / 540, abs=1e-4)
    assert m["average_travel_between_jobs_minutes"] == pytest.approx(10.0, abs=1e-3)
    assert m["travel_per_job_minutes"] == pytest.approx(20.0, abs=1e-3)
    assert m["revenue"] == pytest.approx(500.0)
    assert m["escalations"] == 1


@pytest.mark.usefixtures("prefect_harness", "day_settings")
def test_a_technician_who_sets_off_before_the_shift_keeps_the_stop_in_the_route(db: str) -> None:
    """Ana (08:00-17:00) sets off at 07:40 for C1 (10 km: expected 07:50, before her shift starts), arrives at
    07:50 and then reports 180 minutes late. The early stop stays in her route, so the delay reaches C2: C1 ends
    11:50, C2 starts 12:00, outside the window C2 was told, and C2 is re-promised and told. Before, the stop that
    started before the shift fell out of every day and the delay reached nobody."""
    from flows.dispatch import dispatch_service_request
    from tests import factories as f
    from truckroll.live import apply_event
    from truckroll.settings import get_settings

    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana", day=at(8).date(), email="ana@example.com")
    ids = {}
    for ref, h1, h2 in (("C1", 8, 10), ("C2", 9, 12)):
        payload = {k: v for k, v in _payload(ref, h1, h2).items() if k != "customer_ref"}
        out = dispatch_service_request(payload=payload)
        data = out.result() if hasattr(out, "result") else out
        assert data["status"] == "assigned", data
        ids[ref] = data["request_id"]
    c2_told = _times(ids["C2"])[2:]
    settings = get_settings()
    apply_event(ids["C1"], "en_route", settings=settings, at=at(7, 40))
    assert _times(ids["C1"])[0] == "07:50"
    apply_event(ids["C1"], "arrived", settings=settings, at=at(7, 50))
    late = apply_event(ids["C1"], "late", settings=settings, at=at(8, 30), minutes=180)
    assert _times(ids["C1"])[:2] == ("07:50", "11:50")
    assert late.repromised == [ids["C2"]] and _times(ids["C2"])[0] == "12:00"
    assert _times(ids["C2"])[2:] != c2_told
    assert [n.recipient for n in _notes("customer_reschedule")] == ["c2@example.net"]
