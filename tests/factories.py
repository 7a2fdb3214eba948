"""Small factories for hand-checkable scenarios. Times are on 2030-01-07 (a Monday) in America/Chicago."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models import JobRequirements, JobType, Location, Shift, Stop, Technician, TechnicianDay, TimeWindow

TZ = ZoneInfo("America/Chicago")
DAY = date(2030, 1, 7)
# One degree of latitude is 111.2 km; at 40 km/h and detour 1.0 that is ~166.8 minutes.
ORIGIN = Location(32.80, -96.80)


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ)


def north_km(km: float, origin: Location = ORIGIN) -> Location:
    """A point ``km`` kilometres due north of ``origin`` (great-circle)."""
    return Location(origin.lat + km / 111.19492664, origin.lon)


def window(h1: int, h2: int, m1: int = 0, m2: int = 0) -> TimeWindow:
    return TimeWindow(at(h1, m1), at(h2, m2))


def tech_day(tid: int = 1, *, home: Location = ORIGIN, start: int = 8, end: int = 17,
             skills: dict[str, int] | None = None, certs: dict[str, date] | None = None,
             stops: list[Stop] | None = None, multiplier: float = 1.0,
             inventory: dict[str, int] | None = None, max_priority: int | None = None) -> TechnicianDay:
    return TechnicianDay(technician_id=tid, name=f"Tech {tid}", home=home, shift_start=at(start), shift_end=at(end),
                         skills={"plumbing": 3} if skills is None else skills, certifications=certs or {},
                         upsell_multiplier=multiplier, van_inventory=inventory or {}, stops=stops or [],
                         max_priority=max_priority)


def job(rid: int = 100, *, location: Location = ORIGIN, minutes: float = 60, windows: list[TimeWindow] | None = None,
        skills: dict[str, int] | None = None, certs: list[str] | None = None, parts: dict[str, int] | None = None,
        priority: int = 5, value: float = 100.0, preferred: set[int] | None = None,
        excluded: set[int] | None = None) -> JobRequirements:
    return JobRequirements(request_id=rid, location=location, duration_minutes=minutes,
                           required_skills={"plumbing": 2} if skills is None else skills,
                           required_certifications=certs or [], parts_needed=parts or {},
                           windows=windows or [window(8, 17)], priority=priority, estimated_value=value,
                           preferred_technician_ids=frozenset(preferred or ()),
                           excluded_technician_ids=frozenset(excluded or ()))


def stop(rid: int, start: datetime, minutes: float, *, location: Location = ORIGIN, win: TimeWindow | None = None,
         travel: float = 0.0, fixed: bool = False) -> Stop:
    return Stop(request_id=rid, location=location, start=start, end=start + timedelta(minutes=minutes),
                window=win or TimeWindow(start - timedelta(hours=1), start + timedelta(hours=1)),
                travel_minutes=travel, fixed=fixed)


# ------------------------------------------------------------------ database rows

def add_job_type(session: Session, name: str = "leak repair", *, minutes: int = 60, skill: str = "plumbing",
                 certs: list[str] | None = None, parts: dict[str, int] | None = None) -> JobType:
    jt = JobType(name=name, trade=skill, default_duration_minutes=minutes,
                 skill_levels_by_complexity={"low": {skill: 1}, "medium": {skill: 2}, "high": {skill: 3}},
                 required_certifications=certs or [], typical_parts=parts or {}, typical_value=200)
    session.add(jt)
    session.flush()
    return jt


def add_technician(session: Session, name: str = "Ana", *, home: Location = ORIGIN,
                   skills: dict[str, int] | None = None, certs: dict[str, str] | None = None,
                   shift: tuple[int, int] | None = (8, 17), day: date = DAY,
                   multiplier: float = 1.0, email: str = "") -> Technician:
    t = Technician(name=name, home_lat=home.lat, home_lon=home.lon, skills=skills or {"plumbing": 3},
                   certifications=certs or {}, upsell_multiplier=multiplier,
                   email=email or f"{name.lower()}@example.com")
    session.add(t)
    session.flush()
    if shift is not None:
        session.add(Shift(technician_id=t.id, start=at(shift[0], day=day), end=at(shift[1], day=day)))
        session.flush()
    return t


def request_payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer_name": "Dana Reyes", "customer_email": "dana@example.net", "customer_phone": "+1-469-555-0100",
        "address": "100 Main St, Dallas, TX", "lat": ORIGIN.lat, "lon": ORIGIN.lon, "job_type": "leak repair",
        "complexity": "medium", "priority": 5, "estimated_value": 250.0,
        "time_windows": [{"start": at(8).isoformat(), "end": at(12).isoformat()}],
    }
    base.update(overrides)
    return base


def api_key(role: str = "admin", name: str | None = None, technician_id: int | None = None,
            password: str | None = None) -> str:
    """A new user of ``role`` in the configured database and an API key for them (X-API-Key)."""
    from models.security_tables import CredentialKind
    from truckroll import auth
    from truckroll.db import session_scope

    with session_scope() as s:
        user = auth.create_user(name or f"{role}-{uuid.uuid4().hex[:6]}", role, session=s,
                                technician_id=technician_id, password=password)
        key, _ = auth.issue(user, CredentialKind.API_KEY, session=s)
    return key


def wait_until(condition: Callable[[], object], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass: for what a background thread (the
    dispatcher's hand-over) does after the HTTP answer, which a loaded machine may schedule late."""
    import time as _time

    deadline = _time.monotonic() + timeout
    while not condition():
        if _time.monotonic() > deadline:
            return False
        _time.sleep(0.05)
    return True


def book_right_after_the_check(monkeypatch: Any, competitor: dict[str, Any]) -> None:
    """Make the next booking lose its window between its availability check and its commit: right after that
    check, ``competitor`` books (through the same ``book``), as a faster customer would."""
    from truckroll.booking import windows as booking
    from truckroll.settings import get_settings

    real = booking.compute_availability
    fired: list[bool] = []

    def check_then_lose(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            booking.book(competitor, settings=get_settings())
        return answer

    monkeypatch.setattr(booking, "compute_availability", check_then_lose)
