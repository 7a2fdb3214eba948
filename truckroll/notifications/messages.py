"""One builder per message template: each knows its template's context and its dedupe key, and queues it in the
outbox (``truckroll.notifications.outbox.queue``). Callers never assemble a template context themselves."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from engine.travel import TravelTimeProvider
from models import Notification, ServiceRequest, StopChange, Technician, TimeWindow
from truckroll import store
from truckroll.notifications import outbox as notify


def ids_of(*notes: Notification | None) -> list[int]:
    """The ids of the messages a builder queued (a builder returns None when the recipient has no address)."""
    return [n.id for n in notes if n is not None and n.id is not None]


def _customer(request: ServiceRequest) -> tuple[str, str] | None:
    """(recipient, channel) of the request's customer, or None when they left no contact."""
    return notify.customer_contact(request)


def _technician_address(tech: Technician) -> str:
    return tech.email or tech.phone or f"technician-{tech.id}"


def _base(request: ServiceRequest, *, tz: str, company_name: str) -> dict[str, Any]:
    return dict(request_id=request.id, tz=tz, company_name=company_name, customer_name=request.customer_name,
                address=request.address, job_type=request.job_type, description=request.description,
                priority=request.priority)


def customer_arrival_window(*, session: Session, key: str, request: ServiceRequest, technician_name: str,
                            window: TimeWindow, start: datetime, end: datetime, tz: str,
                            company_name: str) -> Notification | None:
    to = _customer(request)
    if to is None:
        return None
    return notify.queue(
        session=session, dedupe_key=key, template="customer_arrival_window", recipient=to[0],
        recipient_kind="customer", channel=to[1], request_id=request.id,
        context=_base(request, tz=tz, company_name=company_name) | dict(
            technician_name=technician_name, window_start=window.start, window_end=window.end, start=start,
            end=end))


def technician_job_card(*, session: Session, key: str, request: ServiceRequest, tech: Technician,
                        window: TimeWindow, start: datetime, end: datetime, tz: str, company_name: str,
                        parts: dict[str, int], missing_parts: dict[str, int],
                        route: list[dict[str, Any]]) -> Notification:
    return notify.queue(
        session=session, dedupe_key=key, template="technician_job_card", recipient=_technician_address(tech),
        recipient_kind="technician", request_id=request.id,
        context=_base(request, tz=tz, company_name=company_name) | dict(
            technician_name=tech.name, window_start=window.start, window_end=window.end, start=start, end=end,
            lat=request.lat, lon=request.lon, customer_phone=request.customer_phone, parts=parts,
            missing_parts=missing_parts, notes=request.notes, route=route))


def dispatch_summary(*, session: Session, key: str, request: ServiceRequest, technician_name: str,
                     window: TimeWindow, start: datetime, end: datetime, tz: str, company_name: str,
                     dispatch_email: str, added_travel_minutes: float, utilisation_before: float,
                     utilisation_after: float, score_total: float, candidates: int, eligible: int,
                     moved: list[StopChange]) -> Notification:
    return notify.queue(
        session=session, dedupe_key=key, template="dispatch_summary", recipient=dispatch_email,
        recipient_kind="dispatch", request_id=request.id,
        context=_base(request, tz=tz, company_name=company_name) | dict(
            technician_name=technician_name, window_start=window.start, window_end=window.end, start=start,
            end=end, channel=request.channel, added_travel_minutes=added_travel_minutes,
            utilisation_before=utilisation_before, utilisation_after=utilisation_after, score_total=score_total,
            candidates=candidates, eligible=eligible, moved=moved))


def customer_reschedule(*, session: Session, key: str, request: ServiceRequest, technician_name: str,
                        old: TimeWindow, new: TimeWindow, reason: str, tz: str,
                        company_name: str) -> Notification | None:
    """A customer whose visit moved (a new window, or a new technician in the same window)."""
    to = _customer(request)
    if to is None:
        return None
    return notify.queue(
        session=session, dedupe_key=key, template="customer_reschedule", recipient=to[0],
        recipient_kind="customer", channel=to[1], request_id=request.id,
        context=dict(request_id=request.id, tz=tz, company_name=company_name,
                     customer_name=request.customer_name, technician_name=technician_name,
                     old_window_start=old.start, old_window_end=old.end, window_start=new.start,
                     window_end=new.end, reason=reason))


def customer_dispatch_will_call(*, session: Session, key: str, request: ServiceRequest, old: TimeWindow,
                                reason: str, tz: str, company_name: str) -> Notification | None:
    """A customer whose promised visit could not be kept and whose request went to a dispatcher."""
    to = _customer(request)
    if to is None:
        return None
    return notify.queue(
        session=session, dedupe_key=key, template="customer_dispatch_will_call", recipient=to[0],
        recipient_kind="customer", channel=to[1], request_id=request.id,
        context=dict(request_id=request.id, tz=tz, company_name=company_name,
                     customer_name=request.customer_name, old_window_start=old.start, old_window_end=old.end,
                     reason=reason))


