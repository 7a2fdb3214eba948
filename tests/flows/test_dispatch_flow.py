"""The seven-step dispatch flow under Prefect's test harness, on a real SQLite database."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from flows.dispatch import dispatch_service_request
from models import (
    Assignment,
    AssignmentDecision,
    Confirmation,
    Escalation,
    Notification,
    RequestStatus,
    ServiceRequest,
)
from models.schemas import RequestValidationError
from tests.factories import add_job_type, add_technician, at, north_km, request_payload
from truckroll.db import session_scope

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _seed_one_plumber() -> int:
    with session_scope() as s:
        add_job_type(s, "leak repair", minutes=60)
        add_job_type(s, "ac repair", minutes=90, skill="hvac")
        tech = add_technician(s, "Ana", home=north_km(5))
        assert tech.id is not None
        return tech.id


def test_a_request_is_assigned_confirmed_and_notified(db):
    """One qualified technician: the request is assigned inside the customer's window, a confirmation is
    written, and the customer, the technician and dispatch each get one message."""
    tech_id = _seed_one_plumber()
    state = dispatch_service_request(payload=request_payload(), return_state=True)
    assert state.is_completed() and state.name == "Completed"
    out = state.result()
    assert out["status"] == "assigned" and out["technician_id"] == tech_id
    with session_scope() as s:
        req = s.exec(select(ServiceRequest)).one()
        a = s.exec(select(Assignment)).one()
        conf = s.exec(select(Confirmation)).one()
        notes = s.exec(select(Notification)).all()
    assert req.status == RequestStatus.ASSIGNED
    assert at(8) <= a.scheduled_start <= at(12)
    assert a.window_start <= a.scheduled_start <= a.window_end
    assert at(8) <= a.window_start and a.window_end <= at(12)
    assert conf.assignment_id == a.id and conf.estimated_completion == a.scheduled_end
    assert sorted(n.recipient_kind for n in notes) == ["customer", "dispatch", "technician"]
    customer = next(n for n in notes if n.recipient_kind == "customer")
    assert customer.recipient == "dana@example.net" and "Ana" in customer.body
    # The decision's record: typed columns, not the assignment's JSON.
    with session_scope() as s:
        record = s.exec(select(AssignmentDecision)).one()
    assert record.assignment_id == a.id and record.request_id == req.id and record.decided_by == "dispatch"
    assert record.score_total is not None and 0 < record.score_total <= 1 and record.candidates == 1
    assert record.travel is not None and record.workload is not None and record.eligible == 1


def test_escalation_ends_in_a_visible_non_failed_state(db):
    """Nobody has the hvac skill: the run ends 'Escalated' (not failed) with an Escalation row naming why."""
    _seed_one_plumber()
    state = dispatch_service_request(payload=request_payload(job_type="ac repair"), return_state=True)
    assert state.is_completed() and not state.is_failed()
    assert state.name == "Escalated"
    assert "no qualified technician" in (state.message or "")
    with session_scope() as s:
        esc = s.exec(select(Escalation)).one()
        req = s.exec(select(ServiceRequest)).one()
        notes = s.exec(select(Notification)).all()
        assignments = s.exec(select(Assignment)).all()
    assert esc.reason == "no qualified technician" and req.status == RequestStatus.ESCALATED
    assert list(esc.details.values())[0]["reasons"] == ["no hvac skill"]
    assert [n.template for n in notes] == ["escalation_alert"] and assignments == []


def test_a_rerun_duplicates_nothing(db):
    """Running the flow again for an assigned request creates no second assignment or message."""
    _seed_one_plumber()
    first = dispatch_service_request(payload=request_payload(), idempotency_key="abc")
    again = dispatch_service_request(request_id=first["request_id"])
    same_key = dispatch_service_request(payload=request_payload(), idempotency_key="abc")
    assert again["already_done"] and same_key["request_id"] == first["request_id"]
    with session_scope() as s:
        assert len(s.exec(select(Assignment)).all()) == 1
        assert len(s.exec(select(Notification)).all()) == 3
        assert len(s.exec(select(ServiceRequest)).all()) == 1


def test_invalid_request_is_refused_and_nothing_is_written(db):
    """Latitude out of range, a window that ends before it starts and an unknown job type are all named."""
    _seed_one_plumber()
    bad = request_payload(lat=123.0, job_type="teleporter repair",
                          time_windows=[{"start": at(12).isoformat(), "end": at(9).isoformat()}])
    with pytest.raises(RequestValidationError) as err:
        dispatch_service_request(payload=bad)
    fields = {e.field for e in err.value.errors}
    assert {"lat", "time_windows.0"} <= fields
    with session_scope() as s:
        assert s.exec(select(ServiceRequest)).all() == []


def test_second_request_goes_around_the_first(db):
    """Two requests for the same morning and one technician: no overlap, travel between them respected."""
    _seed_one_plumber()
    dispatch_service_request(payload=request_payload())
    dispatch_service_request(payload=request_payload(lat=north_km(10).lat, address="200 Elm St"))
    with session_scope() as s:
        a, b = sorted(s.exec(select(Assignment)).all(), key=lambda a: a.scheduled_start)
    assert b.scheduled_start >= a.scheduled_end
    assert (b.scheduled_start - a.scheduled_end).total_seconds() / 60 >= b.travel_minutes - 0.01
    assert b.travel_minutes > 0


def test_time_taken_meanwhile_is_decided_again_and_no_task_run_fails(db, monkeypatch):
    """Requests arriving together: the chosen time is taken by another dispatch before this one writes
    (``commit.ScheduleConflict``). The run decides again and assigns, and no task run ends Failed: under load
    this is expected, and a red task run in the Prefect UI would send an operator looking for a fault."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    from truckroll.dispatch import commit, displacement

    tech_id = _seed_one_plumber()
    real = displacement.commit_and_redispatch
    calls: list[int] = []

    def taken_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise commit.ScheduleConflict(f"technician {tech_id} can no longer take request 1: no room")
        return real(*args, **kwargs)

    monkeypatch.setattr(displacement, "commit_and_redispatch", taken_once)
    state = dispatch_service_request(payload=request_payload(), return_state=True)
    assert state.is_completed() and state.name == "Completed"
    assert state.result()["status"] == "assigned" and state.result()["technician_id"] == tech_id
    assert len(calls) == 2
    # Task run states reach the API as events, a moment after the run: wait for the last step's.
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])), limit=100,
                sort=TaskRunSort.EXPECTED_START_TIME_ASC)
            done = all(r.state is not None and r.state.is_final() for r in runs)
            if (done and any(r.name.startswith("Generate assignment confirmation") for r in runs)
                    or time.monotonic() > deadline):
                break
            time.sleep(0.2)
    commits = [r for r in runs if r.name.startswith("Update schedule and notify")]
    assert len(commits) == 2
    assert all(r.state is not None and r.state.is_completed() for r in runs), [(r.name, r.state) for r in runs]
    with session_scope() as s:
        assert len(s.exec(select(Assignment)).all()) == 1
