"""Emergency displacement against the database: the displaced assignment is cancelled in the emergency's
transaction, the request is dispatched again, and its customer gets the reschedule message with both windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from engine.config import DispatchSettings
from engine.travel import GreatCircleTravel
from models import Assignment, AssignmentDecision, AssignmentStatus, Escalation, Notification, RequestStatus
from tests.factories import add_job_type, add_technician, at, request_payload
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit, decision
from truckroll.dispatch.displacement import redispatch_displaced
from truckroll.settings import Settings, get_settings

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings(utilisation_target=1.0)
TZ = "America/Chicago"


def _settings() -> Settings:
    """The installation's settings with this test's rules and time zone."""
    return get_settings().model_copy(update={"dispatch": RULES, "company_timezone": TZ})


def _dispatch(payload: dict) -> commit.CommittedAssignment | None:  # type: ignore[type-arg]
    with session_scope() as s:
        row, _ = store.create_request(payload, session=s, horizon_days=get_settings().planning_horizon_days,
                                      now=at(0) - timedelta(days=1))
        assert row.id is not None
        loaded, d = decision.decide_request(row.id, session=s, travel=TRAVEL, rules=RULES,
                                            tz=get_settings().company_timezone)
        if d.chosen is None:
            return None
        return commit.commit_assignment(d, loaded.job, session=s, travel=TRAVEL, settings=_settings())


def _routine_then_emergency() -> tuple[commit.CommittedAssignment, commit.CommittedAssignment]:
    """Ana (08:00-10:00) gets routine #1 (priority 8, 08:00-12:00); then Ben (09:00-17:00) joins, and emergency
    #2 (priority 1, 90 min, arrive by 08:30) is committed on Ana's route."""
    with session_scope() as s:
        add_job_type(s, minutes=60)
        add_job_type(s, "burst pipe", minutes=90)
        add_technician(s, "Ana", shift=(8, 10))
    first = _dispatch(request_payload(priority=8, customer_email="one@example.net",
                                      time_windows=[{"start": at(8).isoformat(), "end": at(12).isoformat()}]))
    assert first is not None
    with session_scope() as s:
        add_technician(s, "Ben", shift=(9, 17))
    emergency = _dispatch(request_payload(priority=1, job_type="burst pipe", customer_email="two@example.net",
                                          time_windows=[{"start": at(8).isoformat(), "end": at(8, 30).isoformat()}]))
    assert emergency is not None
    return first, emergency


def test_emergency_displaces_routine_work_which_is_rescheduled_and_notified(db):
    """Ana (08:00-10:00) has routine #1 (priority 8) at 08:00. Emergency #2 (priority 1, 90 min, arrive by 08:30)
    fits only in #1's place. #1 is cancelled, dispatched again to Ben (from 09:00), and its customer is told the
    old and the new window."""
    first, emergency = _routine_then_emergency()
    assert first.start == at(8)
    assert emergency.technician_name == "Ana" and emergency.start == at(8)
    assert [d["request_id"] for d in emergency.displaced] == [first.request_id]
    with session_scope() as s:
        old = s.get(Assignment, first.assignment_id)
        assert old is not None and old.status == AssignmentStatus.CANCELLED
        record = s.exec(select(AssignmentDecision).where(
            AssignmentDecision.assignment_id == emergency.assignment_id)).one()
        assert record.displaced == [first.request_id] and record.decided_by == "dispatch"
        assert record.score_total is not None and record.candidates == 1  # Ben starts after the window

    before, notes = _message_ids(), []
    outcomes = redispatch_displaced(emergency.displaced, travel=TRAVEL, settings=_settings(), notes=notes)
    assert outcomes[0]["status"] == "assigned" and outcomes[0]["technician_id"] == 2
    # Every message queued here is handed back, for the dispatch flow to deliver with the emergency's.
    assert notes and set(notes) == _message_ids() - before
    with session_scope() as s:
        note = s.exec(select(Notification).where(Notification.template == "customer_reschedule")).one()
    assert note.recipient == "one@example.net" and "Ben" in note.body
    window = tuple(datetime.fromisoformat(outcomes[0][k]) for k in ("window_start", "window_end"))
    old = first.window_start, first.window_end
    # A new window reads "Previously ... Now ..."; the same window with another technician says so.
    assert ("Previously:" in note.body) == (window != old)
    assert ("technician is now Ben" in note.body) == (window == old)


