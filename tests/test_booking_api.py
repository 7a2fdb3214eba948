"""Booking through the API and truckroll.booking.windows: offers, bookings, 409 with fresh options, bad input, and no
double-booking under concurrent bookings of the same window."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models import Assignment, Confirmation, Escalation, Notification, ServiceRequest
from models.decision_tables import AssignmentDecision
from tests.factories import ORIGIN, add_job_type, add_technician, api_key, at, book_right_after_the_check, north_km
from truckroll.settings import get_settings

TZ = ZoneInfo("America/Chicago")


def _tomorrow() -> date:
    return datetime.now(TZ).date() + timedelta(days=1)


@pytest.fixture
def company(db: str) -> date:  # type: ignore[no-untyped-def]
    """One plumber (Ana) on shift tomorrow 08-17 and a 2-hour job type; the forecast cache starts empty."""
    from truckroll.booking.windows import clear_forecast_cache
    from truckroll.db import session_scope

    clear_forecast_cache()
    day = _tomorrow()
    with session_scope() as s:
        add_job_type(s, "repipe", minutes=120)
        add_technician(s, "Ana", day=day)
    return day


@pytest.fixture
def client(company: date) -> Iterator[TestClient]:
    """The intake service, started and stopped (its background dispatcher hands booked requests to their runs)."""
    from service.app import create_app

    app = create_app(init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": api_key("integration")}) as c:
        yield c


def _booking(day: date, hour: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "repipe", "lat": ORIGIN.lat, "lon": ORIGIN.lon, "estimated_value": 300.0,
        "customer_name": "Dana Reyes", "customer_email": "dana@example.net",
        "window": {"start": at(hour, day=day).isoformat(), "end": at(hour + 2, day=day).isoformat()},
        "time_windows": [{"start": at(0, day=day).isoformat(), "end": at(23, day=day).isoformat()}],
    }
    body.update(over)
    return body


def test_service_app_includes_the_booking_router() -> None:
    """The intake service serves /availability, /bookings and /capacity."""
    from service.app import create_app

    paths = create_app(init_database=False, sweep_interval_seconds=0).openapi()["paths"]
    assert {"/availability", "/bookings", "/capacity"} <= set(paths)


def test_availability_offers_graded_windows_of_the_day(client: TestClient, company: date) -> None:
    """Ana's free day gives graded windows 0..100 with reasons; the 16-18 window cannot fit 2 hours before 17:00."""
    body = _booking(company, 8)
    body = {k: v for k, v in body.items() if k not in ("window", "customer_name", "customer_email")}
    r = client.post("/availability", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    hours = [datetime.fromisoformat(o["start"]).hour for o in data["options"]]
    assert hours == [8, 10, 12, 14]
    assert all(0 <= o["grade"] <= 100 and o["reasons"] for o in data["options"])
    assert len(data["offered"]) == 3
    assert [datetime.fromisoformat(u["start"]).hour for u in data["unavailable"]] == [16]


@pytest.mark.usefixtures("prefect_harness")
def test_booking_a_taken_window_is_a_409_with_fresh_options(client: TestClient, company: date) -> None:
    """The first booking of 08-10 gets it (201); a second one 5 km away no longer fits in 08-10 and gets a 409
    naming the window with the windows that can still be booked; nothing of the refused booking is written."""
    first = client.post("/bookings", json=_booking(company, 8))
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "assigned"
    far = north_km(5)
    second = client.post("/bookings", json=_booking(company, 8, lat=far.lat, lon=far.lon))
    assert second.status_code == 409, second.text
    body = second.json()
    assert "no longer available" in body["detail"]
    assert body["options"] and all(datetime.fromisoformat(o["start"]).hour >= 10 for o in body["options"])
    from truckroll.db import session_scope

    with session_scope() as s:
        assert len(s.exec(select(ServiceRequest)).all()) == 1
        # decided by the one decision and committed by the booking itself, with its record and confirmation
        assert s.exec(select(AssignmentDecision)).one().decided_by == "booking"
        assert s.exec(select(Confirmation)).one().request_id == first.json()["request_id"]


def test_window_taken_between_offer_and_commit_is_a_conflict_and_leaves_nothing(
        company: date, monkeypatch: pytest.MonkeyPatch) -> None:
    """If another booking takes the window after the check but before the commit, the one decision cannot place
    the job in it: WindowTaken with fresh options, and nothing of the refused booking is written (no request, no
    escalation, no message)."""
    from truckroll.booking import windows as booking
    from truckroll.db import session_scope

    book_right_after_the_check(monkeypatch, _booking(company, 8, customer_name="Quick Customer"))
    far = north_km(5)
    with pytest.raises(booking.WindowTaken) as err:
        booking.book(_booking(company, 8, lat=far.lat, lon=far.lon), settings=get_settings())
    assert err.value.options
    with session_scope() as s:
        rows = s.exec(select(ServiceRequest)).all()
        assert [r.customer_name for r in rows] == ["Quick Customer"]
        assert s.exec(select(Escalation)).all() == []
        assert all(n.request_id == rows[0].id for n in s.exec(select(Notification)).all())


def test_bad_input_gets_a_clear_error(client: TestClient, company: date) -> None:
    """Unknown job type, a window in the past and a window off the booking grid: 422 naming the field."""
    r = client.post("/bookings", json=_booking(company, 8, job_type="roof repair"))
    assert r.status_code == 422
    assert any(e["field"] == "job_type" and "unknown job type" in e["message"] for e in r.json()["detail"])
    yesterday = company - timedelta(days=2)
    r = client.post("/bookings", json=_booking(yesterday, 8, time_windows=[]))
    assert r.status_code == 422
    assert any(e["field"] == "window" and "past" in e["message"] for e in r.json()["detail"])
    odd = _booking(company, 8)
    odd["window"] = {"start": at(9, day=company).isoformat(), "end": at(11, day=company).isoformat()}
    r = client.post("/bookings", json=odd)
    assert r.status_code == 422 and "not a bookable window" in r.text
    r = client.post("/availability", json={"job_type": "repipe", "lat": 95, "lon": 0})
    assert r.status_code == 422 and "lat" in r.text


def test_location_outside_every_territory_is_refused(client: TestClient, company: date) -> None:
    """With a territory configured around Dallas, a booking 200 km away is a 422 naming the location, and
    one inside it is offered windows."""
    from truckroll.db import session_scope
    from truckroll.rules.config import load_rules

    box = [[-97.2, 32.5], [-96.4, 32.5], [-96.4, 33.1], [-97.2, 33.1], [-97.2, 32.5]]
    with session_scope() as s:
        load_rules({"territories": [{"name": "Dallas", "timezone": "America/Chicago", "polygon": box}]}, session=s,
                   tz=get_settings().company_timezone)
    far = _booking(company, 8, lat=north_km(200).lat)
    r = client.post("/bookings", json=far)
    assert r.status_code == 422
    assert any(e["field"] == "location" and "outside every territory" in e["message"] for e in r.json()["detail"])
    job_only = {k: v for k, v in _booking(company, 8).items() if k not in ("window", "customer_name", "customer_email")}
    ok = client.post("/availability", json=job_only)
    assert ok.status_code == 200, ok.text


def test_capacity_view_counts_free_technicians(client: TestClient, company: date) -> None:
    """Ana is free in every window she works; an unknown skill is a 422."""
    r = client.get("/capacity", params={"date": company.isoformat()})
    assert r.status_code == 200
    rows = r.json()
    assert [w["window"] for w in rows] == ["08-10", "10-12", "12-14", "14-16", "16-18"]
    assert rows[0]["free_technicians"] == 1 and rows[0]["booked_share"] == 0
    assert client.get("/capacity", params={"date": company.isoformat(), "skill": "roofing"}).status_code == 422


@pytest.mark.usefixtures("prefect_harness")
def test_concurrent_bookings_of_the_last_slot_never_double_book(company: date) -> None:
    """Three customers 5 km apart book Ana's only 08-10 slot at once (threads, SQLite): exactly one gets it, the
    others get WindowTaken, and Ana has a single job starting in 08-10."""
    from truckroll.booking import windows as booking
    from truckroll.db import session_scope

    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3)

    def one(km: float) -> None:
        p = north_km(km)
        barrier.wait()
        try:
            booking.book(_booking(company, 8, lat=p.lat, lon=p.lon, customer_name=f"C{km}"),
                         settings=get_settings())
            out = "booked"
        except booking.WindowTaken:
            out = "taken"
        with lock:
            results.append(out)

    threads = [threading.Thread(target=one, args=(km,)) for km in (0.0, 5.0, 10.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(results) == ["booked", "taken", "taken"]
    with session_scope() as s:
        rows = s.exec(select(Assignment)).all()
        starts = [a.scheduled_start for a in rows if at(8, day=company) <= a.scheduled_start <= at(10, day=company)]
        assert len(starts) == 1
        assert len(s.exec(select(ServiceRequest)).all()) == 1