def console_link(request_id: int, console_url: str) -> str | None:
    """The console page of a request (``console_url`` is the setting TRUCKROLL_CONSOLE_URL), for links from Prefect
    and the e-mails; None when the console's address is not configured."""
    base = console_url.rstrip("/")
    return f"{base}/requests/{request_id}" if base else None


def escalation_alert(*, session: Session, escalation_id: int, request: ServiceRequest, reason: str,
                     why_not: list[tuple[str, list[str]]], dispatch_email: str, console_url: str) -> Notification:
    return notify.queue(
        session=session, dedupe_key=f"escalation:{escalation_id}:dispatch", template="escalation_alert",
        recipient=dispatch_email, recipient_kind="dispatch", request_id=request.id,
        context=dict(request_id=request.id, customer_name=request.customer_name, address=request.address,
                     job_type=request.job_type, priority=request.priority, reason=reason,
                     escalation_id=escalation_id, why_not=[(n, r) for n, r in why_not if r][:25],
                     console_url=console_link(request.id, console_url) if request.id is not None else None))


def customer_eta_update(*, session: Session, key: str, request: ServiceRequest, technician_name: str,
                        eta: datetime, window: TimeWindow, reason: str, tz: str,
                        company_name: str) -> Notification | None:
    """A customer told when the technician now arrives (inside the promised window)."""
    to = _customer(request)
    if to is None:
        return None
    return notify.queue(
        session=session, dedupe_key=key, template="customer_eta_update", recipient=to[0],
        recipient_kind="customer", channel=to[1], request_id=request.id,
        context=_base(request, tz=tz, company_name=company_name) | dict(
            technician_name=technician_name, eta=eta, window_start=window.start, window_end=window.end,
            reason=reason))


def technician_route(*, session: Session, key: str, tech: Technician, day: date, tz_name: str,
                     company_name: str, route: list[dict[str, Any]], travel_minutes: float) -> Notification:
    """The ``technician_route_update`` message for a route the caller holds (the live day's re-timed ETAs);
    ``route``: one dict per stop (request_id, start, end, window_start, window_end, address, job_type,
    customer_name, fixed)."""
    return notify.queue(
        session=session, dedupe_key=key, template="technician_route_update", recipient=_technician_address(tech),
        recipient_kind="technician",
        context=dict(tz=tz_name, technician_name=tech.name, day=day, company_name=company_name, route=route,
                     travel_minutes=travel_minutes))


def technician_route_update(*, session: Session, technician_id: int, day: date, tz: Any, tz_name: str,
                            company_name: str, live: TravelTimeProvider | None,
                            key_prefix: str = "route") -> Notification:
    """The technician's whole route of ``day`` as it now stands (read from the database, with the live state when
    ``live`` is the travel provider). The key holds a digest of the route, so the same route is never sent twice
    and every change is."""
    tech = store.get_technician(technician_id, session=session)
    start, end = store.day_bounds(day, tz)
    days = [d for d in store.technician_days(session=session, start=start, end=end, tz=tz_name, live=live,
                                             technician_ids=[technician_id])
            if start <= d.shift_start < end]
    stops = [s for d in days for s in d.stops]
    requests = {s.request_id: store.get_request(s.request_id, session=session) for s in stops}
    route = [dict(request_id=s.request_id, start=s.start, end=s.end, window_start=s.window.start,
                  window_end=s.window.end, address=requests[s.request_id].address,
                  job_type=requests[s.request_id].job_type, customer_name=requests[s.request_id].customer_name,
                  fixed=s.fixed) for s in stops]
    digest = hashlib.sha1(repr([(s.request_id, s.start.isoformat()) for s in stops]).encode()).hexdigest()[:12]
    return technician_route(session=session, key=f"{key_prefix}:{technician_id}:{day.isoformat()}:{digest}",
                            tech=tech, day=day, tz_name=tz_name, company_name=company_name, route=route,
                            travel_minutes=sum(s.travel_minutes for s in stops))


def operator_alert(*, session: Session, key: str, recipient: str, subject: str, body: str, automation: str,
                   company_name: str) -> Notification:
    """An operations alert (a crashed or failed run, a late scheduled run, a re-optimisation not applied, a burst
    of escalations) to operators or dispatch, from a Prefect automation (flows/alerts.py)."""
    return notify.queue(session=session, dedupe_key=key, template="operator_alert", recipient=recipient,
                        recipient_kind="dispatch",
                        context=dict(subject=subject, body=body, automation=automation, company_name=company_name))
