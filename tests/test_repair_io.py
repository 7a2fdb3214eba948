"""Bounded repair against the database: the decision moves a job to another technician inside its promised
window to make room, the commit writes the move and the new assignment in one transaction, and everyone is told
(the moved customer who now comes, the receiving technician their route)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from engine.config import DispatchSettings
from engine.travel import GreatCircleTravel
from models import Assignment, AssignmentDecision, Notification
from tests.factories import add_job_type, add_technician, at, north_km, request_payload
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit, decision
from truckroll.settings import get_settings

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
TZ = "America/Chicago"


def _request(**kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        row, _ = store.create_request(request_payload(**kw), session=s,
                                      horizon_days=get_settings().planning_horizon_days, now=at(0) - timedelta(days=1))
        assert row.id is not None
        return row.id


def _dispatch(rid: int, rules: DispatchSettings) -> commit.CommittedAssignment | None:
    with session_scope() as s:
        loaded, d = decision.decide_request(rid, session=s, travel=TRAVEL, rules=rules,
                                            tz=get_settings().company_timezone)
        if d.chosen is None:
            return None
        return commit.commit_assignment(d, loaded.job, session=s, travel=TRAVEL,
                                        settings=get_settings().model_copy(update={'dispatch': rules,
                                                                                   'company_timezone': TZ}))


def test_a_repair_moves_a_job_to_make_room_and_tells_everyone(db):
    """Ana (08:00-12:00, plumbing and hvac) has a 2-hour leak repair promised 09:00-09:30. Ben (30 km away,
    plumbing only) joins. An ac repair to start 09:00-10:30 fits nobody by insertion; with the repair the leak
    repair moves to Ben in its promised window and Ana takes the ac repair. Without the repair budget it
    escalates."""
    with session_scope() as s:
        add_job_type(s, minutes=120)
        add_job_type(s, "ac repair", minutes=60, skill="hvac")
        add_technician(s, "Ana", shift=(8, 12), skills={"plumbing": 3, "hvac": 3})
    leak = _request(customer_email="leak@example.net",
                    time_windows=[{"start": at(9).isoformat(), "end": at(9, 30).isoformat()}])
    placed = _dispatch(leak, DispatchSettings())
    assert placed is not None and placed.technician_name == "Ana" and placed.start == at(9)
    with session_scope() as s:
        add_technician(s, "Ben", home=north_km(30), shift=(8, 17), skills={"plumbing": 3})
    ac = _request(job_type="ac repair", customer_email="ac@example.net",
                  time_windows=[{"start": at(9).isoformat(), "end": at(10, 30).isoformat()}])
    with session_scope() as s:
        _, off = decision.decide_request(ac, session=s, travel=TRAVEL, rules=DispatchSettings(repair_budget_seconds=0),
                                         tz=get_settings().company_timezone)
    assert off.chosen is None and off.escalation_reason

    result = _dispatch(ac, DispatchSettings())
    assert result is not None and result.technician_name == "Ana" and result.start == at(9)
    with session_scope() as s:
        moved = s.get(Assignment, placed.assignment_id)
        assert moved is not None and moved.technician_id == 2 and moved.status == "confirmed"
        assert (moved.window_start, moved.window_end) == (placed.window_start, placed.window_end)
        assert at(9) <= moved.scheduled_start <= at(9, 30) and moved.travel_minutes > 29
        record = s.exec(select(AssignmentDecision).where(
            AssignmentDecision.assignment_id == result.assignment_id)).one()
        assert record.moved_request_ids == f"{leak}:1>2"
        notes = s.exec(select(Notification)).all()
    told = [n for n in notes if n.template == "customer_reschedule"]
    assert [n.recipient for n in told] == ["leak@example.net"] and "Ben" in told[0].body
    route = [n for n in notes if n.template == "technician_route_update"]
    assert [n.recipient for n in route] == ["ben@example.com"] and f"#{leak}" in route[0].body
    # The flow delivers the assignment's messages by these ids: the repair's go out with them.
    assert {told[0].id, route[0].id} <= set(result.notification_ids)


def test_two_moves_are_committed_one_after_the_other_on_fresh_routes(db):
    """Ana (08:00-12:00) has two 60-minute leak repairs, promised 09:00-09:30 and 09:00-10:30; a 2-hour ac repair
    from 09:00-09:30 needs both gone. Ben (30 km) takes both, the second after the first, each inside its
    promised window; Ana takes the ac repair; both customers are told Ben comes."""
    with session_scope() as s:
        add_job_type(s, minutes=60)
        add_job_type(s, "ac repair", minutes=120, skill="hvac")
        add_technician(s, "Ana", shift=(8, 12), skills={"plumbing": 3, "hvac": 3})
    rules = DispatchSettings(arrival_window_minutes=30)
    first = _request(customer_email="one@example.net",
                     time_windows=[{"start": at(9).isoformat(), "end": at(9, 30).isoformat()}])
    second = _request(customer_email="two@example.net",
                      time_windows=[{"start": at(10).isoformat(), "end": at(10, 30).isoformat()}])
    a, b = _dispatch(first, rules), _dispatch(second, rules)
    assert a is not None and b is not None and (a.start, b.start) == (at(9), at(10))
    with session_scope() as s:
        add_technician(s, "Ben", home=north_km(30), shift=(8, 17), skills={"plumbing": 3})
    ac = _request(job_type="ac repair", time_windows=[{"start": at(9).isoformat(), "end": at(9, 30).isoformat()}])
    result = _dispatch(ac, rules)
    assert result is not None and result.technician_name == "Ana" and result.start == at(9)
    with session_scope() as s:
        rows = {r.request_id: r for r in s.exec(select(Assignment).where(Assignment.technician_id == 2)).all()}
        record = s.exec(select(AssignmentDecision).where(
            AssignmentDecision.assignment_id == result.assignment_id)).one()
        told = sorted(n.recipient for n in s.exec(select(Notification).where(
            Notification.template == "customer_reschedule")).all())
    assert set(rows) == {first, second}
    assert rows[first].scheduled_end <= rows[second].scheduled_start
    for rid, done in ((first, a), (second, b)):
        assert (rows[rid].window_start, rows[rid].window_end) == (done.window_start, done.window_end)
        assert done.window_start <= rows[rid].scheduled_start <= done.window_end
    assert record.moved_request_ids == f"{first}:1>2,{second}:1>2"
    assert told == ["one@example.net", "two@example.net"]
