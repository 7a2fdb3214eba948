"""Escalations: the open list, a dispatcher's manual assignment through the automatic steps, schedules."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models import Assignment, Confirmation, Escalation, Notification, RequestStatus
from tests import factories as f
from truckroll import store
from truckroll.db import session_scope
from truckroll.settings import get_settings


@pytest.fixture
def escalated(client: TestClient) -> dict[str, int]:
    """Request for 08:00-12:00 that the flow escalated (as escalate_to_manual_review leaves it)."""
    with session_scope() as s:
        row, _ = store.create_request(f.request_payload(), session=s, horizon_days=get_settings().planning_horizon_days)
        assert row.id is not None
        esc = store.open_escalation(row.id, "no qualified technician below the 85% utilisation target", {}, session=s)
        assert esc.id is not None
        return {"request_id": row.id, "escalation_id": esc.id}


def test_open_escalations_are_listed(client: TestClient, escalated: dict[str, int]) -> None:
    """GET /escalations lists the open escalation with its request's customer and windows."""
    rows = client.get("/escalations").json()
    assert [r["escalation_id"] for r in rows] == [escalated["escalation_id"]]
    assert rows[0]["customer_name"] == "Dana Reyes" and len(rows[0]["time_windows"]) == 1
    assert client.get("/escalations", params={"state": "resolved"}).json() == []


