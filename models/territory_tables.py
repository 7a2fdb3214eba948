"""Tables of the dispatch rules: territories, memberships, operating hours, absences, shift scope, scheduling and
travel policies, customers' closed hours. The engine works on the plain types of ``models.rules``;
``truckroll.store`` converts. Loaded and validated by ``truckroll.rules.config``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def _dt() -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=False))


class Territory(SQLModel, table=True):
    """A service territory: a polygon inside its parent (a city area inside a region)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="territory.id")
    # 0 = top (a region); children one level deeper.
    level: int = 0
    timezone: str = "America/Chicago"
    # A GeoJSON MultiPolygon ([lon, lat] positions).
    geometry: dict[str, Any] = _json()
    # [{"weekday": 0..6, "start": "08:00", "end": "12:00"}]: jobs here only then (empty = any time).
    visiting_hours: list[dict[str, Any]] = _json(list)


class TechnicianMembership(SQLModel, table=True):
    """A technician's effective-dated membership of a territory: primary, secondary or relocation."""

    __table_args__ = (Index("ix_membership_tech", "technician_id", "effective_from"),)

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id")
    territory_id: int = Field(foreign_key="territory.id")
    kind: str = "primary"  # primary | secondary | relocation
    effective_from: date
    effective_until: date | None = None  # inclusive
    max_radius_km: float | None = None
    max_radius_minutes: float | None = None
    # A relocation's own home base and radius centre for its dates (None: the technician's home).
    home_lat: float | None = None
    home_lon: float | None = None
    radius_centre_lat: float | None = None
    radius_centre_lon: float | None = None


class OperatingHours(SQLModel, table=True):
    """A technician's weekly working hours (local time of their primary territory, else the company's)."""

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id", index=True)
    weekday: int  # 0 = Monday
    start: str  # "HH:MM"
    end: str  # "HH:MM"; "24:00" = midnight


class TechnicianAbsence(SQLModel, table=True):
    __table_args__ = (Index("ix_absence_tech_start", "technician_id", "start"),)

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int = Field(foreign_key="technician.id")
    start: datetime = _dt()
    end: datetime = _dt()
    reason: str = "absent"


class ShiftScope(SQLModel, table=True):
    """What a shift covers beyond the technician's memberships (an on-call shift covering every territory)."""

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="shift.id", unique=True)
    all_territories: bool = False


class SchedulingPolicy(SQLModel, table=True):
    """Hard or soft boundaries per weekday, for a territory's jobs (territory_id None = the company default)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = "default"
    territory_id: int | None = Field(default=None, foreign_key="territory.id", unique=True)
    # ["hard", "hard", "hard", "hard", "hard", "soft", "soft"]: Monday first.
    boundaries: list[str] = _json(list)


class TravelPolicyRecord(SQLModel, table=True):
    """Where a technician starts and ends the day and whose time the way there and back is
    (technician_id None = the company default)."""

    __tablename__ = "travelpolicy"

    id: int | None = Field(default=None, primary_key=True)
    technician_id: int | None = Field(default=None, foreign_key="technician.id", unique=True)
    start_at: str = "home"  # home | depot
    end_at: str = "home"
    depot_lat: float | None = None
    depot_lon: float | None = None
    outbound: str = "company"  # company | technician | partial
    outbound_own_minutes: float = 0.0
    inbound: str = "company"
    inbound_own_minutes: float = 0.0
    max_radius_km: float | None = None
    max_radius_minutes: float | None = None


class CustomerClosedHours(SQLModel, table=True):
    """When a request's customer cannot receive a technician, weekly (a shop closed 13:00-15:00)."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    weekday: int
    start: str
    end: str
