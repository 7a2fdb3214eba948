"""Nothing stranded and nothing silent: leases with a heartbeat, the dead letter, the planning horizon, delivery
that says when it has no channel, the local mail catcher, capacity that honours absences."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from models import DispatchLease, Escalation, RequestStatus, TechnicianAbsence
from tests import factories as f
from tests.service.test_requeue import _persist
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import requeue as rq
from truckroll.settings import get_settings


def _lease(rid: int) -> DispatchLease:
    with session_scope() as s:
        row = s.get(DispatchLease, rid)
        assert row is not None
        return row


def test_a_live_lease_keeps_a_second_run_out_and_an_expired_one_lets_it_in(company: dict[str, int]) -> None:
    """Claiming counts attempts; a live lease refuses another holder; once expired, the next claim takes it."""
    (rid,) = _persist(1)
    first = rq.claim(rid, "run-a", lease_seconds=60)
    assert first.attempt == 1
    with pytest.raises(rq.LeaseHeld):
        rq.claim(rid, "run-b", lease_seconds=60)
    later = datetime.now(UTC) + timedelta(seconds=61)
    second = rq.claim(rid, "run-b", lease_seconds=60, now=later)
    assert second.attempt == 2 and _lease(rid).holder == "run-b"
    assert not rq.renew(rid, "run-a", lease_seconds=60)  # the dead run lost it
    assert rq.renew(rid, "run-b", lease_seconds=60)


def test_a_run_that_raises_releases_its_lease_with_the_error(company: dict[str, int]) -> None:
    """The error is kept for the next attempt (and the dead letter); the lease is free again at once."""
    (rid,) = _persist(1)
    with pytest.raises(RuntimeError), rq.dispatch_lease(rid, "run-a", lease_seconds=60):
        raise RuntimeError("the travel provider is down")
    row = _lease(rid)
    assert row.holder == "run-a" and row.lease_expires_at is None  # released; the holder names the last run
    assert row.last_error == "RuntimeError: the travel provider is down"
    assert rq.claim(rid, "run-b", lease_seconds=60).previous_error == row.last_error


def test_the_heartbeat_keeps_a_long_run_s_lease_alive(company: dict[str, int]) -> None:
    """A run working longer than its lease is not taken over: the heartbeat renews it."""
    import time

    (rid,) = _persist(1)
    with rq.dispatch_lease(rid, "run-a", lease_seconds=1.5):
        time.sleep(2.5)
        with pytest.raises(rq.LeaseHeld):
            rq.claim(rid, "run-b", lease_seconds=60)


def test_stranded_means_no_live_lease_and_a_dead_run_is_found_at_once(company: dict[str, int]) -> None:
    """A queued request is left alone while its hold lasts; a request whose run's lease expired is stranded
    however young it is; a finished run's request is not."""
    queued, dead, young = _persist(3)
    rq.mark_queued([queued], hold_seconds=600)
    rq.claim(dead, "run-dead", lease_seconds=5)
    now = datetime.now(UTC)
    with session_scope() as s:
        assert rq.stranded_requests(session=s, older_than_seconds=3600, now=now + timedelta(seconds=10)) == [dead]
        assert rq.expired_holders([dead, queued, young], session=s) == {dead: "run-dead"}
        later = now + timedelta(seconds=3700)
        # After the hold, a request still queued (a hand-over the workers lost) is run again too.
        assert rq.stranded_requests(session=s, older_than_seconds=3600, now=later) == [queued, dead, young]