def test_resolve_assigns_through_the_automatic_steps(client: TestClient, company: dict[str, int],
                                                     escalated: dict[str, int]) -> None:
    """Resolving writes the assignment, the confirmation and the customer/technician/dispatch notifications,
    closes the escalation, and the request's status shows the technician and arrival window."""
    r = client.post(f"/escalations/{escalated['escalation_id']}/resolve",
                    json={"technician_id": company["ben"], "resolved_by": "maria", "note": "customer called"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["technician_id"] == company["ben"] and out["request_id"] == escalated["request_id"]
    rid = escalated["request_id"]
    with session_scope() as s:
        assert len(s.exec(select(Assignment).where(Assignment.request_id == rid)).all()) == 1
        assert s.exec(select(Confirmation).where(Confirmation.request_id == rid)).one().technician_id == company["ben"]
        kinds = sorted(n.recipient_kind for n in s.exec(select(Notification).where(Notification.request_id == rid)))
        assert kinds == ["customer", "dispatch", "technician"]
        esc = s.get(Escalation, escalated["escalation_id"])
        assert esc is not None and esc.resolved_by == "maria" and esc.resolved_at is not None
        assert "customer called" in (esc.resolution or "")
    status = client.get(f"/service-requests/{rid}").json()
    assert status["status"] == RequestStatus.ASSIGNED
    assert status["assignment"]["technician_id"] == company["ben"]
    start = datetime.fromisoformat(status["assignment"]["scheduled_start"])
    win = status["arrival_window"]
    assert datetime.fromisoformat(win["start"]) <= start <= datetime.fromisoformat(win["end"])
    assert client.get("/escalations").json() == []
    sched = client.get(f"/technicians/{company['ben']}/schedule", params={"date": f.DAY.isoformat()}).json()
    assert [s["request_id"] for s in sched["shifts"][0]["stops"]] == [rid]


def test_resolve_honours_a_feasible_start(client: TestClient, company: dict[str, int],
                                          escalated: dict[str, int]) -> None:
    """A start the dispatcher agreed with the customer (14:00, outside the asked window) is the planned start."""
    start = f.at(14)
    r = client.post(f"/escalations/{escalated['escalation_id']}/resolve",
                    json={"technician_id": company["ana"], "resolved_by": "maria", "start": start.isoformat()})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["scheduled_start"]) == start
    win = r.json()["arrival_window"]
    assert datetime.fromisoformat(win["start"]) <= start < datetime.fromisoformat(win["end"])


def test_infeasible_start_is_409_with_reasons_and_writes_nothing(client: TestClient, company: dict[str, int],
                                                                 escalated: dict[str, int]) -> None:
    """A start after the technician's shift is refused with a reason; the escalation stays open."""
    r = client.post(f"/escalations/{escalated['escalation_id']}/resolve",
                    json={"technician_id": company["ana"], "resolved_by": "maria", "start": f.at(18).isoformat()})
    assert r.status_code == 409
    assert r.json()["detail"]["reasons"]
    with session_scope() as s:
        assert s.exec(select(Assignment)).all() == []
        esc = s.get(Escalation, escalated["escalation_id"])
        assert esc is not None and esc.resolved_at is None
    assert len(client.get("/escalations").json()) == 1


def test_unqualified_technician_is_409_naming_the_skill(client: TestClient, escalated: dict[str, int]) -> None:
    """A technician without the plumbing skill cannot be assigned; the reason names the skill."""
    with session_scope() as s:
        sparky = f.add_technician(s, "Sparky", skills={"electrical": 4})
        assert sparky.id is not None
        tid = sparky.id
    r = client.post(f"/escalations/{escalated['escalation_id']}/resolve",
                    json={"technician_id": tid, "resolved_by": "maria"})
    assert r.status_code == 409
    assert "plumbing" in " ".join(r.json()["detail"]["reasons"])


def test_resolving_twice_is_409_and_assigns_once(client: TestClient, company: dict[str, int],
                                                 escalated: dict[str, int]) -> None:
    """A second resolve (another dispatcher, another technician) is refused; one assignment exists."""
    url = f"/escalations/{escalated['escalation_id']}/resolve"
    assert client.post(url, json={"technician_id": company["ana"], "resolved_by": "maria"}).status_code == 200
    r = client.post(url, json={"technician_id": company["ben"], "resolved_by": "li"})
    assert r.status_code == 409
    with session_scope() as s:
        assert len(s.exec(select(Assignment)).all()) == 1


def test_resolve_input_is_validated(client: TestClient, company: dict[str, int], escalated: dict[str, int]) -> None:
    """Unknown escalation or technician: 404; a naive start, an id out of range or a blank resolved_by: 422."""
    ok = {"technician_id": company["ana"], "resolved_by": "maria"}
    assert client.post("/escalations/999/resolve", json=ok).status_code == 404
    url = f"/escalations/{escalated['escalation_id']}/resolve"
    assert client.post(url, json=ok | {"technician_id": 999}).status_code == 404
    assert client.post(url, json=ok | {"start": "2030-01-07T10:00:00"}).status_code == 422
    assert client.post(url, json=ok | {"resolved_by": ""}).status_code == 422
    assert client.post(url, json=ok | {"technician_id": 2**31}).status_code == 422
    assert client.post(url, json=ok | {"start": "0001-01-01T00:00:00+01:00"}).status_code == 422


def test_schedule_of_unknown_technician_or_bad_date(client: TestClient, company: dict[str, int]) -> None:
    """Unknown technician: 404; a date that is not YYYY-MM-DD: 422; a day without work: an empty shift."""
    assert client.get("/technicians/999/schedule", params={"date": "2030-01-07"}).status_code == 404
    assert client.get(f"/technicians/{company['ana']}/schedule", params={"date": "07/01/2030"}).status_code == 422
    sched = client.get(f"/technicians/{company['ana']}/schedule", params={"date": "2030-01-07"}).json()
    assert len(sched["shifts"]) == 1 and sched["shifts"][0]["stops"] == []


BOX_ALL = [[-97.0, 32.0], [-96.0, 32.0], [-96.0, 33.5], [-97.0, 33.5], [-97.0, 32.0]]
BOX_FAR = [[-90.0, 40.0], [-89.0, 40.0], [-89.0, 41.0], [-90.0, 41.0], [-90.0, 40.0]]


def test_a_dispatcher_overrides_the_territory_with_a_reason_that_is_recorded(
        client: TestClient, company: dict[str, int], escalated: dict[str, int]) -> None:
    """Ben's only territory is far away, under hard boundaries: resolving to him is 409 naming the territory and
    offering it as overridable; overriding without a reason is 422; with one, he gets the job and the override
    and its reason are on the decision's record and in the escalation's resolution."""
    from models import AssignmentDecision
    from truckroll.rules.config import load_rules

    with session_scope() as s:
        load_rules({"territories": [{"name": "Dallas", "timezone": "America/Chicago", "polygon": BOX_ALL},
                                    {"name": "Far", "timezone": "America/Chicago", "polygon": BOX_FAR}],
                    "memberships": [{"technician": "Ana", "territory": "Dallas"},
                                    {"technician": "Ben", "territory": "Far"}],
                    "policies": {"scheduling": [{"boundaries": "hard"}]}},
                   session=s, tz=get_settings().company_timezone)
    url = f"/escalations/{escalated['escalation_id']}/resolve"
    ben = {"technician_id": company["ben"], "resolved_by": "maria"}
    r = client.post(url, json=ben)
    assert r.status_code == 409
    assert r.json()["detail"]["reasons"][0].startswith("outside territory: Dallas is not one of theirs")
    assert r.json()["detail"]["overridable"] == ["territory"]
    assert client.post(url, json=ben | {"overrides": ["territory"]}).status_code == 422
    assert client.post(url, json=ben | {"overrides": ["weather"], "override_reason": "x"}).status_code == 422
    r = client.post(url, json=ben | {"overrides": ["territory"], "override_reason": "priority-1 leak, Ana is sick"})
    assert r.status_code == 200, r.text
    with session_scope() as s:
        record = s.exec(select(AssignmentDecision)).one()
        esc = s.get(Escalation, escalated["escalation_id"])
    assert record.overrides == "territory,utilisation" and record.override_reason == "priority-1 leak, Ana is sick"
    assert record.decided_by == "maria" and record.request_id == escalated["request_id"]
    assert esc is not None and "overrode territory: priority-1 leak, Ana is sick" in (esc.resolution or "")


def test_an_expired_certification_stays_hard_unless_the_setting_allows_it(
        client: TestClient, escalated: dict[str, int]) -> None:
    """Overriding an expired certification is refused (422) while dispatch.allow_expired_certification_override
    is off; the escalation stays open."""
    with session_scope() as s:
        gus = f.add_technician(s, "Gus")
        assert gus.id is not None
        tid = gus.id
    r = client.post(f"/escalations/{escalated['escalation_id']}/resolve",
                    json={"technician_id": tid, "resolved_by": "maria", "overrides": ["expired_certification"],
                          "override_reason": "renewal is in the post"})
    assert r.status_code == 422 and "stays a hard rule" in r.text
    assert len(client.get("/escalations").json()) == 1
