"""Send the outbox (``Notification`` rows) through apprise: email, SMS gateways, Slack, Teams, webhooks.

Every message was rendered and stored before anything is sent (truckroll.notifications.outbox.queue). A sender then:

1. claims one due message atomically (``pending`` -> ``sending``, guarded on its status and attempt count, so
   two senders never send the same message);
2. records the attempt (``NotificationAttempt``), sends it, and marks it ``sent``, or ``pending`` again with
   ``last_error`` and an exponential backoff before the next try, or ``failed`` after ``max_attempts``.

A ``sent`` message is never sent again, however often a flow is retried. The one window for a duplicate is a
sender that dies between the SMTP/webhook call and the status write: its ``sending`` row is released after
``stale_after_seconds`` and tried again (at-least-once, as every outbox is).

Channels come from settings, as apprise URLs:
``notify_email_url`` (``mailto://`` / ``mailtos://``; the recipient is added as ``to=``),
``notify_sms_url`` (any apprise SMS gateway; ``{recipient}`` in the URL is replaced by the phone number),
``notify_dispatch_url`` (Slack, Teams, ``json://`` ... for messages to dispatch) and
``notify_technician_url`` (optional; else technicians get email/SMS). With nothing configured for a message's
channel it stays ``pending`` and the report says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import Notification, NotificationAttempt, utcnow
from truckroll.settings import Settings

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


class DeliveryError(RuntimeError):
    """A channel refused or could not take a message."""


# (apprise URL, message) -> None; raises DeliveryError. Replaceable in tests of the outbox logic.
Sender = Callable[[str, Notification], None]


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retry_later: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # Messages whose channel has no URL configured: left pending.
    unrouted: list[int] = field(default_factory=list)
    # Claimed by another sender first.
    skipped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}

    def merge(self, other: DeliveryReport) -> None:
        for k, v in other.__dict__.items():
            getattr(self, k).extend(v)


def backoff_seconds(attempts: int, base_seconds: float, cap_seconds: float = 3600.0) -> float:
    """Wait before try number ``attempts + 1``: base, 2 x base, 4 x base ... up to ``cap_seconds``."""
    if attempts <= 0:
        return 0.0
    return float(min(cap_seconds, base_seconds * 2 ** (attempts - 1)))


def _with_recipient(url: str, recipient: str) -> str:
    if "{recipient}" in url:
        return url.replace("{recipient}", quote(recipient, safe="@+"))
    parts = urlsplit(url)
    if parts.scheme in ("mailto", "mailtos") and "@" in recipient:
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "to"] + [("to", recipient)]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return url


def route_for(note: Notification, settings: Settings) -> str | None:
    """The apprise URL a message goes to, or ``None`` when its channel is not configured."""
    if note.recipient_kind == "dispatch" and settings.notify_dispatch_url:
        return _with_recipient(settings.notify_dispatch_url, note.recipient)
    if note.recipient_kind == "technician" and settings.notify_technician_url:
        return _with_recipient(settings.notify_technician_url, note.recipient)
    if note.channel == "sms":
        return _with_recipient(settings.notify_sms_url, note.recipient) if settings.notify_sms_url else None
    if note.channel == "email" and "@" in note.recipient and settings.notify_email_url:
        return _with_recipient(settings.notify_email_url, note.recipient)
    return None


class _LazySSLContext:
    """What ``ssl.create_default_context()`` returns, made only when a connection is secured with it.

    apprise's email plugin builds a default SSL context (loading the system's CA store, about 40 ms of CPU)
    for every message, even for plain SMTP (``mode=insecure``, the local mail catcher of ``make serve``) where
    it never uses it: 29% of a dispatch worker's CPU samples in a burst. The attributes apprise sets before using
    it are applied in order when it is made; an SSL or STARTTLS send gets the real context, verified as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "_made", None)
        object.__setattr__(self, "_recipe", (args, kwargs, []))

    def _context(self) -> Any:
        import ssl

        if self._made is None:
            args, kwargs, sets = self._recipe
            context = ssl.create_default_context(*args, **kwargs)
            for name, value in sets:
                setattr(context, name, value)
            object.__setattr__(self, "_made", context)
        return self._made

    def __setattr__(self, name: str, value: Any) -> None:
        if self._made is None:
            self._recipe[2].append((name, value))
        else:
            setattr(self._made, name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context(), name)


