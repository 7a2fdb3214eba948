"""Input and output shapes (pydantic), validated before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Every id is 1..2^31-1: the range of an integer column on PostgreSQL, inside SQLite's, so an id outside it is
# refused (422) before it reaches either database.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
IdList = Annotated[list[Id], Field(max_length=200)]
Text = Annotated[str, Field(max_length=200)]
# Times the service accepts: far enough either way for any real schedule, and clear of the calendar's ends
# (0001-01-01 or 9999-12-31 overflow when converted between time zones).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_time_bounds(v: datetime) -> datetime:
    """A timezone-aware time between 2000 and 2200; the message says what is wrong."""
    if v.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-11-23T08:00:00-06:00")
    if not EARLIEST <= v < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return v


def check_skill_levels(levels: dict[str, int]) -> dict[str, int]:
    """Skill levels run 1..5; the message names the skill."""
    for skill, level in levels.items():
        if not 1 <= level <= 5:
            raise ValueError(f"level of {skill!r} must be 1..5 (got {level})")
    return levels


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return check_time_bounds(v)

    @model_validator(mode="after")
    def _ordered(self) -> WindowIn:
        if self.end <= self.start:
            raise ValueError("window ends before it starts")
        return self


class ServiceRequestCreate(BaseModel):
    """A new service request as the portal, the call centre or a dispatcher sends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    customer_name: str = Field(min_length=1, max_length=200)
    customer_phone: str = Field("", max_length=40)
    customer_email: str = Field("", max_length=254)
    address: str = Field(min_length=1, max_length=500)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    job_type: str = Field(min_length=1, max_length=200)
    complexity: str = Field("medium", pattern="^(low|medium|high)$")
    description: str = Field("", max_length=4000)
    required_skills: dict[str, int] = Field(default_factory=dict, max_length=50)
    required_certifications: list[Text] = Field(default_factory=list, max_length=50)
    parts_needed: dict[str, int] = Field(default_factory=dict, max_length=100)
    estimated_duration_minutes: int | None = Field(None, gt=0, le=24 * 60)
    priority: int = Field(5, ge=1, le=10)
    estimated_value: float = Field(0.0, ge=0)
    time_windows: list[WindowIn] = Field(default_factory=list, max_length=20)
    preferred_technician_ids: IdList = Field(default_factory=list)
    excluded_technician_ids: IdList = Field(default_factory=list)
    channel: str = Field("portal", pattern="^(portal|call_centre|dispatcher|booking)$")
    notes: str = Field("", max_length=4000)
    # A customer of the company set-up (truckroll.company.sync): the request takes their closed hours and preferences.
    customer_ref: str | None = Field(None, max_length=100)

    @field_validator("required_skills")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        return check_skill_levels(v)

    @field_validator("parts_needed")
    @classmethod
    def _quantities(cls, v: dict[str, int]) -> dict[str, int]:
        for part, qty in v.items():
            if not 0 < qty <= 10_000:
                raise ValueError(f"quantity of {part!r} must be 1..10000 (got {qty})")
        return v


class FieldError(BaseModel):
    field: str
    message: str


class RequestValidationError(ValueError):
    """A request that cannot be accepted; ``errors`` names every failing field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    @classmethod
    def from_pydantic(cls, exc: Exception) -> RequestValidationError:
        errs = []
        for e in exc.errors():  # type: ignore[attr-defined]
            loc = ".".join(str(p) for p in e["loc"]) or "body"
            errs.append(FieldError(field=loc, message=e["msg"]))
        return cls(errs)
