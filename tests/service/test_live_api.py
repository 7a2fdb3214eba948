"""The live day's HTTP routes on a small route (no Prefect): a customer not home is escalated and its time
offered, a reschedule goes back to dispatch, and wrong reports are clear 4xx answers that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models import Assignment, AssignmentStatus, Escalation, Notification, RequestStatus, ServiceRequest
from tests import factories as f
from tests.factories import api_key as _api_key
from truckroll.db import session_scope
from truckroll.settings import get_settings


def _dispatch(payload: dict[str, Any]) -> int:
    """Create and assign a request through the engine and the committing code (as the flow's steps do)."""
    from truckroll import store

    with session_scope() as s:
        row, _ = store.create_request(payload, session=s, horizon_days=get_settings().planning_horizon_days,
                                      now=f.at(6))
        assert row.id is not None
    return _dispatch_existing(row.id)


def _dispatch_existing(request_id: int) -> int:
    """Assign (or escalate) a stored request as the flow's steps do, without Prefect."""
    from engine.dispatch.decision import decide
    from truckroll import store
    from truckroll.dispatch import commit
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    st, travel = get_settings(), get_travel_provider(get_settings())
    with session_scope() as s:
        row = store.get_request(request_id, session=s)
        assert row.id is not None
        job = store.requirements_of(row.id, session=s, tz=get_settings().company_timezone)
        lo, hi = store.job_horizon(job)
        decision = decide(job, store.technician_days(session=s, start=lo, end=hi, tz=get_settings().company_timezone,
                                                     live=get_travel_provider(get_settings())), travel, st.dispatch)
        if decision.chosen is None:
            store.open_escalation(row.id, decision.escalation_reason or "", {}, session=s)
        else:
            commit.commit_assignment(decision, job, session=s, travel=travel,
                                     settings=st)
        return row.id


@pytest.fixture
def live(db: str) -> Iterator[tuple[TestClient, list[int]]]:
    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana")
    handed: list[int] = []
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: handed.append(rid)),
                     init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": _api_key()}) as c:
        yield c, handed


def test_not_home_escalates_and_reschedule_goes_back_to_dispatch(live: tuple[TestClient, list[int]]) -> None:
    client, handed = live
    near = f.request_payload(customer_email="near@example.net")
    far = f.request_payload(customer_email="far@example.net", lat=f.north_km(10).lat,
                            time_windows=[{"start": f.at(9).isoformat(), "end": f.at(17).isoformat()}])
    r1, r2 = _dispatch(near), _dispatch(far)
    # Ana arrives, nobody opens: the stop leaves her route and a dispatcher is told.
    assert client.post(f"/service-requests/{r1}/status", json={"event": "arrived", "at": f.at(8).isoformat()}) \
        .status_code == 200
    out = client.post(f"/service-requests/{r1}/status", json={"event": "not_home", "at": f.at(8, 15).isoformat(),
                                                             "note": "no answer at the door"})
    assert out.status_code == 200, out.text
    assert [s["request_id"] for s in out.json()["route"]] == [r2]
    with session_scope() as s:
        assert s.get(ServiceRequest, r1).status == RequestStatus.ESCALATED  # type: ignore[union-attr]
        esc = s.exec(select(Escalation).where(Escalation.request_id == r1)).one()
        assert "customer not home" in esc.reason and "no answer" in esc.reason
        assert s.exec(select(Notification).where(Notification.template == "escalation_alert")).one()
    # The second customer moves to the afternoon: off the route, handed to dispatch with the new windows.
    new = [{"start": f.at(14).isoformat(), "end": f.at(16).isoformat()}]
    out = client.post(f"/service-requests/{r2}/reschedule", json={"time_windows": new, "by": "portal"})
    assert out.status_code == 200, out.text
    assert f.wait_until(lambda: handed == [r2]), handed
    assert out.json()["route"] == []
    with session_scope() as s:
        req = s.get(ServiceRequest, r2)
        assert req is not None and req.status == RequestStatus.RECEIVED
        assert req.time_windows == [[f.at(14).isoformat(), f.at(16).isoformat()]]
        assert s.exec(select(Assignment).where(Assignment.request_id == r2)).one().status == \
            AssignmentStatus.CANCELLED


def test_wrong_reports_are_refused(live: tuple[TestClient, list[int]]) -> None:
    client, _ = live
    rid = _dispatch(f.request_payload())
    assert client.post("/service-requests/999/status", json={"event": "arrived"}).status_code == 404
    r = client.post(f"/service-requests/{rid}/status", json={"event": "completed", "at": f.at(9).isoformat()})
    assert r.status_code == 409 and "allowed after arrived" in r.json()["detail"]
    r = client.post(f"/service-requests/{rid}/status", json={"event": "late", "at": f.at(9).isoformat()})
    assert r.status_code == 409 and "minutes" in r.json()["detail"]
    r = client.post(f"/service-requests/{rid}/status", json={"event": "teleported"})
    assert r.status_code == 422
    r = client.post(f"/service-requests/{rid}/status", json={"event": "arrived", "at": "2030-01-07T09:00:00"})
    assert r.status_code == 409 and "timezone offset" in r.json()["detail"]
    r = client.post(f"/service-requests/{rid}/reschedule", json={"time_windows": []})
    assert r.status_code == 422
    with session_scope() as s:
        assert s.exec(select(Assignment)).one().status == AssignmentStatus.CONFIRMED
    live_now = client.get("/technicians/1/live", params={"date": f.DAY.isoformat()})
    assert live_now.status_code == 200 and live_now.json()[0]["state"] == "not started"
