"""The daily re-optimisation against the database: load the day, apply a new plan in one transaction, queue
the notices it owes, escalate what it could not place. The plan itself is the engine's (engine.reoptimize.day).

Every assignment the re-optimisation changes gets a ``ReoptimizationNotice`` row (``models.decision_tables``)
with the window and technician it had before, ``pending`` until its notices are queued. The notices are queued
from those rows (and the rows marked ``queued``) in one transaction, so a crash between applying and notifying
loses nothing: the next run queues what is still pending, and dedupe keys make a retried run queue nothing
twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from engine.dispatch.analysis import DEFAULT_HORIZON
from engine.metrics import day_metrics
from engine.reoptimize.day import PlanScore, ReoptimizedPlan, ReoptimizeOptions, is_better, score_plan
from engine.reoptimize.model import AssignmentOptions
from engine.travel import TravelTimeProvider
from models import (
    ACTIVE_ASSIGNMENT_STATUSES,
    Assignment,
    AssignmentStatus,
    Confirmation,
    Escalation,
    JobRequirements,
    Notification,
    ReoptimizationNotice,
    RequestStatus,
    ServiceRequest,
    Technician,
    TechnicianDay,
    TimeWindow,
)
from truckroll import store
from truckroll.notifications import messages
from truckroll.notifications.delivery import PENDING, SENDING, SENT
from truckroll.settings import Settings

log = logging.getLogger(__name__)

RESOLVED_BY = "reoptimize-day"
CANDIDATE_STATUSES = (RequestStatus.ESCALATED, RequestStatus.RECEIVED, RequestStatus.ANALYSED)


class PlanChanged(RuntimeError):
    """The day's plan changed between loading and applying (a dispatch or a dispatcher wrote meanwhile)."""


@dataclass
class DaySnapshot:
    """The horizon as loaded: shifts with their routes, requirements of every movable or unassigned request."""

    day: date
    days: list[TechnicianDay]
    jobs: dict[int, JobRequirements]
    # unassigned requests offered to the model (escalated or still open)
    candidates: list[int]
    signature: tuple[Any, ...]
    # the horizon's dates (one for a single day) and the visits whose window the customer was told
    dates: list[date] = field(default_factory=list)
    promised: frozenset[int] = frozenset()
    # fixed or promised visits that belong to no shift of the horizon (technician absent all day, ...)
    orphans: list[str] = field(default_factory=list)


class HorizonTooLong(ValueError):
    """More days were asked for than ``reoptimize_max_horizon_days`` allows."""


def horizon_dates(day: date, days: int, *, maximum: int) -> list[date]:
    """``day`` and the next working days (Monday to Friday) after it, ``days`` dates in all.

    Raises
    ------
    HorizonTooLong
        If ``days`` is above ``maximum`` (the setting ``reoptimize_max_horizon_days``) or below 1.
    """
    limit = maximum
    if days < 1 or days > limit:
        raise HorizonTooLong(f"horizon of {days} days refused: it must be 1 to {limit} days "
                             "(TRUCKROLL_REOPTIMIZE_MAX_HORIZON_DAYS)")
    out = [day]
    d = day
    while len(out) < days:
        d += timedelta(days=1)
        if d.weekday() < 5:
            out.append(d)
    return out


def promised_requests(request_ids: list[int], *, session: Session) -> frozenset[int]:
    """The requests whose customer has been given an arrival window: the notice went out, or is written and
    queued (it will go out as written). Their visits keep that window (the technician may change; the customer
    is then told who comes). A notice that failed for good promised nothing."""
    if not request_ids:
        return frozenset()
    rows = session.exec(select(Notification.request_id).where(
        col(Notification.request_id).in_(request_ids), Notification.recipient_kind == "customer",
        col(Notification.status).in_((PENDING, SENDING, SENT)),
        col(Notification.template).in_(("customer_arrival_window", "customer_reschedule",
                                        "customer_confirmation")))).all()
    return frozenset(r for r in rows if r is not None)


