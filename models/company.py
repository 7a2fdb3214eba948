"""The company set-up document (YAML, JSON, CSV rows, or the API's bodies) as pydantic models.

Every model refuses unknown keys, so a misspelt ``max_radius_kms`` is an error naming its path
(``technicians[2].max_radius_kms``), never silently ignored. ``truckroll.company.sync`` validates the references
between sections and syncs the database to the document.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from models.schemas import check_skill_levels

COMPLEXITIES = ("low", "medium", "high")


# Numbers and flags must come as JSON numbers and booleans ("12" or "true" is refused, naming the field) over
# HTTP and in YAML; CSV cells are converted to numbers and booleans before they are validated (truckroll.company.sync).
StrictNumber = Annotated[float, Strict()]


def _date_text(v: Any) -> Any:
    if not isinstance(v, str | date):
        raise ValueError("must be a date, YYYY-MM-DD")
    return v


# A date given as text (or a YAML date), never a number taken for a timestamp.
DateText = Annotated[date, BeforeValidator(_date_text)]


def _moment_text(v: Any) -> Any:
    if not isinstance(v, str | datetime):
        raise ValueError("must be a date-time with offset, e.g. 2030-01-07T08:00:00-06:00")
    return v


# A date-time with its offset, given as text (or a YAML timestamp), never a number taken for a timestamp.
MomentText = Annotated[AwareDatetime, BeforeValidator(_moment_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HomeIn(_Strict):
    lat: StrictNumber = Field(ge=-90, le=90)
    lon: StrictNumber = Field(ge=-180, le=180)


class HoursIn(_Strict):
    """Weekly hours: ``days`` (mon..sun, weekdays, weekends, all), ``start`` and ``end`` ("HH:MM", "24:00")."""

    days: str | list[str]
    start: str
    end: str


class ShiftExceptionIn(_Strict):
    """A date the pattern does not apply: ``day_off: true``, or other ``start``/``end`` hours."""

    date: date
    day_off: StrictBool = False
    start: str | None = None
    end: str | None = None
    reason: str = ""


class ShiftPatternIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    hours: list[HoursIn] = Field(default_factory=list)


class JobTypeIn(_Strict):
    name: str = Field(min_length=1, max_length=100)
    trade: str = ""
    duration_minutes: StrictInt = Field(gt=0, le=24 * 60)
    # complexity -> {skill: minimum level}
    skills: dict[str, dict[str, StrictInt]] = Field(default_factory=dict)
    certifications: list[str] = Field(default_factory=list)
    parts: dict[str, StrictInt] = Field(default_factory=dict)
    typical_value: StrictNumber = Field(0.0, ge=0)

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for complexity, levels in v.items():
            if complexity not in COMPLEXITIES:
                raise ValueError(f"complexity must be one of {', '.join(COMPLEXITIES)} (got {complexity!r})")
            check_skill_levels(levels)
        return v


class TechnicianIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = ""
    phone: str = ""
    home: HomeIn
    skills: dict[str, StrictInt] = Field(default_factory=dict)
    # certification -> expiry date
    certifications: dict[str, DateText] = Field(default_factory=dict)
    multiplier: StrictNumber = Field(1.0, gt=0, le=10)
    van_inventory: dict[str, StrictInt] = Field(default_factory=dict)
    shift_pattern: str | None = None
    shift_exceptions: list[ShiftExceptionIn] = Field(default_factory=list)
    active: StrictBool = True

    @field_validator("skills")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        return check_skill_levels(v)

    @field_validator("van_inventory")
    @classmethod
    def _stock(cls, v: dict[str, int]) -> dict[str, int]:
        for part, qty in v.items():
            if qty < 0:
                raise ValueError(f"stock of {part!r} must be >= 0 (got {qty})")
        return v


class CustomerIn(_Strict):
    ref: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    email: str = ""
    phone: str = ""
    address: str = ""
    lat: StrictNumber = Field(ge=-90, le=90)
    lon: StrictNumber = Field(ge=-180, le=180)
    notes: str = ""
    closed_hours: list[HoursIn] = Field(default_factory=list)
    preferred_technicians: list[str] = Field(default_factory=list)
    excluded_technicians: list[str] = Field(default_factory=list)


class MembershipIn(_Strict):
    """A technician's membership of a territory (docs/rules.md): primary, secondary or relocation, with dates
    (``until`` inclusive) and an optional radius; a relocation may have its own home and radius centre."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    technician: str = Field(min_length=1, max_length=200)
    territory: str = Field(min_length=1, max_length=200)
    kind: Literal["primary", "secondary", "relocation"] = "primary"
    from_: DateText | None = Field(None, alias="from")
    until: DateText | None = None
    max_radius_km: StrictNumber | None = Field(None, gt=0, le=20000)
    max_radius_minutes: StrictNumber | None = Field(None, gt=0, le=24 * 60)
    home: HomeIn | None = None
    radius_centre: HomeIn | None = None


