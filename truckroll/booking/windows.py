"""Booking against the database: the windows to offer, the capacity view, and booking a window.

The grading is the engine's (``engine.booking.windows``); this module reads the technicians' routes, the forecast
(the history of requests, cached per day, or a configured file) and writes the booked request, which then
runs through the dispatch flow like any other. See docs/booking.md.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
from sqlmodel import Session, col, select

from engine.booking.forecast import (
    DemandRecord,
    Forecast,
    WindowGrid,
    forecast_from_dict,
    forecast_from_history,
    main_skill,
)
from engine.booking.windows import Availability, availability, capacity_view
from engine.dispatch.analysis import analyse_requirements
from models import (
    ACTIVE_ASSIGNMENT_STATUSES,
    Assignment,
    JobRequirements,
    JobType,
    JobTypeSpec,
    Location,
    RequestStatus,
    ServiceRequest,
    TimeWindow,
)
from models.booking import BookingCreate, ProspectiveJob
from models.schemas import FieldError, RequestValidationError
from truckroll import store
from truckroll.db import session_scope
from truckroll.settings import Settings

log = logging.getLogger(__name__)


class WindowTaken(RuntimeError):
    """The chosen window cannot be booked any more; ``options`` are the windows that still can."""

    def __init__(self, message: str, options: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.options = options


def window_grid(settings: Settings) -> WindowGrid:
    return WindowGrid(settings.company_timezone, tuple(settings.booking.window_hours))


# ------------------------------------------------------------------------------------------ validation


def parse_job(data: dict[str, Any] | ProspectiveJob, model: type[ProspectiveJob] = ProspectiveJob) -> Any:
    """The input shape, or a RequestValidationError naming every failing field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise RequestValidationError.from_pydantic(exc) from None


def validate_job(job: ProspectiveJob, *, session: Session, now: datetime, horizon_days: int) -> JobType:
    """Every reference and time: the job type, skills, technicians, windows not past, the territory.

    Raises
    ------
    RequestValidationError
        Naming every failing field.
    """
    errors = store.reference_errors(job.job_type, job.required_skills, job.time_windows, session=session, now=now,
                                    horizon_days=horizon_days)
    jt = session.exec(select(JobType).where(JobType.name == job.job_type)).first()
    if isinstance(job, BookingCreate) and job.window.start <= now:
        errors.append(FieldError(field="window", message="window is in the past"))
    outside = outside_every_territory(Location(job.lat, job.lon), session=session)
    if outside:
        errors.append(FieldError(field="location", message=outside))
    if errors:
        raise RequestValidationError(errors)
    assert jt is not None
    return jt


def outside_every_territory(location: Location, *, session: Session) -> str | None:
    """A message when territories are configured and none contains ``location``; None otherwise."""
    from engine.rules.territories import territory_of
    from truckroll.rules import store as rules_store
    found = rules_store.territories(session=session)
    if found and territory_of(location, found) is None:
        return f"({location.lat}, {location.lon}) is outside every territory the company serves"
    return None


def requirements(job: ProspectiveJob, jt: JobType, *, now: datetime) -> JobRequirements:
    """The prospective job as the engine sees it (request id 0: not persisted)."""
    spec = JobTypeSpec(name=jt.name, default_duration_minutes=jt.default_duration_minutes,
                       skill_levels_by_complexity=jt.skill_levels_by_complexity,
                       required_certifications=tuple(jt.required_certifications), typical_parts=jt.typical_parts)
    value = job.estimated_value if job.estimated_value is not None else jt.typical_value
    return analyse_requirements(
        request_id=0, location=Location(job.lat, job.lon), job_type=spec, complexity=job.complexity,
        required_skills=job.required_skills, required_certifications=job.required_certifications,
        duration_minutes=job.estimated_duration_minutes,
        windows=[TimeWindow(w.start, w.end) for w in job.time_windows], priority=job.priority,
        estimated_value=value, preferred_technician_ids=job.preferred_technician_ids,
        excluded_technician_ids=job.excluded_technician_ids, received_at=now)


# -------------------------------------------------------------------------------------------- forecast

_forecast_cache: dict[tuple[Any, ...], Forecast] = {}
_forecast_lock = threading.Lock()


def clear_forecast_cache() -> None:
    with _forecast_lock:
        _forecast_cache.clear()


def _skill_of(row: ServiceRequest, job_types: dict[str, JobType]) -> str:
    levels = dict(row.required_skills)
    jt = job_types.get(row.job_type)
    if jt is not None:
        for s, lvl in (jt.skill_levels_by_complexity.get(row.complexity) or {}).items():
            levels[s] = max(levels.get(s, 0), lvl)
    return main_skill(levels, fallback=jt.trade if jt is not None else row.job_type)