def load_horizon(dates: list[date], tz: ZoneInfo, *, session: Session, travel: TravelTimeProvider,
                 rescue: bool = True) -> DaySnapshot:
    """The shifts starting on each of ``dates`` with their routes, the unassigned requests touching them, and
    which visits are promised. Fixed or promised visits of the horizon that no shift holds are listed by name
    in ``orphans``."""
    days: list[TechnicianDay] = []
    candidates: set[int] = set()
    for d in dates:
        days += store.day_plan(d, tz, session=session, live=travel)[0]
        if rescue:
            candidates.update(unassigned_requests(d, tz, session=session))
    routed = {s.request_id for d in days for s in d.stops}
    ids = {s.request_id for d in days for s in d.stops if not s.fixed} | candidates
    jobs = {rid: store.requirements_of(rid, session=session, tz=tz.key) for rid in sorted(ids)}
    start, _ = store.day_bounds(dates[0], tz)
    _, end = store.day_bounds(dates[-1], tz)
    span = _span(days, dates[0], tz, dates[-1])
    promised = promised_requests(sorted(routed), session=session)
    orphans = []
    for a in session.exec(select(Assignment).where(
            col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES), Assignment.scheduled_start >= start,
            Assignment.scheduled_start < end)).all():
        if a.request_id in routed:
            continue
        tech = session.get(Technician, a.technician_id)
        name = tech.name if tech else f"technician {a.technician_id}"
        orphans.append(f"request #{a.request_id} is assigned to {name} at {a.scheduled_start.isoformat()} but "
                       f"{name} has no shift then (absent?); it stays where it is until a dispatcher moves it")
    cands = sorted(candidates)
    return DaySnapshot(day=dates[0], days=days, jobs=jobs, candidates=cands,
                       signature=_signature(session, sorted({d.technician_id for d in days}), span[0], span[1],
                                            cands),
                       dates=list(dates), promised=promised, orphans=orphans)


@dataclass
class AppliedPlan:
    changed_assignments: list[int] = field(default_factory=list)
    new_assignments: list[int] = field(default_factory=list)
    resolved_escalations: list[int] = field(default_factory=list)
    moved_technician: int = 0
    changed_windows: int = 0


def _touches(windows: list[list[str]], start: datetime, end: datetime) -> bool:
    return any(datetime.fromisoformat(a) < end and datetime.fromisoformat(b) > start for a, b in windows)


def _signature(session: Session, tech_ids: list[int], start: datetime, end: datetime,
               candidates: list[int]) -> tuple[Any, ...]:
    rows = session.exec(select(Assignment).where(
        col(Assignment.technician_id).in_(tech_ids), col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES),
        Assignment.scheduled_start < end, Assignment.scheduled_end > start)).all() if tech_ids else []
    mine = tuple(sorted((a.id or 0, a.technician_id, str(a.status), a.scheduled_start.isoformat(),
                         a.scheduled_end.isoformat(), a.window_start.isoformat(), a.window_end.isoformat())
                        for a in rows))
    taken = tuple(sorted(rid for rid in candidates if _has_assignment(session, rid)))
    return mine, taken


def _has_assignment(session: Session, request_id: int) -> bool:
    found = session.exec(select(Assignment.id).where(
        Assignment.request_id == request_id, col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES))).first()
    return found is not None


def unassigned_requests(day: date, tz: Any, *, session: Session) -> list[int]:
    """Requests with no assignment, escalated or still open, whose windows touch ``day``."""
    start, end = store.day_bounds(day, tz)
    rows = session.exec(select(ServiceRequest).where(col(ServiceRequest.status).in_(CANDIDATE_STATUSES))).all()
    out = []
    for r in rows:
        assert r.id is not None
        windows = r.time_windows or [[r.created_at.isoformat(), (r.created_at + DEFAULT_HORIZON).isoformat()]]
        if _touches(windows, start, end) and not _has_assignment(session, r.id):
            out.append(r.id)
    return sorted(out)


def load_day(day: date, tz: ZoneInfo, *, session: Session, travel: TravelTimeProvider,
             rescue: bool = True) -> DaySnapshot:
    """The day's shifts (starting on ``day``) with their routes and the requirements of every request in play."""
    days, _, _ = store.day_plan(day, tz, session=session, live=travel)
    candidates = unassigned_requests(day, tz, session=session) if rescue else []
    ids = {s.request_id for d in days for s in d.stops if not s.fixed} | set(candidates)
    jobs = {rid: store.requirements_of(rid, session=session, tz=tz.key) for rid in sorted(ids)}
    start, end = _span(days, day, tz)
    return DaySnapshot(day=day, days=days, jobs=jobs, candidates=candidates,
                       signature=_signature(session, sorted({d.technician_id for d in days}), start, end, candidates))


def _span(days: list[TechnicianDay], day: date, tz: Any, last: date | None = None) -> tuple[datetime, datetime]:
    start, _ = store.day_bounds(day, tz)
    _, end = store.day_bounds(last or day, tz)
    if days:
        start = min(start, min(d.shift_start for d in days))
        end = max(end, max(d.shift_end for d in days))
    return start, end