@pytest.mark.usefixtures("prefect_harness")
def test_a_request_that_keeps_failing_is_escalated_with_its_error(company: dict[str, int],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """After max_dispatch_attempts runs that died or failed, the next run escalates it (a dead letter) naming the
    last error, instead of trying forever."""
    from flows.dispatch import dispatch_service_request
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_MAX_DISPATCH_ATTEMPTS", "2")
    get_settings.cache_clear()
    (rid,) = _persist(1)
    soon = datetime.now(UTC) - timedelta(seconds=30)
    for i in range(2):  # two runs that died: their leases expired without a release
        rq.claim(rid, f"dead-{i}", lease_seconds=0.01, now=soon + timedelta(seconds=i))
    with session_scope() as s:
        row = s.get(DispatchLease, rid)
        assert row is not None
        row.last_error = "OperationalError: database is locked"
        s.add(row)
    out = dispatch_service_request(request_id=rid)
    get_settings.cache_clear()
    assert out["status"] == "escalated"
    with session_scope() as s:
        assert store.get_request(rid, session=s).status == RequestStatus.ESCALATED
        esc = s.exec(select(Escalation).where(Escalation.request_id == rid)).one()
    assert "dispatch failed 2 times" in esc.reason and "database is locked" in esc.reason


def test_windows_beyond_the_planning_horizon_are_refused_naming_the_window(company: dict[str, int],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A window 200 days ahead is a validation error on time_windows.N naming the horizon (a 422 at the webhook),
    not a flow that fails forever; 89 days ahead is fine."""
    from models.schemas import RequestValidationError
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_PLANNING_HORIZON_DAYS", "90")
    get_settings.cache_clear()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    far = f.request_payload(time_windows=[{"start": "2030-07-20T09:00:00+00:00", "end": "2030-07-20T11:00:00+00:00"}])
    try:
        with session_scope() as s, pytest.raises(RequestValidationError) as err:
            store.validate_request(far, session=s, horizon_days=get_settings().planning_horizon_days, now=now)
        assert "time_windows.0" in str(err.value) and "planning horizon" in str(err.value)
        with session_scope() as s:
            near = f.request_payload(time_windows=[{"start": "2030-03-30T09:00:00+00:00",
                                                    "end": "2030-03-30T11:00:00+00:00"}])
            assert store.validate_request(near, session=s, horizon_days=get_settings().planning_horizon_days,
                                          now=now).time_windows
    finally:
        get_settings.cache_clear()


@pytest.mark.usefixtures("prefect_harness")
def test_delivery_without_a_channel_says_so(company: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """With no delivery URL configured the task ends in a 'Not delivered' state, not a plain success."""
    from prefect import flow

    from tasks.notifications import deliver_notifications
    from truckroll.notifications import outbox as notify
    from truckroll.settings import get_settings

    for name in ("EMAIL", "SMS", "DISPATCH", "TECHNICIAN"):
        monkeypatch.delenv(f"TRUCKROLL_NOTIFY_{name}_URL", raising=False)
    get_settings.cache_clear()
    with session_scope() as s:
        notify.queue(session=s, dedupe_key="t:1", template="escalation_alert", recipient="dispatch@example.com",
                     recipient_kind="dispatch", request_id=None,
                     context=dict(request_id=1, customer_name="C", address="A", job_type="leak repair", priority=5,
                                  reason="r", escalation_id=1, why_not=[]))

    @flow
    def deliver() -> object:
        return deliver_notifications(return_state=True)

    state = deliver()
    assert state.name == "Not delivered" and "no delivery channel" in (state.message or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_mail_catcher_files_every_message_and_shows_it(tmp_path: Path) -> None:
    """A message sent by SMTP is in the Maildir and listed (then shown) by the web inbox."""
    from truckroll.notifications.mailsink import read_inbox, running

    smtp_port, http_port = _free_port(), _free_port()
    with running(tmp_path / "mail", smtp_port=smtp_port, http_port=http_port):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "dispatch@example.com", "dana@example.com", "Your arrival window"
        msg.set_content("Ana arrives between 09:00 and 11:00.")
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.send_message(msg)
        mails = read_inbox(tmp_path / "mail")
        assert [(m.to, m.subject) for m in mails] == [("dana@example.com", "Your arrival window")]
        page = httpx.get(f"http://127.0.0.1:{http_port}/", timeout=5).text
        assert "Your arrival window" in page and "1 message(s)" in page
        one = httpx.get(f"http://127.0.0.1:{http_port}/messages/{mails[0].key}", timeout=5).text
        assert "between 09:00 and 11:00" in one


@pytest.fixture
def absent_company(db: str) -> Iterator[date]:
    day = f.DAY
    with session_scope() as s:
        f.add_job_type(s, "repipe", minutes=120)
        tech = f.add_technician(s, "Ana", day=day)
        s.add(TechnicianAbsence(technician_id=tech.id, start=f.at(7, day=day), end=f.at(19, day=day),
                                reason="training"))
    yield day


def test_capacity_counts_no_free_technician_when_everyone_is_absent(absent_company: date) -> None:
    """GET /capacity's view: an absent technician frees nothing in any window."""
    from truckroll.booking.windows import capacity

    rows = capacity(absent_company, settings=get_settings())
    assert rows and all(w["free_technicians"] == 0 for w in rows)