def history_records(*, session: Session, since: datetime, until: datetime) -> list[DemandRecord]:
    """Past requests as demand: served at their assignment's start (else their first window's start)."""
    job_types = {jt.name: jt for jt in session.exec(select(JobType)).all()}
    rows = session.exec(select(ServiceRequest).where(ServiceRequest.created_at >= since - timedelta(days=60),
                                                     ServiceRequest.created_at < until,
                                                     ServiceRequest.status != RequestStatus.CANCELLED)).all()
    starts = dict(session.exec(select(Assignment.request_id, Assignment.scheduled_start).where(
        col(Assignment.request_id).in_([r.id for r in rows]),
        col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES))).all()) if rows else {}
    out = []
    for r in rows:
        when = starts.get(r.id) if r.id is not None else None
        if when is None and r.time_windows:
            when = datetime.fromisoformat(r.time_windows[0][0])
        if when is None or not since <= when < until:
            continue
        out.append(DemandRecord(when, _skill_of(r, job_types), r.estimated_value,
                                lead_hours=(when - r.created_at).total_seconds() / 3600))
    return out


def load_forecast(*, session: Session, today: date, grid: WindowGrid, settings: Settings) -> Forecast:
    """The configured forecast file, or the last K weeks of history; computed once per day and database."""
    weeks = settings.booking.forecast_weeks
    key = (settings.database_url, settings.booking_forecast_file, today, weeks, grid)
    with _forecast_lock:
        cached = _forecast_cache.get(key)
    if cached is not None:
        return cached
    if settings.booking_forecast_file:
        path = Path(settings.booking_forecast_file)
        try:
            fc = forecast_from_dict(json.loads(path.read_text()), grid)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"booking_forecast_file {path}: {exc}") from None
    else:
        start = datetime.combine(today - timedelta(weeks=weeks), datetime.min.time(), tzinfo=grid.tz)
        end = datetime.combine(today, datetime.min.time(), tzinfo=grid.tz)
        fc = forecast_from_history(history_records(session=session, since=start, until=end), grid, weeks=weeks,
                                   until=today)
    with _forecast_lock:
        _forecast_cache[key] = fc
    return fc


def booked_counts(*, session: Session, grid: WindowGrid, start: datetime, end: datetime
                  ) -> dict[tuple[date, int, str], int]:
    """Jobs already holding technician time, per (day, window, skill)."""
    job_types = {jt.name: jt for jt in session.exec(select(JobType)).all()}
    rows = session.exec(select(Assignment, ServiceRequest).join(
        ServiceRequest, col(ServiceRequest.id) == Assignment.request_id).where(
        col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES), Assignment.scheduled_start >= start,
        Assignment.scheduled_start < end)).all()
    out: dict[tuple[date, int, str], int] = {}
    for a, r in rows:
        where = grid.locate(a.scheduled_start)
        if where is None:
            continue
        k = (where[0], where[1], _skill_of(r, job_types))
        out[k] = out.get(k, 0) + 1
    return out


# -------------------------------------------------------------------------------------- availability


@dataclass
class AvailabilityAnswer:
    availability: Availability
    offered: list[dict[str, Any]]
    grid: WindowGrid
    job: JobRequirements

    def as_dict(self) -> dict[str, Any]:
        tz = self.grid.tz
        return {
            "offered": self.offered,
            "options": [o.as_dict(tz) for o in self.availability.options],
            "unavailable": [{"start": u.window.start.astimezone(tz).isoformat(),
                             "end": u.window.end.astimezone(tz).isoformat(), "reason": u.reason}
                            for u in self.availability.unavailable],
            "reason": self.availability.reason,
        }


def compute_availability(job: ProspectiveJob, *, session: Session, now: datetime, settings: Settings,
                         allowed: list[TimeWindow] | None = None, policy: str = "value-aware") -> AvailabilityAnswer:
    """The graded windows for a validated prospective job, read from the database.

    Raises
    ------
    RequestValidationError
        On bad input (see ``validate_job``).
    """
    jt = validate_job(job, session=session, now=now, horizon_days=settings.planning_horizon_days)
    bs = settings.booking
    if job.days is not None:
        bs = bs.model_copy(update={"horizon_days": job.days})
    grid = WindowGrid(settings.company_timezone, tuple(bs.window_hours))
    req = requirements(job, jt, now=now)
    windows = allowed if allowed is not None else [TimeWindow(w.start, w.end) for w in job.time_windows]
    start, end = now, now + timedelta(days=bs.horizon_days + 1)
    from truckroll.travel.provider import get_travel_provider

    travel = get_travel_provider(settings)
    days = store.technician_days(session=session, start=start, end=end, tz=settings.company_timezone, live=travel)
    forecast = load_forecast(session=session, today=now.astimezone(grid.tz).date(), grid=grid, settings=settings)
    booked = booked_counts(session=session, grid=grid, start=start, end=end)
    av = availability(req, days, travel, settings.dispatch, grid, now=now, settings=bs,
                      forecast=forecast, booked=booked, allowed=windows)
    offered = [o.as_dict(grid.tz) for o in av.offers(policy, bs.max_offers, bs.value_aware_order)]
    return AvailabilityAnswer(av, offered, grid, req)