# ------------------------------------------------------------------------------------------ applying


def _lock(session: Session, tech_ids: list[int]) -> None:
    """Take the write lock before reading: row locks on PostgreSQL, the database write lock on SQLite."""
    if tech_ids:
        session.execute(update(Technician).where(col(Technician.id).in_(tech_ids)).values(active=Technician.active))


def apply_plan(snapshot: DaySnapshot, plan: ReoptimizedPlan, *, session: Session, tz: Any) -> AppliedPlan:
    """Write the plan in the caller's transaction: moved and re-timed assignments, new ones for rescued
    requests (with their confirmation), resolved escalations. Marks each changed assignment's notices pending.

    Raises
    ------
    PlanChanged
        When the day's assignments changed since ``snapshot`` was loaded; nothing is written.
    """
    tech_ids = sorted({d.technician_id for d in snapshot.days})
    _lock(session, tech_ids)
    start, end = _span(snapshot.days, snapshot.day, tz, snapshot.dates[-1] if snapshot.dates else None)
    if _signature(session, tech_ids, start, end, snapshot.candidates) != snapshot.signature:
        raise PlanChanged(f"the plan of {snapshot.day.isoformat()} changed while it was being re-optimised")
    now = datetime.now(UTC)
    out = AppliedPlan()
    names = {t.id: t.name for t in session.exec(select(Technician).where(col(Technician.id).in_(tech_ids))).all()}
    # The engine builds routes from the jobs: the assignment a visit already has comes from the snapshot.
    current = {s.request_id: s.assignment_id for d in snapshot.days for s in d.stops if s.assignment_id is not None}
    for d in plan.days:
        for s in d.stops:
            if s.fixed:
                continue
            window = plan.windows[s.request_id]
            assignment_id = current.get(s.request_id)
            if assignment_id is not None:
                row = session.get(Assignment, assignment_id)
                assert row is not None
                same = (row.technician_id == d.technician_id and row.scheduled_start == s.start
                        and row.window_start == window.start and row.window_end == window.end)
                if same and abs(row.travel_minutes - s.travel_minutes) < 1e-6:
                    continue
                if not same:
                    notice = session.get(ReoptimizationNotice, assignment_id)
                    if notice is None or notice.state != "pending":
                        # The first change not yet told keeps what the customer and technician were told.
                        notice = notice or ReoptimizationNotice(assignment_id=assignment_id)
                        notice.previous_window_start, notice.previous_window_end = row.window_start, row.window_end
                        notice.previous_technician_id = row.technician_id
                    notice.state, notice.changed_at = "pending", now
                    session.add(notice)
                    out.moved_technician += row.technician_id != d.technician_id
                    out.changed_windows += (row.window_start, row.window_end) != (window.start, window.end)
                    out.changed_assignments.append(assignment_id)
                row.technician_id = d.technician_id
                row.scheduled_start, row.scheduled_end = s.start, s.end
                row.window_start, row.window_end = window.start, window.end
                row.travel_minutes, row.detour_minutes = s.travel_minutes, s.detour_minutes
                session.add(row)
                continue
            request = store.get_request(s.request_id, session=session)
            row = Assignment(request_id=s.request_id, technician_id=d.technician_id, scheduled_start=s.start,
                             scheduled_end=s.end, window_start=window.start, window_end=window.end,
                             travel_minutes=s.travel_minutes, detour_minutes=s.detour_minutes,
                             status=AssignmentStatus.CONFIRMED)
            session.add(row)
            request.status = RequestStatus.ASSIGNED
            session.add(request)
            session.flush()
            assert row.id is not None
            session.add(ReoptimizationNotice(assignment_id=row.id, state="pending", changed_at=now))
            out.new_assignments.append(row.id)
            local = s.start.astimezone(ZoneInfo(str(tz)) if isinstance(tz, str) else tz)
            for esc in session.exec(select(Escalation).where(Escalation.request_id == s.request_id,
                                                             col(Escalation.resolved_at).is_(None))).all():
                esc.resolved_at, esc.resolved_by = now, RESOLVED_BY
                esc.resolution = f"placed by the daily re-optimisation with {names.get(d.technician_id)} at " \
                                 f"{local:%H:%M}"
                session.add(esc)
                assert esc.id is not None
                out.resolved_escalations.append(esc.id)
            if session.exec(select(Confirmation).where(Confirmation.request_id == s.request_id)).first() is None:
                session.add(Confirmation(request_id=s.request_id, assignment_id=row.id, technician_id=d.technician_id,
                                         window_start=window.start, window_end=window.end, estimated_completion=s.end,
                                         route=_route(d)))
    session.flush()
    return out


