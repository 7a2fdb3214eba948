"""Tables of a company's set-up beyond the dispatch rules (customers, shift patterns and their exceptions) and
of the live day (each stop's progress and the events the technicians and portals report).

Loaded and exported by ``truckroll.company.sync``; the live day is ``truckroll.live``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def _dt(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class Customer(SQLModel, table=True):
    """A customer of the company: where they are, when they cannot receive anyone, whom they want (or not).

    A request that names the customer (``customer_ref``) takes their closed hours and preferences."""

    id: int | None = Field(default=None, primary_key=True)
    # The company's own reference (CRM id): the key of the declarative sync.
    ref: str = Field(index=True, unique=True)
    name: str
    phone: str = ""
    email: str = ""
    address: str = ""
    lat: float
    lon: float
    notes: str = ""
    # [{"weekday": 0..6, "start": "12:00", "end": "13:00"}] in the company's (or territory's) local time.
    closed_hours: list[dict[str, Any]] = _json(list)
    preferred_technician_ids: list[int] = _json(list)
    excluded_technician_ids: list[int] = _json(list)


class ShiftPattern(SQLModel, table=True):
    """A named weekly shift template ("weekdays 08:00-17:00"): technicians on it work its hours every week."""

    __tablename__ = "shiftpattern"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    # [{"weekday": 0..6, "start": "08:00", "end": "17:00"}]
    hours: list[dict[str, Any]] = _json(list)


class TechnicianShiftPattern(SQLModel, table=True):
    """Which pattern a technician works (their weekly operating hours are the pattern's)."""

    __tablename__ = "technicianshiftpattern"

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id", unique=True)
    pattern_id: int = Field(foreign_key="shiftpattern.id", index=True)


class ShiftException(SQLModel, table=True):
    """One date on which a technician does not work their pattern: off (no start/end) or other hours."""

    __tablename__ = "shiftexception"
    __table_args__ = (UniqueConstraint("technician_id", "day", name="uq_shiftexception_tech_day"),)

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id")
    day: date
    start: str | None = None  # "HH:MM"; None with end None = off all day
    end: str | None = None
    reason: str = ""


class StopProgress(SQLModel, table=True):
    """What really happens to one assignment on the day: the plan first told, the actual times, the ETA."""

    __tablename__ = "stopprogress"

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", unique=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    technician_id: int = Field(foreign_key="technician.id", index=True)
    # planned | en_route | arrived | completed | cannot_complete | not_home | cancelled
    state: str = "planned"
    planned_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    planned_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    departed_at: datetime | None = _dt()
    eta: datetime | None = _dt()
    arrived_at: datetime | None = _dt()
    finished_at: datetime | None = _dt()
    # Minutes the technician said the current leg or job runs over (cumulative).
    late_minutes: float = 0.0
    follow_up_request_id: int | None = Field(default=None, foreign_key="servicerequest.id")
    updated_at: datetime = Field(default_factory=_utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class LiveEvent(SQLModel, table=True):
    """One status report: from a technician's app (en route, arrived, completed, late, cannot complete,
    customer not home) or a dispatcher or customer portal (cancel, reschedule)."""

    __tablename__ = "liveevent"
    __table_args__ = (Index("ix_liveevent_request", "request_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id")
    assignment_id: int | None = Field(default=None, foreign_key="assignment.id")
    technician_id: int | None = Field(default=None, foreign_key="technician.id")
    kind: str
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    minutes: float | None = None
    eta: datetime | None = _dt()
    note: str = ""
    by: str = ""
    follow_up_request_id: int | None = Field(default=None, foreign_key="servicerequest.id")
    created_at: datetime = Field(default_factory=_utcnow, sa_column=Column(UTCDateTime(), nullable=False))
