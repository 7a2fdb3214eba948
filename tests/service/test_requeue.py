"""A request whose flow run crashed is never lost: the requeue sweep finds it and dispatches it once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from flows import runs
from models import Assignment, Notification, RequestStatus
from tests import factories as f
from tests.service.conftest import SECRET, post_request
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch.requeue import requeue, stranded_requests
from truckroll.settings import get_settings

LEASE = 60.0  # the dispatch lease the sweep is given (orphaned runs are those older than three of them)


def _persist(n: int = 1, **overrides: object) -> list[int]:
    with session_scope() as s:
        return [store.create_request(f.request_payload(**overrides), session=s,
                                     horizon_days=get_settings().planning_horizon_days)[0].id or 0 for _ in range(n)]


def test_stranded_requests_are_old_unfinished_and_unhandled(company: dict[str, int]) -> None:
    """Found: received or analysed, older than the threshold, no assignment and no open escalation."""
    old, analysed, escalated = _persist(3)
    with session_scope() as s:
        row = store.get_request(analysed, session=s)
        row.status = RequestStatus.ANALYSED
        s.add(row)
        store.open_escalation(escalated, "no qualified technician", {}, session=s)
    later = datetime.now(UTC) + timedelta(seconds=60)
    with session_scope() as s:
        assert stranded_requests(session=s, older_than_seconds=30, now=later) == [old, analysed]
        assert stranded_requests(session=s, older_than_seconds=120, now=later) == []


def test_requeue_starts_each_stranded_request_once_and_skips_the_queued(company: dict[str, int]) -> None:
    """The caller's own backlog is left alone; the others are handed to ``submit`` once each."""
    a, b, c = _persist(3)
    started: list[int] = []
    report = requeue(runs=runs, lease_seconds=LEASE, older_than_seconds=0, skip={b}, submit=started.append)
    assert started == [a, c] and report.already_running == [b]
    assert requeue(runs=runs, lease_seconds=LEASE, older_than_seconds=0, dry_run=True,
                   submit=started.append).started == []
    assert started == [a, c]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Flows run in this process (the Prefect test harness sets PREFECT_API_URL, but has no deployments)."""
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_FLOW_RUNS", "in-process")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("prefect_harness", "in_process")
def test_crashed_request_is_dispatched_by_requeue_without_duplicates(company: dict[str, int]) -> None:
    """A persisted request that no flow ever finished is assigned by `requeue`; a second requeue finds nothing,
    and running the flow again afterwards adds no assignment and no notification."""
    (rid,) = _persist(1)
    report = requeue(runs=runs, lease_seconds=LEASE, older_than_seconds=0)
    assert report.started == [rid] and not report.failed
    with session_scope() as s:
        assert store.get_request(rid, session=s).status == RequestStatus.ASSIGNED
        notes = s.exec(select(func.count()).select_from(Notification)).one()
    assert requeue(runs=runs, lease_seconds=LEASE, older_than_seconds=0).found == []
    from flows.dispatch import dispatch_service_request

    dispatch_service_request(request_id=rid)
    with session_scope() as s:
        assert len(s.exec(select(Assignment).where(Assignment.request_id == rid)).all()) == 1
        assert s.exec(select(func.count()).select_from(Notification)).one() == notes


@pytest.mark.usefixtures("prefect_harness", "in_process")
def test_in_process_service_dispatches_accepted_requests(company: dict[str, int],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Prefect server the service runs the dispatch flow in a background thread: an accepted request
    becomes assigned, visible through its status URL."""
    from service.app import create_app
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    with TestClient(create_app(init_database=False, sweep_interval_seconds=0),
                    headers={"X-API-Key": f.api_key()}) as client:
        accepted = post_request(client, f.request_payload(), key="k-1").json()
        status = {}
        for _ in range(600):
            status = client.get(accepted["status_url"]).json()
            if status["status"] == RequestStatus.ASSIGNED:
                break
            time.sleep(0.1)
        assert status["status"] == RequestStatus.ASSIGNED
        assert status["assignment"]["technician_id"] in company.values()
        assert status["arrival_window"] is not None
    get_settings.cache_clear()