def _route(d: TechnicianDay) -> list[dict[str, Any]]:
    return [{"request_id": s.request_id, "start": s.start.isoformat(), "end": s.end.isoformat(),
             "window_start": s.window.start.isoformat(), "window_end": s.window.end.isoformat()} for s in d.stops]


# ------------------------------------------------------------------------------------------ notices


def queue_pending_notices(day: date, tz: str, *, session: Session, settings: Settings,
                          travel: TravelTimeProvider) -> list[int]:
    """Queue the reschedule notices of the day's changed assignments (customers whose window or technician
    changed, new customers placed from escalation) and one route update per technician whose route changed;
    mark them queued in the same transaction. Returns the notification ids."""
    z = ZoneInfo(tz)
    start, end = store.day_bounds(day, z)
    rows = [(a, n) for a, n in session.exec(
        select(Assignment, ReoptimizationNotice)
        .join(ReoptimizationNotice, col(ReoptimizationNotice.assignment_id) == Assignment.id)
        .where(col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES), ReoptimizationNotice.state == "pending",
               Assignment.scheduled_start >= start - timedelta(hours=12), Assignment.scheduled_start < end)).all()
        if start <= a.scheduled_start.astimezone(z) < end]
    ids: list[int] = []
    technicians: set[int] = set()
    for a, mark in rows:
        request = store.get_request(a.request_id, session=session)
        tech = store.get_technician(a.technician_id, session=session)
        technicians.add(a.technician_id)
        if mark.previous_technician_id:
            technicians.add(mark.previous_technician_id)
        window = TimeWindow(a.window_start, a.window_end)
        key = f"reoptimize:{a.request_id}:{a.window_start.isoformat()}:{a.window_end.isoformat()}:customer"
        note: Notification | None = None
        if mark.previous_window_start is None or mark.previous_window_end is None:
            note = messages.customer_arrival_window(
                session=session, key=key, request=request, technician_name=tech.name, window=window,
                start=a.scheduled_start, end=a.scheduled_end, tz=tz, company_name=settings.company_name)
        elif ((old := TimeWindow(mark.previous_window_start, mark.previous_window_end)) != window
              or mark.previous_technician_id not in (None, a.technician_id)):
            # A new window, or the same window with another technician (the customer was told a name).
            same = old == window
            note = messages.customer_reschedule(
                session=session, key=f"{key}:technician:{a.technician_id}" if same else key, request=request,
                technician_name=tech.name, old=old, new=window,
                reason="the day's routes were re-planned to cut driving"
                       + ("; your arrival window is unchanged" if same else ""),
                tz=tz, company_name=settings.company_name)
        if note is not None:
            ids.append(note.id or 0)
        mark.state = "queued"
        session.add(mark)
    for tid in sorted(technicians):
        ids.append(_queue_route_update(tid, day, z, tz, session=session, company_name=settings.company_name,
                                       travel=travel))
    session.flush()
    return [i for i in ids if i]


def _queue_route_update(technician_id: int, day: date, z: ZoneInfo, tz: str, *, session: Session,
                        company_name: str, travel: TravelTimeProvider) -> int:
    note = messages.technician_route_update(session=session, technician_id=technician_id, day=day, tz=z,
                                            tz_name=tz, company_name=company_name, live=travel,
                                            key_prefix="reoptimize-route")
    return note.id or 0


# ------------------------------------------------------------------------------------------ escalations


def escalate_unplaced(unplaced: dict[int, tuple[str, dict[int, list[str]]]], *, session: Session,
                      names: dict[int, str], settings: Settings, notes: list[int] | None = None) -> list[int]:
    """One open escalation (and one dispatch alert) per request the plan could not place and nobody has
    assigned meanwhile; an escalation already open is kept as it is. Returns the escalations' ids; ``notes``
    (when given) receives the alerts' ids, for the caller to deliver."""
    ids = []
    for rid, (reason, why) in sorted(unplaced.items()):
        if _has_assignment(session, rid):
            continue
        row = store.get_request(rid, session=session)
        if row.status in (RequestStatus.CANCELLED, RequestStatus.COMPLETED):
            continue
        details = {str(t): {"name": names.get(t, f"technician {t}"), "reasons": r} for t, r in why.items()}
        esc = store.open_escalation(rid, f"daily re-optimisation: {reason}", details, session=session)
        assert esc.id is not None
        alert = messages.escalation_alert(session=session, escalation_id=esc.id, request=row, reason=esc.reason,
                                          why_not=[(names.get(t, str(t)), r) for t, r in why.items()],
                                          dispatch_email=settings.dispatch_email, console_url=settings.console_url)
        ids.append(esc.id)
        if notes is not None:
            notes.extend(messages.ids_of(alert))
    return ids


