"""The reoptimize-day flow under Prefect's test harness, on a real SQLite database (2030-01-07, Chicago)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from flows.reoptimize import reoptimize_day
from models import Assignment, AssignmentStatus, Escalation, Location, Notification, RequestStatus, ServiceRequest
from tests.factories import DAY, add_job_type, add_technician, at, north_km, request_payload
from truckroll import store
from truckroll.db import session_scope
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

pytestmark = pytest.mark.usefixtures("prefect_harness")
D = DAY.isoformat()


def _request(s, name: str, loc: Location, windows: list[tuple[datetime, datetime]], **kw) -> int:  # type: ignore
    payload = request_payload(customer_name=name, customer_email=f"{name.lower()}@example.net", lat=loc.lat,
                              lon=loc.lon, time_windows=[{"start": a.isoformat(), "end": b.isoformat()}
                                                         for a, b in windows], **kw)
    row, _ = store.create_request(payload, session=s, horizon_days=get_settings().planning_horizon_days, now=at(0))
    assert row.id is not None
    return row.id


def _assign(s, rid: int, tech_id: int, start: datetime, minutes: int, window: tuple[datetime, datetime],  # type: ignore
            origin: Location, status: str = AssignmentStatus.CONFIRMED) -> int:
    req = store.get_request(rid, session=s)
    travel = get_travel_provider(get_settings()).minutes(origin, Location(req.lat, req.lon))
    a = Assignment(request_id=rid, technician_id=tech_id, scheduled_start=start,
                   scheduled_end=start + timedelta(minutes=minutes), window_start=window[0], window_end=window[1],
                   travel_minutes=travel, status=status)
    s.add(a)
    req.status = RequestStatus.ASSIGNED
    s.add(req)
    s.flush()
    assert a.id is not None
    return a.id


def _swapped_company(locked: bool = False) -> dict[str, int]:
    """Ana lives at the origin, Ben 30 km north; each does the other's two jobs (a deliberately bad plan)."""
    with session_scope() as s:
        add_job_type(s, "leak repair", minutes=60)
        ana = add_technician(s, "Ana", home=north_km(0))
        ben = add_technician(s, "Ben", home=north_km(30))
        assert ana.id and ben.id
        all_day = [(at(8), at(17))]
        ids = {"ana": ana.id, "ben": ben.id}
        for name, km in (("South1", 1), ("South2", 2), ("North1", 31), ("North2", 32)):
            ids[name] = _request(s, name, north_km(km), all_day)
        if locked:  # late in the day, after North2
            _assign(s, ids["North1"], ana.id, at(14), 60, (at(13), at(15)), north_km(32), AssignmentStatus.LOCKED)
            _assign(s, ids["North2"], ana.id, at(11), 60, (at(10), at(12)), north_km(0))
        else:
            _assign(s, ids["North1"], ana.id, at(9), 60, (at(8), at(10)), north_km(0))
            _assign(s, ids["North2"], ana.id, at(11), 60, (at(10), at(12)), north_km(31))
        _assign(s, ids["South1"], ben.id, at(9), 60, (at(8), at(10)), north_km(30))
        _assign(s, ids["South2"], ben.id, at(11), 60, (at(10), at(12)), north_km(1))
    return ids


def _windows_sent(ids: dict[str, int]) -> None:
    """The swapped company's four customers were sent their arrival windows (the notices went out)."""
    with session_scope() as s:
        for name in ("South1", "South2", "North1", "North2"):
            s.add(Notification(request_id=ids[name], dedupe_key=f"sent:{name}", recipient="x@example.net",
                               recipient_kind="customer", template="customer_arrival_window", subject="s",
                               body="b", status="sent"))


def _assignments() -> dict[int, Assignment]:
    with session_scope() as s:
        return {a.request_id: a for a in s.exec(select(Assignment)).all()}


def _notes() -> list[Notification]:
    with session_scope() as s:
        return list(s.exec(select(Notification)).all())


def test_bad_plan_is_improved_and_nothing_is_sent_twice(db):
    """Two far-apart technicians each doing the other's neighbourhood: the flow swaps them back, travel goes
    down, promised windows hold (no customer notice), each technician gets one route update; a second run finds
    nothing better and sends nothing."""
    ids = _swapped_company()
    before = _assignments()
    state = reoptimize_day(day=D, time_limit_seconds=10, return_state=True)
    assert state.is_completed() and state.name == "Re-optimised", state.message
    out = state.result()
    assert out["solver_status"] == "optimal"
    assert out["after"]["total travel (min)"] < out["before"]["total travel (min)"] - 100
    after = _assignments()
    assert {after[ids[n]].technician_id for n in ("South1", "South2")} == {ids["ana"]}
    assert {after[ids[n]].technician_id for n in ("North1", "North2")} == {ids["ben"]}
    # No window was sent to these customers yet: a visit whose start leaves its window gets a new one; every
    # customer whose window or technician changed (all four here) gets one reschedule notice.
    moved = {rid for rid, a in after.items()
             if (a.window_start, a.window_end) != (before[rid].window_start, before[rid].window_end)}
    for a in after.values():
        assert a.window_start <= a.scheduled_start <= a.window_end
    notes = _notes()
    assert Counter(n.recipient_kind for n in notes) == {"technician": 2, "customer": 4}
    assert {n.request_id for n in notes if n.template == "customer_reschedule"} == set(after)
    assert {n.request_id for n in notes if "arrival window unchanged" in n.subject} == set(after) - moved
    again = reoptimize_day(day=D, time_limit_seconds=10, return_state=True)
    assert again.name == "Plan kept" and "no better plan" in (again.message or "")
    assert len(_notes()) == len(notes)
    assert _assignments().keys() == after.keys()


