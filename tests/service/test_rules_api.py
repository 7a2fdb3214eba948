"""Rules through the API: territories and memberships loaded and listed, bad configuration refused with every
error and nothing changed (422), and 'why not technician X for this request'."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests import factories as f
from truckroll.settings import get_settings

BOX_ALL = [[-97.0, 32.0], [-96.0, 32.0], [-96.0, 33.5], [-97.0, 33.5], [-97.0, 32.0]]
BOX_FAR = [[-90.0, 40.0], [-89.0, 40.0], [-89.0, 41.0], [-90.0, 41.0], [-90.0, 40.0]]


def test_load_and_list_territories_and_memberships(client: TestClient) -> None:
    """A territory and Ana's primary membership are written and listed back."""
    r = client.post("/territories", json={"name": "Dallas", "timezone": "America/Chicago", "polygon": BOX_ALL})
    assert r.status_code == 201, r.text
    r = client.post("/memberships", json={"technician": "Ana", "territory": "Dallas", "from": "2029-01-01"})
    assert r.status_code == 201 and r.json() == {"loaded": {"memberships": 1}}
    assert [t["name"] for t in client.get("/territories").json()] == ["Dallas"]
    assert client.get("/memberships").json()[0]["kind"] == "primary"


def test_bad_configuration_is_refused_with_every_error_and_nothing_changes(client: TestClient) -> None:
    """An open polygon and an unknown technician in one document: 422 naming both; no territory is written."""
    open_ring = BOX_ALL[:-1]
    r = client.post("/rules", json={
        "territories": [{"name": "Dallas", "timezone": "America/Chicago", "polygon": open_ring},
                        {"name": "Plano", "timezone": "America/Chicago", "polygon": BOX_ALL}],
        "memberships": [{"technician": "Zed", "territory": "Plano"}]})
    assert r.status_code == 422
    errors = r.json()["detail"]["errors"]
    assert any("the polygon does not close" in e for e in errors)
    assert any("unknown technician 'Zed'" in e for e in errors)
    assert client.get("/territories").json() == []


def test_why_not_technician_for_a_request(client: TestClient) -> None:
    """Ben's only territory is far away: why not Ben says 'outside territory'; Ana (member of the request's
    territory) can take it, through her hard boundary."""
    client.post("/rules", json={
        "territories": [{"name": "Dallas", "timezone": "America/Chicago", "polygon": BOX_ALL},
                        {"name": "Far", "timezone": "America/Chicago", "polygon": BOX_FAR}],
        "memberships": [{"technician": "Ana", "territory": "Dallas"}, {"technician": "Ben", "territory": "Far"}]})
    from truckroll import store
    from truckroll.db import session_scope

    with session_scope() as s:
        row, _ = store.create_request(f.request_payload(), session=s,
                                      horizon_days=get_settings().planning_horizon_days, now=f.at(0))
        rid = row.id
    ben = client.get(f"/service-requests/{rid}/why-not/2").json()
    assert ben["eligible"] is False and ben["reasons"][0].startswith("outside territory: Dallas is not one of theirs")
    ana = client.get(f"/service-requests/{rid}/why-not/1").json()
    assert ana["eligible"] is True and ana["boundary"] == "hard" and ana["territory"] == "Dallas"
    assert client.get(f"/service-requests/{rid}/why-not/99").status_code == 404