def _lazy_email_ssl_context() -> None:
    """Points apprise's email plugin (only it) at a copy of ``ssl`` whose default context is lazy (above)."""
    import ssl
    import types

    try:
        from apprise.plugins.email import base as email_base
    except ImportError:  # another apprise layout: nothing to save
        return
    current = getattr(email_base, "ssl", None)
    if current is ssl:
        lazy = types.ModuleType("ssl")
        lazy.__dict__.update(vars(ssl))
        lazy.create_default_context = _LazySSLContext  # type: ignore[attr-defined]
        email_base.ssl = lazy  # type: ignore[attr-defined]


def send_with_apprise(url: str, note: Notification) -> None:
    """Send one message to one apprise URL (HTML for email when the template has an HTML variant)."""
    import apprise

    _lazy_email_ssl_context()
    a = apprise.Apprise()
    if not a.add(url):
        raise DeliveryError(f"not a valid apprise URL for {note.channel}: {_redact(url)}")
    scheme = urlsplit(url).scheme
    html = bool(note.body_html) and scheme in ("mailto", "mailtos")
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = a.notify(title=note.subject, body=note.body_html if html else note.body,
                      body_format=apprise.NotifyFormat.HTML if html else apprise.NotifyFormat.TEXT)
    if not ok:
        detail = " ".join(captured.getvalue().split())[-400:] if hasattr(captured, "getvalue") else ""
        raise DeliveryError(f"{scheme}:// refused the message: {detail or 'no detail'}")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _claim(session: Session, note_id: int, seen_attempts: int) -> bool:
    """pending -> sending, only if nobody changed the row since we read it."""
    res = session.execute(update(Notification).where(
        col(Notification.id) == note_id, col(Notification.status) == PENDING,
        col(Notification.attempts) == seen_attempts).values(status=SENDING, attempts=seen_attempts + 1))
    return bool(getattr(res, "rowcount", 0) == 1)


def _last_attempts(session: Session, ids: Sequence[int]) -> dict[int, datetime]:
    """When each message was last tried."""
    out: dict[int, datetime] = {}
    for i in range(0, len(ids), 500):
        for a in session.exec(select(NotificationAttempt).where(
                col(NotificationAttempt.notification_id).in_(list(ids[i:i + 500])))).all():
            if a.notification_id not in out or a.started_at > out[a.notification_id]:
                out[a.notification_id] = a.started_at
    return out


def release_stale(*, engine: Engine, stale_after_seconds: float, now: datetime | None = None) -> int:
    """Put ``sending`` rows whose sender vanished (no result after ``stale_after_seconds``) back to pending."""
    now = now or utcnow()
    with Session(engine) as session:
        stuck = session.exec(select(Notification).where(Notification.status == SENDING)).all()
        last = _last_attempts(session, [n.id for n in stuck if n.id is not None])
        released = 0
        for n in stuck:
            started = last.get(n.id or -1)
            if started is None or now - started > timedelta(seconds=stale_after_seconds):
                res = session.execute(update(Notification).where(
                    col(Notification.id) == n.id, col(Notification.status) == SENDING,
                    col(Notification.attempts) == n.attempts).values(status=PENDING))
                released += int(getattr(res, "rowcount", 0) or 0)
        session.commit()
    if released:
        log.warning("released %d notification(s) a sender left in 'sending'", released)
    return released