def test_a_displaced_request_nobody_can_take_is_escalated_and_everyone_told(db):
    """Only Ana works (08:00-10:00). The emergency takes #1's place; nobody else can take #1, so it is
    escalated: dispatch gets the alert, #1's customer is told that dispatch will call (with the old window),
    and Ana gets the update of her route (now only the emergency)."""
    with session_scope() as s:
        add_job_type(s, minutes=60)
        add_job_type(s, "burst pipe", minutes=90)
        add_technician(s, "Ana", shift=(8, 10), email="ana@example.net")
    first = _dispatch(request_payload(priority=8, customer_email="one@example.net",
                                      time_windows=[{"start": at(8).isoformat(), "end": at(12).isoformat()}]))
    assert first is not None
    emergency = _dispatch(request_payload(priority=1, job_type="burst pipe", customer_email="two@example.net",
                                          time_windows=[{"start": at(8).isoformat(), "end": at(8, 30).isoformat()}]))
    assert emergency is not None and [d["request_id"] for d in emergency.displaced] == [first.request_id]

    before, notes = _message_ids(), []
    outcomes = redispatch_displaced(emergency.displaced, travel=TRAVEL, settings=_settings(), notes=notes)
    assert [o["status"] for o in outcomes] == ["escalated"]
    assert set(notes) == _message_ids() - before and len(notes) == 3  # customer, alert, Ana's route
    with session_scope() as s:
        esc = s.exec(select(Escalation).where(Escalation.request_id == first.request_id)).one()
        assert outcomes[0]["escalation_id"] == esc.id and esc.reason.startswith("displaced by emergency #")
        assert store.get_request(first.request_id, session=s).status == RequestStatus.ESCALATED
        notes = {n.template: n for n in s.exec(select(Notification)).all()}
    told = notes["customer_dispatch_will_call"]
    assert told.recipient == "one@example.net" and "dispatcher will call you" in told.body
    assert "08:00" in told.body  # the window they had been promised
    assert notes["escalation_alert"].request_id == first.request_id
    route = notes["technician_route_update"]
    assert route.recipient == "ana@example.net"
    assert f"#{emergency.request_id}" in route.body and f"#{first.request_id} " not in route.body


def _message_ids() -> set[int]:
    with session_scope() as s:
        return {n.id for n in s.exec(select(Notification)).all() if n.id is not None}


def test_a_displaced_request_whose_time_is_taken_first_is_decided_again(db, monkeypatch):
    """Another dispatch takes Ben's time between the decision and the commit of displaced #1 (ScheduleConflict,
    nothing written): #1 is decided again and assigned once, and its customer told once. When every attempt
    conflicts, the error reaches the caller (which leaves the request to the requeue) after three attempts."""
    first, emergency = _routine_then_emergency()
    assert emergency.displaced

    real, calls = commit.commit_assignment, []

    def taken(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1 or always:
            raise commit.ScheduleConflict("technician 2 can no longer take it")
        return real(*args, **kwargs)

    always = True
    monkeypatch.setattr(commit, "commit_assignment", taken)
    with pytest.raises(commit.ScheduleConflict):
        redispatch_displaced(emergency.displaced, travel=TRAVEL, settings=_settings())
    assert len(calls) == 3
    always, calls[:] = False, []
    outcomes = redispatch_displaced(emergency.displaced, travel=TRAVEL, settings=_settings())
    assert len(calls) == 2 and [o["status"] for o in outcomes] == ["assigned"]
    with session_scope() as s:
        live = s.exec(select(Assignment).where(Assignment.request_id == first.request_id,
                                               Assignment.status != AssignmentStatus.CANCELLED)).all()
        told = s.exec(select(Notification).where(Notification.template == "customer_reschedule")).all()
    assert [a.technician_id for a in live] == [2] and [n.recipient for n in told] == ["one@example.net"]