def availability_for(data: dict[str, Any] | ProspectiveJob, *, settings: Settings,
                     now: datetime | None = None) -> dict[str, Any]:
    """``POST /availability``: the offered windows, every bookable window graded, and why the others are not."""
    job = parse_job(data)
    now = now or datetime.now(UTC)
    with session_scope() as session:
        return compute_availability(job, session=session, now=now, settings=settings).as_dict()


def capacity(day: date, *, settings: Settings, skill: str | None = None) -> list[dict[str, Any]]:
    """``GET /capacity``: per window of ``day``, the share already booked and the technicians still free."""
    from truckroll.travel.provider import get_travel_provider

    grid = window_grid(settings)
    with session_scope() as session:
        start, end = store.day_bounds(day, grid.tz)
        days = store.technician_days(session=session, start=start, end=end, tz=settings.company_timezone,
                                     live=get_travel_provider(settings))
        if skill is not None and skill not in store.known_skills(session=session):
            raise RequestValidationError([FieldError(field="skill", message=f"unknown skill {skill!r}")])
    return [w.as_dict(grid) for w in capacity_view(days, grid, day, settings.booking, skill)]


# ---------------------------------------------------------------------------------------------- book


def _fresh_options(job: BookingCreate, now: datetime, settings: Settings) -> list[dict[str, Any]]:
    with session_scope() as session:
        return compute_availability(job, session=session, now=now, settings=settings).offered


def book(data: dict[str, Any] | BookingCreate, *, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Book the customer's chosen window: the request (channel ``booking``) for exactly that window, decided by the
    one decision (``truckroll.dispatch.decision``) and committed (``truckroll.dispatch.commit``: the assignment, its
    decision record, the confirmation and the messages) in one transaction, or nothing at all. The caller hands
    the booked request to its dispatch flow run afterwards, for the record in Prefect and the delivery.

    A booking never displaces other work (that is an emergency's privilege, through the intake).

    Raises
    ------
    RequestValidationError
        On bad input (unknown job type, a window in the past or not on the booking grid, ...); nothing written.
    WindowTaken
        When the window cannot be booked (taken meanwhile, also by a concurrent booking): nothing is
        written, and ``options`` holds the windows that can be booked now.
    """
    from truckroll.dispatch import commit
    from truckroll.dispatch import decision as one_decision
    from truckroll.travel.provider import get_travel_provider

    job: BookingCreate = parse_job(data, BookingCreate)
    now = now or datetime.now(UTC)
    grid = window_grid(settings)
    window = TimeWindow(job.window.start, job.window.end)
    where = grid.locate(window.start)
    if where is None or grid.window(*where) != window:
        labels = ", ".join(grid.label(i) for i in range(len(grid.hours)))
        raise RequestValidationError([FieldError(
            field="window", message=f"not a bookable window (the windows are {labels}, {grid.timezone})")])
    with session_scope() as session:
        answer = compute_availability(job, session=session, now=now, settings=settings, allowed=[window])
    if not answer.availability.options:
        reason = answer.availability.reason or "the window cannot be booked"
        raise WindowTaken(f"window {window.start.isoformat()} is no longer available: {reason}",
                          _fresh_options(job, now, settings))
    payload = job.model_dump(include={"customer_name", "customer_phone", "customer_email", "address", "lat", "lon",
                                      "job_type", "complexity", "description", "required_skills",
                                      "required_certifications", "estimated_duration_minutes", "priority",
                                      "preferred_technician_ids", "excluded_technician_ids", "notes"})
    payload["address"] = payload["address"] or f"{job.lat}, {job.lon}"
    # The value the offer was graded with (the job type's typical value when the customer gave none).
    payload["estimated_value"] = answer.job.estimated_value
    payload["time_windows"] = [{"start": window.start.isoformat(), "end": window.end.isoformat()}]
    payload["channel"] = "booking"
    tz = settings.company_timezone
    travel = get_travel_provider(settings)
    try:
        with session_scope() as session:
            row, _ = store.create_request(payload, session=session, now=now,
                                          horizon_days=settings.planning_horizon_days)
            assert row.id is not None
            wanted = one_decision.load_job(row.id, session=session, tz=tz)
            days = one_decision.load_days(wanted, session=session, travel=travel, tz=tz)
            decision = one_decision.decide(wanted, days, travel=travel, rules=settings.dispatch, tz=tz,
                                           session=session)
            if decision.chosen is None or decision.displaced:
                raise commit.ScheduleConflict(decision.escalation_reason or "it would displace other work")
            result = commit.commit_assignment(decision, wanted, session=session, travel=travel, settings=settings,
                                              decided_by="booking")
            commit.write_confirmation(result, session=session)
    except commit.ScheduleConflict as exc:  # the transaction rolled back: nothing of the booking is left
        raise WindowTaken(f"window {window.start.isoformat()} was taken meanwhile: {exc}",
                          _fresh_options(job, now, settings)) from None
    return {"request_id": result.request_id, "status": "assigned", "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(), "technician_id": result.technician_id,
            "arrival_window_start": result.window_start.isoformat(),
            "arrival_window_end": result.window_end.isoformat()}