def deliver_pending(*, settings: Settings, engine: Engine | None = None,
                    notification_ids: Sequence[int] | None = None, request_id: int | None = None,
                    limit: int = 200, now: datetime | None = None, sender: Sender | None = None,
                    stale_after_seconds: float = 600.0) -> DeliveryReport:
    """One pass over the outbox: every due pending message is tried once.

    Parameters
    ----------
    notification_ids, request_id:
        Only these messages (the dispatch flow delivers its own); by default the whole outbox.
    now:
        The clock the backoff is measured on (tests).
    sender:
        How a message is sent; apprise by default.

    Returns
    -------
    DeliveryReport
        Which messages were sent, will be retried, failed for good, or have no channel configured.
    """
    from truckroll.db import get_engine

    engine = engine or get_engine()
    s = settings
    send = sender or send_with_apprise
    now = now or utcnow()
    report = DeliveryReport()
    release_stale(engine=engine, stale_after_seconds=stale_after_seconds, now=now)
    with Session(engine) as session:
        q = select(Notification).where(Notification.status == PENDING)
        if notification_ids is not None:
            q = q.where(col(Notification.id).in_(list(notification_ids)))
        if request_id is not None:
            q = q.where(Notification.request_id == request_id)
        candidates = list(session.exec(q.order_by(col(Notification.id)).limit(limit)).all())
        last = _last_attempts(session, [n.id for n in candidates if n.id is not None and n.attempts > 0])
    for note in candidates:
        assert note.id is not None
        url = route_for(note, s)
        if url is None:
            report.unrouted.append(note.id)
            continue
        if note.attempts > 0:
            started = last.get(note.id)
            if started is not None and now < started + timedelta(
                    seconds=backoff_seconds(note.attempts, s.notify_backoff_seconds)):
                report.retry_later.append(note.id)
                continue
        with Session(engine) as session:
            if not _claim(session, note.id, note.attempts):
                session.rollback()
                report.skipped.append(note.id)
                continue
            attempt = NotificationAttempt(notification_id=note.id, attempt=note.attempts + 1, started_at=now)
            session.add(attempt)
            session.commit()
            attempt_id = attempt.id
        error = ""
        try:
            send(url, note)
        except Exception as exc:  # noqa: BLE001 - any failure of a channel is recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:1000]
        finished = utcnow()
        with Session(engine) as session:
            row = session.get(Notification, note.id)
            att = session.get(NotificationAttempt, attempt_id)
            assert row is not None and att is not None
            att.finished_at, att.ok, att.error = finished, not error, error
            if not error:
                row.status, row.sent_at, row.last_error = SENT, finished, ""
                report.sent.append(note.id)
            elif row.attempts >= s.notify_max_attempts:
                row.status, row.last_error = FAILED, error
                report.failed.append(note.id)
                log.error("notification %s to %s failed for good after %d attempts: %s", note.id,
                          note.recipient, row.attempts, error)
            else:
                row.status, row.last_error = PENDING, error
                report.retry_later.append(note.id)
                log.warning("notification %s to %s failed (attempt %d of %d), retrying in %.0f s: %s", note.id,
                            note.recipient, row.attempts, s.notify_max_attempts,
                            backoff_seconds(row.attempts, s.notify_backoff_seconds), error)
            session.add_all([row, att])
            session.commit()
    if report.unrouted:
        log.info("%d notification(s) left pending: no delivery URL configured for their channel "
                 "(set notify_email_url / notify_sms_url / notify_dispatch_url)", len(report.unrouted))
    return report


def drain(*, settings: Settings, max_wait_seconds: float = 0.0, sleep: Callable[[float], None] = time.sleep,
          **kwargs: Any) -> DeliveryReport:
    """Deliver until nothing due is left, waiting out backoffs for up to ``max_wait_seconds`` in total."""
    total = DeliveryReport()
    waited = 0.0
    while True:
        report = deliver_pending(settings=settings, **kwargs)
        total.sent += report.sent
        total.failed += report.failed
        total.skipped += report.skipped
        if not report.retry_later or waited >= max_wait_seconds:
            total.retry_later = report.retry_later
            total.unrouted = report.unrouted
            return total
        step = min(max(0.05, settings.notify_backoff_seconds), max_wait_seconds - waited)
        sleep(step)
        waited += step
