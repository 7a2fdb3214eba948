"""Notification delivery: a real SMTP server (aiosmtpd) and a local webhook receiver, started by the tests."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session, select

from models import Notification, NotificationAttempt, utcnow
from tests import factories as f
from truckroll.notifications import delivery
from truckroll.notifications import outbox as notify
from truckroll.notifications.samples import TEMPLATES, sample_context
from truckroll.settings import get_settings


class SmtpSink:
    """aiosmtpd on 127.0.0.1: keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[str, list[str], Message]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      email.message_from_bytes(envelope.content)))
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=dispatch@example.com&mode=insecure"


class WebhookSink:
    """A local HTTP receiver; ``status`` decides the answer (500 to make a channel fail)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.posts.append({"path": self.path, "json": json.loads(body)})
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "/dispatch") -> str:
        return f"json://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.controller.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.httpd.shutdown()
    sink.httpd.server_close()


@pytest.fixture
def channels(db: str, smtp: SmtpSink, webhook: WebhookSink, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """truckroll's settings point email at the SMTP sink and dispatch messages at the webhook."""
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_NOTIFY_EMAIL_URL", smtp.url())
    monkeypatch.setenv("TRUCKROLL_NOTIFY_DISPATCH_URL", webhook.url())
    monkeypatch.setenv("TRUCKROLL_NOTIFY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("TRUCKROLL_NOTIFY_BACKOFF_SECONDS", "60")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def queue(template: str, recipient: str, kind: str, key: str, **overrides: Any) -> int:
    from truckroll.db import session_scope

    with session_scope() as s:
        n = notify.queue(session=s, dedupe_key=key, template=template, recipient=recipient, recipient_kind=kind,
                         context=sample_context(template, **overrides))
        assert n.id is not None
        return n.id


def row(note_id: int) -> Notification:
    from truckroll.db import get_engine

    with Session(get_engine()) as s:
        n = s.get(Notification, note_id)
        assert n is not None
        return n


def html_part(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_text_and_html(template: str) -> None:
    """Each template has a subject, a text body and an HTML variant, all rendered from the sample data."""
    subject, body = notify.render(template, sample_context(template))
    html = notify.render_html(template, sample_context(template))
    assert subject and body.strip() and "#1042" in subject + body
    assert html.lstrip().startswith("<!doctype html>") and "</html>" in html


def test_email_arrives_with_subject_and_recipient(channels: None, smtp: SmtpSink) -> None:
    """An outbox email reaches the SMTP server with its subject, recipient and HTML body; the row is 'sent'."""
    nid = queue("customer_arrival_window", "dana@example.net", "customer", "t:1")
    report = delivery.deliver_pending(settings=get_settings())
    assert report.sent == [nid]
    assert len(smtp.messages) == 1
    sender, rcpts, msg = smtp.messages[0]
    assert rcpts == ["dana@example.net"] and sender == "dispatch@example.com"
    assert msg["Subject"] == row(nid).subject
    assert msg["Subject"].startswith("Your leak repair visit: technician arriving")
    assert "10:00" in html_part(msg) and "Dana Reyes" in html_part(msg)
    n = row(nid)
    assert (n.status, n.attempts) == ("sent", 1) and n.sent_at is not None


def test_dispatch_messages_reach_the_webhook_as_json(channels: None, webhook: WebhookSink, smtp: SmtpSink) -> None:
    """Messages to dispatch go to the configured webhook (json://) with the subject as title."""
    nid = queue("dispatch_summary", "dispatch@example.com", "dispatch", "t:2")
    assert delivery.deliver_pending(settings=get_settings()).sent == [nid]
    assert len(webhook.posts) == 1 and not smtp.messages
    post = webhook.posts[0]
    assert post["path"] == "/dispatch"
    assert post["json"]["title"] == "Assigned #1042 (leak repair, P3) to Ana Flores"
    assert "Utilisation:" in post["json"]["message"]


def test_failures_are_retried_with_backoff_then_marked_failed(channels: None, webhook: WebhookSink) -> None:
    """A failing channel is retried only after an exponential backoff (60 s, then 120 s), and after the
    maximum attempts (3) the message is 'failed' with the error kept."""
    webhook.status = 500
    nid = queue("escalation_alert", "dispatch@example.com", "dispatch", "t:3")
    t0 = utcnow()
    assert delivery.deliver_pending(settings=get_settings(), now=t0).retry_later == [nid]
    assert delivery.deliver_pending(settings=get_settings(), now=t0 + timedelta(seconds=30)).retry_later == [nid]
    assert len(webhook.posts) == 1  # still backing off: not tried again
    delivery.deliver_pending(settings=get_settings(), now=t0 + timedelta(seconds=61))
    assert len(webhook.posts) == 2
    delivery.deliver_pending(settings=get_settings(), now=t0 + timedelta(seconds=61 + 100))
    assert len(webhook.posts) == 2  # the second wait is 120 s
    assert delivery.deliver_pending(settings=get_settings(), now=t0 + timedelta(seconds=61 + 121)).failed == [nid]
    assert len(webhook.posts) == 3
    n = row(nid)
    assert (n.status, n.attempts) == ("failed", 3) and "json://" in n.last_error
    delivery.deliver_pending(settings=get_settings(), now=t0 + timedelta(days=1))
    assert len(webhook.posts) == 3  # failed for good: never tried again
    from truckroll.db import get_engine

    with Session(get_engine()) as s:
        attempts = s.exec(select(NotificationAttempt).where(NotificationAttempt.notification_id == nid)).all()
    assert [a.attempt for a in attempts] == [1, 2, 3] and not any(a.ok for a in attempts)


def test_delivery_runs_again_send_nothing_twice(channels: None, smtp: SmtpSink) -> None:
    """A sent message is never sent again, by a second pass or by two senders running at the same time."""
    ids = [queue("customer_arrival_window", f"c{i}@example.net", "customer", f"t:4:{i}") for i in range(6)]

    def slow_send(url: str, note: Notification) -> None:
        threading.Event().wait(0.02)  # widen the window in which two senders could collide
        delivery.send_with_apprise(url, note)

    reports: list[delivery.DeliveryReport] = []
    st = get_settings()
    threads = [threading.Thread(target=lambda: reports.append(delivery.deliver_pending(settings=st, sender=slow_send)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delivery.deliver_pending(settings=get_settings())
    sent = sorted(i for r in reports for i in r.sent)
    assert sent == ids
    assert sorted(m[1][0] for m in smtp.messages) == sorted(f"c{i}@example.net" for i in range(6))
    assert all(row(i).attempts == 1 for i in ids)


def test_customer_name_is_escaped_in_html(channels: None, smtp: SmtpSink) -> None:
    """A customer name with markup arrives escaped in the HTML email (autoescaping), and verbatim in text."""
    evil = "<script>alert(1)</script> Eve"
    nid = queue("customer_arrival_window", "eve@example.net", "customer", "t:5", customer_name=evil)
    n = row(nid)
    assert "<script>" not in n.body_html and "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in n.body_html
    assert evil in n.body
    delivery.deliver_pending(settings=get_settings())
    html = html_part(smtp.messages[0][2])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_unconfigured_channel_leaves_messages_pending(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no delivery URL configured nothing is attempted: the message stays pending and is reported."""
    from truckroll.settings import get_settings

    for name in ("EMAIL", "SMS", "DISPATCH", "TECHNICIAN"):
        monkeypatch.delenv(f"TRUCKROLL_NOTIFY_{name}_URL", raising=False)
    get_settings.cache_clear()
    nid = queue("customer_eta_update", "dana@example.net", "customer", "t:6")
    report = delivery.deliver_pending(settings=get_settings())
    assert report.unrouted == [nid] and not report.sent
    assert (row(nid).status, row(nid).attempts) == ("pending", 0)


def test_sms_url_takes_the_recipient(db: str) -> None:
    """An SMS gateway URL gets the phone number where it says {recipient}; email URLs get it as to=."""
    from truckroll.settings import Settings

    s = Settings(notify_sms_url="json://gw.local/sms/{recipient}", notify_email_url="mailtos://u:p@mail.local")
    sms = Notification(dedupe_key="x", recipient="+14695550100", recipient_kind="customer", channel="sms",
                       template="t", subject="s", body="b")
    mail = Notification(dedupe_key="y", recipient="a@b.example", recipient_kind="technician", channel="email",
                        template="t", subject="s", body="b")
    assert delivery.route_for(sms, s) == "json://gw.local/sms/+14695550100"
    assert delivery.route_for(mail, s) == "mailtos://u:p@mail.local?to=a%40b.example"


def test_dispatch_flow_delivers_its_messages_once(channels: None, smtp: SmtpSink, webhook: WebhookSink,
                                                  prefect_harness: None) -> None:
    """The dispatch flow sends the customer's and technician's emails and dispatch's webhook message after the
    confirmation; running the flow again, and the deliver-notifications flow, sends nothing twice."""
    from flows.dispatch import dispatch_service_request
    from flows.notifications import deliver_notifications_flow
    from truckroll.db import session_scope

    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana", email="ana@example.com")
    out: Any = dispatch_service_request(payload=f.request_payload())
    result = out.result() if hasattr(out, "result") else out
    assert result["status"] == "assigned"
    assert sorted(r for _, rcpts, _ in smtp.messages for r in rcpts) == ["ana@example.com", "dana@example.net"]
    assert [p["json"]["title"] for p in webhook.posts] == [
        f"Assigned #{result['request_id']} (leak repair, P5) to Ana"]
    again: Any = dispatch_service_request(request_id=result["request_id"])
    assert (again.result() if hasattr(again, "result") else again)["already_done"]
    counts = deliver_notifications_flow()
    assert counts["sent"] == 0
    assert len(smtp.messages) == 2 and len(webhook.posts) == 1


def test_cli_preview_renders_a_template() -> None:
    """`truckroll notifications preview` prints the subject and body, or the HTML with --html."""
    from typer.testing import CliRunner

    from cli import app
    runner = CliRunner()
    text = runner.invoke(app, ["notifications", "preview", "customer_arrival_window"])
    assert text.exit_code == 0 and text.output.startswith("Subject: Your leak repair visit")
    html = runner.invoke(app, ["notifications", "preview", "technician_job_card", "--html",
                               "--customer-name", "<b>Bo</b>"])
    assert html.exit_code == 0 and "Gate code 4417".lower() in html.output.lower()
    assert "&lt;b&gt;Bo&lt;/b&gt;" in html.output
    assert runner.invoke(app, ["notifications", "preview", "nope"]).exit_code == 1


def test_reoptimize_flow_delivers_what_it_queues(channels: None, smtp: SmtpSink, webhook: WebhookSink,
                                                 prefect_harness: None) -> None:
    """The swapped plan's customers were sent their windows. The re-optimisation swaps the technicians back, and
    its messages go out in the same run: each customer an email naming the new technician (window unchanged),
    each technician a route update, and dispatch's alert for an hvac request nobody on shift can do. Nothing is
    left in the outbox."""
    from sqlmodel import select

    from flows.reoptimize import reoptimize_day
    from models import Notification
    from tests.flows.test_reoptimize import D, _request, _swapped_company, _windows_sent
    from truckroll.db import session_scope

    ids = _swapped_company()
    _windows_sent(ids)
    with session_scope() as s:
        f.add_job_type(s, "ac repair", minutes=90, skill="hvac")
        cold = _request(s, "Cold", f.north_km(1), [(f.at(8), f.at(17))], job_type="ac repair")
    state = reoptimize_day(day=D, time_limit_seconds=5, return_state=True)
    assert state.name == "Re-optimised", state.message
    subjects = {r: m["Subject"] for _, rcpts, m in smtp.messages for r in rcpts}
    for name in ("South1", "South2", "North1", "North2"):
        assert "arrival window unchanged" in subjects[f"{name.lower()}@example.net"]
    assert {"ana@example.com", "ben@example.com"} <= set(subjects)
    assert any(f"#{cold}" in p["json"]["title"] for p in webhook.posts)
    with session_scope() as s:
        assert s.exec(select(Notification).where(Notification.status != "sent")).all() == []


def test_an_emergency_run_delivers_the_displaced_customers_messages(channels: None, smtp: SmtpSink,
                                                                     webhook: WebhookSink, prefect_harness: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Only Ana works (08:00-10:00). The emergency's dispatch run takes #1's place and nobody else can take #1:
    in the same run, #1's customer is emailed that dispatch will call, Ana gets her new route, dispatch gets the
    alert. Nothing waits in the outbox for a later drain."""
    from flows.dispatch import dispatch_service_request
    from truckroll.db import session_scope

    monkeypatch.setenv("TRUCKROLL_DISPATCH__UTILISATION_TARGET", "1.0")
    get_settings.cache_clear()
    with session_scope() as s:
        f.add_job_type(s, minutes=60)
        f.add_job_type(s, "burst pipe", minutes=90)
        f.add_technician(s, "Ana", shift=(8, 10), email="ana@example.com")

    def run(**payload: Any) -> dict[str, Any]:
        out: Any = dispatch_service_request(payload=f.request_payload(**payload))
        return dict(out.result() if hasattr(out, "result") else out)

    first = run(priority=8, customer_email="one@example.net",
                time_windows=[{"start": f.at(8).isoformat(), "end": f.at(12).isoformat()}])
    assert first["status"] == "assigned"
    smtp.messages.clear()
    webhook.posts.clear()
    emergency = run(priority=1, job_type="burst pipe", customer_email="two@example.net",
                    time_windows=[{"start": f.at(8).isoformat(), "end": f.at(8, 30).isoformat()}])
    assert emergency["status"] == "assigned"
    bodies = {r: m for _, rcpts, m in smtp.messages for r in rcpts}
    assert "dispatcher will call you" in html_part(bodies["one@example.net"])
    assert {"two@example.net", "ana@example.com"} <= set(bodies)
    assert f"Manual review needed: request #{first['request_id']} (leak repair, P8)" in [
        p["json"]["title"] for p in webhook.posts]
    with session_scope() as s:
        assert s.exec(select(Notification).where(Notification.status != "sent")).all() == []


def test_service_actions_deliver_their_messages_right_after_the_answer(channels: None, smtp: SmtpSink,
                                                                         prefect_harness: None) -> None:
    """A technician running late and a dispatcher moving a job: the re-promised customer's and the technicians'
    emails are in the SMTP server once the HTTP answer is in (not at the next scheduled drain), and the outbox is
    empty; a late report from the CLI is sent at once too."""
    from fastapi.testclient import TestClient

    from flows.dispatch import dispatch_service_request
    from flows.runs import BackgroundDispatcher
    from service.app import create_app
    from truckroll.db import session_scope

    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana", email="ana@example.com")
        ben = f.add_technician(s, "Ben", home=f.north_km(30), email="ben@example.com")
    ids = []
    for who, (h1, h2) in (("one", (8, 10)), ("two", (9, 12))):
        out: Any = dispatch_service_request(payload=f.request_payload(
            customer_email=f"{who}@example.net", time_windows=[{"start": f.at(h1).isoformat(),
                                                                "end": f.at(h2).isoformat()}]))
        ids.append((out.result() if hasattr(out, "result") else out)["request_id"])
    smtp.messages.clear()

    def recipients() -> set[str]:
        return {t for _, rcpts, _ in smtp.messages for t in rcpts}

    def outbox_left() -> list[Notification]:
        with session_scope() as s:
            return list(s.exec(select(Notification).where(Notification.status != "sent")).all())

    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda _rid, _a: None),
                     init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": f.api_key("dispatcher")}) as client:
        def status(event: str, hh: int, **extra: Any) -> dict[str, Any]:
            r = client.post(f"/service-requests/{ids[0]}/status", json={"event": event, "at": f.at(hh).isoformat(),
                                                                        **extra})
            assert r.status_code == 200, r.text
            return dict(r.json())

        status("en_route", 8)
        status("arrived", 8)
        smtp.messages.clear()
        late = status("late", 9, minutes=150)
        assert late["repromised"] == [ids[1]] and late["notification_ids"]
        assert "two@example.net" in recipients()
        assert outbox_left() == []

        smtp.messages.clear()
        r = client.post(f"/console/api/requests/{ids[1]}/reassign", json={"technician_id": ben.id})
        assert r.status_code == 200, r.text
        assert {"two@example.net", "ana@example.com", "ben@example.com"} <= recipients()
        assert outbox_left() == []

    # A report from the shell (Ben sets off to the moved job): `truckroll live report` sends what it queued (the
    # customer's ETA), and says so.
    from typer.testing import CliRunner

    from cli import app

    smtp.messages.clear()
    res = CliRunner().invoke(app, ["live", "report", "--request", str(ids[1]), "--event", "en_route",
                                   "--at", f.at(9, 30).isoformat()])
    assert res.exit_code == 0, res.output
    assert "messages sent: " in res.output and "two@example.net" in recipients()
    assert outbox_left() == []