# ------------------------------------------------------------------ the run's options and its verdict


def reoptimize_options(s: Settings, time_limit_seconds: float, mip_gap: float, allow_window_changes: bool | None = None,
                       cbc_executable: str | None = None) -> ReoptimizeOptions:
    """The engine's options from the settings (dispatch rules, CBC) and the run's parameters."""
    rules = s.dispatch
    allow = rules.promised_window_policy == "notify" if allow_window_changes is None else allow_window_changes
    return ReoptimizeOptions(
        assignment=AssignmentOptions(utilisation_target=rules.utilisation_target,
                                     parts_policy=rules.missing_parts_policy),
        time_limit_seconds=time_limit_seconds, mip_gap=mip_gap, cbc_executable=cbc_executable or s.cbc_executable,
        allow_window_changes=allow, arrival_window_minutes=rules.arrival_window_minutes,
        arrival_window_rounding_minutes=rules.arrival_window_rounding_minutes,
        parts_detour_minutes=rules.parts_detour_minutes)


@dataclass
class Comparison:
    better: bool
    reason: str
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    jobs_per_technician: list[dict[str, Any]] = field(default_factory=list)


def _metrics(days: Any, snapshot: DaySnapshot, unassigned: int, score: PlanScore,
             travel: TravelTimeProvider) -> dict[str, float]:
    values = {rid: j.estimated_value for rid, j in snapshot.jobs.items()}
    m = day_metrics(days, travel, values=values).as_dict()
    return {"jobs scheduled": m["jobs"], "unassigned requests": unassigned,
            "total travel (min)": m["total_travel_minutes"], "travel per job (min)": m["travel_per_job_minutes"],
            "average utilisation": m["average_utilisation"], "busiest technician utilisation": score.max_utilisation,
            "jobs per technician": m["jobs_per_technician"], "revenue ($)": score.revenue,
            "expected upsell ($)": score.upsell}


def compare_plans(snapshot: DaySnapshot, plan: ReoptimizedPlan, options: ReoptimizeOptions, *,
                  travel: TravelTimeProvider) -> Comparison:
    """Value served first, then travel net of upsell, then balance: the new plan must be strictly better."""
    old = score_plan(snapshot.days, snapshot.jobs, travel, options)
    new = score_plan(plan.days, snapshot.jobs, travel, options)
    before = _metrics(snapshot.days, snapshot, len(snapshot.candidates), old, travel)
    after = _metrics(plan.days, snapshot, len(plan.unplaced), new, travel)
    names = {d.technician_id: d.name for d in snapshot.days}
    per_tech: dict[int, dict[str, Any]] = {}
    for label, days in (("before", snapshot.days), ("after", plan.days)):
        for d in days:
            row = per_tech.setdefault(d.technician_id, {"technician": names[d.technician_id], "before": 0, "after": 0})
            row[label] += len(d.stops)
    if not plan.valid:
        better, reason = False, plan.message
    elif is_better(new, old, options.min_gain):
        gained = new.served_weight > old.served_weight + 1e-6
        better = True
        reason = ("more work served" if gained else
                  f"travel {old.travel_minutes:.0f} -> {new.travel_minutes:.0f} min, expected upsell "
                  f"${old.upsell:,.0f} -> ${new.upsell:,.0f}" if abs(new.net - old.net) > options.min_gain
                  else "better balanced")
    else:
        better, reason = False, "no better plan found: the current plan stays"
    return Comparison(better=better, reason=reason, before=before, after=after,
                      jobs_per_technician=sorted(per_tech.values(), key=lambda r: r["technician"]))


def parse_day(value: str | None, tz: str) -> date:
    """``value`` as a date (YYYY-MM-DD); today in ``tz`` (the company's time zone) when None."""
    if value is None or value == "":
        return datetime.now(ZoneInfo(tz)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"day must be YYYY-MM-DD (got {value!r})") from None
