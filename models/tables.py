"""SQLModel tables. Nothing here imports prefect, fastapi or pyomo."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dt(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


class RequestStatus(StrEnum):
    RECEIVED = "received"
    ANALYSED = "analysed"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class AssignmentStatus(StrEnum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOCKED = "locked"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Assignments in these states hold the technician's time.
ACTIVE_ASSIGNMENT_STATUSES = (
    AssignmentStatus.TENTATIVE,
    AssignmentStatus.CONFIRMED,
    AssignmentStatus.LOCKED,
    AssignmentStatus.IN_PROGRESS,
    AssignmentStatus.COMPLETED,
)


class Channel(StrEnum):
    PORTAL = "portal"
    CALL_CENTRE = "call_centre"
    DISPATCHER = "dispatcher"
    BOOKING = "booking"


class Technician(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    phone: str = ""
    email: str = ""
    home_lat: float
    home_lon: float
    # skill name -> level 1..5
    skills: dict[str, int] = _json()
    # certification name -> expiry date (ISO yyyy-mm-dd)
    certifications: dict[str, str] = _json()
    upsell_multiplier: float = 1.0
    # part name -> quantity on the van
    van_inventory: dict[str, int] = _json()
    active: bool = True


class Shift(SQLModel, table=True):
    __table_args__ = (Index("ix_shift_tech_start", "technician_id", "start"),)

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id")
    start: datetime = _dt()
    end: datetime = _dt()
    kind: str = "regular"  # regular | on_call
    # On-call shifts may accept only urgent work: priority <= max_priority (1 = emergency).
    max_priority: int | None = None


class JobType(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    trade: str = ""
    default_duration_minutes: int
    # complexity ("low" | "medium" | "high") -> {skill: minimum level}
    skill_levels_by_complexity: dict[str, dict[str, int]] = _json()
    required_certifications: list[str] = _json(list)
    typical_parts: dict[str, int] = _json()
    typical_value: float = 0.0


class ServiceRequest(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str | None = Field(default=None, index=True, unique=True)
    # SHA-256 of the body delivered with the key: the same key with another body is refused.
    idempotency_fingerprint: str | None = None
    customer_name: str
    customer_phone: str = ""
    customer_email: str = ""
    address: str
    lat: float
    lon: float
    job_type: str = Field(index=True)
    complexity: str = "medium"
    description: str = ""
    required_skills: dict[str, int] = _json()
    required_certifications: list[str] = _json(list)
    parts_needed: dict[str, int] = _json()
    estimated_duration_minutes: int | None = None
    priority: int = 5
    estimated_value: float = 0.0
    # [[start_iso, end_iso], ...] when the customer can receive the technician
    time_windows: list[list[str]] = _json(list)
    preferred_technician_ids: list[int] = _json(list)
    excluded_technician_ids: list[int] = _json(list)
    channel: str = Channel.PORTAL
    status: str = Field(default=RequestStatus.RECEIVED, index=True)
    notes: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Assignment(SQLModel, table=True):
    __table_args__ = (Index("ix_assignment_tech_start", "technician_id", "scheduled_start"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    technician_id: int = Field(foreign_key="technician.id")
    scheduled_start: datetime = _dt()
    scheduled_end: datetime = _dt()
    window_start: datetime = _dt()
    window_end: datetime = _dt()
    travel_minutes: float = 0.0
    # Part of travel_minutes spent detouring to the parts depot; kept when the route before the job changes.
    detour_minutes: float = 0.0
    status: str = Field(default=AssignmentStatus.CONFIRMED, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Escalation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    reason: str
    # technician id -> why not, as a dispatcher reads it
    details: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = _dt(nullable=True)
    resolved_by: str | None = None
    resolution: str | None = None


class Notification(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_notification_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int | None = Field(default=None, foreign_key="servicerequest.id", index=True)
    # Same key = same message: a retried flow run never queues it twice.
    dedupe_key: str
    recipient: str
    recipient_kind: str  # customer | technician | dispatch
    channel: str = "email"
    template: str
    subject: str
    body: str
    body_html: str = ""
    status: str = Field(default="pending", index=True)  # pending | sent | failed
    attempts: int = 0
    last_error: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = _dt(nullable=True)


class Confirmation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True, unique=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    technician_id: int = Field(foreign_key="technician.id")
    window_start: datetime = _dt()
    window_end: datetime = _dt()
    estimated_completion: datetime = _dt()
    # the technician's route after the update: [{request_id, start, end, window_start, window_end}]
    route: list[dict[str, Any]] = _json(list)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class TravelTimeCache(SQLModel, table=True):
    """Driving time between two points as a routing service (openrouteservice) answered it, until it expires."""

    __table_args__ = (UniqueConstraint("profile", "origin_key", "destination_key", name="uq_travel_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    profile: str = "driving-car"
    # "lat,lon" rounded to 5 decimals (about a metre): the same address always hits the same row.
    origin_key: str = Field(index=True)
    destination_key: str
    duration_seconds: float
    distance_metres: float | None = None
    fetched_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = _dt(index=True)


class NotificationAttempt(SQLModel, table=True):
    """One try at sending an outbox message: when, and what went wrong (the backoff counts from here)."""

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True)
    attempt: int
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = _dt(nullable=True)
    ok: bool = False
    error: str = ""