class MembershipKey(_Strict):
    """A membership to remove: the key the sync matches it by (technician, territory, kind, start date)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    technician: str
    territory: str
    kind: str = "primary"
    from_: DateText = Field(alias="from")


class IntervalKey(_Strict):
    """A dated shift or an absence to remove: its technician and either its local ``date`` (the key the sync
    matches it by: every shift of the technician on that day, or the absence starting that day) or its exact
    ``start`` and ``end`` (date-times with offset)."""

    technician: str
    date: DateText | None = None
    start: MomentText | None = None
    end: MomentText | None = None

    @model_validator(mode="after")
    def _date_or_times(self) -> IntervalKey:
        if self.date is not None and (self.start is not None or self.end is not None):
            raise ValueError("give date, or start and end, not both")
        if self.date is None and (self.start is None or self.end is None):
            raise ValueError("give date (YYYY-MM-DD), or start and end")
        return self


class ExceptionKey(_Strict):
    """A shift exception to remove: the technician and the date."""

    technician: str
    date: DateText


class SchedulingKey(_Strict):
    """A scheduling policy to remove: its territory; without one, the company default."""

    territory: str | None = None


class TravelKey(_Strict):
    """A travel policy to remove: its technician; without one, the company default."""

    technician: str | None = None


class RemovePoliciesIn(_Strict):
    scheduling: list[SchedulingKey] = Field(default_factory=list)
    travel: list[TravelKey] = Field(default_factory=list)


class RemoveIn(_Strict):
    """What to remove, by the key each section is matched by: technicians are deactivated (their history
    stays), the rest deleted. Removing what is not there is no error (the same file twice changes nothing):
    the report notes it."""

    technicians: list[str] = Field(default_factory=list)
    job_types: list[str] = Field(default_factory=list)
    customers: list[str] = Field(default_factory=list)
    shift_patterns: list[str] = Field(default_factory=list)
    shift_exceptions: list[ExceptionKey] = Field(default_factory=list)
    territories: list[str] = Field(default_factory=list)
    memberships: list[MembershipKey] = Field(default_factory=list)
    shifts: list[IntervalKey] = Field(default_factory=list)
    absences: list[IntervalKey] = Field(default_factory=list)
    # Technicians whose weekly operating hours are removed (technicians on a shift pattern take its hours).
    operating_hours: list[str] = Field(default_factory=list)
    policies: RemovePoliciesIn = Field(default_factory=RemovePoliciesIn)


class CompanyDocument(_Strict):
    """A whole company: its catalogue, people, customers and (in the format of docs/rules.md) its rules."""

    job_types: list[JobTypeIn] = Field(default_factory=list)
    shift_patterns: list[ShiftPatternIn] = Field(default_factory=list)
    technicians: list[TechnicianIn] = Field(default_factory=list)
    customers: list[CustomerIn] = Field(default_factory=list)
    remove: RemoveIn = Field(default_factory=RemoveIn)
    # The dispatch rules' sections, validated by truckroll.rules.config.
    territories: list[dict[str, Any]] | None = None
    memberships: list[dict[str, Any]] | None = None
    shifts: list[dict[str, Any]] | None = None
    operating_hours: list[dict[str, Any]] | None = None
    absences: list[dict[str, Any]] | None = None
    policies: dict[str, Any] | None = None


class SyncReport(BaseModel):
    """Per section: how many items were created, updated, removed, and left unchanged."""

    created: dict[str, int] = Field(default_factory=dict)
    updated: dict[str, int] = Field(default_factory=dict)
    removed: dict[str, int] = Field(default_factory=dict)
    unchanged: dict[str, int] = Field(default_factory=dict)
    rules: dict[str, int] = Field(default_factory=dict)
    # Removals that found nothing to remove (already gone, or a misspelt key): not errors, so that the same
    # file twice changes nothing, but said.
    notes: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or any(self.removed.values()) or any(
            self.rules.values())