def test_plan_that_cannot_be_improved_stays_unchanged(db):
    """One technician, one job next door: nothing better exists, nothing is written, nobody is notified."""
    with session_scope() as s:
        add_job_type(s)
        ana = add_technician(s, "Ana")
        rid = _request(s, "Dana", north_km(1), [(at(8), at(12))])
        assert ana.id
        _assign(s, rid, ana.id, at(8, 2), 60, (at(8), at(10)), north_km(0))
    before = _assignments()
    state = reoptimize_day(day=D, time_limit_seconds=10, return_state=True)
    assert state.name == "Plan kept"
    after = _assignments()
    assert [(a.technician_id, a.scheduled_start, a.window_start) for a in after.values()] == \
        [(a.technician_id, a.scheduled_start, a.window_start) for a in before.values()]
    assert _notes() == []


def test_fixed_work_never_moves(db):
    """North1 is locked on Ana's route at 14:00: it stays exactly there while the movable jobs are re-planned
    around it."""
    ids = _swapped_company(locked=True)
    before = _assignments()[ids["North1"]]
    state = reoptimize_day(day=D, time_limit_seconds=10, return_state=True)
    assert state.name == "Re-optimised", state.message
    a = _assignments()
    locked = a[ids["North1"]]
    assert (locked.technician_id, locked.scheduled_start, locked.scheduled_end, locked.status) == \
        (before.technician_id, before.scheduled_start, before.scheduled_end, AssignmentStatus.LOCKED)
    assert a[ids["South1"]].technician_id == a[ids["South2"]].technician_id == ids["ana"]
    out = state.result()
    assert out["after"]["total travel (min)"] < out["before"]["total travel (min)"]


def test_rescued_emergency_reschedules_a_told_customer_exactly_once(db):
    """An escalated 3-hour emergency must start by 08:30; with window changes allowed the flow places it, the
    customer it pushes out of their promised window gets one reschedule notice, the emergency's customer one
    arrival window, the escalation is resolved; running the flow again sends nothing more."""
    with session_scope() as s:
        add_job_type(s)
        ana = add_technician(s, "Ana")
        assert ana.id
        told = _request(s, "Told", north_km(1), [(at(8), at(17))])
        _assign(s, told, ana.id, at(9), 60, (at(9), at(10)), north_km(0))
        urgent = _request(s, "Urgent", north_km(1), [(at(8), at(8, 30))], priority=1, estimated_duration_minutes=180,
                          estimated_value=900.0)
        store.open_escalation(urgent, "no qualified technician has room inside the customer's window", {},
                              session=s)
    for _ in range(2):
        state = reoptimize_day(day=D, time_limit_seconds=10, allow_window_changes=True, return_state=True)
        assert state.is_completed()
    a = _assignments()
    assert a[urgent].scheduled_start <= at(8, 30) and a[told].scheduled_start >= a[urgent].scheduled_end
    assert not (at(9) <= a[told].window_start and a[told].window_end <= at(10))
    customer = Counter((n.request_id, n.template) for n in _notes() if n.recipient_kind == "customer")
    assert customer == {(told, "customer_reschedule"): 1, (urgent, "customer_arrival_window"): 1}
    with session_scope() as s:
        esc = s.exec(select(Escalation)).one()
        req = s.get(ServiceRequest, urgent)
    assert esc.resolved_at is not None and esc.resolved_by == "reoptimize-day"
    assert req is not None and req.status == RequestStatus.ASSIGNED


def test_unplaceable_request_is_escalated(db):
    """An open hvac request with only plumbers on shift: escalated with each technician's reason, once."""
    with session_scope() as s:
        add_job_type(s)
        add_job_type(s, "ac repair", minutes=90, skill="hvac")
        add_technician(s, "Ana")
        rid = _request(s, "Cold", north_km(1), [(at(8), at(17))], job_type="ac repair")
    for _ in range(2):
        reoptimize_day(day=D, time_limit_seconds=10)
    with session_scope() as s:
        esc = s.exec(select(Escalation)).one()
        req = s.get(ServiceRequest, rid)
        alerts = s.exec(select(Notification).where(Notification.recipient_kind == "dispatch")).all()
    assert esc.request_id == rid and "no qualified technician" in esc.reason
    assert any("no hvac skill" in r for d in esc.details.values() for r in d["reasons"])
    assert req is not None and req.status == RequestStatus.ESCALATED and len(alerts) == 1


