"""The console's JSON views and pages over HTTP (TestClient): roles, the board and its ETag, a request's
timeline, the ranking of an escalation's candidates, reassigning a job through the one decision and commit,
and pages that hold no data and load nothing from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from tests import factories as f
from tests.console.conftest import HARD_JOB, dispatch, payload
from truckroll.settings import get_settings

DAY = "2030-01-07"


@pytest.fixture
def app(company: dict[str, int]) -> Iterator[object]:
    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    yield create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: dispatch(rid)),
                     init_database=False, sweep_interval_seconds=0)


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with TestClient(app, headers={"X-API-Key": f.api_key("dispatcher", "maria")}) as c:  # type: ignore[arg-type]
        yield c


def _create(**overrides: object) -> int:
    from truckroll import store
    from truckroll.db import session_scope

    with session_scope() as s:
        row, _ = store.create_request(payload(**overrides), session=s,
                                      horizon_days=get_settings().planning_horizon_days)
        assert row.id is not None
        return row.id


def test_every_console_view_needs_a_dispatcher(app: object, company: dict[str, int]) -> None:
    rid = dispatch(_create())
    urls = [f"/console/api/board?date={DAY}", f"/console/api/requests/{rid}/timeline",
            "/console/api/escalations/1/ranking"]
    with TestClient(app) as anonymous:  # type: ignore[arg-type]
        for url in urls:
            assert anonymous.get(url).status_code == 401, url
        assert anonymous.post(f"/console/api/requests/{rid}/reassign",
                              json={"technician_id": company["ben"]}).status_code == 401
        # The page is a shell: the sign-in form, no customer, no technician, no request.
        page = anonymous.get("/console")
        assert page.status_code == 200 and 'id="login-form"' in page.text
        assert "Dana Reyes" not in page.text and "Ana" not in page.text
    tech_key = f.api_key("technician", "ana-app", technician_id=company["ana"])
    with TestClient(app, headers={"X-API-Key": tech_key}) as tech:  # type: ignore[arg-type]
        for url in urls:
            assert tech.get(url).status_code == 403, url


def test_pages_load_only_truckroll_scripts_and_styles(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_TILE_URL", "https://tiles.example.org/{z}/{x}/{y}.png")
    get_settings.cache_clear()
    for url in ("/console", "/console/requests/1"):
        r = client.get(url)
        assert r.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assets = [s for s in sources if s.endswith((".js", ".css"))]
        assert assets and all(s.startswith("/console/static/") for s in assets), assets
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "img-src 'self' data: https://tiles.example.org" in csp
        assert 'data-tile-url="https://tiles.example.org/{z}/{x}/{y}.png"' in r.text
    assert client.get("/console/static/console/console.js").status_code == 200
    assert client.get("/console/static/..%2fconsole%2fpages.py").status_code == 404  # no way out of static/
    assert client.get("/console/static/nothing-here.js").status_code == 404
    assert client.get("/console/requests/0").status_code == 422


def test_the_board_shows_each_technicians_day_and_answers_304_until_it_changes(
        client: TestClient, company: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    rid = dispatch(_create())
    r = client.get("/console/api/board", params={"date": DAY})
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["timezone"] == "America/Chicago"
    rows = {row["name"]: row for row in board["rows"]}
    assert set(rows) == {"Ana", "Ben"}
    ana = rows["Ana"]
    assert [j["request_id"] for j in ana["jobs"]] == [rid] and rows["Ben"]["jobs"] == []
    job = ana["jobs"][0]
    assert job["customer_name"] == "Dana Reyes" and job["state"] == "planned"
    assert job["window_start"] == "2030-01-07T14:00:00Z"  # 08:00 in Chicago
    assert ana["territory"] == "Dallas" and ana["utilisation_target"] == 0.85
    assert 0 < ana["utilisation"] < 1 and ana["idle_minutes"] < 9 * 60
    assert board["metrics"]["jobs"] == 1 and len(board["territories"]) == 2
    etag = r.headers["ETag"]
    again = client.get("/console/api/board", params={"date": DAY}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    waiting = _create(customer_name="Walt Waits")
    changed = client.get("/console/api/board", params={"date": DAY}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert [w["request_id"] for w in changed.json()["waiting"]] == [waiting]
    only_far = client.get("/console/api/board", params={"date": DAY, "territory_id": 2}).json()
    assert [row["name"] for row in only_far["rows"]] == ["Ben"]
    assert client.get("/console/api/board", params={"date": DAY, "territory_id": 99}).status_code == 404
    assert client.get("/console/api/board", params={"date": "1900-01-01"}).status_code == 422


def test_polls_share_one_build_of_the_board_for_a_moment(client: TestClient, monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """Within TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS a poll (If-None-Match) is answered from the board built
    last, even if something changed since; a request without If-None-Match always sees the change."""
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS", "600")
    get_settings.cache_clear()
    first = client.get("/console/api/board", params={"date": DAY})
    etag = first.headers["ETag"]
    assert client.get("/console/api/board", params={"date": DAY}, headers={"If-None-Match": etag}).status_code == 304
    waiting = _create(customer_name="Walt Waits")
    polled = client.get("/console/api/board", params={"date": DAY}, headers={"If-None-Match": etag})
    assert polled.status_code == 304
    fresh = client.get("/console/api/board", params={"date": DAY})
    assert fresh.headers["ETag"] != etag and [w["request_id"] for w in fresh.json()["waiting"]] == [waiting]
    # The fresh build is what the next polls share.
    assert client.get("/console/api/board", params={"date": DAY},
                      headers={"If-None-Match": fresh.headers["ETag"]}).status_code == 304


def test_an_escalations_ranking_names_why_not_for_each_technician(client: TestClient,
                                                                  company: dict[str, int]) -> None:
    rid = dispatch(_create(**HARD_JOB))
    esc = client.get("/console/api/board", params={"date": DAY}).json()["escalations"]
    assert [e["request_id"] for e in esc] == [rid]
    r = client.get(f"/console/api/escalations/{esc[0]['escalation_id']}/ranking")
    assert r.status_code == 200, r.text
    ranking = {c["technician"]: c for c in r.json()["candidates"]}
    assert not ranking["Ana"]["eligible"] and any("below the required" in x for x in ranking["Ana"]["reasons"])
    assert not ranking["Ben"]["eligible"] and ranking["Ben"]["reasons"][0].startswith("outside territory")
    assert "territory" in r.json()["overridable_rules"]
    assert client.get("/console/api/escalations/999/ranking").status_code == 404


def test_reassigning_goes_through_the_decision_and_needs_an_override_reason(
        client: TestClient, company: dict[str, int]) -> None:
    """Ben is outside the job's territory: 409 naming the rule, nothing changed; with an override and its reason
    the job moves to Ben, the old assignment is cancelled, the decision records who and why, the customer gets
    the new window and the timeline tells it all."""
    from models import Assignment, AssignmentDecision, AssignmentStatus, Notification
    from truckroll.db import session_scope

    rid = dispatch(_create())
    url = f"/console/api/requests/{rid}/reassign"
    r = client.post(url, json={"technician_id": company["ben"]})
    assert r.status_code == 409
    assert r.json()["detail"]["overridable"] == ["territory"]
    assert r.json()["detail"]["reasons"][0].startswith("outside territory")
    with session_scope() as s:
        assert [(a.technician_id, a.status) for a in s.exec(select(Assignment)).all()] == [
            (company["ana"], AssignmentStatus.CONFIRMED)]
    assert client.post(url, json={"technician_id": company["ben"], "overrides": ["territory"]}).status_code == 422
    assert client.post(url, json={"technician_id": company["ana"]}).status_code == 409  # already hers
    assert client.post(url, json={"technician_id": 999}).status_code == 404
    r = client.post(url, json={"technician_id": company["ben"], "overrides": ["territory"],
                               "override_reason": "Ana's van broke down"})
    assert r.status_code == 200, r.text
    assert r.json()["technician_name"] == "Ben" and r.json()["from_technician_id"] == company["ana"]
    with session_scope() as s:
        rows = s.exec(select(Assignment).order_by(col(Assignment.id))).all()
        assert [(a.technician_id, a.status) for a in rows] == [
            (company["ana"], AssignmentStatus.CANCELLED), (company["ben"], AssignmentStatus.CONFIRMED)]
        record = s.exec(select(AssignmentDecision).order_by(col(AssignmentDecision.id).desc())).first()
        assert record is not None and record.decided_by == "maria"
        assert record.override_reason == "Ana's van broke down" and "territory" in record.overrides
        customer = s.exec(select(Notification).where(Notification.request_id == rid,
                                                     Notification.recipient_kind == "customer")).all()
        assert len(customer) == 2  # the first window, then the new one
    board = client.get("/console/api/board", params={"date": DAY}).json()
    rows_by_name = {row["name"]: row for row in board["rows"]}
    assert rows_by_name["Ana"]["jobs"] == [] and [j["request_id"] for j in rows_by_name["Ben"]["jobs"]] == [rid]
    timeline = client.get(f"/console/api/requests/{rid}/timeline").json()
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds[0] == "received" and kinds.count("decision") == 2 and "status" in kinds
    assert any(e["title"] == "Assigned to Ben by maria" and "Ana's van broke down" in e["detail"]
               for e in timeline["events"])
    assert sum(1 for e in timeline["events"] if e["kind"] == "notification" and "customer" in e["title"]) == 2
    assert timeline["technician_name"] == "Ben" and timeline["flow_runs"] == []
    assert client.post(url, json={"technician_id": company["ana"], "overrides": ["weather"],
                                  "override_reason": "x"}).status_code == 422
    assert client.get("/console/api/requests/999/timeline").status_code == 404


def test_a_requests_flow_runs_link_into_the_prefect_ui(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from models import DispatchLease
    from truckroll.db import session_scope
    from truckroll.settings import get_settings

    rid = dispatch(_create())
    with session_scope() as s:
        s.add(DispatchLease(request_id=rid, attempts=1, holder="0b9e2d6c-4d2f-4c39-9a55-5c1a3b1f3e11"))
    monkeypatch.setenv("TRUCKROLL_PREFECT_UI_URL", "http://prefect.internal:4200/")
    get_settings.cache_clear()
    runs = client.get(f"/console/api/requests/{rid}/timeline").json()["flow_runs"]
    assert runs == [{"id": "0b9e2d6c-4d2f-4c39-9a55-5c1a3b1f3e11", "name": None, "state": None,
                     "url": "http://prefect.internal:4200/runs/flow-run/0b9e2d6c-4d2f-4c39-9a55-5c1a3b1f3e11"}]


def test_the_escalation_email_links_the_requests_console_page(company: dict[str, int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from models import Notification
    from truckroll.db import session_scope
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_CONSOLE_URL", "https://dispatch.example.com/console/")
    get_settings.cache_clear()
    rid = _create(**HARD_JOB)
    with session_scope() as s:
        from truckroll import store
        from truckroll.notifications import messages
        messages.escalation_alert(session=s, escalation_id=7, request=store.get_request(rid, session=s),
                                  reason="no technician", why_not=[], dispatch_email="dispatch@example.com",
                                  console_url=get_settings().console_url)
    with session_scope() as s:
        note = s.exec(select(Notification).where(Notification.template == "escalation_alert")).one()
    link = f"https://dispatch.example.com/console/requests/{rid}"
    assert f"Resolve it in the dispatch console: {link}" in note.body
    assert f'<a href="{link}">the dispatch console</a>' in note.body_html