def test_missing_solver_falls_back_to_greedy_and_says_so(db, monkeypatch):
    """CBC pointed at a path that does not exist: the flow still improves the plan with the greedy assignment
    and says so in its final state."""
    monkeypatch.setenv("TRUCKROLL_CBC_EXECUTABLE", "/nonexistent/cbc")
    get_settings.cache_clear()
    try:
        _swapped_company()
        state = reoptimize_day(day=D, time_limit_seconds=10, return_state=True)
    finally:
        monkeypatch.delenv("TRUCKROLL_CBC_EXECUTABLE")
        get_settings.cache_clear()
    assert state.is_completed() and state.name == "Re-optimised"
    assert "CBC unavailable" in (state.message or "")
    out = state.result()
    assert out["solver_status"] == "greedy_fallback" and "CBC not found" in out["solver_message"]
    assert out["after"]["total travel (min)"] < out["before"]["total travel (min)"]


def test_promised_visits_keep_their_window_and_their_customers_learn_the_new_technician(db):
    """The customers of the swapped plan were sent their windows: the flow still swaps the technicians back
    (a promise is the window), every window holds, each customer is told once who now comes (the same
    window), each technician gets one route update; a second run sends nothing more."""
    ids = _swapped_company()
    _windows_sent(ids)
    before = _assignments()
    state = reoptimize_day(day=D, time_limit_seconds=5, return_state=True)
    assert state.name == "Re-optimised", state.message
    after = _assignments()
    assert {after[ids[n]].technician_id for n in ("South1", "South2")} == {ids["ana"]}
    assert {after[ids[n]].technician_id for n in ("North1", "North2")} == {ids["ben"]}
    for rid, a in after.items():
        assert (a.window_start, a.window_end) == (before[rid].window_start, before[rid].window_end)
        assert a.window_start <= a.scheduled_start <= a.window_end
    reoptimize_day(day=D, time_limit_seconds=5, return_state=True)
    told = [n for n in _notes() if not n.dedupe_key.startswith("sent:")]
    customers = [n for n in told if n.recipient_kind == "customer"]
    assert sorted(n.request_id for n in customers) == sorted(after)
    names = {ids["ana"]: "Ana", ids["ben"]: "Ben"}
    for n in customers:
        assert n.template == "customer_reschedule" and "arrival window unchanged" in n.subject
        assert f"technician is now {names[after[n.request_id].technician_id]}" in n.body
    assert Counter(n.recipient_kind for n in told) == {"customer": 4, "technician": 2}


def test_horizon_over_the_maximum_is_refused_by_name(db):
    state = reoptimize_day(day=D, horizon_days=30, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="horizon of 30 days refused"):
        state.result()


def test_locked_visit_of_a_technician_without_a_shift_is_named_and_kept(db):
    """Cy has no shift on the day but holds a locked visit: the run names it and leaves it where it is."""
    with session_scope() as s:
        add_job_type(s)
        add_technician(s, "Ana")
        cy = add_technician(s, "Cy", shift=None)
        rid = _request(s, "Dana", north_km(1), [(at(8), at(12))])
        assert cy.id
        _assign(s, rid, cy.id, at(9), 60, (at(8), at(10)), north_km(0), AssignmentStatus.LOCKED)
    state = reoptimize_day(day=D, time_limit_seconds=5, return_state=True)
    out = state.result()
    assert any(f"#{rid}" in c and "Cy" in c and "no shift" in c for c in out["conflicts"])
    kept = _assignments()[rid]
    assert (kept.technician_id, kept.scheduled_start, kept.status) == (cy.id, at(9), AssignmentStatus.LOCKED)


def test_a_queued_window_notice_is_a_promise_and_a_failed_one_is_not(db):
    """The window notice sent, or written and waiting for its channel, promises the window (it goes out as
    written); one that failed for good, a technician's job card, or no notice at all promise nothing."""
    from truckroll.reoptimize.day import promised_requests

    with session_scope() as s:
        add_job_type(s)
        ids = {name: _request(s, name, north_km(1), [(at(8), at(17))])
               for name in ("Sent", "Queued", "Failed", "Card", "None")}
        for name, status, template, kind in (
                ("Sent", "sent", "customer_arrival_window", "customer"),
                ("Queued", "pending", "customer_arrival_window", "customer"),
                ("Failed", "failed", "customer_arrival_window", "customer"),
                ("Card", "sent", "technician_job_card", "technician")):
            s.add(Notification(request_id=ids[name], dedupe_key=f"n:{name}", recipient="x@example.net",
                               recipient_kind=kind, template=template, subject="s", body="b", status=status))
        s.flush()
        assert promised_requests(sorted(ids.values()), session=s) == {ids["Sent"], ids["Queued"]}
